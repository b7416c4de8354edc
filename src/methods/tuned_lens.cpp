// The tuned lens: the translators, their file, and applying them (training: tuned_lens_train.cpp).
#include "nnterp/tuned_lens.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "core/tensor_text.hpp"
#include "methods/method_utils.hpp"
#include "methods/tuned_lens_internal.hpp"
#include "nnterp/error.hpp"
#include "nnterp/params.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp {

namespace tuned_lens_detail {  // named, not anonymous: the library is a unity build

constexpr const char* kFormat = "nnterp.tuned_lens";

std::string weight_name(int64_t layer) { return "layer_translators." + std::to_string(layer) + ".weight"; }
std::string bias_name(int64_t layer) { return "layer_translators." + std::to_string(layer) + ".bias"; }

void check_layer(const TunedLens& lens, int layer) {
  if (layer < 0 || layer >= lens.num_layers())
    throw Error(ErrorKind::InvalidArgument, "layer",
                "must be in [0, " + std::to_string(lens.num_layers()) + "), got " + std::to_string(layer));
}

// Counts layer_translators.{i}.weight for i = 0, 1, ... until one is missing.
int64_t count_translators(const io::SafetensorsFile& file) {
  int64_t n = 0;
  while (file.contains(weight_name(n))) ++n;
  return n;
}

torch::Tensor read_translator_tensor(const io::SafetensorsFile& file, const std::string& name,
                                     const std::vector<int64_t>& shape) {
  const auto* info = file.find(name);
  if (!info)
    throw Error(ErrorKind::MissingWeight, file.path().string(), "has no tensor '" + name + "'",
                "a tuned lens holds layer_translators.{i}.weight and .bias for every layer");
  if (info->shape != shape)
    throw Error(ErrorKind::Shape, file.path().string(),
                "tensor '" + name + "' has shape " + shape_text(info->shape) + ", expected " + shape_text(shape));
  return file.tensor(name).to(torch::kFloat32).clone();
}

// A metadata value as a number (0 when absent); a malformed one is an Error naming the file and key.
double metadata_number(const io::SafetensorsFile& file, const std::string& key) {
  auto it = file.metadata().find(key);
  if (it == file.metadata().end()) return 0;
  try {
    return std::stod(it->second);
  } catch (const std::exception&) {
    throw Error(ErrorKind::Format, file.path().string(), "metadata '" + key + "' is not a number: '" + it->second + "'");
  }
}

std::string metadata_text(const io::SafetensorsFile& file, const std::string& key) {
  auto it = file.metadata().find(key);
  return it == file.metadata().end() ? std::string() : it->second;
}

}  // namespace tuned_lens_detail

// ---- the lens ------------------------------------------------------------------------------------

TunedLens::TunedLens(std::vector<torch::Tensor> weights, std::vector<torch::Tensor> biases, TunedLensInfo info)
    : weights_(std::move(weights)), biases_(std::move(biases)), info_(std::move(info)) {
  if (weights_.size() != biases_.size())
    throw Error(ErrorKind::InvalidArgument, "tuned lens",
                std::to_string(weights_.size()) + " weights but " + std::to_string(biases_.size()) + " biases");
  for (size_t l = 0; l < weights_.size(); ++l) {
    const int64_t H = weights_[0].size(0);
    if (weights_[l].dim() != 2 || weights_[l].size(0) != H || weights_[l].size(1) != H || biases_[l].dim() != 1 ||
        biases_[l].size(0) != H)
      throw Error(ErrorKind::Shape, "tuned lens translator " + std::to_string(l),
                  "expected weight [" + std::to_string(H) + ", " + std::to_string(H) + "] and bias [" + std::to_string(H) +
                      "], got " + tensor_text(weights_[l]) + " and " + tensor_text(biases_[l]));
    weights_[l] = weights_[l].to(torch::kFloat32);
    biases_[l] = biases_[l].to(torch::kFloat32);
  }
}

TunedLens TunedLens::identity(const LanguageModel& model) {
  const int64_t H = model.hidden_size();
  std::vector<torch::Tensor> w, b;
  for (int64_t l = 0; l < model.num_layers(); ++l) {
    w.push_back(torch::zeros({H, H}));
    b.push_back(torch::zeros({H}));
  }
  TunedLensInfo info;
  info.model = model.path().filename().string();
  info.fingerprint = unembedding_fingerprint(model);
  return TunedLens(std::move(w), std::move(b), info);
}

const torch::Tensor& TunedLens::weight(int layer) const {
  tuned_lens_detail::check_layer(*this, layer);
  return weights_[static_cast<size_t>(layer)];
}

const torch::Tensor& TunedLens::bias(int layer) const {
  tuned_lens_detail::check_layer(*this, layer);
  return biases_[static_cast<size_t>(layer)];
}

torch::Tensor TunedLens::translate(int layer, const torch::Tensor& hidden) const {
  tuned_lens_detail::check_layer(*this, layer);
  if (!hidden.defined() || hidden.dim() < 1 || hidden.size(-1) != hidden_size())
    throw Error(ErrorKind::Shape, "hidden", "expected [..., " + std::to_string(hidden_size()) + "], got " + tensor_text(hidden));
  const auto& w = weights_[static_cast<size_t>(layer)];
  const auto& b = biases_[static_cast<size_t>(layer)];
  auto h = hidden.to(torch::kFloat32);
  // Residual form, as the reference: weight decay pulls the map towards the identity, and a zero
  // translator adds exact zeros (so an untrained lens is the logit lens bit for bit).
  return (h + torch::linear(h, w.to(h.device()), b.to(h.device()))).to(hidden.scalar_type());
}

namespace tuned_lens_detail {

std::vector<std::pair<std::string, torch::Tensor>> translator_tensors(const TunedLens& lens) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (int l = 0; l < lens.num_layers(); ++l) {
    out.emplace_back(weight_name(l), lens.weight(l).detach());
    out.emplace_back(bias_name(l), lens.bias(l).detach());
  }
  return out;
}

std::map<std::string, std::string> lens_metadata(const TunedLens& lens) {
  char loss[32];
  std::snprintf(loss, sizeof loss, "%.9g", lens.info().train_loss);
  return {{"format", kFormat},
          {"hidden_size", std::to_string(lens.hidden_size())},
          {"num_layers", std::to_string(lens.num_layers())},
          {"model", lens.info().model},
          {"fingerprint", lens.info().fingerprint},
          {"steps", std::to_string(lens.info().steps)},
          {"train_loss", loss},
          {"last_layer", "identity (never trained: its lens is the model's own distribution)"}};
}

void write_atomically(const std::filesystem::path& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Written beside and renamed: an interrupted save never leaves a truncated lens or checkpoint.
  auto tmp = path;
  tmp += ".partial";
  io::save_safetensors(tmp, tensors, metadata);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw Error(ErrorKind::Io, path.string(), "could not be written (rename from " + tmp.string() + "): " + ec.message());
}

TunedLens read_lens(const io::SafetensorsFile& file, const LanguageModel& model) {
  const std::string where = file.path().string();
  const std::string format = metadata_text(file, "format");
  if (format != kFormat)
    throw Error(ErrorKind::Format, where,
                format.empty() ? "is not an nnterp tuned lens (its metadata has no format)"
                               : "is not an nnterp tuned lens (metadata format '" + format + "')",
                "write lenses with `nnterp train-lens` or TunedLens::save");
  const int64_t layers = count_translators(file), H = model.hidden_size();
  if (layers == 0)
    throw Error(ErrorKind::MissingWeight, where, "has no tensor 'layer_translators.0.weight'",
                "a tuned lens holds layer_translators.{i}.weight and .bias for every layer");
  const auto* first = file.find(weight_name(0));
  if (first->shape.size() != 2 || first->shape[0] != H)
    throw Error(ErrorKind::Shape, where,
                "is a lens for hidden size " + std::to_string(first->shape.empty() ? 0 : first->shape[0]) +
                    " (layer_translators.0.weight is " + shape_text(first->shape) + ") but the model " +
                    model.path().filename().string() + " has hidden size " + std::to_string(H),
                "use a lens trained on this model");
  if (layers != model.num_layers())
    throw Error(ErrorKind::Shape, where,
                "is a lens for " + std::to_string(layers) + " layers (layer_translators.0-" + std::to_string(layers - 1) +
                    ") but the model " + model.path().filename().string() + " has " + std::to_string(model.num_layers()),
                "use a lens trained on this model");
  std::vector<torch::Tensor> w, b;
  for (int64_t l = 0; l < layers; ++l) {
    w.push_back(read_translator_tensor(file, weight_name(l), {H, H}));
    b.push_back(read_translator_tensor(file, bias_name(l), {H}));
  }
  TunedLensInfo info;
  info.model = metadata_text(file, "model");
  info.fingerprint = metadata_text(file, "fingerprint");
  info.steps = static_cast<int64_t>(metadata_number(file, "steps"));
  info.train_loss = file.metadata().count("train_loss") ? metadata_number(file, "train_loss") : std::nan("");
  return TunedLens(std::move(w), std::move(b), info);
}

void check_fits(const TunedLens& lens, const LanguageModel& model) {
  if (lens.num_layers() != model.num_layers() || lens.hidden_size() != model.hidden_size())
    throw Error(ErrorKind::Shape, "tuned lens",
                "is for " + std::to_string(lens.num_layers()) + " layers of hidden size " + std::to_string(lens.hidden_size()) +
                    ", the model has " + std::to_string(model.num_layers()) + " of " + std::to_string(model.hidden_size()),
                "use a lens trained on this model");
}

LayerStates layer_states(const StandardizedTransformer& model, const TokenBatch& batch, bool last_token_only) {
  torch::NoGradGuard no_grad;
  const int64_t L = model.num_layers();
  std::vector<torch::Tensor> hidden(static_cast<size_t>(L));
  model.trace(batch, [&](Trace& t) {
    for (int64_t l = 0; l < L; ++l) hidden[static_cast<size_t>(l)] = t.layers_output[static_cast<int>(l)].clone();
    t.stop();
  });
  auto mask = batch.attention_mask.defined() ? batch.attention_mask.to(torch::kBool)
                                             : torch::ones_like(batch.input_ids, torch::kBool);
  if (last_token_only) {  // left padding: every row's last real token is in the last column
    mask = torch::zeros_like(mask);
    mask.select(1, -1).fill_(true);
  }
  LayerStates s;
  for (auto& h : hidden) s.hidden.push_back(h.index({mask.to(h.device())}));  // [n, H]: unpadded positions
  // The target: the last layer through the same projection the lens uses (the model's logits).
  s.final_logprobs = torch::log_softmax(model.project_on_vocab(s.hidden.back()).to(torch::kFloat32), -1);
  return s;
}

torch::Tensor kl_to_final(const torch::Tensor& final_logprobs, const torch::Tensor& lens_logits) {
  auto lens_logprobs = torch::log_softmax(lens_logits.to(torch::kFloat32), -1);
  return (final_logprobs.exp() * (final_logprobs - lens_logprobs)).sum(-1);
}

torch::Tensor lens_logits(const StandardizedTransformer& model, const TunedLens& lens, int layer, const torch::Tensor& hidden) {
  return model.project_on_vocab(lens.translate(layer, hidden));
}

}  // namespace tuned_lens_detail

// ---- the file ------------------------------------------------------------------------------------

void TunedLens::save(const std::filesystem::path& path) const {
  tuned_lens_detail::write_atomically(path, tuned_lens_detail::translator_tensors(*this), tuned_lens_detail::lens_metadata(*this));
}

TunedLens TunedLens::load(const std::filesystem::path& path, const LanguageModel& model) {
  auto file = io::SafetensorsFile::open(path);
  TunedLens lens = tuned_lens_detail::read_lens(*file, model);
  const std::string here = unembedding_fingerprint(model);
  if (!lens.info().fingerprint.empty() && lens.info().fingerprint != here)
    std::fprintf(stderr, "nnterp: warning: %s was trained on another model (fingerprint %s, this model's %s)\n",
                 path.string().c_str(), lens.info().fingerprint.c_str(), here.c_str());
  return lens;
}

std::string unembedding_fingerprint(const LanguageModel& model) {
  torch::NoGradGuard no_grad;
  auto norm_of = [&](Param p) {
    if (!has_param(model, p)) return 0.0;
    // Accumulated in float32 without a converted copy (W_U of a large model is gigabytes).
    return torch::linalg_vector_norm(param(model, p), 2, c10::nullopt, false, torch::kFloat32).item<double>();
  };
  char text[160];
  // Five significant digits: the same on any machine (summation order), and a real change to the
  // weights shows.
  std::snprintf(text, sizeof text, "%s L%lld H%lld V%lld ln_final %.5g W_U %.5g", model.architecture().c_str(),
                static_cast<long long>(model.num_layers()), static_cast<long long>(model.hidden_size()),
                static_cast<long long>(model.vocab_size()), norm_of(Param::ln_final_w), norm_of(Param::W_U));
  return text;
}

// ---- applying it ---------------------------------------------------------------------------------

torch::Tensor tuned_lens(const StandardizedTransformer& model, const TraceInput& prompts, const TunedLens& lens,
                         const LensOptions& options) {
  methods_detail::check_batch_size(options.batch_size);
  tuned_lens_detail::check_fits(lens, model);
  torch::NoGradGuard no_grad;
  const auto layers = resolve_layers(model, options.layers);
  const int64_t N = input_size(prompts);
  if (N == 0) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given");
  std::vector<torch::Tensor> probs;
  for (int64_t b = 0; b < N; b += options.batch_size) {
    auto batch = tokenize_left_padded(model, input_slice(prompts, b, std::min(N, b + options.batch_size)));
    auto acts = methods_detail::batch_activations(model, batch, options.idx, layers, Point::LayerOutput);  // [layers, B, H]
    std::vector<torch::Tensor> translated;
    for (size_t li = 0; li < layers.size(); ++li) translated.push_back(lens.translate(layers[li], acts[static_cast<int64_t>(li)]));
    // [B, layers, H]: one projection for every layer at once, as logit_lens.
    probs.push_back(torch::softmax(model.project_on_vocab(torch::stack(translated, 1)).to(torch::kFloat32), -1));
  }
  return torch::cat(probs, 0);
}

torch::Tensor lens_kl_to_final(const StandardizedTransformer& model, const TraceInput& prompts, const TunedLens& lens,
                               int64_t batch_size, bool last_token_only) {
  methods_detail::check_batch_size(batch_size);
  tuned_lens_detail::check_fits(lens, model);
  torch::NoGradGuard no_grad;
  const int64_t N = input_size(prompts), L = model.num_layers();
  if (N == 0) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given");
  auto total = torch::zeros({L}, torch::kFloat64);
  int64_t positions = 0;
  for (int64_t b = 0; b < N; b += batch_size) {
    auto batch = tokenize_left_padded(model, input_slice(prompts, b, std::min(N, b + batch_size)));
    auto s = tuned_lens_detail::layer_states(model, batch, last_token_only);
    for (int64_t l = 0; l < L; ++l) {
      auto logits = tuned_lens_detail::lens_logits(model, lens, static_cast<int>(l), s.hidden[static_cast<size_t>(l)]);
      total[l] += tuned_lens_detail::kl_to_final(s.final_logprobs, logits).to(torch::kFloat64).sum().cpu();
    }
    positions += s.final_logprobs.size(0);
  }
  return total / static_cast<double>(positions);
}

LensOptimizer parse_lens_optimizer(const std::string& name, const std::string& option) {
  if (name == "sgd") return LensOptimizer::Sgd;
  if (name == "adam") return LensOptimizer::Adam;
  throw Error(ErrorKind::InvalidArgument, option, "must be sgd or adam, got '" + name + "'");
}

const char* lens_optimizer_name(LensOptimizer optimizer) { return optimizer == LensOptimizer::Adam ? "adam" : "sgd"; }

}  // namespace nnterp

#include "nnterp/language_model.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>

#include "core/tensor_text.hpp"
#include "io/config_json.hpp"
#include "model/access.hpp"
#include "model/decoder.hpp"
#include "model/input_checks.hpp"
#include "model/placement.hpp"
#include "nnterp/error.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/tokenizer.hpp"
#include "nnterp/tokenizer_tensors.hpp"
#include "nnterp/validate.hpp"

namespace nnterp {

struct LanguageModel::Impl {
  std::filesystem::path path;
  Config config;
  std::unique_ptr<model::Decoder> decoder;
  std::unique_ptr<Tokenizer> tokenizer;
  std::optional<Config> generation_config;
  LoadReport report;
  // Rotary / ALiBi models run past config.json's max_position_embeddings (they extrapolate) but
  // warn once on stderr; learned positions are a hard limit checked by the decoder.
  int64_t soft_position_limit = 0;
  std::string soft_position_key;
  std::atomic<bool> warned_beyond_positions{false};
};

namespace {

const char* kSoftPositionKeys[] = {"max_position_embeddings", "n_positions", "max_seq_len"};

// 1 + the largest position `in` uses, when that may exceed `limit` (else 0, without a reduction).
int64_t positions_needed(const ForwardInput& in, int64_t limit) {
  const auto& ids = in.input_ids;
  if (!ids.defined() || ids.dim() != 2 || ids.numel() == 0) return 0;
  if (in.position_ids.defined())
    return in.position_ids.numel() ? in.position_ids.max().item<int64_t>() + 1 : 0;
  const int64_t width = (in.cache ? in.cache->length() : 0) + ids.size(1);
  if (width <= limit) return 0;
  const auto& m = in.attention_mask;  // positions are cumsum(mask) - 1: the longest row decides
  if (m.defined() && m.dim() == 2 && m.size(1) == width && m.numel() > 0) return m.ne(0).sum(1).max().item<int64_t>();
  return width;
}

}  // namespace

static const model::ArchSpec& spec_of(const LanguageModel& m) { return LanguageModelAccess::spec(m); }

static bool has_tokenizer_files(const std::filesystem::path& dir) {
  return std::filesystem::exists(dir / "tokenizer.json") || std::filesystem::exists(dir / "tokenizer.json.gz");
}

LanguageModel::LanguageModel(const std::string& name, const LoadOptions& options)
    : impl_(std::make_unique<Impl>()) {
  const auto started = std::chrono::steady_clock::now();
  model::check_device(options.device);
  impl_->path = resolve_model(name);
  impl_->config = Config::load(impl_->path / "config.json");
  model::ArchSpec spec = model::arch_from_config(impl_->config);
  auto store = io::WeightStore::open(impl_->path);
  const model::WeightPlacement placement(model::resolve_dtype(options.dtype, impl_->config, store), options.device);
  model::check_memory_for(store, placement);
  model::WeightLoadStats stats;
  auto weights = model::load_weights(spec, store, placement, &stats);
  impl_->decoder = std::make_unique<model::Decoder>(std::move(spec), std::move(weights));
  auto& report = impl_->report;
  report.stored_bytes = store.bytes_by_dtype();
  report.dtype = placement.dtype;
  report.matmul_dtype = model::matmul_dtype(placement.dtype, placement.device);
  report.device = placement.device;
  report.bytes_in_place = stats.bytes_in_place;
  report.bytes_copied = stats.bytes_copied;
  if (std::filesystem::exists(impl_->path / "generation_config.json"))
    impl_->generation_config = Config::load(impl_->path / "generation_config.json");
  if (spec_of(*this).positions != model::PositionKind::Learned) {
    const auto root = config_root(impl_->config);
    for (const char* key : kSoftPositionKeys) {
      const auto v = root.find(key);
      if (v && v->is_integer() && v->integer() > 0) {
        impl_->soft_position_limit = v->integer();
        impl_->soft_position_key = key;
        break;
      }
    }
  }
  if (options.load_tokenizer && has_tokenizer_files(impl_->path))
    impl_->tokenizer = std::make_unique<Tokenizer>(Tokenizer::from_folder(impl_->path));
  // Read the token id settings now, so that a malformed one fails at load, naming its file.
  eos_token_ids();
  pad_token_id();
  if (options.validate) {
    auto report = validate_model(*this);
    if (!report.passed())
      throw Error(ErrorKind::Unsupported, impl_->path.string(), "the model failed nnterp's load-time validation:" + report.failures(),
                  "run `nnterp validate` for the full table; LoadOptions::validate = false skips this check");
  }
  report.load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  report.peak_rss_bytes = model::peak_rss_bytes();
}

LanguageModel::~LanguageModel() = default;
LanguageModel::LanguageModel(LanguageModel&&) noexcept = default;
LanguageModel& LanguageModel::operator=(LanguageModel&&) noexcept = default;

const std::filesystem::path& LanguageModel::path() const { return impl_->path; }
const Config& LanguageModel::config() const { return impl_->config; }
const std::string& LanguageModel::architecture() const { return spec_of(*this).name; }
const std::string& LanguageModel::hf_class() const { return spec_of(*this).hf_class; }
int64_t LanguageModel::num_layers() const { return spec_of(*this).num_layers; }
int64_t LanguageModel::num_heads() const { return spec_of(*this).attn.num_heads; }
int64_t LanguageModel::num_kv_heads() const { return spec_of(*this).attn.num_kv_heads; }
int64_t LanguageModel::head_dim() const { return spec_of(*this).attn.head_dim; }
int64_t LanguageModel::hidden_size() const { return spec_of(*this).hidden; }
int64_t LanguageModel::vocab_size() const { return spec_of(*this).vocab; }
// A token id setting: an integer or a list of integers, first from generation_config.json, then
// config.json. Anything else is an error naming the file and key (a silently ignored EOS id would
// make generation run past the end of every answer).
static std::vector<int64_t> token_ids_setting(const std::optional<Config>& generation, const Config& config, const char* key) {
  for (const Config* c : {generation ? &*generation : nullptr, &config}) {
    if (!c) continue;
    auto out = c->token_ids(key);
    if (!out.empty()) return out;
  }
  return {};
}

std::vector<int64_t> LanguageModel::eos_token_ids() const {
  auto ids = token_ids_setting(impl_->generation_config, impl_->config, "eos_token_id");
  if (ids.empty() && impl_->tokenizer && impl_->tokenizer->eos_token_id()) ids.push_back(*impl_->tokenizer->eos_token_id());
  return ids;
}

std::optional<int64_t> LanguageModel::pad_token_id() const {
  auto ids = token_ids_setting(impl_->generation_config, impl_->config, "pad_token_id");
  if (!ids.empty()) return ids.front();
  if (impl_->tokenizer) return impl_->tokenizer->pad_token_id();
  return std::nullopt;
}

const Tokenizer* LanguageModel::tokenizer() const { return impl_->tokenizer.get(); }

TokenBatch LanguageModel::tokenize(const TraceInput& inputs) const {
  if (inputs.tokens) {
    TokenBatch out = *inputs.tokens;
    const auto& ids = out.input_ids;
    if (!out.attention_mask.defined() && ids.defined() && ids.dim() == 2) out.attention_mask = torch::ones_like(ids, torch::kInt64);
    ForwardInput in;
    in.input_ids = out.input_ids;
    in.attention_mask = out.attention_mask;
    model::check_forward_input(in, 0, vocab_size());  // dtype, shape, id range, mask values, empty rows
    return out;
  }
  if (inputs.prompts.empty())
    throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given", "give at least one prompt (or a TokenBatch of ids)");
  if (!impl_->tokenizer)
    throw Error(ErrorKind::InvalidArgument, path().string(), "this model folder has no tokenizer.json, so prompts cannot be tokenized",
                "pass token ids (TokenBatch / --inputs IN.safetensors) instead");
  auto batch = encode_batch_tensors(*impl_->tokenizer, inputs.prompts);
  for (size_t i = 0; i < inputs.prompts.size(); ++i)
    if (batch.attention_mask.size(1) == 0 || batch.attention_mask[static_cast<int64_t>(i)].sum().item<int64_t>() == 0) {
      std::string text = inputs.prompts[i].size() > 40 ? inputs.prompts[i].substr(0, 40) + "..." : inputs.prompts[i];
      throw Error(ErrorKind::InvalidArgument, "prompt " + std::to_string(i),
                  "the prompt \"" + text + "\" is empty after tokenization (and the tokenizer adds no BOS token)",
                  "give a non-empty prompt: a forward pass needs at least one token per prompt");
    }
  return TokenBatch{batch.input_ids, batch.attention_mask};
}

const model::Decoder& LanguageModelAccess::decoder(const LanguageModel& m) { return *m.impl_->decoder; }
model::Decoder& LanguageModelAccess::decoder(LanguageModel& m) { return *m.impl_->decoder; }
const model::ArchSpec& LanguageModelAccess::spec(const LanguageModel& m) { return m.impl_->decoder->spec(); }

torch::ScalarType LanguageModel::dtype() const { return impl_->report.dtype; }
torch::Device LanguageModel::device() const { return impl_->report.device; }
const LoadReport& LanguageModel::load_report() const { return impl_->report; }

bool LanguageModel::has_router() const { return spec_of(*this).mlp.kind == model::MlpKind::MoE; }
const std::string& LanguageModel::padding_dependence() const { return spec_of(*this).padding_dependence; }
bool LanguageModel::has_attention(int64_t layer) const {
  const auto& spec = spec_of(*this);
  return layer >= 0 && layer < spec.num_layers && spec.layers[static_cast<size_t>(layer)].mixer == model::Mixer::Attention;
}

namespace {

const char* mixer_name(model::Mixer mixer) {
  switch (mixer) {
    case model::Mixer::ShortConv: return "short-convolution";
    case model::Mixer::GatedDeltaNet: return "Gated DeltaNet";
    default: return "attention";
  }
}

// Why layer `p.layer`'s token mixer has no such point (a point of another mixer kind), or "".
std::string mixer_lacks(const LanguageModel& model, const PointId& p) {
  const auto& spec = spec_of(model);
  if (p.layer < 0 || p.layer >= spec.num_layers) return "";
  const model::Mixer mixer = spec.layers[static_cast<size_t>(p.layer)].mixer;
  const bool attention_point = p.point == Point::Query || p.point == Point::Key || p.point == Point::Value ||
                               p.point == Point::AttnScores || p.point == Point::AttnProbs || p.point == Point::Z;
  const bool missing = (attention_point && mixer != model::Mixer::Attention) ||
                       (p.point == Point::ConvState && mixer == model::Mixer::Attention) ||
                       (p.point == Point::RecurrentState && mixer != model::Mixer::GatedDeltaNet);
  if (!missing) return "";
  std::string layer = "layer " + std::to_string(p.layer) + " of this " + model.architecture() + " model is " +
                      (mixer == model::Mixer::Attention ? "an " : "a ") + mixer_name(mixer) + " layer";
  if (attention_point) return layer + ": it has no attention (its attn_output is that mixer's output)";
  if (mixer == model::Mixer::Attention) return layer + ": its memory is the KV cache (read k and v), not a state";
  return layer + ": its only state is the convolution's (conv_state)";
}

}  // namespace

bool LanguageModel::has_point(const PointId& p, std::string* why_not) const {
  std::string reason = mixer_lacks(*this, p);
  const bool routing_point = p.point == Point::RouterLogits || p.point == Point::ExpertIndices || p.point == Point::ExpertWeights;
  if (reason.empty() && routing_point && !has_router())
    reason = "this " + architecture() + " model has no router (it is not a mixture of experts)";
  else if (reason.empty() && routing_point && !has_router(p.layer))
    reason = "layer " + std::to_string(p.layer) + " of this " + architecture() + " model has a dense MLP, so no router";
  else if (reason.empty() && p.point == Point::MlpHidden && has_router(p.layer))
    reason = "layer " + std::to_string(p.layer) + " of this " + architecture() +
             " model is a mixture of experts: each expert has its own hidden layer (read the routing points)";
  if (reason.empty() && p.point == Point::ResidMid && spec_of(*this).residual == model::Residual::Parallel)
    reason = "this " + architecture() +
             " model computes attention and MLP in parallel from the block's input: no residual stream lies "
             "between them (layers.{i}.output sums the input and both branches)";
  if (why_not) *why_not = reason;
  return reason.empty();
}

std::vector<int64_t> LanguageModel::point_shape(const PointId& p, int64_t B, int64_t T, int64_t past) const {
  const auto& a = spec_of(*this);
  if (point_info(p.point).per_layer() && (p.layer < 0 || p.layer >= a.num_layers))
    throw Error(ErrorKind::InvalidArgument, p.name(),
                "layer index out of range: the model has " + std::to_string(a.num_layers) + " layers");
  std::string why_not;
  if (!has_point(p, &why_not)) throw Error(ErrorKind::InvalidArgument, p.name(), why_not);
  const int64_t S = past + T;
  switch (p.point) {
    case Point::Query: return {B, a.attn.num_heads, T, a.attn.head_dim};
    case Point::Key: return {B, a.attn.num_kv_heads, T, a.attn.head_dim};
    case Point::Value: return {B, a.attn.num_kv_heads, T, a.attn.value_dim()};
    case Point::AttnScores:
    case Point::AttnProbs: return {B, a.attn.num_heads, T, S};
    case Point::Z: return {B, T, a.attn.num_heads, a.attn.value_dim()};
    case Point::MlpHidden: return {B, T, a.mlp.intermediate};
    case Point::ConvState: {
      const auto& d = a.deltanet;
      if (a.layers[static_cast<size_t>(p.layer)].mixer == model::Mixer::GatedDeltaNet)
        return {B, 2 * d.key_heads * d.key_dim + d.value_heads * d.value_dim, d.conv_kernel - 1};
      return {B, a.hidden, a.short_conv_kernel - 1};
    }
    case Point::RecurrentState: return {B, a.deltanet.value_heads, a.deltanet.key_dim, a.deltanet.value_dim};
    case Point::RouterLogits: return {B * T, a.mlp.moe.num_experts};
    case Point::ExpertIndices:
    case Point::ExpertWeights: return {B * T, a.mlp.moe.top_k};
    case Point::Logits: return {B, T, a.vocab};
    default: return {B, T, a.hidden};
  }
}

bool LanguageModel::has_attention_sinks() const { return spec_of(*this).weights.count(Weight::AttnSinks) > 0; }
bool LanguageModel::has_router(int64_t layer) const {
  const auto& spec = spec_of(*this);
  return layer >= 0 && layer < spec.num_layers && model::layer_mlp_kind(spec, layer) == model::MlpKind::MoE;
}

std::optional<int64_t> LanguageModel::learned_positions() const {
  const auto& spec = spec_of(*this);
  if (spec.positions != model::PositionKind::Learned || spec.max_positions <= 0) return std::nullopt;
  return spec.max_positions;
}

std::vector<ModuleInfo> LanguageModel::modules() const {
  std::vector<ModuleInfo> out;
  auto find_or_add = [&](const std::string& name) -> ModuleInfo& {
    for (auto& m : out)
      if (m.name == name) return m;
    out.push_back(ModuleInfo{name, {}});
    return out.back();
  };
  find_or_add("embed_tokens");
  for (int64_t i = 0; i < num_layers(); ++i) {
    find_or_add("layers." + std::to_string(i) + ".self_attn");
    find_or_add("layers." + std::to_string(i) + ".mlp");
  }
  find_or_add("ln_final");
  find_or_add("lm_head");
  for (const auto& [id, sources] : LanguageModelAccess::decoder(*this).weights().sources)
    find_or_add(id.module()).weights[id.name()] = sources;
  return out;
}

torch::Tensor LanguageModel::forward(const ForwardInput& input, PointHooks* hooks) const {
  const int64_t limit = impl_->soft_position_limit;
  if (limit > 0 && !impl_->warned_beyond_positions.load(std::memory_order_relaxed)) {
    const int64_t needed = positions_needed(input, limit);
    if (needed > limit && !impl_->warned_beyond_positions.exchange(true)) {
      const char* kind = spec_of(*this).positions == model::PositionKind::Alibi ? "ALiBi" : "rotary";
      std::fprintf(stderr,
                   "nnterp: warning: %s (%s): a sequence of %lld positions is longer than %s = %lld; %s positions "
                   "extrapolate, but the model was not trained beyond %lld positions (warned once per model)\n",
                   path().string().c_str(), architecture().c_str(), static_cast<long long>(needed),
                   impl_->soft_position_key.c_str(), static_cast<long long>(limit), kind, static_cast<long long>(limit));
    }
  }
  return impl_->decoder->forward(input, hooks);
}

torch::Tensor LanguageModel::forward(const torch::Tensor& ids, const torch::Tensor& mask, PointHooks* hooks) const {
  ForwardInput in;
  in.input_ids = ids;
  in.attention_mask = mask;
  return forward(in, hooks);
}

namespace {

// A residual-stream tensor [..., hidden] for `what`, in the model's dtype and on its device.
torch::Tensor residual_for(const LanguageModel& model, const torch::Tensor& hidden, const char* what) {
  if (!hidden.defined() || hidden.dim() == 0 || hidden.size(-1) != model.hidden_size() || !hidden.is_floating_point())
    throw Error(ErrorKind::Shape, what,
                "expected a floating-point tensor [..., hidden_size = " + std::to_string(model.hidden_size()) + "], got " +
                    (hidden.defined() ? shape_text(hidden.sizes()) + " " + c10::toString(hidden.scalar_type())
                                      : std::string("an undefined tensor")),
                "project a residual-stream tensor (a layer's input or output)");
  return hidden.to(model.device(), model.dtype());  // another float dtype or device is converted
}

}  // namespace

torch::Tensor LanguageModel::project_on_vocab(const torch::Tensor& hidden) const {
  return impl_->decoder->project_on_vocab(residual_for(*this, hidden, "project_on_vocab"));
}

torch::Tensor LanguageModel::final_norm(const torch::Tensor& hidden) const {
  return impl_->decoder->final_norm(residual_for(*this, hidden, "final_norm"));
}

torch::Tensor LanguageModel::final_norm_linear(const torch::Tensor& hidden, const torch::Tensor& parts) const {
  if (!hidden.defined() || !parts.defined() || hidden.size(-1) != hidden_size() || parts.size(-1) != hidden_size() ||
      parts.dim() != hidden.dim() + 1)
    throw Error(ErrorKind::Shape, "final_norm_linear", "expected hidden [..., " + std::to_string(hidden_size()) +
                                                           "] and parts [..., n, " + std::to_string(hidden_size()) + "]");
  return impl_->decoder->final_norm_module().linear_part(hidden, parts);
}

double LanguageModel::logit_scale() const { return spec_of(*this).logit_scale; }
double LanguageModel::final_softcap() const { return spec_of(*this).final_softcap; }

torch::Tensor LanguageModel::unembed(const torch::Tensor& normed) const {
  return impl_->decoder->unembed(residual_for(*this, normed, "unembed"));
}

}  // namespace nnterp

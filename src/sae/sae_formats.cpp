// Reading and writing dictionaries in the formats people download: SAELens folders, Gemma Scope
// params, EleutherAI sparsify folders, bare safetensors files (src/sae/SOURCES.md says where each
// format's semantics come from). Hook names map to nnterp's points here.
#include <nlohmann/json.hpp>

#include <cmath>
#include <fstream>
#include <regex>

#include "core/tensor_text.hpp"
#include "io/json_reader.hpp"
#include "nnterp/error.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/sae.hpp"

namespace nnterp {

namespace fs = std::filesystem;

namespace {

constexpr const char* kSaeLensConfig = "cfg.json";
constexpr const char* kSaeLensWeights = "sae_weights.safetensors";
constexpr const char* kGemmaScopeWeights = "params.safetensors";
constexpr const char* kSparsifyWeights = "sae.safetensors";

// ---- hook names ------------------------------------------------------------------------------

struct HookSuffix {
  const char* suffix;
  Point point;
};

// TransformerLens hook names after "blocks.{i}.".
const HookSuffix kTransformerLensHooks[] = {
    {"hook_resid_pre", Point::LayerInput},       {"hook_resid_mid", Point::ResidMid},
    {"hook_resid_post", Point::LayerOutput},     {"hook_attn_out", Point::AttnOutput},
    {"hook_mlp_out", Point::MlpOutput},          {"hook_mlp_in", Point::ResidMid},
    {"ln1.hook_normalized", Point::AttnInput},   {"ln2.hook_normalized", Point::MlpInput},
    {"attn.hook_z", Point::Z},                   {"hook_z", Point::Z},
    {"mlp.hook_post", Point::MlpHidden},         {"mlp.hook_pre", Point::MlpHidden},
};

// HF module names after "[model.]layers.{i}" (a module's output; "" is the layer itself).
const HookSuffix kModuleHooks[] = {
    {"", Point::LayerOutput},          {".mlp", Point::MlpOutput},
    {".self_attn", Point::AttnOutput}, {".attn", Point::AttnOutput},
    {".input_layernorm", Point::AttnInput}, {".ln_1", Point::AttnInput},
    {".pre_feedforward_layernorm", Point::MlpInput}, {".ln_2", Point::MlpInput},
    {".mlp.act_fn", Point::MlpHidden},
};

std::optional<PointId> transformer_lens_hook(const std::string& name) {
  static const std::regex pattern(R"(blocks\.(\d{1,6})\.(.+))");
  std::smatch m;
  if (name == "hook_embed") return PointId{Point::Embed, -1};
  if (!std::regex_match(name, m, pattern)) return std::nullopt;
  for (const auto& hook : kTransformerLensHooks)
    if (m[2] == hook.suffix) return PointId{hook.point, std::stoi(m[1])};
  return std::nullopt;
}

std::optional<PointId> module_hook(const std::string& name) {
  static const std::regex pattern(R"((?:model\.|transformer\.|gpt_neox\.)?(?:layers|h)\.(\d{1,6})(.*))");
  std::smatch m;
  if (!std::regex_match(name, m, pattern)) return std::nullopt;
  for (const auto& hook : kModuleHooks)
    if (m[2] == hook.suffix) return PointId{hook.point, std::stoi(m[1])};
  return std::nullopt;
}

// ---- reading ---------------------------------------------------------------------------------

std::string subject(const fs::path& file, const std::string& key) { return file.string() + " (" + key + ")"; }

// The dictionary tensors of a weights file, by their SAELens names; any other tensor is an error
// (a format nnterp misreads would otherwise load silently wrong).
SaeWeights read_weights(const fs::path& file, const std::map<std::string, std::string>& renames = {}) {
  auto st = io::SafetensorsFile::open(file);
  SaeWeights w;
  const std::map<std::string, torch::Tensor*> slots = {
      {"W_enc", &w.W_enc}, {"b_enc", &w.b_enc},   {"W_dec", &w.W_dec}, {"b_dec", &w.b_dec},  {"threshold", &w.threshold},
      {"b_gate", &w.b_gate}, {"b_mag", &w.b_mag}, {"r_mag", &w.r_mag}, {"W_skip", &w.W_skip}};
  for (const auto& info : st->tensors()) {
    auto renamed = renames.find(info.name);
    const std::string name = renamed == renames.end() ? info.name : renamed->second;
    if (name == "log_threshold") {  // older SAELens JumpReLU checkpoints
      w.threshold = st->tensor(info.name).exp();
      continue;
    }
    auto slot = slots.find(name);
    if (slot == slots.end())
      throw Error(ErrorKind::UnexpectedWeight, subject(file, info.name), "not a tensor of any dictionary format nnterp reads",
                  "expected W_enc, b_enc, W_dec, b_dec and, by architecture, threshold, b_gate/b_mag/r_mag or W_skip");
    *slot->second = st->tensor(info.name).clone();  // own the memory: the file may be replaced while the SAE lives
  }
  if (!w.W_enc.defined() || !w.W_dec.defined())
    throw Error(ErrorKind::MissingWeight, file.string(), "a dictionary needs W_enc and W_dec");
  return w;
}

SaeActivation activation_of(const std::string& architecture, const io::JsonValue& cfg, const fs::path& cfg_path) {
  if (architecture == "standard" || architecture == "transcoder" || architecture == "skip_transcoder") {
    const std::string fn = cfg.string_or("activation_fn_str", cfg.string_or("activation_fn", "relu"));
    if (fn == "relu") return SaeActivation::ReLU;
    if (fn == "topk") return SaeActivation::TopK;  // SAELens 3-5 spelled TopK this way
    throw Error(ErrorKind::Unsupported, subject(cfg_path, "activation_fn_str"), "activation '" + fn + "' is not supported",
                "nnterp reads relu and topk");
  }
  if (architecture == "topk") return SaeActivation::TopK;
  if (architecture == "jumprelu" || architecture == "jumprelu_transcoder" || architecture == "jumprelu_skip_transcoder")
    return SaeActivation::JumpReLU;
  if (architecture == "gated") return SaeActivation::Gated;
  throw Error(ErrorKind::Unsupported, subject(cfg_path, "architecture"), "unknown SAE architecture '" + architecture + "'",
              "nnterp reads standard, topk, jumprelu, gated, transcoder, skip_transcoder, jumprelu_transcoder and "
              "jumprelu_skip_transcoder");
}

int64_t topk_k(const io::JsonValue& cfg) {
  if (cfg.has("k")) return cfg.at("k").integer();  // SAELens 6
  if (auto kwargs = cfg.find("activation_fn_kwargs"); kwargs && kwargs->has("k")) return kwargs->at("k").integer();
  cfg.fail("an object with k (SAELens 6) or activation_fn_kwargs.k (SAELens 3-5) for a topk SAE");
}

SaeNormalization normalization_of(const io::JsonValue& cfg, const fs::path& cfg_path, double* factor) {
  const std::string norm = cfg.string_or("normalize_activations", "none");
  if (norm == "none") return SaeNormalization::None;
  if (norm == "constant_norm_rescale") return SaeNormalization::ConstantNormRescale;
  if (norm == "layer_norm") return SaeNormalization::LayerNorm;
  if (norm == "expected_average_only_in") {
    // SAELens folds the factor into the weights when it knows it (from_pretrained) and otherwise
    // runs without it (load_from_disk): so do we, unless the config carries the factor.
    if (!cfg.has("norm_scaling_factor")) return SaeNormalization::None;
    *factor = cfg.at("norm_scaling_factor").number();
    return SaeNormalization::Scale;
  }
  throw Error(ErrorKind::Unsupported, subject(cfg_path, "normalize_activations"), "unknown normalization '" + norm + "'",
              "nnterp reads none, expected_average_only_in, constant_norm_rescale and layer_norm");
}

// A string the config has at top level (SAELens 3-5) or under metadata (SAELens 6).
std::string config_string(const io::JsonValue& cfg, const std::string& key) {
  if (cfg.has(key)) return cfg.at(key).string();
  if (auto meta = cfg.find("metadata"); meta && meta->is_object()) return meta->string_or(key, "");
  return "";
}

std::optional<PointId> resolve_point(const std::string& hook, const fs::path& where, const char* key) {
  if (hook.empty()) return std::nullopt;
  if (auto point = point_from_hook_name(hook)) return point;
  throw Error(ErrorKind::Unsupported, subject(where, key), "the hook '" + hook + "' names no point nnterp knows",
              "give the point explicitly (SaeLoadOptions::point, --point layers.N.output); `nnterp points` lists them");
}

// Without a configured output, a transcoder reading an MLP's input writes that MLP's output.
std::optional<PointId> default_transcoder_output(const std::optional<PointId>& input) {
  if (input && input->point == Point::MlpInput) return PointId{Point::MlpOutput, input->layer};
  return std::nullopt;
}

void resolve_points(SaeConfig& c, const SaeLoadOptions& options, const fs::path& where) {
  c.input_point = options.point ? options.point : resolve_point(c.hook_name, where, "hook_name");
  if (!c.transcoder) {
    c.output_point = c.input_point;
    return;
  }
  c.output_point = options.output_point ? options.output_point : resolve_point(c.hook_name_out, where, "hook_name_out");
  if (!c.output_point) c.output_point = default_transcoder_output(c.input_point);
  if (c.input_point && c.output_point && c.output_point->before(*c.input_point))
    throw Error(ErrorKind::Config, where.string(),
                "a transcoder writes " + c.output_point->name() + ", which the forward computes before its input " +
                    c.input_point->name());
}

Sae load_saelens(const fs::path& dir, const SaeLoadOptions& options) {
  const fs::path cfg_path = dir / kSaeLensConfig;
  const auto doc = io::read_json_file(cfg_path);
  const io::JsonValue cfg(doc, cfg_path.string(), ErrorKind::Config);
  SaeConfig c;
  c.format = "saelens";
  c.source = dir;
  c.architecture = cfg.string_or("architecture", "standard");
  c.activation = activation_of(c.architecture, cfg, cfg_path);
  c.transcoder = c.architecture.find("transcoder") != std::string::npos;
  c.d_in = cfg.at("d_in").integer();
  c.d_sae = cfg.at("d_sae").integer();
  c.d_out = cfg.integer_or("d_out", c.d_in);
  if (c.activation == SaeActivation::TopK) c.k = topk_k(cfg);
  c.apply_b_dec_to_input = cfg.boolean_or("apply_b_dec_to_input", !c.transcoder);
  c.rescale_acts_by_decoder_norm = cfg.boolean_or("rescale_acts_by_decoder_norm", false);
  if (cfg.boolean_or("normalize_decoder", false))
    throw Error(ErrorKind::Unsupported, subject(cfg_path, "normalize_decoder"), "gated SAEs with normalize_decoder are not supported");
  c.normalization = normalization_of(cfg, cfg_path, &c.norm_scaling_factor);
  c.hook_name = config_string(cfg, "hook_name");
  c.hook_name_out = config_string(cfg, "hook_name_out");
  c.model_name = config_string(cfg, "model_name");
  resolve_points(c, options, cfg_path);
  auto weights = read_weights(dir / kSaeLensWeights);
  if (c.architecture.find("skip") == std::string::npos && weights.W_skip.defined())
    throw Error(ErrorKind::UnexpectedWeight, subject(dir / kSaeLensWeights, "W_skip"), "only skip transcoders have W_skip");
  if (c.architecture.find("skip") != std::string::npos && !weights.W_skip.defined())
    throw Error(ErrorKind::MissingWeight, subject(dir / kSaeLensWeights, "W_skip"), "a skip transcoder needs W_skip [d_out, d_in]");
  return Sae(std::move(c), std::move(weights));
}

// Gemma Scope keeps the layer and site in its folder names: ".../gemma-scope-2b-pt-res/layer_12/width_16k/...".
void gemma_scope_points(const fs::path& path, SaeConfig& c) {
  static const std::regex layer_dir(R"(layer_(\d{1,6}))");
  std::optional<int> layer;
  std::string site;
  for (const auto& part : path) {
    const std::string name = part.string();
    std::smatch m;
    if (std::regex_match(name, m, layer_dir)) layer = std::stoi(m[1]);
    if (name.find("gemma-scope") == std::string::npos) continue;
    for (const char* s : {"transcoders", "-res", "-mlp", "-att"})
      if (name.find(s) != std::string::npos) site = s;
  }
  if (!layer || site.empty()) return;
  if (site == "-res") c.hook_name = "blocks." + std::to_string(*layer) + ".hook_resid_post";
  if (site == "-mlp") c.hook_name = "blocks." + std::to_string(*layer) + ".hook_mlp_out";
  if (site == "-att") c.hook_name = "blocks." + std::to_string(*layer) + ".attn.hook_z";
  if (site == "transcoders") {
    c.hook_name = "blocks." + std::to_string(*layer) + ".ln2.hook_normalized";
    c.hook_name_out = "blocks." + std::to_string(*layer) + ".hook_mlp_out";
  }
}

// Gemma Scope: JumpReLU on x·W_enc + b_enc (b_dec is not subtracted from the input).
Sae load_gemma_scope(const fs::path& file, const SaeLoadOptions& options) {
  auto weights = read_weights(file);
  SaeConfig c;
  c.format = "gemma-scope";
  c.source = file;
  c.activation = weights.threshold.defined() ? SaeActivation::JumpReLU : SaeActivation::ReLU;
  c.architecture = weights.threshold.defined() ? "jumprelu" : "standard";
  c.apply_b_dec_to_input = false;
  c.d_in = weights.W_enc.dim() == 2 ? weights.W_enc.size(0) : 0;
  c.d_sae = weights.W_enc.dim() == 2 ? weights.W_enc.size(1) : 0;
  c.d_out = weights.W_dec.dim() == 2 ? weights.W_dec.size(1) : 0;
  gemma_scope_points(fs::absolute(file), c);
  c.transcoder = !c.hook_name_out.empty() || options.output_point.has_value();
  if (c.transcoder) c.architecture = "jumprelu_transcoder";
  resolve_points(c, options, file);
  return Sae(std::move(c), std::move(weights));
}

// EleutherAI sparsify: cfg.json {k, num_latents | expansion_factor, ...} + sae.safetensors with
// encoder.weight [d_sae, d_in], encoder.bias, W_dec [d_sae, d_in], b_dec; TopK on x − b_dec. The
// folder's name is the hook point ("layers.10", "layers.10.mlp").
Sae load_sparsify(const fs::path& dir, const SaeLoadOptions& options) {
  const fs::path cfg_path = dir / kSaeLensConfig;
  const auto doc = io::read_json_file(cfg_path);
  const io::JsonValue cfg(doc, cfg_path.string(), ErrorKind::Config);
  if (cfg.boolean_or("skip_connection", false))
    throw Error(ErrorKind::Unsupported, subject(cfg_path, "skip_connection"), "sparsify skip connections are not supported");
  auto weights = read_weights(dir / kSparsifyWeights, {{"encoder.weight", "W_enc"}, {"encoder.bias", "b_enc"}});
  if (weights.W_enc.dim() == 2) weights.W_enc = weights.W_enc.t().contiguous();  // Linear stores [out, in]
  SaeConfig c;
  c.format = "sparsify";
  c.source = dir;
  c.architecture = "topk";
  c.activation = SaeActivation::TopK;
  c.k = cfg.at("k").integer();
  c.transcoder = cfg.boolean_or("transcode", false);
  c.apply_b_dec_to_input = !c.transcoder;
  c.d_in = weights.W_enc.size(0);
  c.d_sae = weights.W_enc.size(1);
  c.d_out = weights.W_dec.dim() == 2 ? weights.W_dec.size(1) : 0;
  const std::string hook = fs::absolute(dir).filename().string();
  if (!c.transcoder) {
    c.hook_name = hook;
  } else if (auto out = module_hook(hook)) {  // a transcoder reads the module's input, writes its output
    c.hook_name_out = hook;
    if (out->point == Point::MlpOutput) c.hook_name = "blocks." + std::to_string(out->layer) + ".ln2.hook_normalized";
  }
  if (!options.point && !point_from_hook_name(c.hook_name)) c.hook_name.clear();  // a folder name, not a hook
  resolve_points(c, options, dir);
  return Sae(std::move(c), std::move(weights));
}

// A bare safetensors file with SAELens tensor names: JumpReLU when it has a threshold, gated with
// b_gate, ReLU otherwise (TopK needs a config to say k).
Sae load_bare(const fs::path& file, const SaeLoadOptions& options) {
  auto weights = read_weights(file);
  if (!weights.b_gate.defined()) return load_gemma_scope(file, options);
  SaeConfig c;
  c.format = "safetensors";
  c.source = file;
  c.activation = SaeActivation::Gated;
  c.architecture = "gated";
  c.d_in = weights.W_enc.size(0);
  c.d_sae = weights.W_enc.size(1);
  c.d_out = weights.W_dec.dim() == 2 ? weights.W_dec.size(1) : 0;
  resolve_points(c, options, file);
  return Sae(std::move(c), std::move(weights));
}

const char* normalization_name(SaeNormalization n) {
  switch (n) {
    case SaeNormalization::None: return "none";
    case SaeNormalization::Scale: return "expected_average_only_in";
    case SaeNormalization::ConstantNormRescale: return "constant_norm_rescale";
    case SaeNormalization::LayerNorm: return "layer_norm";
  }
  return "none";
}

// The TransformerLens name SAELens tools expect for a point (nnterp's own name where TL has none).
std::string hook_name_of(const std::optional<PointId>& point, const std::string& configured) {
  if (!configured.empty() || !point) return configured;
  if (point->point == Point::Embed) return "hook_embed";
  for (const auto& hook : kTransformerLensHooks)
    if (hook.point == point->point) return "blocks." + std::to_string(point->layer) + "." + hook.suffix;
  return point->name();
}

Sae apply_load_options(Sae sae, const SaeLoadOptions& options) {
  if (!options.dtype && !options.device) return sae;
  return sae.to(options.device.value_or(sae.weights().W_enc.device()), options.dtype.value_or(sae.weights().W_enc.scalar_type()));
}

Sae load_any(const fs::path& path, const SaeLoadOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(path / kSaeLensWeights)) return load_saelens(path, options);
    if (fs::exists(path / kSparsifyWeights) && fs::exists(path / kSaeLensConfig)) return load_sparsify(path, options);
    if (fs::exists(path / kGemmaScopeWeights)) return load_gemma_scope(path / kGemmaScopeWeights, options);
    if (fs::exists(path / "params.npz"))
      throw Error(ErrorKind::Unsupported, (path / "params.npz").string(), "nnterp reads Gemma Scope weights as safetensors",
                  "convert once: python3 -c \"import numpy as np, safetensors.numpy as s; "
                  "s.save_file(dict(np.load('params.npz')), 'params.safetensors')\"");
    throw Error(ErrorKind::NotFound, path.string(), "no SAE here",
                "expected cfg.json + sae_weights.safetensors (SAELens), params.safetensors (Gemma Scope) or "
                "cfg.json + sae.safetensors (sparsify)");
  }
  if (!fs::exists(path, ec)) throw Error(ErrorKind::NotFound, path.string(), "no such file or folder");
  if (path.filename() == kSaeLensWeights && fs::exists(path.parent_path() / kSaeLensConfig))
    return load_saelens(path.parent_path(), options);
  if (path.extension() == ".npz") return load_any(path.parent_path(), options);
  return load_bare(path, options);
}

}  // namespace

const char* sae_activation_name(SaeActivation activation) {
  switch (activation) {
    case SaeActivation::ReLU: return "relu";
    case SaeActivation::TopK: return "topk";
    case SaeActivation::JumpReLU: return "jumprelu";
    case SaeActivation::Gated: return "gated";
  }
  return "relu";
}

std::optional<PointId> point_from_hook_name(const std::string& hook_name) {
  if (auto p = transformer_lens_hook(hook_name)) return p;
  if (auto p = module_hook(hook_name)) return p;
  try {
    return parse_point(hook_name);
  } catch (const Error&) {
    return std::nullopt;
  }
}

Sae Sae::load(const fs::path& path, const SaeLoadOptions& options) { return apply_load_options(load_any(path, options), options); }

void Sae::save_saelens(const fs::path& dir) const {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::Io, dir.string(), "cannot create the folder: " + ec.message());
  const auto& c = config_;
  std::string architecture = c.activation == SaeActivation::ReLU ? "standard" : sae_activation_name(c.activation);
  if (c.transcoder)
    architecture = std::string(c.activation == SaeActivation::JumpReLU ? "jumprelu_" : "") +
                   (weights_.W_skip.defined() ? "skip_transcoder" : "transcoder");
  nlohmann::json cfg;
  cfg["architecture"] = architecture;
  cfg["d_in"] = c.d_in;
  cfg["d_sae"] = c.d_sae;
  if (c.transcoder) cfg["d_out"] = c.d_out;
  cfg["dtype"] = weights_.W_enc.scalar_type() == torch::kBFloat16 ? "bfloat16"
                 : weights_.W_enc.scalar_type() == torch::kFloat16 ? "float16" : "float32";
  cfg["device"] = "cpu";
  cfg["apply_b_dec_to_input"] = c.apply_b_dec_to_input;
  cfg["normalize_activations"] = normalization_name(c.normalization);
  if (c.normalization == SaeNormalization::Scale) cfg["norm_scaling_factor"] = c.norm_scaling_factor;
  if (c.activation == SaeActivation::TopK) {
    cfg["k"] = c.k;  // SAELens 6, and 3-5 below
    cfg["activation_fn_str"] = "topk";
    cfg["activation_fn_kwargs"] = {{"k", c.k}};
    cfg["rescale_acts_by_decoder_norm"] = c.rescale_acts_by_decoder_norm;
  }
  const std::string hook = hook_name_of(c.input_point, c.hook_name);
  const std::string hook_out = c.transcoder ? hook_name_of(c.output_point, c.hook_name_out) : "";
  nlohmann::json metadata = {{"hook_name", hook}, {"model_name", c.model_name}};
  cfg["hook_name"] = hook;  // SAELens 3-5 read these at top level, 6 under metadata
  cfg["model_name"] = c.model_name;
  if (c.input_point && c.input_point->layer >= 0) cfg["hook_layer"] = c.input_point->layer;
  if (c.transcoder) metadata["hook_name_out"] = cfg["hook_name_out"] = hook_out;
  cfg["metadata"] = metadata;
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  const std::pair<const char*, const torch::Tensor*> named[] = {
      {"W_enc", &weights_.W_enc}, {"b_enc", &weights_.b_enc},  {"W_dec", &weights_.W_dec}, {"b_dec", &weights_.b_dec},
      {"threshold", &weights_.threshold}, {"b_gate", &weights_.b_gate}, {"b_mag", &weights_.b_mag},
      {"r_mag", &weights_.r_mag}, {"W_skip", &weights_.W_skip}};
  for (const auto& [name, t] : named)
    if (t->defined()) tensors.emplace_back(name, t->detach().cpu().contiguous());
  io::save_safetensors(dir / kSaeLensWeights, tensors);
  const fs::path cfg_path = dir / kSaeLensConfig;
  std::ofstream out(cfg_path);
  out << cfg.dump(2) << "\n";
  if (!out) throw Error(ErrorKind::Io, cfg_path.string(), "cannot write");
}

}  // namespace nnterp

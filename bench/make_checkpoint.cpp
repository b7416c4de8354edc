// nnterp_make_checkpoint: writes a random-weight HuggingFace checkpoint folder shaped exactly like
// a real model (its published config.json, tensor names, dtypes, shapes and shard layout), so that
// benchmarks can load "Llama-3.1-8B" without downloading it.
//
//   nnterp_make_checkpoint SHAPE OUT_DIR [--dtype bf16|f32|f16] [--shard-gb G] [--seed N]
//                          [--tokenizer DIR] [--layers N] [--force]
//
//   SHAPE        llama-3.2-1b, llama-3.1-8b, gemma-2-2b or qwen2.5-7b (the table in kShapes)
//   --dtype      default: the published checkpoint's dtype (bf16, except gemma-2-2b: f32)
//   --shard-gb   max shard size in GB (10^9 bytes, as HF's "5GB"); default: the one the published
//                checkpoint was saved with (5, except qwen2.5-7b: 4)
//   --seed       default 0; every tensor's values depend only on (seed, tensor name)
//   --tokenizer  copy tokenizer.json(.gz), tokenizer_config.json, special_tokens_map.json from DIR
//   --layers     override num_hidden_layers (smaller test checkpoints)
//   --force      write into a non-empty OUT_DIR (the files this tool writes are removed first)
//
// What is written: config.json (the published one; only num_hidden_layers with --layers and
// torch_dtype with --dtype differ), generation_config.json, and model.safetensors, or
// model-0000i-of-0000N.safetensors + model.safetensors.index.json when the total exceeds the shard
// size. Tensors are assigned to shards the way huggingface_hub's split_torch_state_dict_into_shards
// (save_pretrained) does, in state_dict order, so the shard files and the index match the real ones.
//
// Values: linear weights and embeddings uniform with std 0.02, biases std 0.01, RMSNorm weights
// 1.0 (0.0 for gemma-2, whose RMSNorm multiplies by 1 + weight). They come from splitmix64 seeded
// per tensor and per 1M-element chunk, written straight into the target dtype, and chunks are filled
// in parallel: an 8B checkpoint is 8e9 values, far too many for torch::randn + casts. Because the
// seed depends only on the tensor name, a --layers 2 checkpoint holds the same layer-0/1 weights as
// the full one, and the output does not depend on the thread count.
#include <ATen/Parallel.h>
#include <c10/util/Half.h>
#include <fmt/format.h>
#include <nlohmann/json.hpp>
#include <sys/mman.h>
#include <torch/types.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "nnterp/error.hpp"
#include "nnterp/safetensors.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// ---------------------------------------------------------------------------------------------
// The table: one entry per real model. config.json and generation_config.json are the published
// files (keys sorted, as transformers writes them); every tensor shape is derived from config.json,
// so there is a single source of truth.
// ---------------------------------------------------------------------------------------------
struct ModelShape {
  const char* name;               // the SHAPE argument
  const char* hf_repo;            // the model these files imitate
  const char* dtype;              // dtype of the published safetensors ("bf16" / "f32")
  double shard_gb;                // max_shard_size the published checkpoint was saved with
  const char* config;             // config.json as published
  const char* generation_config;  // generation_config.json as published
};

const ModelShape kShapes[] = {
    {"llama-3.2-1b", "meta-llama/Llama-3.2-1B", "bf16", 5.0,
     R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "head_dim": 64,
  "hidden_act": "silu",
  "hidden_size": 2048,
  "initializer_range": 0.02,
  "intermediate_size": 8192,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 16,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0,
  "tie_word_embeddings": true,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.45.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})",
     R"({"_from_model_config": true, "bos_token_id": 128000, "do_sample": true, "eos_token_id": 128001,
  "temperature": 0.6, "top_p": 0.9, "transformers_version": "4.45.0.dev0"})"},

    {"llama-3.1-8b", "meta-llama/Llama-3.1-8B", "bf16", 5.0,
     R"({
  "architectures": ["LlamaForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "bos_token_id": 128000,
  "eos_token_id": 128001,
  "hidden_act": "silu",
  "hidden_size": 4096,
  "initializer_range": 0.02,
  "intermediate_size": 14336,
  "max_position_embeddings": 131072,
  "mlp_bias": false,
  "model_type": "llama",
  "num_attention_heads": 32,
  "num_hidden_layers": 32,
  "num_key_value_heads": 8,
  "pretraining_tp": 1,
  "rms_norm_eps": 1e-05,
  "rope_scaling": {"factor": 8.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
                   "original_max_position_embeddings": 8192, "rope_type": "llama3"},
  "rope_theta": 500000.0,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.0.dev0",
  "use_cache": true,
  "vocab_size": 128256
})",
     R"({"bos_token_id": 128000, "do_sample": true, "eos_token_id": 128001, "temperature": 0.6,
  "top_p": 0.9, "transformers_version": "4.43.0.dev0"})"},

    // Published in float32 (10.5 GB, 3 shards); no tie_word_embeddings key: the default (true) applies.
    {"gemma-2-2b", "google/gemma-2-2b", "f32", 5.0,
     R"({
  "architectures": ["Gemma2ForCausalLM"],
  "attention_bias": false,
  "attention_dropout": 0.0,
  "attn_logit_softcapping": 50.0,
  "bos_token_id": 2,
  "cache_implementation": "hybrid",
  "eos_token_id": 1,
  "final_logit_softcapping": 30.0,
  "head_dim": 256,
  "hidden_act": "gelu_pytorch_tanh",
  "hidden_activation": "gelu_pytorch_tanh",
  "hidden_size": 2304,
  "initializer_range": 0.02,
  "intermediate_size": 9216,
  "max_position_embeddings": 8192,
  "model_type": "gemma2",
  "num_attention_heads": 8,
  "num_hidden_layers": 26,
  "num_key_value_heads": 4,
  "pad_token_id": 0,
  "query_pre_attn_scalar": 256,
  "rms_norm_eps": 1e-06,
  "rope_theta": 10000.0,
  "sliding_window": 4096,
  "torch_dtype": "float32",
  "transformers_version": "4.42.4",
  "use_cache": true,
  "vocab_size": 256000
})",
     R"({"_from_model_config": true, "bos_token_id": 2, "cache_implementation": "hybrid", "eos_token_id": 1,
  "pad_token_id": 0, "transformers_version": "4.42.4"})"},

    // Saved with 4 GB shards (3.95 + 3.86 + 3.86 + 3.56 GB); q/k/v carry biases (qwen2 always has them).
    {"qwen2.5-7b", "Qwen/Qwen2.5-7B", "bf16", 4.0,
     R"({
  "architectures": ["Qwen2ForCausalLM"],
  "attention_dropout": 0.0,
  "bos_token_id": 151643,
  "eos_token_id": 151643,
  "hidden_act": "silu",
  "hidden_size": 3584,
  "initializer_range": 0.02,
  "intermediate_size": 18944,
  "max_position_embeddings": 131072,
  "max_window_layers": 28,
  "model_type": "qwen2",
  "num_attention_heads": 28,
  "num_hidden_layers": 28,
  "num_key_value_heads": 4,
  "rms_norm_eps": 1e-06,
  "rope_theta": 1000000.0,
  "sliding_window": 131072,
  "tie_word_embeddings": false,
  "torch_dtype": "bfloat16",
  "transformers_version": "4.43.1",
  "use_cache": true,
  "use_mrope": false,
  "use_sliding_window": false,
  "vocab_size": 152064
})",
     R"({"bos_token_id": 151643, "do_sample": false, "eos_token_id": 151643, "max_new_tokens": 2048,
  "transformers_version": "4.37.0"})"},
};

const ModelShape* find_shape(const std::string& name) {
  for (const auto& s : kShapes)
    if (name == s.name) return &s;
  return nullptr;
}

std::string known_shapes() {
  std::string out;
  for (const auto& s : kShapes) out += fmt::format("{}{} ({})", out.empty() ? "" : ", ", s.name, s.hf_repo);
  return out;
}

// --dtype names → torch dtype and the torch_dtype string transformers writes into config.json.
struct DTypeChoice {
  const char* flag;
  torch::ScalarType scalar;
  const char* config_name;
};
const DTypeChoice kDTypes[] = {{"bf16", torch::kBFloat16, "bfloat16"},
                               {"f32", torch::kFloat32, "float32"},
                               {"f16", torch::kFloat16, "float16"}};

const DTypeChoice* find_dtype(const std::string& flag) {
  for (const auto& d : kDTypes)
    if (flag == d.flag) return &d;
  return nullptr;
}

// ---------------------------------------------------------------------------------------------
// Tensor list, in HF state_dict order (module registration order): embed, layers in order, norm,
// lm_head. The shard assignment depends on this order, so it must match transformers'.
// ---------------------------------------------------------------------------------------------
struct TensorSpec {
  std::string name;
  std::vector<int64_t> shape;
  float std = 0;       // > 0: random, uniform with this std
  float constant = 0;  // used when std == 0 (norm weights)
  int64_t numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
};

int64_t get_int(const json& cfg, const char* key) {
  if (!cfg.contains(key) || !cfg[key].is_number_integer())
    throw std::runtime_error(fmt::format("config.json lacks integer '{}'", key));
  return cfg[key].get<int64_t>();
}

std::vector<TensorSpec> tensor_specs(const json& cfg) {
  const int64_t hidden = get_int(cfg, "hidden_size"), inter = get_int(cfg, "intermediate_size");
  const int64_t heads = get_int(cfg, "num_attention_heads"), kv_heads = get_int(cfg, "num_key_value_heads");
  const int64_t head_dim = cfg.value("head_dim", hidden / heads);  // Llama-3.1-8B omits it
  const int64_t layers = get_int(cfg, "num_hidden_layers"), vocab = get_int(cfg, "vocab_size");
  const std::string type = cfg.value("model_type", "");
  const bool gemma = type == "gemma2";
  const bool tied = cfg.value("tie_word_embeddings", true);  // PretrainedConfig's default
  const bool attention_bias = cfg.value("attention_bias", false);
  const bool qkv_bias = type == "qwen2" || attention_bias;  // Qwen2Attention: bias on q/k/v only
  const bool mlp_bias = cfg.value("mlp_bias", false);
  const float norm_value = gemma ? 0.0f : 1.0f;  // gemma's RMSNorm scales by (1 + weight)
  constexpr float kWeightStd = 0.02f, kBiasStd = 0.01f;

  std::vector<TensorSpec> out;
  auto linear = [&](const std::string& name, int64_t out_f, int64_t in_f, bool bias) {
    out.push_back({name + ".weight", {out_f, in_f}, kWeightStd});
    if (bias) out.push_back({name + ".bias", {out_f}, kBiasStd});
  };
  auto norm = [&](const std::string& name) { out.push_back({name + ".weight", {hidden}, 0, norm_value}); };

  out.push_back({"model.embed_tokens.weight", {vocab, hidden}, kWeightStd});
  for (int64_t i = 0; i < layers; ++i) {
    const std::string p = fmt::format("model.layers.{}.", i);
    linear(p + "self_attn.q_proj", heads * head_dim, hidden, qkv_bias);
    linear(p + "self_attn.k_proj", kv_heads * head_dim, hidden, qkv_bias);
    linear(p + "self_attn.v_proj", kv_heads * head_dim, hidden, qkv_bias);
    linear(p + "self_attn.o_proj", hidden, heads * head_dim, attention_bias);
    linear(p + "mlp.gate_proj", inter, hidden, mlp_bias);
    linear(p + "mlp.up_proj", inter, hidden, mlp_bias);
    linear(p + "mlp.down_proj", hidden, inter, mlp_bias);
    norm(p + "input_layernorm");
    norm(p + "post_attention_layernorm");
    if (gemma) {  // Gemma2DecoderLayer registers these two after the first two norms
      norm(p + "pre_feedforward_layernorm");
      norm(p + "post_feedforward_layernorm");
    }
  }
  norm("model.norm");
  if (!tied) out.push_back({"lm_head.weight", {vocab, hidden}, kWeightStd});
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sharding, as huggingface_hub's split_state_dict_into_shards_factory: walk the tensors in order;
// a tensor larger than the limit gets a shard of its own (appended at once, the running shard goes
// on); otherwise close the running shard when the tensor would tip it over the limit.
// ---------------------------------------------------------------------------------------------
using Shard = std::vector<size_t>;  // indices into the spec list

std::vector<Shard> plan_shards(const std::vector<TensorSpec>& specs, size_t elem_size, uint64_t max_bytes) {
  std::vector<Shard> shards;
  Shard current;
  uint64_t current_bytes = 0;
  for (size_t i = 0; i < specs.size(); ++i) {
    const uint64_t bytes = static_cast<uint64_t>(specs[i].numel()) * elem_size;
    if (bytes > max_bytes) {
      shards.push_back({i});
      continue;
    }
    if (current_bytes + bytes > max_bytes) {
      shards.push_back(std::move(current));
      current.clear();
      current_bytes = 0;
    }
    current.push_back(i);
    current_bytes += bytes;
  }
  if (!current.empty()) shards.push_back(std::move(current));
  return shards;
}

std::string shard_file_name(size_t index, size_t count) {
  if (count == 1) return "model.safetensors";
  return fmt::format("model-{:05d}-of-{:05d}.safetensors", index + 1, count);
}

// ---------------------------------------------------------------------------------------------
// Random values: splitmix64, one stream per (tensor, 1M-element chunk).
// ---------------------------------------------------------------------------------------------
uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t tensor_seed(uint64_t seed, const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a of the name, then mixed with the seed
  for (unsigned char c : name) h = (h ^ c) * 1099511628211ull;
  uint64_t state = h ^ (seed * 0xD1B54A32D192ED03ull);
  return splitmix64(state);
}

// float → bfloat16 bits, rounding to nearest even (the values are finite).
uint16_t to_bf16_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  x += 0x7FFFu + ((x >> 16) & 1u);
  return static_cast<uint16_t>(x >> 16);
}

// Fills `count` elements of `out` with uniform values in [-a, a), a = std·√3 (so the std is `std`).
template <typename Store>
void fill_uniform(int64_t count, uint64_t seed, float std, Store store) {
  constexpr int64_t kChunk = int64_t{1} << 20;
  const float scale = std * 1.7320508f / 2147483648.0f;  // int32 → [-a, a)
  const int64_t chunks = (count + kChunk - 1) / kChunk;
  at::parallel_for(0, chunks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      uint64_t state = seed ^ (static_cast<uint64_t>(c) * 0x9E3779B97F4A7C15ull);
      const int64_t lo = c * kChunk, hi = std::min(count, lo + kChunk);
      for (int64_t i = lo; i < hi; i += 2) {  // one 64-bit draw gives two values
        const uint64_t r = splitmix64(state);
        store(i, static_cast<float>(static_cast<int32_t>(static_cast<uint32_t>(r))) * scale);
        if (i + 1 < hi) store(i + 1, static_cast<float>(static_cast<int32_t>(static_cast<uint32_t>(r >> 32))) * scale);
      }
    }
  });
}

// An uninitialized CPU tensor. Big ones are 2 MB-aligned and advised onto transparent huge pages:
// filling fresh memory is otherwise dominated by 4 KB page faults (most of the generate time in a VM).
torch::Tensor empty_tensor(const std::vector<int64_t>& shape, torch::ScalarType dtype) {
  constexpr size_t kHuge = size_t{2} << 20;
  int64_t numel = 1;
  for (auto d : shape) numel *= d;
  const size_t bytes = static_cast<size_t>(numel) * c10::elementSize(dtype);
  if (bytes < kHuge) return torch::empty(shape, torch::TensorOptions().dtype(dtype));
  const size_t rounded = (bytes + kHuge - 1) / kHuge * kHuge;
  void* p = std::aligned_alloc(kHuge, rounded);
  if (!p) throw std::bad_alloc();
  madvise(p, rounded, MADV_HUGEPAGE);  // advice only: without THP it is a no-op
  return torch::from_blob(p, shape, [](void* q) { std::free(q); }, torch::TensorOptions().dtype(dtype));
}

torch::Tensor make_tensor(const TensorSpec& spec, torch::ScalarType dtype, uint64_t seed) {
  auto t = empty_tensor(spec.shape, dtype);
  if (spec.std == 0) return t.fill_(spec.constant);
  const uint64_t s = tensor_seed(seed, spec.name);
  const int64_t n = t.numel();
  switch (dtype) {
    case torch::kBFloat16: {
      auto* p = static_cast<uint16_t*>(t.data_ptr());
      fill_uniform(n, s, spec.std, [p](int64_t i, float v) { p[i] = to_bf16_bits(v); });
      break;
    }
    case torch::kFloat16: {
      auto* p = t.data_ptr<c10::Half>();
      // software conversion (no F16C at -march=x86-64): ~3x slower than bf16; no shape defaults to f16
      fill_uniform(n, s, spec.std, [p](int64_t i, float v) { p[i] = c10::Half(v); });
      break;
    }
    default: {
      auto* p = t.data_ptr<float>();
      fill_uniform(n, s, spec.std, [p](int64_t i, float v) { p[i] = v; });
      break;
    }
  }
  return t;
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------
using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void write_json(const fs::path& path, const json& value) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << value.dump(2) << "\n";  // transformers: json.dumps(indent=2, sort_keys=True) + "\n"
  if (!out) throw nnterp::Error(nnterp::ErrorKind::Io, path.string(), "write failed");
}

// The tokenizer files nnterp (and transformers) read; tokenizer.json.gz is nnterp's compressed form
// (as in shared/fixtures/tokenizers/*).
const char* const kTokenizerFiles[] = {"tokenizer.json", "tokenizer.json.gz", "tokenizer_config.json",
                                       "special_tokens_map.json"};

// OUT_DIR must be new or empty, unless --force; then every file this tool writes is removed first
// (other files stay): a stale shard, index or tokenizer of an earlier run would confuse loaders.
void prepare_out_dir(const fs::path& dir, bool force) {
  if (fs::exists(dir)) {
    if (!fs::is_directory(dir)) throw std::runtime_error(dir.string() + " exists and is not a directory");
    if (!fs::is_empty(dir)) {
      if (!force)
        throw std::runtime_error(dir.string() + " is not empty (pass --force to write into it anyway)");
      static const std::regex weights(R"(model(-\d{5}-of-\d{5})?\.safetensors(\.tmp)?|model\.safetensors\.index\.json)");
      for (const auto& entry : fs::directory_iterator(dir))
        if (std::regex_match(entry.path().filename().string(), weights)) fs::remove(entry.path());
      for (const char* name : {"config.json", "generation_config.json"}) fs::remove(dir / name);
      for (const char* name : kTokenizerFiles) fs::remove(dir / name);
    }
  }
  fs::create_directories(dir);
}

// Checked before anything is written, so that a bad --tokenizer leaves no half-made folder.
void check_tokenizer_dir(const fs::path& from) {
  if (!fs::is_directory(from)) throw std::runtime_error("--tokenizer: " + from.string() + " is not a directory");
  if (!fs::exists(from / "tokenizer.json") && !fs::exists(from / "tokenizer.json.gz"))
    throw std::runtime_error("--tokenizer: no tokenizer.json (or tokenizer.json.gz) in " + from.string());
}

std::vector<std::string> copy_tokenizer(const fs::path& from, const fs::path& to) {
  std::vector<std::string> copied;
  for (const char* name : kTokenizerFiles) {
    if (!fs::exists(from / name)) continue;
    fs::copy_file(from / name, to / name, fs::copy_options::overwrite_existing);
    fs::permissions(to / name, fs::perms::owner_write, fs::perm_options::add);  // fixtures are read-only
    copied.emplace_back(name);
  }
  return copied;
}

std::string human_bytes(uint64_t bytes) {
  if (bytes >= 1000000000ull) return fmt::format("{:.2f} GB", bytes / 1e9);
  return fmt::format("{:.1f} MB", bytes / 1e6);
}

// ---------------------------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------------------------
struct Options {
  const ModelShape* shape = nullptr;
  fs::path out_dir;
  const DTypeChoice* dtype = nullptr;  // null: the shape's published dtype
  std::optional<double> shard_gb;
  uint64_t seed = 0;
  std::optional<fs::path> tokenizer;
  std::optional<int64_t> layers;
  bool force = false;
};

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

void print_usage(std::FILE* to, const char* argv0) {
  fmt::print(to,
             "usage: {} SHAPE OUT_DIR [--dtype bf16|f32|f16] [--shard-gb G] [--seed N] [--tokenizer DIR]\n"
             "       [--layers N] [--force]\n"
             "  SHAPE: {}\n"
             "  defaults: the published checkpoint's dtype and shard size, seed 0, all layers\n",
             argv0, known_shapes());
}

Options parse_args(int argc, char** argv) {
  Options o;
  std::vector<std::string> positional;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw UsageError(a + " needs a value");
      return argv[++i];
    };
    try {
      if (a == "--dtype") {
        const std::string v = value();
        if (!(o.dtype = find_dtype(v))) throw UsageError("--dtype must be bf16, f32 or f16, not '" + v + "'");
      } else if (a == "--shard-gb") {
        size_t used = 0;
        const std::string v = value();
        o.shard_gb = std::stod(v, &used);
        if (used != v.size() || !(*o.shard_gb > 0)) throw UsageError("--shard-gb must be a positive number");
      } else if (a == "--seed") {
        size_t used = 0;
        const std::string v = value();
        o.seed = std::stoull(v, &used);
        if (used != v.size() || v[0] == '-') throw UsageError("--seed must be a non-negative integer");
      } else if (a == "--layers") {
        size_t used = 0;
        const std::string v = value();
        o.layers = std::stoll(v, &used);
        if (used != v.size() || *o.layers < 1) throw UsageError("--layers must be a positive integer");
      } else if (a == "--tokenizer") {
        o.tokenizer = fs::path(value());
      } else if (a == "--force") {
        o.force = true;
      } else if (a == "-h" || a == "--help") {
        print_usage(stdout, argv[0]);
        std::exit(0);
      } else if (a.rfind("--", 0) == 0) {
        throw UsageError("unknown option " + a);
      } else {
        positional.push_back(a);
      }
    } catch (const std::logic_error&) {  // std::stod / stoull / stoll: not a number, out of range
      throw UsageError(a + ": '" + argv[i] + "' is not a valid number");
    }
  }
  if (positional.size() != 2) throw UsageError("expected SHAPE and OUT_DIR");
  if (!(o.shape = find_shape(positional[0])))
    throw UsageError(fmt::format("unknown SHAPE '{}'; known: {}", positional[0], known_shapes()));
  o.out_dir = positional[1];
  return o;
}

int run(const Options& o) {
  const auto t_start = Clock::now();
  const ModelShape& shape = *o.shape;
  const DTypeChoice& dtype = o.dtype ? *o.dtype : *find_dtype(shape.dtype);
  const double shard_gb = o.shard_gb.value_or(shape.shard_gb);

  json config = json::parse(shape.config);
  if (o.layers) config["num_hidden_layers"] = *o.layers;
  config["torch_dtype"] = dtype.config_name;
  const auto specs = tensor_specs(config);
  const size_t elem_size = c10::elementSize(dtype.scalar);
  const auto shards = plan_shards(specs, elem_size, static_cast<uint64_t>(std::llround(shard_gb * 1e9)));
  uint64_t total_bytes = 0;
  for (const auto& s : specs) total_bytes += static_cast<uint64_t>(s.numel()) * elem_size;

  if (o.tokenizer) check_tokenizer_dir(*o.tokenizer);
  prepare_out_dir(o.out_dir, o.force);
  fmt::print("{} ({} shape, {} layers, {}, seed {}): {} tensors, {} in {} file(s) -> {}\n", shape.name,
             shape.hf_repo, config["num_hidden_layers"].get<int64_t>(), dtype.flag, o.seed, specs.size(),
             human_bytes(total_bytes), shards.size(), o.out_dir.string());

  write_json(o.out_dir / "config.json", config);
  write_json(o.out_dir / "generation_config.json", json::parse(shape.generation_config));
  if (o.tokenizer) {
    auto copied = copy_tokenizer(*o.tokenizer, o.out_dir);
    std::string list;
    for (const auto& c : copied) list += (list.empty() ? "" : ", ") + c;
    fmt::print("  copied {} from {}\n", list, o.tokenizer->string());
  }

  // One shard in memory at a time: build its tensors, save, free.
  json weight_map = json::object();
  for (size_t k = 0; k < shards.size(); ++k) {
    const std::string file = shard_file_name(k, shards.size());
    const auto t0 = Clock::now();
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    uint64_t bytes = 0;
    for (size_t i : shards[k]) {
      tensors.emplace_back(specs[i].name, make_tensor(specs[i], dtype.scalar, o.seed));
      bytes += tensors.back().second.nbytes();
      weight_map[specs[i].name] = file;
    }
    const double gen_s = seconds_since(t0);
    const auto t1 = Clock::now();
    nnterp::io::save_safetensors(o.out_dir / file, tensors, {{"format", "pt"}});
    const double write_s = seconds_since(t1);
    fmt::print("  {}  {:4d} tensors  {:>10}  generate {:6.2f} s  write {:6.2f} s\n", file, tensors.size(),
               human_bytes(bytes), gen_s, write_s);
  }
  if (shards.size() > 1) {
    write_json(o.out_dir / "model.safetensors.index.json",
               {{"metadata", {{"total_size", total_bytes}}}, {"weight_map", weight_map}});
    fmt::print("  model.safetensors.index.json\n");
  }
  const double total_s = seconds_since(t_start);
  fmt::print("done: {} ({} bytes) in {:.2f} s, {:.2f} GB/s\n", human_bytes(total_bytes), total_bytes, total_s,
             total_bytes / 1e9 / total_s);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const UsageError& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    print_usage(stderr, argv[0]);
    return 2;
  } catch (const nnterp::Error& e) {
    fmt::print(stderr, "error: {}: {}\n", e.subject(), e.message());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "error: {}\n", e.what());
    return 1;
  }
}

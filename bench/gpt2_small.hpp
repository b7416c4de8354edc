// The GPT-2-small-shaped model every benchmark uses: 12 layers, 768 hidden, 12 heads,
// vocab 50257, 1024 positions, random weights N(0, 0.02) with seed 0, written as a HuggingFace
// folder (config.json + model.safetensors with HF's gpt2 names) so the real loader is exercised.
#pragma once

#include <fmt/format.h>
#include <torch/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "nnterp/safetensors.hpp"

namespace nnterp::bench {

constexpr int64_t kLayers = 12, kHidden = 768, kHeads = 12, kVocab = 50257, kPositions = 1024, kInner = 4 * kHidden;

inline std::filesystem::path write_gpt2_small(const std::filesystem::path& dir) {
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config.json") << fmt::format(
      R"({{"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
  "n_embd": {}, "n_head": {}, "n_layer": {}, "n_positions": {}, "vocab_size": {}, "layer_norm_epsilon": 1e-05,
  "tie_word_embeddings": true, "eos_token_id": 50256, "bos_token_id": 50256}})",
      kHidden, kHeads, kLayers, kPositions, kVocab);
  torch::manual_seed(0);
  auto normal = [](std::vector<int64_t> shape) { return torch::randn(shape) * 0.02; };
  std::vector<std::pair<std::string, torch::Tensor>> w;
  w.emplace_back("transformer.wte.weight", normal({kVocab, kHidden}));
  w.emplace_back("transformer.wpe.weight", normal({kPositions, kHidden}));
  for (int64_t i = 0; i < kLayers; ++i) {
    const std::string p = "transformer.h." + std::to_string(i) + ".";
    w.emplace_back(p + "ln_1.weight", torch::ones({kHidden}));
    w.emplace_back(p + "ln_1.bias", torch::zeros({kHidden}));
    w.emplace_back(p + "attn.c_attn.weight", normal({kHidden, 3 * kHidden}));
    w.emplace_back(p + "attn.c_attn.bias", normal({3 * kHidden}));
    w.emplace_back(p + "attn.c_proj.weight", normal({kHidden, kHidden}));
    w.emplace_back(p + "attn.c_proj.bias", normal({kHidden}));
    w.emplace_back(p + "ln_2.weight", torch::ones({kHidden}));
    w.emplace_back(p + "ln_2.bias", torch::zeros({kHidden}));
    w.emplace_back(p + "mlp.c_fc.weight", normal({kHidden, kInner}));
    w.emplace_back(p + "mlp.c_fc.bias", normal({kInner}));
    w.emplace_back(p + "mlp.c_proj.weight", normal({kInner, kHidden}));
    w.emplace_back(p + "mlp.c_proj.bias", normal({kHidden}));
  }
  w.emplace_back("transformer.ln_f.weight", torch::ones({kHidden}));
  w.emplace_back("transformer.ln_f.bias", torch::zeros({kHidden}));
  io::save_safetensors(dir / "model.safetensors", w, {{"format", "pt"}});
  return dir;
}

// A fresh temp folder holding the checkpoint, removed when the object dies.
struct Gpt2Small {
  std::filesystem::path root = std::filesystem::temp_directory_path() / ("nnterp_bench_" + std::to_string(::getpid()));
  std::filesystem::path dir = write_gpt2_small(root / "gpt2_small");
  ~Gpt2Small() { std::filesystem::remove_all(root); }
};

// `--reps N` and `--threads N` (as the CLI's --threads; 0: every core), read as flag/value pairs;
// any other pair is skipped.
struct RepsThreads {
  int reps = 0, threads = 0;
};
inline RepsThreads parse_reps_threads(int argc, char** argv, int default_reps) {
  RepsThreads out{default_reps, 0};
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string a = argv[i];
    if (a == "--reps") out.reps = std::atoi(argv[i + 1]);
    else if (a == "--threads") out.threads = std::atoi(argv[i + 1]);
  }
  return out;
}

inline double seconds(const std::function<void()>& fn) {
  auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Median of `reps` timed runs after `warmup` untimed ones.
inline double median_seconds(const std::function<void()>& fn, int reps, int warmup = 2) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(seconds(fn));
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

}  // namespace nnterp::bench

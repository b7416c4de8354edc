// Mixture-of-experts forward throughput: a Mixtral-shaped model (8 experts, top-2; hidden 512,
// expert width 1792, 4 layers, 8 heads / 4 kv, vocab 32000, random N(0, 0.02) weights, seed 0)
// written as an HF mixtral checkpoint and loaded through StandardizedTransformer, at 1×128 and
// 8×128 tokens, last-position logits. The sgemm rate is measured in the same run; FLOPs count the
// experts each token is routed to (top-2), the attention projections and the router.
//
//   bench_moe [--reps N] [--threads N]
#include <fmt/format.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "gpt2_small.hpp"
#include "machine_limits.hpp"
#include "nnterp/model.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/threading.hpp"

namespace fs = std::filesystem;
using namespace nnterp;

namespace {

constexpr int64_t H = 512, I = 1792, L = 4, E = 8, K = 2, heads = 8, kv = 4, V = 32000;

fs::path write_mixtral(const fs::path& dir) {
  fs::create_directories(dir);
  std::ofstream(dir / "config.json") << fmt::format(
      R"({{"architectures": ["MixtralForCausalLM"], "model_type": "mixtral", "hidden_size": {}, "intermediate_size": {},
"num_hidden_layers": {}, "num_attention_heads": {}, "num_key_value_heads": {}, "num_local_experts": {},
"num_experts_per_tok": {}, "vocab_size": {}, "rms_norm_eps": 1e-5, "rope_theta": 1000000.0,
"max_position_embeddings": 4096, "hidden_act": "silu", "tie_word_embeddings": false, "dtype": "float32"}})",
      H, I, L, heads, kv, E, K, V);
  torch::manual_seed(0);
  std::vector<std::pair<std::string, torch::Tensor>> w;
  auto normal = [](std::vector<int64_t> shape) { return torch::randn(shape) * 0.02; };
  const int64_t hd = H / heads;
  w.emplace_back("model.embed_tokens.weight", normal({V, H}));
  for (int64_t i = 0; i < L; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    w.emplace_back(p + "input_layernorm.weight", torch::ones({H}));
    w.emplace_back(p + "post_attention_layernorm.weight", torch::ones({H}));
    w.emplace_back(p + "self_attn.q_proj.weight", normal({heads * hd, H}));
    w.emplace_back(p + "self_attn.k_proj.weight", normal({kv * hd, H}));
    w.emplace_back(p + "self_attn.v_proj.weight", normal({kv * hd, H}));
    w.emplace_back(p + "self_attn.o_proj.weight", normal({H, heads * hd}));
    w.emplace_back(p + "block_sparse_moe.gate.weight", normal({E, H}));
    for (int64_t e = 0; e < E; ++e) {
      const std::string x = p + "block_sparse_moe.experts." + std::to_string(e) + ".";
      w.emplace_back(x + "w1.weight", normal({I, H}));
      w.emplace_back(x + "w3.weight", normal({I, H}));
      w.emplace_back(x + "w2.weight", normal({H, I}));
    }
  }
  w.emplace_back("model.norm.weight", torch::ones({H}));
  w.emplace_back("lm_head.weight", normal({V, H}));
  io::save_safetensors(dir / "model.safetensors", w);
  return dir;
}

double gflop(int64_t tokens) {
  const double attn = 2.0 * H * (2 * H + 2 * (H / heads) * kv);  // q, o + k, v
  const double experts = 2.0 * K * 3 * H * I, router = 2.0 * H * E;
  return (tokens * L * (attn + experts + router) + 2.0 * H * V * (tokens / 128)) / 1e9;  // lm_head: last position per row
}

}  // namespace

int main(int argc, char** argv) {
  const auto [reps, threads] = bench::parse_reps_threads(argc, argv, 5);
  auto report = configure_threads(threads);
  const fs::path dir = fs::temp_directory_path() / ("nnterp_bench_mixtral_" + std::to_string(::getpid()));
  write_mixtral(dir);
  {
    StandardizedTransformer model(dir.string());
    torch::InferenceMode inference;
    const double sgemm = bench::sgemm_gflops(reps);
    fmt::print("Mixtral shape (8 experts, top-2, hidden {}, expert width {}, {} layers), {} BLAS threads; sgemm {:.1f} GFLOP/s\n",
               H, I, L, report.blas_threads, sgemm);
    fmt::print("{:<8} {:>10} {:>10} {:>10} {:>8}\n", "batch", "median ms", "tokens/s", "GFLOP/s", "%sgemm");
    for (int64_t B : {1, 8}) {
      ForwardInput in;
      in.input_ids = torch::randint(0, V, {B, 128}, torch::kInt64);
      in.logits_last_only = true;
      auto t = bench::time_it([&] { (void)model.forward(in); }, reps, 1);
      const double g = gflop(B * 128);
      fmt::print("{:<8} {:>10.1f} {:>10.0f} {:>10.1f} {:>7.0f}%\n", fmt::format("{}x128", B), t.median * 1e3, B * 128 / t.median,
                 g / t.median, 100 * g / t.median / sgemm);
    }
  }
  fs::remove_all(dir);
  return 0;
}

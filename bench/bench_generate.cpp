// Generation throughput: new tokens/s for 32 tokens after a 16-token prompt, batch 1 and 8,
// with the KV cache and with `recompute` (no cache), on the GPT-2-small-shaped model.
//
//   bench_generate [--reps N] [--threads N]
#include <fmt/format.h>

#include "gpt2_small.hpp"
#include "nnterp/generate.hpp"
#include "nnterp/model.hpp"
#include "nnterp/threading.hpp"

using namespace nnterp;

int main(int argc, char** argv) {
  const auto [reps, threads] = bench::parse_reps_threads(argc, argv, 3);
  auto report = configure_threads(threads);
  bench::Gpt2Small checkpoint;
  StandardizedTransformer model(checkpoint.dir.string());
  fmt::print("generation, GPT-2-small shape, 16-token prompt + 32 new tokens (greedy), {} BLAS threads, median of {}\n",
             report.blas_threads, reps);
  fmt::print("{:<8} {:<10} {:>10} {:>14} {:>14}\n", "batch", "mode", "total s", "new tokens/s", "ms/step");
  for (int64_t B : {1, 8}) {
    auto ids = torch::randint(0, bench::kVocab, {B, 16}, torch::kInt64);
    for (bool recompute : {false, true}) {
      GenerateOptions o;
      o.max_new_tokens = 32;
      o.stop_at_eos = false;
      o.recompute = recompute;
      double s = bench::median_seconds([&] { model.generate(TokenBatch{ids, torch::ones_like(ids)}, o); }, reps, 1);
      fmt::print("{:<8} {:<10} {:>10.3f} {:>14.1f} {:>14.2f}\n", fmt::format("{}x16", B), recompute ? "recompute" : "kv-cache", s,
                 B * 32 / s, 1e3 * s / 32);
    }
  }
  return 0;
}

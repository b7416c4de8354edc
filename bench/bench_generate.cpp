// Generation throughput: new tokens/s for 32 tokens after a 16-token prompt, batch 1 and 8,
// with the KV cache and with `recompute` (no cache), on the GPT-2-small-shaped model. A KV-cache
// step's time leaves the prompt's forward out (32 new tokens against 1) and is set against the
// bandwidth floor measured in the same run (the weight bytes a step reads ÷ the read bandwidth of
// as many threads as BLAS uses); "decode tok/s" is batch ÷ step time.
//
//   bench_generate [--reps N] [--threads N] [--dtype float32|bfloat16|float16] [--batch N] [--no-recompute]
#include <fmt/format.h>

#include <cstring>

#include "gpt2_small.hpp"
#include "machine_limits.hpp"
#include "nnterp/generate.hpp"
#include "nnterp/model.hpp"
#include "nnterp/threading.hpp"

using namespace nnterp;

int main(int argc, char** argv) {
  const auto [reps, threads] = bench::parse_reps_threads(argc, argv, 3);
  std::string dtype = "float32";
  int64_t only_batch = 0;
  bool recompute_too = true;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--dtype") && i + 1 < argc) dtype = argv[++i];
    else if (!std::strcmp(argv[i], "--batch") && i + 1 < argc) only_batch = std::atoll(argv[++i]);
    else if (!std::strcmp(argv[i], "--no-recompute")) recompute_too = false;
  }
  auto report = configure_threads(threads);
  bench::Gpt2Small checkpoint;
  LoadOptions options;
  options.dtype = parse_dtype_option(dtype, "--dtype");
  StandardizedTransformer model(checkpoint.dir.string(), options);
  const auto& r = model.load_report();
  // A decode step reads every weight once, except the position embeddings (one row).
  const double step_bytes = static_cast<double>(r.bytes_in_place + r.bytes_copied) -
                            static_cast<double>(bench::kPositions * bench::kHidden * c10::elementSize(model.dtype()));
  const double bandwidth = bench::read_bandwidth_gbs(3, report.blas_threads);
  const double floor_ms = 1e3 * step_bytes / (bandwidth * 1e9);
  fmt::print("generation, GPT-2-small shape, {} (matmuls in {}), 16-token prompt + 32 new tokens (greedy), {} BLAS threads, "
             "median of {}\n", dtype_name(model.dtype()), dtype_name(r.matmul_dtype), report.blas_threads, reps);
  fmt::print("read bandwidth ({} threads) {:.1f} GB/s; a step reads {:.0f} MB of weights: floor {:.2f} ms/step\n",
             report.blas_threads, bandwidth, step_bytes / 1e6, floor_ms);
  fmt::print("{:<8} {:<10} {:>10} {:>14} {:>10} {:>10} {:>14}\n", "batch", "mode", "total s", "new tokens/s",
             "ms/step", "x floor", "decode tok/s");
  for (int64_t B : {1, 8}) {
    if (only_batch && B != only_batch) continue;
    auto ids = torch::randint(0, bench::kVocab, {B, 16}, torch::kInt64);
    auto run = [&](bool recompute, int64_t new_tokens) {
      GenerateOptions o;
      o.max_new_tokens = new_tokens;
      o.stop_at_eos = false;
      o.recompute = recompute;
      return bench::median_seconds([&] { model.generate(TokenBatch{ids, torch::ones_like(ids)}, o); }, reps, 1);
    };
    for (bool recompute : {false, true}) {
      if (recompute && !recompute_too) continue;
      const double s = run(recompute, 32);
      // A step's time leaves the prompt's forward out: (32 new tokens − 1 new token) / 31.
      const double step_ms = recompute ? 1e3 * s / 32 : 1e3 * (s - run(false, 1)) / 31;
      fmt::print("{:<8} {:<10} {:>10.3f} {:>14.1f} {:>10.2f} {:>10} {:>14.1f}\n", fmt::format("{}x16", B),
                 recompute ? "recompute" : "kv-cache", s, B * 32 / s, step_ms,
                 recompute ? "" : fmt::format("{:.2f}", step_ms / floor_ms), B * 1e3 / step_ms);
    }
  }
  return 0;
}

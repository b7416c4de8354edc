// TopK SAE trainer throughput (train_topk_sae, sae_train.hpp): tokens/s at a GPT-2-small-like shape
// (d_in 768, d_sae 24576, k 32, batch 4096 tokens) on random activations (N(0, 1), seed 0), and as a
// ratio to the machine's sgemm rate measured in the same run: one step does the encoder's dense
// product (2·batch·d_in·d_sae FLOPs) and four sparse products over the k active latents
// (decode, the latents' gradient, W_dec's and W_enc's gradients: 2·batch·k·d_in each), so the
// encoder's matmul bounds the step; "of sgemm" is the step's FLOPs ÷ its time ÷ the sgemm rate.
// Also the small shape of the committed default-model SAE (d_in 128, d_sae 1024, k 16, batch 512).
//
//   bench_sae_train [--steps N] [--threads N] [--d-in N] [--d-sae N] [--k N] [--batch N]
#include <fmt/format.h>
#include <torch/torch.h>

#include <string>

#include "machine_limits.hpp"
#include "nnterp/sae_train.hpp"
#include "nnterp/threading.hpp"

namespace {

struct Shape {
  int64_t d_in, d_sae, k, batch;
};

// Tokens/s of `steps` training steps (after one warm-up run), and the step's FLOPs.
void measure(const Shape& s, int64_t steps, double sgemm_gflops, const char* label) {
  torch::manual_seed(0);
  auto data = torch::randn({s.batch * (steps + 1), s.d_in});
  nnterp::SaeTrainOptions o;
  o.d_sae = s.d_sae;
  o.k = s.k;
  o.batch_size = s.batch;
  o.holdout_fraction = 0;  // no evaluation: the loop alone is timed
  o.b_dec_init = nnterp::DecoderBiasInit::Mean;
  o.steps = 1;
  (void)nnterp::train_topk_sae(data, o);  // warm-up: allocations, thread pools
  o.steps = steps;
  auto r = nnterp::train_topk_sae(data, o);
  const double step_s = r.stats.seconds / static_cast<double>(steps);
  const double dense = 2.0 * s.batch * s.d_in * s.d_sae;
  const double sparse = 4 * 2.0 * s.batch * s.k * s.d_in;
  const double gflops = (dense + sparse) / step_s / 1e9;
  fmt::print("{}: d_in {}, d_sae {}, k {}, batch {}: {:.0f} tokens/s, {:.3f} s/step, {:.1f} GFLOP/step, {:.1f} GFLOP/s = {:.0f}% of sgemm\n",
             label, s.d_in, s.d_sae, s.k, s.batch, r.stats.tokens_per_second, step_s, (dense + sparse) / 1e9, gflops,
             100 * gflops / sgemm_gflops);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t steps = 5;
  int threads = 0;
  Shape big{768, 24576, 32, 4096};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::atoll(argv[++i]) : 0; };
    if (a == "--steps") steps = next();
    else if (a == "--threads") threads = static_cast<int>(next());
    else if (a == "--d-in") big.d_in = next();
    else if (a == "--d-sae") big.d_sae = next();
    else if (a == "--k") big.k = next();
    else if (a == "--batch") big.batch = next();
    else {
      fmt::print(stderr, "usage: {} [--steps N] [--threads N] [--d-in N] [--d-sae N] [--k N] [--batch N]\n", argv[0]);
      return 2;
    }
  }
  if (steps < 1) steps = 1;
  auto report = nnterp::configure_threads(threads);
  fmt::print("threads: BLAS {}, torch {}; {}\n", report.blas_threads, report.torch_threads, report.blas);
  int64_t n = 0;
  const double sgemm = nnterp::bench::sgemm_gflops(3, &n);
  fmt::print("sgemm: {:.1f} GFLOP/s (torch::mm, {}x{})\n", sgemm, n, n);
  measure(big, steps, sgemm, "GPT-2-small-like");
  measure({128, 1024, 16, 512}, 50, sgemm, "default model  ");
  return 0;
}

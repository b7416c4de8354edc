// SAE splice overhead (issue 21): a 24,576-feature ReLU SAE (d_in 768, the width of the public
// GPT-2-small residual SAEs) spliced into layers.6.output of the GPT-2-small-shaped model, vs a
// plain forward, at 1×128 and 8×128 tokens:
//   - splice, no edit       t.sae(sae): encode only (decode(f) + error is the point itself)
//   - splice, ablate 1      one feature zeroed: encode + re-encode for the error + one decoder row
//   - splice, reconstruct   the point replaced by decode(f): encode + decode
// The splice's unavoidable cost is the encode's matmul, B·T·768·24576 multiply-adds (decoding a
// sparse code, and an ablation's one decoder row, are small next to it). Each cell gives the extra
// time as a multiple of that matmul's time at this machine's sgemm rate, measured in the same run
// (1.0: the splice costs exactly one encode matmul at the sgemm limit). Runs are interleaved
// (plain, splice, ...) so machine noise hits all alike; medians are compared.
//
//   bench_sae_splice [--reps N] [--threads N]
#include <fmt/format.h>

#include "gpt2_small.hpp"
#include "machine_limits.hpp"
#include "nnterp/model.hpp"
#include "nnterp/sae.hpp"
#include "nnterp/threading.hpp"

using namespace nnterp;

namespace {

constexpr int64_t kFeatures = 24576;
constexpr int kLayer = 6;

// Random unit-norm decoder rows, W_enc = W_decᵀ, and each feature's encoder bias set from the
// model's own layer-6 activations so that it fires on ~0.25% of tokens: L0 ≈ 64, as trained SAEs.
Sae calibrated_sae(const StandardizedTransformer& model) {
  torch::manual_seed(1);
  SaeConfig c;
  c.architecture = "standard";
  c.d_in = c.d_out = bench::kHidden;
  c.d_sae = kFeatures;
  c.input_point = c.output_point = PointId{Point::LayerOutput, kLayer};
  auto W_dec = torch::randn({kFeatures, bench::kHidden});
  W_dec = W_dec / W_dec.norm(2, -1, true);
  const auto W_enc = W_dec.t().contiguous();
  auto ids = torch::randint(0, bench::kVocab, {8, 128}, torch::kInt64);
  torch::Tensor x;
  model.trace(TokenBatch{ids, torch::ones_like(ids)}, [&](Trace& t) {
    x = t.layers_output[kLayer].reshape({-1, bench::kHidden}).clone();
    t.stop();
  });
  const auto pre = torch::matmul(x, W_enc);
  const auto b_enc = -std::get<0>(pre.kthvalue(pre.size(0) - 2, 0));  // the 3rd largest of 1024 tokens
  return Sae(c, SaeWeights{W_enc, b_enc, W_dec, torch::zeros({bench::kHidden}), {}, {}, {}, {}, {}});
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  const auto [reps, threads] = bench::parse_reps_threads(argc, argv, 15);
  auto report = configure_threads(threads);
  const double sgemm = bench::sgemm_gflops(5);
  bench::Gpt2Small checkpoint;
  StandardizedTransformer model(checkpoint.dir.string());
  const Sae sae = calibrated_sae(model);
  fmt::print("SAE splice overhead: GPT-2-small shape, {}-feature SAE at layers.{}.output, {} BLAS threads, "
             "sgemm {:.0f} GFLOP/s, median of {} interleaved runs\n",
             kFeatures, kLayer, report.blas_threads, sgemm, reps);
  fmt::print("extra time in parentheses: % of the forward, and x the encode matmul's time at the sgemm rate\n");
  fmt::print("{:<7} {:>10} {:>24} {:>24} {:>24} {:>8}\n", "batch", "forward ms", "splice, no edit ms", "splice, ablate 1 ms",
             "splice, reconstruct ms", "L0");
  for (int64_t B : {1, 8}) {
    auto ids = torch::randint(0, bench::kVocab, {B, 128}, torch::kInt64);
    TokenBatch batch{ids, torch::ones_like(ids)};
    torch::NoGradGuard no_grad;
    double l0 = 0;
    model.trace(batch, [&](Trace& t) { l0 = torch::count_nonzero(t.sae(sae)).item<double>() / (B * 128.0); });
    auto plain = [&] { model.forward(ids, batch.attention_mask); };
    auto unedited = [&] { model.trace(batch, [&](Trace& t) { t.sae(sae); }); };
    // Edits turn on the trace's NaN/Inf check of every later point (TraceOptions::check_non_finite),
    // which any edit pays (a steer too): it is off here, so the columns time the splice alone.
    TraceOptions unchecked;
    unchecked.check_non_finite = false;
    auto ablate = [&] { model.trace(batch, [&](Trace& t) { t.sae(sae).index_put_({"...", 7}, 0.0); }, unchecked); };
    auto reconstruct = [&] { model.trace(batch, [&](Trace& t) { t.sae(sae, SaeSpliceOptions{false}); }, unchecked); };
    for (int w = 0; w < 2; ++w) plain(), unedited(), ablate(), reconstruct();
    std::vector<double> a, b, c, d;
    for (int r = 0; r < reps; ++r) {
      a.push_back(bench::seconds(plain));
      b.push_back(bench::seconds(unedited));
      c.push_back(bench::seconds(ablate));
      d.push_back(bench::seconds(reconstruct));
    }
    const double fa = median(a), fb = median(b), fc = median(c), fd = median(d);
    const double encode_flops = 2.0 * B * 128 * bench::kHidden * kFeatures;
    // The extra time, as % of the forward and as a multiple of what the encode's matmul alone
    // takes at this machine's sgemm rate (1.0: the splice costs nothing beyond that matmul).
    const double encode_at_sgemm = encode_flops / (sgemm * 1e9);
    auto cell = [&](double x) {
      return fmt::format("{:.1f} ({:+.0f}%, {:.2f}x)", x * 1e3, 100.0 * (x - fa) / fa, (x - fa) / encode_at_sgemm);
    };
    fmt::print("{:<7} {:>10.1f} {:>24} {:>24} {:>24} {:>8.0f}\n", fmt::format("{}x128", B), fa * 1e3, cell(fb), cell(fc),
               cell(fd), l0);
  }
  return 0;
}

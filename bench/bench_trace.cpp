// Trace overhead: a trace that reads every layer's output (and one that reads every layer's
// attention probabilities) vs a plain forward, on the
// GPT-2-small-shaped model at 1×128 tokens (and 8×128). Runs are interleaved (plain, trace,
// plain, trace, ...) so machine noise hits both alike; the median of each is compared.
//
//   bench_trace [--reps N] [--threads N]
#include <fmt/format.h>

#include "gpt2_small.hpp"
#include "nnterp/model.hpp"
#include "nnterp/threading.hpp"

using namespace nnterp;

int main(int argc, char** argv) {
  const auto [reps, threads] = bench::parse_reps_threads(argc, argv, 30);
  auto report = configure_threads(threads);
  bench::Gpt2Small checkpoint;
  StandardizedTransformer model(checkpoint.dir.string());
  fmt::print("trace overhead, GPT-2-small shape, {} BLAS threads, {} torch threads, median of {} interleaved runs\n",
             report.blas_threads, report.torch_threads, reps);
  fmt::print("{:<8} {:>12} {:>16} {:>16} {:>10} {:>16} {:>10}\n", "batch", "forward ms", "trace(all) ms", "trace(none) ms", "overhead",
             "attn probs ms", "overhead");
  for (int64_t B : {1, 8}) {
    auto ids = torch::randint(0, bench::kVocab, {B, 128}, torch::kInt64);
    auto mask = torch::ones_like(ids);
    TokenBatch batch{ids, mask};
    torch::NoGradGuard no_grad;
    auto plain = [&] { model.forward(ids, mask); };
    auto read_all = [&] {
      model.trace(batch, [&](Trace& t) {
        for (int i = 0; i < t.num_layers(); ++i) t.layers_output[i];
      });
    };
    auto empty = [&] { model.trace(batch, [&](Trace&) {}); };
    // Every layer's attention probabilities read (eager attention computes them anyway).
    auto read_probs = [&] {
      model.trace(batch, [&](Trace& t) {
        for (int i = 0; i < t.num_layers(); ++i) t.attention_probabilities[i];
      });
    };
    for (int w = 0; w < 2; ++w) plain(), read_all(), empty(), read_probs();
    std::vector<double> a, b, c, d;
    for (int r = 0; r < reps; ++r) {
      a.push_back(bench::seconds(plain));
      b.push_back(bench::seconds(read_all));
      c.push_back(bench::seconds(empty));
      d.push_back(bench::seconds(read_probs));
    }
    for (auto* v : {&a, &b, &c, &d}) std::sort(v->begin(), v->end());
    double fa = a[a.size() / 2], fb = b[b.size() / 2], fc = c[c.size() / 2], fd = d[d.size() / 2];
    fmt::print("{:<8} {:>12.2f} {:>16.2f} {:>16.2f} {:>9.2f}% {:>16.2f} {:>9.2f}%\n", fmt::format("{}x128", B), fa * 1e3, fb * 1e3,
               fc * 1e3, 100.0 * (fb - fa) / fa, fd * 1e3, 100.0 * (fd - fa) / fa);
  }
  return 0;
}

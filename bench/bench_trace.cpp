// Trace overhead: a trace that reads every layer's output (one that reads every layer's attention
// probabilities, one that reads the points inside the blocks: attn_scores, z, resid_mid,
// mlp_hidden) vs a plain forward, and a trace that reads nothing (what requesting no point costs), on the
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
  fmt::print("{:<8} {:>11} {:>15} {:>15} {:>15} {:>15}\n", "batch", "forward ms", "trace(none) ms", "trace(all) ms",
             "attn probs ms", "inner pts ms");
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
    auto read_inner = [&] {
      model.trace(batch, [&](Trace& t) {
        for (int i = 0; i < t.num_layers(); ++i) t.attention_scores[i], t.z[i], t.resid_mid[i], t.mlp_hidden[i];
      });
    };
    for (int w = 0; w < 2; ++w) plain(), read_all(), empty(), read_probs(), read_inner();
    std::vector<double> a, b, c, d, e;
    for (int r = 0; r < reps; ++r) {
      a.push_back(bench::seconds(plain));
      b.push_back(bench::seconds(read_all));
      c.push_back(bench::seconds(empty));
      d.push_back(bench::seconds(read_probs));
      e.push_back(bench::seconds(read_inner));
    }
    for (auto* v : {&a, &b, &c, &d, &e}) std::sort(v->begin(), v->end());
    double fa = a[a.size() / 2], fb = b[b.size() / 2], fc = c[c.size() / 2], fd = d[d.size() / 2], fe = e[e.size() / 2];
    auto pct = [fa](double x) { return 100.0 * (x - fa) / fa; };
    auto cell = [&](double x) { return fmt::format("{:.1f} ({:+.1f}%)", x * 1e3, pct(x)); };
    fmt::print("{:<8} {:>11.1f} {:>15} {:>15} {:>15} {:>15}\n", fmt::format("{}x128", B), fa * 1e3, cell(fc), cell(fb), cell(fd),
               cell(fe));
  }
  return 0;
}

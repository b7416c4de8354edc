// Forward-pass throughput of a GPT-2-small-shaped model (12 layers, 768 hidden, 12 heads,
// vocab 50257, 1024 positions, random weights N(0, 0.02), seed 0) built in-process: the weights
// are written as an HF gpt2 checkpoint (config.json + model.safetensors) into a temp folder and
// loaded through StandardizedTransformer, so the real loader is exercised too.
//
//   bench_forward              table for the default threading policy (configure_threads(0))
//   bench_forward --sweep      forward time for BLAS threads {1,2} × libtorch intra-op threads {1,2}
//   bench_forward --ops        the forward's operations timed alone at GPT-2-small shapes
//   bench_forward --scaling    tokens/s against sequence length (32 ... 1024) and batch size (1 ... 16)
//   options: --reps N (timed repetitions per case, default 7), --threads N (as the CLI's --threads)
//
// FLOPs counted (matmuls only, multiply-add = 2):
//   2·P·N  (P = 12·768² = 7,077,888 matmul weights per layer × 12 layers, N = B·T tokens)
// + 2·2·B·H·T²·hd·L  (QKᵀ and P·V over the full T×T square, as eager attention computes them)
// + 2·N_logits·768·50257  (lm_head; N_logits = B·T, or B with logits for the last position only)
#include <ATen/Parallel.h>
#include <dlfcn.h>
#include <fmt/format.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <unistd.h>
#include <vector>

#include "gpt2_small.hpp"
#include "machine_limits.hpp"
#include "nnterp/model.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/threading.hpp"

namespace fs = std::filesystem;

namespace {

using namespace nnterp::bench;  // kLayers, kHidden, kHeads, kVocab, kPositions, kInner
constexpr int64_t kHeadDim = kHidden / kHeads;

void set_blas_threads(int n) {
  using SetThreads = void (*)(int);
  if (auto set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"))) set(n);
}

int blas_threads() {
  using GetThreads = int (*)();
  auto get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get ? get() : 0;
}

// The checkpoint (HF gpt2 names, tied lm_head) in a fresh temp folder.
fs::path write_checkpoint() {
  return nnterp::bench::write_gpt2_small(fs::temp_directory_path() / ("nnterp_bench_gpt2_" + std::to_string(::getpid())));
}

double forward_gflop(int64_t B, int64_t T, bool last_only) {
  const double N = static_cast<double>(B * T);
  const double P = 12.0 * kHidden * kHidden * kLayers;
  const double attn = 2.0 * 2.0 * B * kHeads * double(T) * T * kHeadDim * kLayers;
  const double head = 2.0 * (last_only ? B : N) * kHidden * kVocab;
  return (2.0 * P * N + attn + head) / 1e9;
}

struct Case {
  int64_t B, T;
  bool last_only;
};

Timing time_forward(const nnterp::StandardizedTransformer& model, const Case& c, int reps) {
  auto ids = torch::randint(0, kVocab, {c.B, c.T}, torch::kInt64);
  nnterp::ForwardInput in;
  in.input_ids = ids;
  in.logits_last_only = c.last_only;
  return time_it([&] { (void)model.forward(in); }, reps);
}

void run_table(const nnterp::StandardizedTransformer& model, int reps) {
  int64_t n = 0;
  const double sgemm = sgemm_gflops(reps, &n);
  fmt::print("machine sgemm (torch::mm {}x{} float32, best of {}): {:.1f} GFLOP/s\n\n", n, n, reps, sgemm);
  fmt::print("{:<8} {:<10} {:>10} {:>10} {:>12} {:>12} {:>10} {:>8}\n", "batch", "logits", "median ms", "best ms",
             "tokens/s", "GFLOP/fwd", "GFLOP/s", "%sgemm");
  const std::vector<Case> cases = {{1, 128, false}, {8, 128, false}, {1, 128, true}, {8, 128, true}};
  for (const auto& c : cases) {
    auto t = time_forward(model, c, reps);
    const double gflop = forward_gflop(c.B, c.T, c.last_only);
    fmt::print("{:<8} {:<10} {:>10.1f} {:>10.1f} {:>12.0f} {:>12.2f} {:>10.1f} {:>7.0f}%\n",
               fmt::format("{}x{}", c.B, c.T), c.last_only ? "last" : "all", t.median * 1e3, t.best * 1e3,
               c.B * c.T / t.median, gflop, gflop / t.median, 100.0 * gflop / t.median / sgemm);
  }
  fmt::print("\n(tokens/s and GFLOP/s from the median; FLOPs = 2*P*N + 4*B*H*T^2*hd*L + 2*N_logits*768*50257,\n"
             " P = 12*768^2*12 matmul weights, N = B*T tokens, N_logits = B*T or B for 'last')\n");
}

// Tokens/s against sequence length (batch 1, last-position logits, T = 32 ... 1024, GPT-2's
// limit) and against batch size (T = 128), with the share of the FLOPs that attention's T² terms
// take: how the cost grows.
void run_scaling(const nnterp::StandardizedTransformer& model, int reps) {
  int64_t n = 0;
  const double sgemm = sgemm_gflops(reps, &n);
  fmt::print("machine sgemm (torch::mm {}x{} float32, best of {}): {:.1f} GFLOP/s\n\n", n, n, reps, sgemm);
  fmt::print("{:<8} {:>10} {:>10} {:>12} {:>10} {:>8} {:>12}\n", "batch", "logits", "median ms", "tokens/s", "GFLOP/s",
             "%sgemm", "attention %");
  std::vector<Case> cases;
  for (int64_t T : {32, 64, 128, 256, 512, 1024}) cases.push_back({1, T, true});
  for (int64_t B : {2, 4, 8, 16}) cases.push_back({B, 128, true});
  for (const auto& c : cases) {
    auto t = time_forward(model, c, reps);
    const double gflop = forward_gflop(c.B, c.T, true);
    const double attention = 2.0 * 2.0 * c.B * kHeads * double(c.T) * c.T * kHeadDim * kLayers / 1e9;
    fmt::print("{:<8} {:>10} {:>10.1f} {:>12.0f} {:>10.1f} {:>7.0f}% {:>11.1f}%\n", fmt::format("{}x{}", c.B, c.T), "last",
               t.median * 1e3, c.B * c.T / t.median, gflop / t.median, 100.0 * gflop / t.median / sgemm, 100.0 * attention / gflop);
  }
}

void run_sweep(const nnterp::StandardizedTransformer& model, int reps) {
  // 8x128 with all logits is one big lm_head GEMM (the sgemm column covers it); left out to keep the sweep short.
  const std::vector<Case> cases = {{1, 128, false}, {1, 128, true}, {8, 128, true}};
  auto h = torch::randn({8, 128, kInner});
  auto scores = torch::randn({8, kHeads, 128, 128});
  fmt::print("median ms per forward / per op call\n{:>6} {:>6} {:>10} {:>11} {:>11} {:>10} {:>11} {:>10}\n", "blas",
             "torch", "1x128 all", "1x128 last", "8x128 last", "gelu 8x128", "softmax 8x", "sgemm GF/s");
  for (int blas : {1, 2})
    for (int intra : {1, 2}) {
      set_blas_threads(blas);
      at::set_num_threads(intra);
      std::vector<double> ms;
      for (const auto& c : cases) ms.push_back(time_forward(model, c, reps).median * 1e3);
      ms.push_back(time_it([&] { (void)at::gelu(h, "tanh"); }, reps).median * 1e3);
      ms.push_back(time_it([&] { (void)torch::softmax(scores, -1, torch::kFloat32); }, reps).median * 1e3);
      fmt::print("{:>6} {:>6} {:>10.1f} {:>11.1f} {:>11.1f} {:>10.2f} {:>11.2f} {:>10.1f}\n", blas, intra, ms[0], ms[1],
                 ms[2], ms[3], ms[4], sgemm_gflops(reps));
    }
}

// The forward's operations alone, at GPT-2-small shapes, per forward pass (×12 layers where per layer).
void run_ops(int reps) {
  for (int64_t B : {1, 8}) {
    const int64_t T = 128, N = B * T;
    auto x = torch::randn({B, T, kHidden});
    auto h = torch::randn({B, T, kInner});
    auto wqkv = torch::randn({3 * kHidden, kHidden}) * 0.02, bqkv = torch::randn({3 * kHidden});
    auto wo = torch::randn({kHidden, kHidden}) * 0.02, bo = torch::randn({kHidden});
    auto wfc = torch::randn({kInner, kHidden}) * 0.02, bfc = torch::randn({kInner});
    auto wpr = torch::randn({kHidden, kInner}) * 0.02, bpr = torch::randn({kHidden});
    auto lnw = torch::ones({kHidden}), lnb = torch::zeros({kHidden});
    auto q = torch::randn({B, kHeads, T, kHeadDim}), k = torch::randn({B, kHeads, T, kHeadDim});
    auto scores = torch::randn({B, kHeads, T, T});
    auto mask = torch::zeros({B, 1, T, T});
    auto kv3 = torch::randn({B, 3, T, kHeadDim});
    auto head = torch::randn({kVocab, kHidden}) * 0.02;
    struct Op {
      std::string name;
      int per_pass;
      std::function<void()> fn;
    };
    std::vector<Op> ops = {
        {"linear qkv", 12, [&] { (void)at::linear(x, wqkv, bqkv); }},
        {"linear o", 12, [&] { (void)at::linear(x, wo, bo); }},
        {"linear fc", 12, [&] { (void)at::linear(x, wfc, bfc); }},
        {"linear proj", 12, [&] { (void)at::linear(h, wpr, bpr); }},
        {"q@kT (matmul)", 12, [&] { (void)torch::matmul(q, k.transpose(-1, -2)); }},
        {"probs@v (matmul)", 12, [&] { (void)torch::matmul(scores, k); }},
        {"scores*scale+mask", 12, [&] { (void)(scores * 0.125 + mask); }},
        {"scores.mul_().add_(mask)", 12, [&] { auto s = scores.clone(); s.mul_(0.125).add_(mask); }},
        {"(clone for the above)", 12, [&] { (void)scores.clone(); }},
        {"GQA g=4 repeat_interleave", 12, [&] {  // 12 query heads over 3 kv heads: before
           auto kk = kv3.repeat_interleave(4, 1), vv = kv3.repeat_interleave(4, 1);
           (void)torch::matmul(torch::softmax(torch::matmul(q, kk.transpose(-1, -2)), -1), vv);
         }},
        {"GQA g=4 folded", 12, [&] {  // after: q folded to [B, 3, 4·T, hd], no k/v copies
           auto s = torch::matmul(q.reshape({B, 3, 4 * T, kHeadDim}), kv3.transpose(-1, -2));
           (void)torch::matmul(torch::softmax(s, -1), kv3);
         }},
        {"softmax", 12, [&] { (void)torch::softmax(scores, -1, torch::kFloat32); }},
        {"gelu tanh", 12, [&] { (void)at::gelu(h, "tanh"); }},
        {"layer_norm", 25, [&] { (void)at::layer_norm(x, {kHidden}, lnw, lnb, 1e-5); }},
        {"residual add", 24, [&] { (void)(x + x); }},
        {"lm_head all", 1, [&] { (void)at::linear(x, head); }},
        {"lm_head last", 1, [&] { (void)at::linear(x.narrow(1, T - 1, 1), head); }},
    };
    fmt::print("B={} T={} (N={} tokens): {:<18} {:>10} {:>8} {:>12}\n", B, T, N, "op", "ms/call", "calls", "ms/forward");
    for (auto& op : ops) {
      auto t = time_it(op.fn, reps);
      fmt::print("{:>27} {:<18} {:>10.3f} {:>8} {:>12.2f}\n", "", op.name, t.median * 1e3, op.per_pass,
                 t.median * 1e3 * op.per_pass);
    }
  }
}

}  // namespace

int main(int argc, char** argv) {
  bool sweep = false, ops = false, scaling = false;
  int reps = 7, threads = 0;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--sweep") sweep = true;
    else if (a == "--ops") ops = true;
    else if (a == "--scaling") scaling = true;
    else if (a == "--reps" && i + 1 < argc) reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else {
      fmt::print(stderr, "usage: {} [--sweep] [--ops] [--scaling] [--reps N] [--threads N]\n", argv[0]);
      return 2;
    }
  }
  auto report = nnterp::configure_threads(threads);
  fmt::print("threads: BLAS {} [{}], libtorch intra-op {} ; OPENBLAS_CORETYPE={} OPENBLAS_L2_SIZE={}\n",
             blas_threads(), report.blas, at::get_num_threads(), std::getenv("OPENBLAS_CORETYPE") ?: "-",
             std::getenv("OPENBLAS_L2_SIZE") ?: "-");
  torch::InferenceMode inference;
  if (ops) {
    run_ops(reps);
    return 0;
  }
  auto start = std::chrono::steady_clock::now();
  fs::path dir = write_checkpoint();
  auto written = std::chrono::steady_clock::now();
  nnterp::StandardizedTransformer model(dir.string());
  auto loaded = std::chrono::steady_clock::now();
  fmt::print("GPT-2-small shape: {} layers, hidden {}, {} heads, vocab {}; checkpoint written in {:.1f} s, loaded in {:.2f} s\n\n",
             model.num_layers(), model.hidden_size(), model.num_heads(), model.vocab_size(),
             std::chrono::duration<double>(written - start).count(), std::chrono::duration<double>(loaded - written).count());
  if (sweep) run_sweep(model, reps);
  else if (scaling) run_scaling(model, reps);
  else run_table(model, reps);
  std::error_code ec;
  fs::remove_all(dir, ec);
  return 0;
}

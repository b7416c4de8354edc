// Activation collection throughput: prompts/s for collecting 3 layers' last-token activations
// (layers 4, 8, 11 of 12) over 1,000 prompts on a GPT-2-small-shaped model (12 layers, 768 hidden,
// 12 heads, vocab 50257, random weights N(0, 0.02), seed 0), batch 16. Prompts are random token
// ids of 8..24 tokens (seeded), left-padded per batch. Measured in memory and streamed to disk
// (safetensors shards), plus a plain forward over the same batches for reference.
//
//   bench_collect [--prompts N] [--batch B] [--threads N] [--layers 4,8,11]
#include <fmt/format.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "gpt2_small.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/model.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/threading.hpp"

namespace fs = std::filesystem;

namespace {

using nnterp::bench::kVocab;

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t n = 1000, batch = 16;
  int threads = 0;
  std::vector<int> layers{4, 8, 11};
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--prompts" && i + 1 < argc) n = std::atoll(argv[++i]);
    else if (a == "--batch" && i + 1 < argc) batch = std::atoll(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::atoi(argv[++i]);
    else if (a == "--layers" && i + 1 < argc) {
      layers.clear();
      std::string s = argv[++i];
      for (size_t p = 0; p <= s.size();) {
        size_t c = s.find(',', p);
        layers.push_back(std::stoi(s.substr(p, c - p)));
        if (c == std::string::npos) break;
        p = c + 1;
      }
    } else {
      fmt::print(stderr, "usage: {} [--prompts N] [--batch B] [--threads N] [--layers 4,8,11]\n", argv[0]);
      return 2;
    }
  }
  auto report = nnterp::configure_threads(threads);
  const fs::path tmp = fs::temp_directory_path() / ("nnterp_bench_collect_" + std::to_string(::getpid()));
  fs::remove_all(tmp);
  auto dir = nnterp::bench::write_gpt2_small(tmp / "gpt2_small");
  nnterp::StandardizedTransformer model(dir.string());

  std::mt19937 rng(0);
  std::uniform_int_distribution<int> len(8, 24);
  std::uniform_int_distribution<int64_t> tok(0, kVocab - 1);
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(n));
  int64_t tokens = 0;
  for (auto& r : rows) {
    r.resize(static_cast<size_t>(len(rng)));
    for (auto& t : r) t = tok(rng);
    tokens += static_cast<int64_t>(r.size());
  }
  auto all = nnterp::left_pad(rows);

  std::string layer_text;
  for (int l : layers) layer_text += (layer_text.empty() ? "" : ",") + std::to_string(l);
  fmt::print("GPT-2-small shape (12 layers, 768 hidden, vocab 50257), {} prompts of 8..24 tokens ({} tokens), batch {}, layers {}\n",
             n, tokens, batch, layer_text);
  fmt::print("threads: BLAS {}, torch {}; {}\n", report.blas_threads, report.torch_threads, report.blas);

  {  // warm-up
    nnterp::CollectOptions w;
    w.layers = layers;
    w.batch_size = batch;
    w.progress = false;
    nnterp::collect_token_activations(model, nnterp::input_slice(nnterp::TraceInput(all), 0, 2 * batch), w);
  }

  nnterp::CollectOptions o;
  o.layers = layers;
  o.batch_size = batch;
  o.progress = false;
  auto mem = nnterp::collect_token_activations(model, nnterp::TraceInput(all), o);
  fmt::print("collect, in memory:          {:7.1f} prompts/s  ({:.2f} s)\n", n / mem.seconds, mem.seconds);

  o.out_dir = tmp / "acts";
  o.shard_size = 256;
  auto disk = nnterp::collect_token_activations(model, nnterp::TraceInput(all), o);
  fmt::print("collect, streamed to disk:   {:7.1f} prompts/s  ({:.2f} s, {} shards)\n", n / disk.seconds, disk.seconds,
             disk.shards.size());
  auto check = nnterp::load_activations(o.out_dir);
  fmt::print("  shards == in memory: {}\n", torch::allclose(check, mem.activations, 1e-5, 1e-5) ? "yes" : "NO");

  {  // reference: full forward passes (all 12 layers + lm_head on the last position) over the same batches
    torch::NoGradGuard no_grad;
    auto start = std::chrono::steady_clock::now();
    for (int64_t b = 0; b < n; b += batch) {
      auto in = nnterp::input_slice(nnterp::TraceInput(all), b, std::min(n, b + batch));
      nnterp::ForwardInput f;
      f.input_ids = in.tokens->input_ids;
      f.attention_mask = in.tokens->attention_mask;
      f.logits_last_only = true;
      (void)model.forward(f);
    }
    double s = seconds_since(start);
    fmt::print("reference: full forward:     {:7.1f} prompts/s  ({:.2f} s)\n", n / s, s);
  }
  fs::remove_all(tmp);
  return 0;
}

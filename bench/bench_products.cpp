// A decode step's products alone: x [M, K] · Wᵀ for GPT-2-small's weights (M = 1 … 8 rows, one
// per sequence of the batch), nnterp's small_product kernel (src/model/blocks/matvec.cpp) against
// libtorch (at::mv for one row, at::mm otherwise), as the share of the read bandwidth measured in
// the same run with the same threads. Each product reads its weight from memory: the weights of
// all five shapes (~500 MB in float32) are cycled so none stays in cache.
//
//   bench_products [--reps N] [--threads N] [--dtype float32|bfloat16]
#include <fmt/format.h>
#include <torch/torch.h>

#include <cstring>
#include <string>
#include <vector>

#include "machine_limits.hpp"
#include "model/blocks/blocks.hpp"
#include "nnterp/language_model.hpp"
#include "nnterp/threading.hpp"

using namespace nnterp;

namespace {

struct Shape {
  std::string name;
  int64_t N, K;
  bool transposed;  // GPT-2's Conv1D weights are used as transposed views of [K, N]
  int copies;       // how many layers' worth to cycle through (beyond the caches)
};

torch::Tensor make_weight(const Shape& s, torch::ScalarType dtype) {
  return s.transposed ? torch::randn({s.K, s.N}).to(dtype).t() : torch::randn({s.N, s.K}).to(dtype);
}

torch::Tensor libtorch_product(const torch::Tensor& w, const torch::Tensor& x) {
  if (!model::native_matmul(w)) return torch::mm(x, w.to(torch::kFloat32).t());
  if (x.size(0) == 1) return at::mv(w, x[0]).unsqueeze(0);
  return at::mm(x, w.t());
}

}  // namespace

int main(int argc, char** argv) {
  int reps = 7, threads = 0;
  torch::ScalarType dtype = torch::kFloat32;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc) reps = std::stoi(argv[++i]);
    else if (a == "--threads" && i + 1 < argc) threads = std::stoi(argv[++i]);
    else if (a == "--dtype" && i + 1 < argc) dtype = parse_dtype_option(argv[++i], "--dtype").value();
    else {
      fmt::print(stderr, "usage: {} [--reps N] [--threads N] [--dtype float32|bfloat16]\n", argv[0]);
      return 2;
    }
  }
  const auto report = configure_threads(threads);
  torch::InferenceMode inference;
  const double bandwidth = bench::read_bandwidth_gbs(3, report.blas_threads);
  fmt::print("decode products, GPT-2-small weights in {}, {} threads; read bandwidth {:.1f} GB/s (same threads)\n",
             dtype_name(dtype), report.blas_threads, bandwidth);
  fmt::print("{:<22} {:>3}  {:>10} {:>8}  {:>10} {:>8}  {:>7}\n", "weight", "M", "kernel ms", "% bw", "libtorch",
             "% bw", "speedup");
  const std::vector<Shape> shapes = {{"qkv 768->2304 (T)", 2304, 768, true, 12},
                                     {"o 768->768 (T)", 768, 768, true, 24},
                                     {"fc 768->3072 (T)", 3072, 768, true, 12},
                                     {"proj 3072->768 (T)", 768, 3072, true, 12},
                                     {"lm_head 768->50257", 50257, 768, false, 2}};
  for (const auto& s : shapes) {
    std::vector<torch::Tensor> weights;
    for (int c = 0; c < s.copies; ++c) weights.push_back(make_weight(s, dtype));
    const double bytes = double(s.N) * s.K * weights[0].element_size();
    for (int64_t M : {1, 2, 4, 8}) {
      auto x = torch::randn({M, s.K});
      size_t next = 0;
      auto timed = [&](auto product) {
        return bench::time_it([&] { (void)product(weights[next++ % weights.size()], x); }, reps * s.copies,
                              s.copies)
            .median;
      };
      const double ours = timed(model::small_product), theirs = timed(libtorch_product);
      const auto share = [&](double seconds) { return 100.0 * bytes / seconds / 1e9 / bandwidth; };
      fmt::print("{:<22} {:>3}  {:>10.3f} {:>7.0f}%  {:>10.3f} {:>7.0f}%  {:>6.2f}x\n", s.name, M, ours * 1e3,
                 share(ours), theirs * 1e3, share(theirs), theirs / ours);
    }
  }
  return 0;
}

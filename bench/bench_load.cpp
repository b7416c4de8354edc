// Loading and running a research-scale checkpoint: load time (cold: the files evicted from the page
// cache first; warm), resident memory, a 1×T-token forward and a logit lens over it, with the
// machine's sgemm rate and read bandwidth measured in the same run for the ratios.
//
//   bench_load MODEL_DIR [--dtype auto|float32|bfloat16|float16] [--cold] [--tokens 32] [--reps 2]
//                        [--threads N]
//
// Make the checkpoints with nnterp_make_checkpoint (e.g. llama-3.1-8b: 16 GB of bf16 in 4 shards).
// Run the cold and the warm load as two processes (peak resident memory is per process):
//   bench_load /work/ckpt/llama-3.1-8b --dtype auto --cold ; bench_load /work/ckpt/llama-3.1-8b --dtype auto
//
// FLOPs counted: the matmuls of the layers (q, k, v, o, gate, up, down) and lm_head, 2 per
// multiply-add, for every token (attention's T² terms are under 1% at T = 32).
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "core/proc_files.hpp"
#include "machine_limits.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/model.hpp"
#include "nnterp/threading.hpp"

namespace fs = std::filesystem;
using namespace nnterp;

namespace {

int64_t status_bytes(const char* key) { return nnterp::proc_bytes("/proc/self/status", key); }

// Drops the folder's files from the page cache (clean pages; no root needed), so that the next
// load reads them from the disk.
void evict(const fs::path& dir) {
  for (const auto& entry : fs::directory_iterator(dir)) {
    const int fd = ::open(entry.path().c_str(), O_RDONLY);
    if (fd < 0) continue;
    ::fdatasync(fd);
    ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    ::close(fd);
  }
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Matmul GFLOP of one token through a llama-shaped model (see the header comment).
double gflop_per_token(const StandardizedTransformer& m) {
  const double H = m.hidden_size(), q = m.num_heads() * m.head_dim(), kv = m.num_kv_heads() * m.head_dim();
  const double I = m.config().integer({"intermediate_size"});
  const double per_layer = H * (q + 2 * kv) + q * H + 3 * H * I;
  return 2.0 * (per_layer * m.num_layers() + H * m.vocab_size()) / 1e9;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    fmt::print(stderr, "usage: bench_load MODEL_DIR [--dtype D] [--cold] [--tokens 32] [--reps 2] [--threads N]\n");
    return 2;
  }
  const fs::path dir = argv[1];
  std::string dtype = "auto";
  bool cold = false;
  int64_t tokens = 32;
  int reps = 2, threads = 0;
  for (int i = 2; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&] { return i + 1 < argc ? std::string(argv[++i]) : std::string(); };
    if (a == "--dtype") dtype = next();
    else if (a == "--cold") cold = true;
    else if (a == "--tokens") tokens = std::stoll(next());
    else if (a == "--reps") reps = std::stoi(next());
    else if (a == "--threads") threads = std::stoi(next());
    else return fmt::print(stderr, "unknown option {}\n", a), 2;
  }
  configure_threads(threads);
  try {
    if (cold) evict(dir);
    LoadOptions options;
    options.dtype = parse_dtype_option(dtype, "--dtype");
    const int64_t rss_before = status_bytes("VmRSS");
    const auto start = std::chrono::steady_clock::now();
    StandardizedTransformer model(dir.string(), options);  // with load-time validation, as users load
    const double load_s = seconds_since(start);
    const auto& r = model.load_report();
    int64_t file_bytes = 0;
    for (const auto& [name, bytes] : r.stored_bytes) file_bytes += bytes;
    fmt::print("model       {} ({} layers, hidden {}), {:.2f} GB of weights, dtype {}, matmuls in {}\n", dir.string(),
               model.num_layers(), model.hidden_size(), file_bytes / 1e9, dtype_name(r.dtype), dtype_name(r.matmul_dtype));
    fmt::print("load        {:.1f} s {} (with validation); {:.2f} GB in place, {:.2f} GB copied\n", load_s,
               cold ? "cold (page cache evicted)" : "warm", r.bytes_in_place / 1e9, r.bytes_copied / 1e9);
    fmt::print("memory      resident +{:.2f} GB after load ({:.2f}x the weights), peak {:.2f} GB\n",
               (status_bytes("VmRSS") - rss_before) / 1e9, double(status_bytes("VmRSS") - rss_before) / file_bytes,
               status_bytes("VmHWM") / 1e9);

    torch::NoGradGuard no_grad;
    auto ids = torch::randint(3, model.vocab_size(), {1, tokens}, torch::kInt64);
    auto forward = bench::time_it([&] { (void)model.forward(ids); }, reps, 1);
    const double gflop = gflop_per_token(model) * tokens;
    auto lens = bench::time_it([&] { (void)logit_lens(model, TraceInput{TokenBatch{ids, {}}}); }, reps, 0);
    const double sgemm = bench::sgemm_gflops(3), bandwidth = bench::read_bandwidth_gbs(3);
    fmt::print("forward     1x{} tokens: {:.2f} s median, {:.1f} tokens/s, {:.1f} GFLOP/s = {:.0f}% of sgemm ({:.1f} GFLOP/s)\n",
               tokens, forward.median, tokens / forward.median, gflop / forward.median, 100 * gflop / forward.median / sgemm, sgemm);
    const double weight_bytes = static_cast<double>(r.bytes_in_place + r.bytes_copied);  // what a forward reads
    fmt::print("            weights ({:.2f} GB) streamed at {:.1f} GB/s = {:.0f}% of read bandwidth ({:.1f} GB/s)\n",
               weight_bytes / 1e9, weight_bytes / forward.median / 1e9, 100 * weight_bytes / forward.median / 1e9 / bandwidth, bandwidth);
    fmt::print("logit lens  1x{} tokens, every layer: {:.2f} s median\n", tokens, lens.median);
    fmt::print("peak        resident {:.2f} GB at the end\n", status_bytes("VmHWM") / 1e9);
  } catch (const std::exception& e) {
    fmt::print(stderr, "bench_load: {}\n", e.what());
    return 1;
  }
  return 0;
}

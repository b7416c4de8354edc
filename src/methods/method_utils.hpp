// Internals shared by src/methods/*.cpp: a terminal progress bar and small checks.
#pragma once

#include <torch/types.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "nnterp/error.hpp"
#include "nnterp/points.hpp"
#include "nnterp/trace.hpp"

namespace nnterp { class StandardizedTransformer; }

namespace nnterp::methods_detail {

// "[#####.....] 120/1000 prompts  45.1 prompts/s  ETA 19s" on stderr, redrawn in place; only when
// stderr is a terminal (and `enabled`), so logs and pipes stay clean.
class ProgressBar {
 public:
  ProgressBar(int64_t total, std::string unit, bool enabled)
      : total_(total), unit_(std::move(unit)), enabled_(enabled && total > 0 && ::isatty(2)),
        start_(std::chrono::steady_clock::now()) {}
  ~ProgressBar() { finish(); }
  void update(int64_t done) {
    if (!enabled_) return;
    auto now = std::chrono::steady_clock::now();
    if (done < total_ && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - start_).count();
    const double rate = secs > 0 ? static_cast<double>(done) / secs : 0.0;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(kWidth * done / std::max<int64_t>(total_, 1));
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    std::fprintf(stderr, "\r[%s] %lld/%lld %s  %.1f %s/s  ETA %.0fs   ", bar.c_str(), static_cast<long long>(done),
                 static_cast<long long>(total_), unit_.c_str(), rate, unit_.c_str(), eta);
    std::fflush(stderr);
    drawn_ = true;
  }
  void finish() {
    if (drawn_) std::fprintf(stderr, "\n");
    drawn_ = false;
  }

 private:
  int64_t total_;
  std::string unit_;
  bool enabled_;
  bool drawn_ = false;
  std::chrono::steady_clock::time_point start_, last_{};
};

inline void check_batch_size(int64_t batch_size, const char* what = "batch_size") {
  if (batch_size < 1)
    throw Error(ErrorKind::InvalidArgument, what, "must be at least 1, got " + std::to_string(batch_size));
}

// Points of shape [B, T, H] (what the activation methods read).
inline bool is_residual_shaped(Point p) {
  return p == Point::LayerInput || p == Point::LayerOutput || p == Point::AttnInput || p == Point::AttnOutput ||
         p == Point::ResidMid || p == Point::MlpInput || p == Point::MlpOutput;
}

inline void check_residual_point(Point p, const char* what = "point") {
  if (!is_residual_shaped(p))
    throw Error(ErrorKind::InvalidArgument, what,
                std::string("'") + point_info(p).pattern + "' is not a per-layer [batch, tokens, hidden] point",
                "use layers.{i}.input, layers.{i}.output, layers.{i}.attn_input, layers.{i}.attn_output, "
                "layers.{i}.resid_mid, layers.{i}.mlp_input or layers.{i}.mlp_output");
}

// Sorted, de-duplicated copy (the order a trace must visit layers in).
inline std::vector<int> forward_order(std::vector<int> layers) {
  std::sort(layers.begin(), layers.end());
  layers.erase(std::unique(layers.begin(), layers.end()), layers.end());
  return layers;
}

// One batch of get_token_activations: [layers.size(), B, H] on the CPU (layers resolved, any
// order); the forward stops after the last layer needed.
torch::Tensor batch_activations(const StandardizedTransformer& model, const TokenBatch& batch, int64_t idx,
                                const std::vector<int>& layers, Point point);

// The token ids of a text prompt with the model's tokenizer (special tokens added, as in a batch);
// a clear error when the model has none. `what` names the prompt in errors.
std::vector<int64_t> encode_for_model(const StandardizedTransformer& model, const std::string& text, const std::string& what);
// The id that pads batches: the tokenizer's, else 0 (the mask hides it).
int64_t pad_id_of(const StandardizedTransformer& model);

}  // namespace nnterp::methods_detail

// What one forward pass takes and the hooks it calls at every standardized point.
#pragma once

#include <torch/types.h>

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "nnterp/points.hpp"
#include "nnterp/token_batch.hpp"

namespace nnterp {

// What a forward, a trace or a method runs on: one prompt, a batch of prompts (tokenized with the
// model's tokenizer, left-padded), or token ids. `{"a", "b"}` is a batch of two prompts.
struct TraceInput {
  TraceInput(const char* prompt) : prompts{prompt} {}
  TraceInput(const std::string& prompt) : prompts{prompt} {}
  TraceInput(std::vector<std::string> batch) : prompts(std::move(batch)) {}
  TraceInput(std::initializer_list<std::string> batch) : prompts(batch) {}
  TraceInput(TokenBatch batch) : tokens(std::move(batch)) {}
  std::vector<std::string> prompts;
  std::optional<TokenBatch> tokens;
};

// Keys and values of every layer for the positions already processed (post-rotary keys,
// [B, kv_heads, S, d_head]); empty before the first forward. keys[i] and values[i] may be edited
// or replaced between forwards.
//
// A forward appends its positions with append(): they are written into spare room behind the
// views (a buffer grown by doubling), so a decode step writes one position per layer instead of
// copying the whole cache (docs/performance.md). A copy of a KVCache shares the past positions but
// never the spare room: each copy appends into memory of its own.
class KVCache {
 public:
  std::vector<torch::Tensor> keys, values;
  // Per layer, the state of a layer without attention (undefined for attention layers): for a
  // short-convolution layer (LFM2) its last kernel − 1 conv inputs [B, hidden, kernel − 1].
  // Gated DeltaNet layers (Qwen3-Next) keep their conv inputs [B, conv channels, kernel − 1] there
  // and their recurrent state [B, value heads, key_dim, value_dim] in `recurrent`.
  std::vector<torch::Tensor> states, recurrent;
  int64_t state_positions = 0;  // the positions `states` has seen (the length of a cache without keys)

  KVCache() = default;
  KVCache(const KVCache& other)
      : keys(other.keys), values(other.values), states(other.states), recurrent(other.recurrent),
        state_positions(other.state_positions), reserved_(other.reserved_) {}
  KVCache& operator=(const KVCache& other);
  KVCache(KVCache&&) = default;
  KVCache& operator=(KVCache&&) = default;

  int64_t length() const;  // the cached positions
  void clear();
  // Room for `positions` positions in all (past and future) when a buffer is next allocated, so a
  // generation that knows its length allocates once; without it the room doubles as needed.
  void reserve(int64_t positions) { reserved_ = positions; }
  // Appends k and v [B, kv_heads, T, d_head] to layer `layer`'s keys and values; returns the whole
  // keys and values (past positions, then these).
  std::pair<torch::Tensor, torch::Tensor> append(size_t layer, const torch::Tensor& k, const torch::Tensor& v);

 private:
  // The buffers keys[i]/values[i] view, [B, kv_heads, capacity, d_head]; empty in a copy.
  std::vector<torch::Tensor> key_buffers_, value_buffers_;
  int64_t reserved_ = 0;
};

struct ForwardInput {
  torch::Tensor input_ids;        // int64 [B, T]
  torch::Tensor attention_mask;   // int64/bool [B, past + T]; undefined: all ones
  torch::Tensor position_ids;     // int64 [B, T]; undefined: cumsum(mask) - 1, pads set to 1 (as HF generate)
  KVCache* cache = nullptr;       // read and extended when given
  bool logits_last_only = false;  // compute logits for the last position only (generation)
};

// Thrown by hooks to end a forward early (trace `stop()`); the decoder returns what it has.
struct StopForward {};

// Called by the decoder at every standardized point, in forward order. A hook may read the value,
// edit it in place, or assign a new tensor of the same shape and dtype (the decoder checks and
// throws Error(Shape) naming the point otherwise).
class PointHooks {
 public:
  virtual ~PointHooks() = default;
  virtual void at(const PointId& point, torch::Tensor& value) = 0;
  // Whether attention probabilities of `layer` must be materialised (else a faster path may be used).
  virtual bool wants_attention_probs(int layer) { return true; }
  // Consulted before block `layer` runs: a defined tensor replaces the block's output and the
  // block is not computed (layer skipping).
  virtual torch::Tensor skip_layer(int layer, const torch::Tensor& input) { return {}; }
};

}  // namespace nnterp

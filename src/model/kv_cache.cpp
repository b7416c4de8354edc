// KVCache::append: new positions go into spare room behind the cached views. Before, every decode
// step concatenated each layer's whole cache with its new position (torch::cat), copying the cache
// 2·layers times per token: 9.5 ms of a 52 ms GPT-2-small batch-8 step (docs/performance.md).
#include <algorithm>

#include "core/tensor_text.hpp"
#include "nnterp/error.hpp"
#include "nnterp/forward.hpp"

namespace nnterp {

namespace {

// Whether `view` is the first positions of `buffer`, so that positions behind it can be written.
bool is_front_of(const torch::Tensor& view, const torch::Tensor& buffer) {
  return view.defined() && buffer.defined() && view.data_ptr() == buffer.data_ptr() && view.dim() == 4 &&
         view.size(0) == buffer.size(0) && view.size(1) == buffer.size(1) && view.size(3) == buffer.size(3) &&
         view.strides() == buffer.strides() && view.scalar_type() == buffer.scalar_type() &&
         view.device() == buffer.device();
}

// past (a view of `buffer`, or any tensor a caller put there) followed by `added` along positions.
torch::Tensor extend(torch::Tensor& past, torch::Tensor& buffer, const torch::Tensor& added, int64_t reserved,
                     size_t layer, const char* what) {
  const int64_t before = past.defined() ? past.size(2) : 0, after = before + added.size(2);
  if (past.defined() && (past.dim() != 4 || past.size(0) != added.size(0) || past.size(1) != added.size(1) ||
                         past.size(3) != added.size(3)))
    throw Error(ErrorKind::Shape, "KV cache, layer " + std::to_string(layer) + " " + what,
                "the cache holds " + shape_text(past.sizes()) + " but this forward adds " + shape_text(added.sizes()) +
                    " ([batch, kv_heads, positions, head_dim] must match)",
                "run the forward with the batch the cache was built with, or clear() the cache");
  if (!is_front_of(past, buffer) || buffer.size(2) < after) {
    auto shape = added.sizes().vec();
    shape[2] = std::max(reserved, 2 * after);
    auto grown = torch::empty(shape, added.options());
    if (before) grown.narrow(2, 0, before).copy_(past);
    buffer = grown;
  }
  buffer.narrow(2, before, added.size(2)).copy_(added);
  past = buffer.narrow(2, 0, after);
  return past;
}

}  // namespace

int64_t KVCache::length() const {
  for (const auto& k : keys)
    if (k.defined()) return k.size(2);
  return state_positions;
}

KVCache& KVCache::operator=(const KVCache& other) {
  keys = other.keys;
  values = other.values;
  states = other.states;
  recurrent = other.recurrent;
  state_positions = other.state_positions;
  key_buffers_.clear();
  value_buffers_.clear();
  reserved_ = other.reserved_;
  return *this;
}

void KVCache::clear() {
  keys.clear();
  values.clear();
  states.clear();
  recurrent.clear();
  state_positions = 0;
  key_buffers_.clear();
  value_buffers_.clear();
}

std::pair<torch::Tensor, torch::Tensor> KVCache::append(size_t layer, const torch::Tensor& k, const torch::Tensor& v) {
  const size_t layers = std::max(layer + 1, keys.size());
  keys.resize(layers), values.resize(layers), key_buffers_.resize(layers), value_buffers_.resize(layers);
  return {extend(keys[layer], key_buffers_[layer], k, reserved_, layer, "keys"),
          extend(values[layer], value_buffers_[layer], v, reserved_, layer, "values")};
}

}  // namespace nnterp

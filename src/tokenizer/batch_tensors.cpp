// BatchEncoding -> torch tensors (the only tokenizer source that includes torch).
#include "nnterp/tokenizer_tensors.hpp"

#include <torch/torch.h>

#include <cstring>

#include "nnterp/error.hpp"

namespace nnterp {

namespace {
torch::Tensor tok_rows_to_tensor(const std::vector<std::vector<int64_t>>& rows, size_t width, const char* what) {
  auto t = torch::empty({static_cast<int64_t>(rows.size()), static_cast<int64_t>(width)}, torch::kInt64);
  int64_t* data = t.data_ptr<int64_t>();
  for (size_t b = 0; b < rows.size(); ++b) {
    if (rows[b].size() != width) {
      throw Error(ErrorKind::Shape, what, "rows of different lengths: pad the batch first");
    }
    if (width) std::memcpy(data + b * width, rows[b].data(), width * sizeof(int64_t));
  }
  return t;
}
}  // namespace

BatchTensors to_tensors(const BatchEncoding& batch) {
  const size_t width = batch.seq_len();
  if (batch.attention_mask.size() != batch.input_ids.size()) {
    throw Error(ErrorKind::Shape, "attention_mask", "a mask row count different from input_ids");
  }
  return BatchTensors{tok_rows_to_tensor(batch.input_ids, width, "input_ids"),
                      tok_rows_to_tensor(batch.attention_mask, width, "attention_mask")};
}

BatchTensors encode_batch_tensors(const Tokenizer& tokenizer, const std::vector<std::string>& texts,
                                  const BatchOptions& options) {
  return to_tensors(tokenizer.encode_batch(texts, options));
}

}  // namespace nnterp

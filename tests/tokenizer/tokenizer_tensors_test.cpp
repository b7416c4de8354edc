// BatchEncoding -> int64 [B, T] tensors (the one tokenizer piece that uses torch).
#include <gtest/gtest.h>

#include <filesystem>

#include "nnterp/tokenizer.hpp"
#include "nnterp/tokenizer_tensors.hpp"
#include "nnterp/error.hpp"

TEST(TokenizerTensors, LeftPaddedInt64Tensors) {
  const auto tok = nnterp::Tokenizer::from_folder(std::filesystem::path(NNTERP_TEST_DATA) / "tokenizers" / "mistral");
  const auto t = nnterp::encode_batch_tensors(tok, {"Hello world", "Hi"});
  ASSERT_EQ(t.input_ids.scalar_type(), torch::kInt64);
  ASSERT_EQ(t.attention_mask.scalar_type(), torch::kInt64);
  ASSERT_EQ(t.input_ids.sizes(), t.attention_mask.sizes());
  const auto first = tok.encode_ids("Hello world"), second = tok.encode_ids("Hi");
  ASSERT_EQ(t.input_ids.size(0), 2);
  ASSERT_EQ(t.input_ids.size(1), static_cast<int64_t>(std::max(first.size(), second.size())));
  const int64_t T = t.input_ids.size(1);
  for (int64_t k = 0; k < T; ++k) EXPECT_EQ(t.input_ids[0][k].item<int64_t>(), first[static_cast<size_t>(k)]);
  const int64_t pad = T - static_cast<int64_t>(second.size());
  for (int64_t k = 0; k < T; ++k) {
    EXPECT_EQ(t.attention_mask[1][k].item<int64_t>(), k < pad ? 0 : 1);
    if (k >= pad) EXPECT_EQ(t.input_ids[1][k].item<int64_t>(), second[static_cast<size_t>(k - pad)]);
  }
  nnterp::BatchEncoding ragged;
  ragged.input_ids = {{1, 2}, {3}};
  ragged.attention_mask = {{1, 1}, {1}};
  EXPECT_THROW(nnterp::to_tensors(ragged), nnterp::Error);
}

// The decoder reuses its logits buffer across forwards once nobody holds it (decoder.hpp): a
// logits tensor the caller keeps, or a view of it, is never overwritten by a later forward.
#include <gtest/gtest.h>

#include "common/fixtures.hpp"

namespace nnterp::testing {
namespace {

TEST(LogitsBuffer, LogitsTheCallerHoldsAreNeverOverwritten) {
  StandardizedTransformer model((hf_fixture_dir() / "llama").string());
  torch::NoGradGuard no_grad;
  // 64 x 140 tokens x 1000 vocab x 4 bytes = 35.8 MB: above the 32 MiB where the buffer is reused.
  auto first = torch::randint(3, 1000, {64, 140}, torch::kInt64), second = torch::randint(3, 1000, {64, 140}, torch::kInt64);
  auto logits = model.forward(first);
  const auto expected = logits.clone();
  auto view = logits.select(1, -1);  // a view keeps the storage after the handle goes
  logits = torch::Tensor();
  auto other = model.forward(second);
  EXPECT_TRUE(torch::equal(view, expected.select(1, -1)));
  EXPECT_FALSE(torch::equal(other, expected));
  auto kept = model.forward(first);  // `other` is still held: a fresh buffer
  EXPECT_TRUE(torch::equal(other, model.forward(second)));
  EXPECT_TRUE(torch::equal(kept, expected));
  // Once nothing holds them, forwards reuse the storage and still give the same numbers.
  view = other = kept = torch::Tensor();
  const void* storage = model.forward(first).data_ptr();
  auto again = model.forward(first);
  EXPECT_EQ(again.data_ptr(), storage) << "the buffer was not reused";
  EXPECT_TRUE(torch::equal(again, expected));
}

}  // namespace
}  // namespace nnterp::testing

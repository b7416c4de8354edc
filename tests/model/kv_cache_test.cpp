// KVCache::append (src/model/kv_cache.cpp): new positions are written behind the cached views, a
// copy never writes into the original's memory, and what a caller put in keys/values is respected.
#include <gtest/gtest.h>

#include "nnterp/error.hpp"
#include "nnterp/forward.hpp"

namespace nnterp {
namespace {

torch::Tensor positions(int64_t n, float start) {
  return torch::arange(start, start + n).view({1, 1, n, 1}).expand({2, 3, n, 4}).contiguous();
}

TEST(KVCache, AppendsBehindTheViewWithoutMovingThePast) {
  KVCache cache;
  cache.reserve(20);
  auto [k0, v0] = cache.append(1, positions(16, 0), positions(16, 100));
  const void* storage = cache.keys[1].data_ptr();
  for (int step = 0; step < 4; ++step) cache.append(1, positions(1, 16 + step), positions(1, 116 + step));
  EXPECT_EQ(cache.keys[1].data_ptr(), storage) << "reserve(20) holds 20 positions: no reallocation";
  EXPECT_EQ(cache.keys.size(), 2u);
  EXPECT_FALSE(cache.keys[0].defined());
  EXPECT_TRUE(torch::equal(cache.keys[1], positions(20, 0)));
  EXPECT_TRUE(torch::equal(cache.values[1], positions(20, 100)));
  cache.append(1, positions(1, 20), positions(1, 120));  // past the reserve: grows, keeps the past
  EXPECT_TRUE(torch::equal(cache.keys[1], positions(21, 0)));
  EXPECT_TRUE(torch::equal(cache.values[1], positions(21, 100)));
}

TEST(KVCache, ACopyAndTheOriginalAppendIntoMemoryOfTheirOwn) {
  KVCache original;
  original.append(0, positions(4, 0), positions(4, 0));
  KVCache copy = original;
  KVCache assigned;
  assigned = original;
  original.append(0, positions(1, 50), positions(1, 50));
  copy.append(0, positions(1, 60), positions(1, 60));
  assigned.append(0, positions(1, 70), positions(1, 70));
  auto expected = [](float last) { return torch::cat({positions(4, 0), positions(1, last)}, 2); };
  EXPECT_TRUE(torch::equal(original.keys[0], expected(50)));
  EXPECT_TRUE(torch::equal(copy.keys[0], expected(60)));
  EXPECT_TRUE(torch::equal(assigned.values[0], expected(70)));
}

TEST(KVCache, KeysACallerReplacedOrEditedAreWhatItExtends) {
  KVCache cache;
  cache.append(0, positions(3, 0), positions(3, 0));
  cache.keys[0] = positions(5, 200);  // replaced
  cache.values[0].zero_();            // edited in place
  cache.append(0, positions(1, 9), positions(1, 9));
  EXPECT_TRUE(torch::equal(cache.keys[0], torch::cat({positions(5, 200), positions(1, 9)}, 2)));
  EXPECT_TRUE(torch::equal(cache.values[0], torch::cat({torch::zeros({2, 3, 3, 4}), positions(1, 9)}, 2)));
  EXPECT_EQ(cache.length(), 6);
  cache.clear();
  EXPECT_EQ(cache.length(), 0);
}

TEST(KVCache, AnotherBatchIsAClearErrorNotABroadcast) {
  KVCache cache;
  cache.append(0, positions(3, 0), positions(3, 0));
  try {
    cache.append(0, torch::zeros({1, 3, 1, 4}), torch::zeros({1, 3, 1, 4}));
    FAIL() << "a batch of 1 appended to a cache of 2 rows must throw";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Shape);
    EXPECT_NE(std::string(e.what()).find("layer 0 keys"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[2, 3, 3, 4]"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nnterp

// The router family of model/blocks/mlp.cpp (route): scores, score bias, group limits and the
// normalisation of the routing weights, on hand-made logits whose decisions are known.
#include <gtest/gtest.h>

#include <cmath>
#include <set>

#include "model/blocks/blocks.hpp"

namespace nnterp::model {
namespace {

// Logits whose sigmoid is `scores`.
torch::Tensor logits_of_sigmoid(std::vector<float> scores) {
  auto s = torch::tensor(scores).unsqueeze(0);
  return torch::log(s / (1 - s));
}

std::set<int64_t> chosen(const Routing& r, int64_t row = 0) {
  std::set<int64_t> out;
  for (int64_t k = 0; k < r.experts.size(1); ++k) out.insert(r.experts[row][k].item<int64_t>());
  return out;
}

TEST(Router, SoftmaxTopKRenormalisedIsTheSoftmaxOverTheChosenLogits) {
  MoeSpec m;
  m.num_experts = 4, m.top_k = 2, m.normalize_top_k = true;
  auto logits = torch::tensor({{0.3f, 2.0f, -1.0f, 1.5f}});
  auto r = route(m, logits);
  EXPECT_EQ(chosen(r), (std::set<int64_t>{1, 3}));
  auto expected = torch::softmax(torch::tensor({2.0f, 1.5f}), 0);
  EXPECT_TRUE(torch::allclose(r.weights[0], expected, 1e-6, 1e-7)) << r.weights;
}

TEST(Router, TheScoreBiasChoosesButTheUnbiasedScoreWeighs) {
  MoeSpec m;
  m.num_experts = 4, m.top_k = 2, m.scoring = RouterScoring::Sigmoid;
  m.normalize_top_k = true, m.routed_scaling = 2.5;
  auto logits = logits_of_sigmoid({0.9f, 0.8f, 0.3f, 0.2f});
  auto bias = torch::tensor({0.0f, 0.0f, 0.0f, 0.65f});  // expert 3: 0.85 to choose, 0.2 to weigh
  auto r = route(m, logits, bias);
  EXPECT_EQ(chosen(r), (std::set<int64_t>{0, 3}));
  auto w = r.weights[0];
  const int64_t slot_of_3 = r.experts[0][0].item<int64_t>() == 3 ? 0 : 1;
  EXPECT_NEAR(w[slot_of_3].item<float>(), 0.2 / 1.1 * 2.5, 1e-6);
  EXPECT_NEAR(w.sum().item<float>(), 2.5, 1e-6);
  EXPECT_EQ(chosen(route(m, logits)), (std::set<int64_t>{0, 1}));  // without the bias
}

TEST(Router, GroupsScoredByTheirBestOrByTheirTwoBestKeepDifferentExperts) {
  MoeSpec m;
  m.num_experts = 8, m.top_k = 2, m.scoring = RouterScoring::Sigmoid;
  m.groups = 4, m.top_groups = 2;
  // groups: {0.9, 0.05}, {0.6, 0.55}, {0.59, 0.58}, {0.1, 0.1}
  auto logits = logits_of_sigmoid({0.9f, 0.05f, 0.6f, 0.55f, 0.59f, 0.58f, 0.1f, 0.1f});
  m.group_score = GroupScore::Max;  // best: 0.9, 0.6, 0.59 → groups 0 and 1
  EXPECT_EQ(chosen(route(m, logits)), (std::set<int64_t>{0, 2}));
  m.group_score = GroupScore::SumTop2;  // two best: 0.95, 1.15, 1.17 → groups 2 and 1
  EXPECT_EQ(chosen(route(m, logits)), (std::set<int64_t>{2, 4}));
  m.groups = 1;  // no group limit: the two best overall
  EXPECT_EQ(chosen(route(m, logits)), (std::set<int64_t>{0, 2}));
}

TEST(Router, TheNormalisationFloorKeepsTinyWeightsTiny) {
  MoeSpec m;
  m.num_experts = 3, m.top_k = 1, m.normalize_top_k = true, m.normalize_floor = 0.5;
  auto r = route(m, torch::tensor({{0.0f, 0.0f, 0.0f}}));  // each expert 1/3: divided by 0.5, not by 1/3
  EXPECT_NEAR(r.weights[0][0].item<float>(), 2.0 / 3.0, 1e-6);
  m.normalize_floor = 0;
  EXPECT_NEAR(route(m, torch::tensor({{0.0f, 0.0f, 0.0f}})).weights[0][0].item<float>(), 1.0, 1e-6);
}

TEST(Router, SparsemixerWeighsEachChoiceAmongTheExpertsInItsBand) {
  MoeSpec m;
  m.num_experts = 4, m.top_k = 2, m.scoring = RouterScoring::Sparsemixer, m.jitter = 0.1;  // band: 20% of the best
  auto r = route(m, torch::tensor({{2.0f, 1.9f, 0.5f, -1.0f}}));
  EXPECT_EQ(r.experts[0][0].item<int64_t>(), 0);
  EXPECT_EQ(r.experts[0][1].item<int64_t>(), 1);
  // expert 0 shares its band (logits ≥ 1.6) with expert 1; expert 1, with 0 removed, is alone in its band.
  EXPECT_NEAR(r.weights[0][0].item<float>(), 1 / (1 + std::exp(-0.1)), 1e-6);
  EXPECT_NEAR(r.weights[0][1].item<float>(), 1.0, 1e-6);
  m.jitter = 0.5;  // a band to 0 around 2.0 lets expert 2 (0.5) in: (2 - 0.5) / 2 = 0.75 ≤ 1
  auto wide = route(m, torch::tensor({{2.0f, 1.9f, 0.5f, -1.0f}}));
  EXPECT_NEAR(wide.weights[0][0].item<float>(), std::exp(2.0) / (std::exp(2.0) + std::exp(1.9) + std::exp(0.5)), 1e-6);
}

}  // namespace
}  // namespace nnterp::model

// The one table of points: names round-trip, order is forward order, and the docs list them all.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "nnterp/error.hpp"
#include "nnterp/points.hpp"
#include "nnterp/weight_names.hpp"

namespace nnterp {
namespace {

// The one table of standardized weights (include/nnterp/weight_names.hpp).
TEST(Weights, TableIsInEnumOrderWithUniqueNamesAndPairedBiases) {
  std::set<std::string> names;
  for (size_t k = 0; k < weight_table().size(); ++k) {
    const auto& info = weight_table()[k];
    EXPECT_EQ(static_cast<size_t>(info.weight), k) << info.pattern;
    EXPECT_TRUE(names.insert(info.pattern).second) << "duplicate " << info.pattern;
    const std::string name = info.pattern;
    const bool per_layer = name.find("{i}") != std::string::npos, per_expert = name.find("{e}") != std::string::npos;
    EXPECT_EQ(info.scope, per_expert ? WeightScope::Expert : per_layer ? WeightScope::Layer : WeightScope::Model) << name;
    if (has_bias(info.weight)) {
      EXPECT_EQ(weight_info(bias_of(info.weight)).pattern, name.substr(0, name.size() - 7) + ".bias") << name;
      EXPECT_EQ(weight_info(bias_of(info.weight)).module, std::string(info.module)) << name;
    }
  }
  EXPECT_EQ(bias_of(Weight::Qkv), Weight::QkvBias);
  EXPECT_EQ(bias_of(Weight::FinalNorm), Weight::FinalNormBias);
  EXPECT_FALSE(has_bias(Weight::QkvBias));
  EXPECT_EQ(bias_of(Weight::Router), Weight::RouterBias);
  EXPECT_FALSE(has_bias(Weight::RouterScoreBias));
  EXPECT_THROW(bias_of(Weight::Embed), std::logic_error);
}

TEST(Weights, IdsNameTheirTensorAndModule) {
  EXPECT_EQ((WeightId{Weight::Qkv, 3}.name()), "layers.3.attn.qkv.weight");
  EXPECT_EQ((WeightId{Weight::Qkv, 3}.module()), "layers.3.self_attn");
  EXPECT_EQ((WeightId{Weight::PostMlpNormBias, 0}.module()), "layers.0.mlp");
  EXPECT_EQ((WeightId{Weight::ExpertDown, 1, 7}.name()), "layers.1.moe.experts.7.down.weight");
  EXPECT_EQ((WeightId{Weight::ExpertDown, 1, 7}.module()), "layers.1.mlp");
  EXPECT_EQ((WeightId{Weight::EmbedNorm}.module()), "embed_tokens");
  EXPECT_EQ((WeightId{Weight::LmHeadBias}.name()), "lm_head.bias");
  EXPECT_TRUE((WeightId{Weight::Qkv, 1}) < (WeightId{Weight::Qkv, 2}));
}

TEST(Points, NamesRoundTrip) {
  for (const auto& info : point_table()) {
    PointId id{info.point, info.per_layer() ? 7 : -1};
    EXPECT_EQ(parse_point(id.name()), id) << id.name();
  }
  EXPECT_EQ(parse_point("layers.12.attn_probs").name(), "layers.12.attn_probs");
  EXPECT_EQ(parse_point("layers.{i}.output").layer, -1);
}

TEST(Points, ForwardOrder) {
  EXPECT_TRUE((PointId{Point::Embed, -1}).before(PointId{Point::LayerInput, 0}));
  EXPECT_TRUE((PointId{Point::LayerOutput, 0}).before(PointId{Point::LayerInput, 1}));
  EXPECT_TRUE((PointId{Point::AttnProbs, 3}).before(PointId{Point::AttnOutput, 3}));
  EXPECT_TRUE((PointId{Point::LayerOutput, 40}).before(PointId{Point::FinalNorm, -1}));
  EXPECT_TRUE((PointId{Point::FinalNorm, -1}).before(PointId{Point::Logits, -1}));
  EXPECT_FALSE((PointId{Point::MlpOutput, 2}).before(PointId{Point::AttnOutput, 2}));
}

TEST(Points, UnknownNameSuggestsTheNearest) {
  try {
    parse_point("layers.3.mlp_ouptut");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::InvalidArgument);
    EXPECT_NE(e.hint().find("layers.{i}.mlp_output"), std::string::npos) << e.what();
  }
}

TEST(Points, DocsListEveryPoint) {
  std::ifstream in(std::filesystem::path(NNTERP_TEST_DATA) / ".." / ".." / "docs" / "points.md");
  ASSERT_TRUE(in);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  for (const auto& info : point_table()) {
    EXPECT_NE(text.find(std::string("`") + info.pattern + "`"), std::string::npos) << info.pattern;
    EXPECT_NE(text.find(info.trace_name), std::string::npos) << info.trace_name;
  }
  for (const auto& info : weight_table())
    EXPECT_NE(text.find(std::string("`") + info.pattern + "`"), std::string::npos) << info.pattern;
}

}  // namespace
}  // namespace nnterp

// The one table of points: names round-trip, order is forward order, and the docs list them all.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "nnterp/error.hpp"
#include "nnterp/points.hpp"

namespace nnterp {
namespace {

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
}

}  // namespace
}  // namespace nnterp

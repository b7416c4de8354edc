// Parity with HuggingFace: every standardized point of every fixture architecture, at every
// position whose attention_mask is 1, against HF's own activations (expected.safetensors).
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>

#include "common/fixtures.hpp"
#include "nnterp/error.hpp"
#include "nnterp/recorder.hpp"

namespace nnterp::testing {
namespace {

constexpr double kTolerance = 1e-4;  // relative to max(1, max |expected|)

struct ParityResult {
  std::string hf_class;
  int checked = 0;
  double worst = 0;
  std::string worst_point;
};

std::map<std::string, ParityResult>& results() {
  static std::map<std::string, ParityResult> r;
  return r;
}

class Parity : public ::testing::TestWithParam<std::string> {};

bool compared_point(const std::string& name) {
  if (name == "logits" || name == "embed.output" || name == "ln_final.output") return true;
  if (name.rfind("layers.", 0) != 0) return false;
  for (const char* suffix : {".input", ".output", ".attn_output", ".mlp_output", ".attn_probs", ".router_logits"}) {
    std::string s = suffix;
    if (name.size() > s.size() && name.compare(name.size() - s.size(), s.size(), s) == 0) return true;
  }
  return false;
}

TEST_P(Parity, EveryPointMatchesHuggingFace) {
  Fixture fx(GetParam());
  StandardizedTransformer model(fx.dir.string());
  PointRecorder recorder;
  torch::NoGradGuard no_grad;
  auto logits = model.forward(fx.input_ids, fx.attention_mask, &recorder);

  ParityResult result{model.hf_class()};
  for (const auto& info : fx.expected->tensors()) {
    if (!compared_point(info.name)) continue;
    const torch::Tensor* ours = recorder.find(info.name);
    ASSERT_NE(ours, nullptr) << fx.name << ": nnterp has no point named " << info.name;
    auto expected = fx.tensor(info.name);
    ASSERT_EQ(ours->sizes(), expected.sizes()) << fx.name << " " << info.name;
    bool attention = info.name.find("attn_probs") != std::string::npos;
    bool flat = info.name.find("router_logits") != std::string::npos;
    double err = masked_relative_error(*ours, expected, fx.attention_mask, attention, flat);
    EXPECT_LE(err, kTolerance) << fx.name << " " << info.name;
    ++result.checked;
    if (err >= result.worst) result.worst = err, result.worst_point = info.name;
  }
  EXPECT_GE(result.checked, 3 + 5 * model.num_layers()) << "too few points compared";
  fmt::print("[parity] {:<18} {:<28} {:>3} points  worst {:.2e} at {}\n", fx.name, result.hf_class, result.checked,
             result.worst, result.worst_point);
  static std::mutex m;
  std::lock_guard<std::mutex> lock(m);
  results()[fx.name] = result;
}

TEST_P(Parity, ProjectOnVocabOfLastLayerIsTheLogits) {
  Fixture fx(GetParam());
  StandardizedTransformer model(fx.dir.string());
  PointRecorder recorder;
  torch::NoGradGuard no_grad;
  auto logits = model.forward(fx.input_ids, fx.attention_mask, &recorder);
  auto last = *recorder.find("layers." + std::to_string(model.num_layers() - 1) + ".output");
  EXPECT_TRUE(torch::equal(model.project_on_vocab(last), logits)) << fx.name;
}

TEST_P(Parity, GreedyNextTokenMatchesHuggingFace) {
  Fixture fx(GetParam());
  StandardizedTransformer model(fx.dir.string());
  torch::NoGradGuard no_grad;
  auto logits = model.forward(fx.input_ids, fx.attention_mask);
  const int64_t T = fx.input_ids.size(1);
  auto ours = logits.select(1, T - 1).argmax(-1);
  auto hf = fx.tensor("generated_ids").select(1, T);
  EXPECT_TRUE(torch::equal(ours, hf)) << fx.name << ": ours " << ours << " HF " << hf;
}

INSTANTIATE_TEST_SUITE_P(HF, Parity, ::testing::ValuesIn(hf_fixture_names()),
                         [](const auto& info) { return info.param; });

}  // namespace
}  // namespace nnterp::testing

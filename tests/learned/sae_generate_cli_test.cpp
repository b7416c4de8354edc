// Feature edits during generation from the command line (`generate --sae --clamp-feature
// --add-feature`) equal the library's generation with the same edits through Trace::sae.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>

#include "methods/methods_helpers.hpp"
#include "nnterp/generate.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/sae.hpp"

namespace nnterp {
namespace {

namespace fs = std::filesystem;
using testing::nnterp_cli;

// A ReLU SAE at layers.1.output of the default model, written in the SAELens format.
fs::path write_sae(std::optional<Sae>* out) {
  torch::manual_seed(3);
  SaeConfig c;
  c.d_in = c.d_out = 128;
  c.d_sae = 64;
  c.input_point = c.output_point = PointId{Point::LayerOutput, 1};
  auto W_dec = torch::randn({64, 128});
  W_dec = W_dec / W_dec.norm(2, -1, true);
  out->emplace(c, SaeWeights{W_dec.t().contiguous(), torch::zeros({64}), W_dec, torch::zeros({128}), {}, {}, {}, {}, {}});
  auto dir = fs::temp_directory_path() / ("nnterp_sae_generate_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  (*out)->save_saelens(dir);
  return dir;
}

TEST(SaeGenerateCli, FeatureEditsEqualTheLibrarysAndNameTheirFlag) {
  std::optional<Sae> loaded;
  const auto dir = write_sae(&loaded);
  const Sae& sae = *loaded;
  StandardizedTransformer model(default_model_dir().string());
  GenerateOptions options;
  options.max_new_tokens = 5;
  const std::string prompt = "The capital of France is";
  auto edited = model.generate(prompt, options, at_all_steps([&](Trace& t) {
                                 auto& f = t.sae(sae);
                                 f.index({"...", 5}).fill_(0.0);
                                 f.index({"...", 9}).add_(30.0);
                               }));
  auto plain = model.generate(prompt, options);
  ASSERT_FALSE(edited.texts[0] == plain.texts[0]) << "the edit should change the greedy text";
  auto r = nnterp_cli("generate --prompt \"" + prompt + "\" --max-new-tokens 5 --json --sae " + dir.string() +
                      " --clamp-feature 5=0 --add-feature 9=30");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto line = nlohmann::json::parse(r.out.substr(r.out.find('{')));
  EXPECT_EQ(line["texts"][0], edited.texts[0]) << r.out;
  r = nnterp_cli("generate --prompt hi --clamp-feature 5=0");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--clamp-feature"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--sae"), std::string::npos) << r.out;
  r = nnterp_cli("generate --prompt hi --sae " + dir.string() + " --add-feature 64=1");
  EXPECT_NE(r.out.find("outside the SAE's 64 features"), std::string::npos) << r.out;
  r = nnterp_cli("generate --prompt hi --sae " + dir.string() + " --add-feature five=1");
  EXPECT_NE(r.out.find("expected FEATURE=VALUE"), std::string::npos) << r.out;
  fs::remove_all(dir);
}

}  // namespace
}  // namespace nnterp

// Unsupported architectures and options, and checkpoints that do not fit their config, fail at
// load with an error naming what is wrong — never a silently different model.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "common/edited_fixture.hpp"
#include "common/fixtures.hpp"
#include "model/weights.hpp"
#include "nnterp/error.hpp"

namespace nnterp::testing {
namespace {

namespace fs = std::filesystem;


TEST(Unsupported, UnknownModelTypeNamesItAndListsTheSupportedOnes) {
  EditedFixture fx("llama");
  fx.config()["model_type"] = "llama9000";
  Error e = load_error(fx.path());
  EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  EXPECT_EQ(e.message(), "model_type 'llama9000' is not supported");
  EXPECT_NE(e.hint().find("supported model types: "), std::string::npos);
  for (const char* listed : {"gpt2", "llama", "gemma2", "mixtral", "qwen2_moe", "bloom", "olmo2"})
    EXPECT_NE(e.hint().find(listed), std::string::npos) << listed;
}

TEST(Unsupported, UnknownRopeScalingTypeIsNamed) {
  EditedFixture fx("llama");
  fx.config()["rope_scaling"] = {{"rope_type", "dynamic"}, {"factor", 4.0}};  // dynamic NTK, without HunYuan's alpha
  Error e = load_error(fx.path());
  EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  EXPECT_EQ(e.message(), "rope_scaling type 'dynamic' is not supported");
  EXPECT_EQ(e.hint(), "supported rope_scaling types: default, linear, llama3, yarn, dynamic with alpha (NTK-alpha), "
                     "longrope with short_mscale / long_mscale (PhiMoE)");
}

TEST(Unsupported, Phi3LongropeIsRefusedNotGuessed) {
  // Phi-3's longrope derives its scale and picks its regime unlike PhiMoE's; no fixture checks it.
  EditedFixture fx("phi3");
  fx.config()["rope_scaling"] = {{"type", "longrope"}, {"short_factor", {1.0, 1.0}}, {"long_factor", {2.0, 2.0}}};
  Error e = load_error(fx.path());
  EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  EXPECT_EQ(e.message(), "rope_scaling type 'longrope' is not supported");
}

TEST(Unsupported, UnknownActivationIsNamed) {
  EditedFixture fx("llama");
  fx.config()["hidden_act"] = "swiglu_v7";
  Error e = load_error(fx.path());
  EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  EXPECT_EQ(e.message(), "activation 'swiglu_v7' is not supported");
}

TEST(Unsupported, BloomResidualAfterLayerNormIsRefused) {
  EditedFixture fx("bloom");
  fx.config()["apply_residual_connection_post_layernorm"] = true;
  Error e = load_error(fx.path());
  EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  EXPECT_NE(e.message().find("apply_residual_connection_post_layernorm"), std::string::npos) << e.what();
}

TEST(Unsupported, UnknownLayerTypeIsNamed) {
  EditedFixture fx("gemma2");
  fx.config()["layer_types"] = {"sliding_attention", "chunked_attention", "full_attention"};
  Error e = load_error(fx.path());
  EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
  EXPECT_EQ(e.message(), "layer type \"chunked_attention\" is not supported");
}

TEST(CheckpointMismatch, AnUnusedCheckpointTensorIsAnError) {
  EditedFixture fx("llama");
  fx.edit_weights([](auto& tensors) { tensors.emplace_back("model.layers.0.self_attn.mystery_gate.weight", torch::zeros({4})); });
  Error e = load_error(fx.path());
  EXPECT_EQ(e.kind(), ErrorKind::UnexpectedWeight);
  EXPECT_NE(e.message().find("model.layers.0.self_attn.mystery_gate.weight"), std::string::npos) << e.what();
  // The nearest tensor nnterp does read, and the standardized weight it feeds.
  EXPECT_NE(e.message().find("(nearest mapped: model.layers.0.self_attn."), std::string::npos) << e.what();
  EXPECT_NE(e.message().find(" → layers.0.attn.qkv.weight)"), std::string::npos) << e.what();
}

// ArchSpec::unused_tensors = Warn (no architecture uses it today): the model loads, and stderr
// names every unused tensor.
TEST(CheckpointMismatch, TheWarnPolicyLoadsAndNamesUnusedTensors) {
  EditedFixture fx("llama");
  fx.edit_weights([](auto& tensors) { tensors.emplace_back("model.layers.1.mlp.gate_proj.bias", torch::zeros({4})); });
  const std::string dir = fx.path();
  auto spec = model::arch_from_config(Config::load(fs::path(dir) / "config.json"));
  spec.unused_tensors = model::UnusedTensors::Warn;
  const auto store = io::WeightStore::open(dir);
  ::testing::internal::CaptureStderr();
  const auto weights = model::load_weights(spec, store, torch::kFloat32);
  const std::string err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("1 checkpoint tensor(s) are not used"), std::string::npos) << err;
  EXPECT_NE(err.find("model.layers.1.mlp.gate_proj.bias (nearest mapped: model.layers.1.mlp.gate_proj.weight → "
                     "layers.1.mlp.gate_up.weight)"), std::string::npos) << err;
  EXPECT_EQ(weights.rows({Weight::GateUp, 1}).size(), 2u);  // gate and up, used in place
  spec.unused_tensors = model::UnusedTensors::Error;
  EXPECT_THROW(model::load_weights(spec, store, torch::kFloat32), Error);
}

// generation_config.json is read at load: a malformed token id fails there, naming the file and
// key (before, a non-integer EOS id was silently skipped and generation ran past every answer).
TEST(CheckpointMismatch, AMalformedGenerationConfigFailsAtLoad) {
  EditedFixture fx("llama");
  const std::string dir = fx.path();
  std::ofstream(fs::path(dir) / "generation_config.json") << R"({"eos_token_id": [2, "3"]})";
  Error e = load_error(dir);
  EXPECT_EQ(e.kind(), ErrorKind::Config);
  EXPECT_EQ(e.subject(), (fs::path(dir) / "generation_config.json").string());
  EXPECT_EQ(e.message(), "'eos_token_id[1]' should be an integer, got \"3\"");
}

TEST(CheckpointMismatch, MissingTensorsAreAllListed) {
  EditedFixture fx("llama");
  fx.edit_weights([](auto& tensors) {
    tensors.erase(std::remove_if(tensors.begin(), tensors.end(), [](const auto& t) {
                    return t.first == "model.layers.1.mlp.up_proj.weight" || t.first == "model.norm.weight";
                  }),
                  tensors.end());
  });
  Error e = load_error(fx.path());
  EXPECT_EQ(e.kind(), ErrorKind::MissingWeight);
  EXPECT_NE(e.message().find("2 tensor(s)"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("model.layers.1.mlp.up_proj.weight"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("model.norm.weight"), std::string::npos) << e.what();
}

TEST(CheckpointMismatch, AWeightOfTheWrongShapeNamesIt) {
  EditedFixture fx("llama");
  fx.config()["intermediate_size"] = 96;  // the checkpoint has 128
  Error e = load_error(fx.path());
  EXPECT_EQ(e.kind(), ErrorKind::Shape);
  EXPECT_EQ(e.subject(), "layers.0.mlp.gate_up.weight");
  EXPECT_NE(e.message().find("[192, 64]"), std::string::npos) << e.what();
}

TEST(CheckpointMismatch, PartsThatCannotBeStackedNameTheWeight) {
  EditedFixture fx("llama");
  fx.edit_weights([](auto& tensors) {
    for (auto& [name, t] : tensors)
      if (name == "model.layers.0.self_attn.k_proj.weight") t = t.narrow(1, 0, 48).contiguous();  // [32, 48], not [32, 64]
  });
  const std::string path = fx.path();
  for (auto dtype : {torch::kFloat32, torch::kBFloat16}) {  // kept as row blocks, and converted into one copy
    LoadOptions options;
    options.dtype = dtype;
    try {
      StandardizedTransformer model(path, options);
      ADD_FAILURE() << "loaded";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Shape);
      EXPECT_EQ(e.subject(), "layers.0.attn.qkv.weight");
      EXPECT_NE(e.message().find("model.layers.0.self_attn.k_proj.weight is [32, 48]"), std::string::npos) << e.what();
    }
  }
}

TEST(CheckpointMismatch, TokenIdsBeyondTheVocabularyAreRefused) {
  StandardizedTransformer model((hf_fixture_dir() / "llama").string());
  auto ids = torch::tensor({{5, 1000}}, torch::kInt64);
  try {
    model.forward(ids);
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "input_ids");
    EXPECT_NE(e.message().find("[0, 1000)"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace nnterp::testing

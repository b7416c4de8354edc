// SAEs and transcoders: each format written with known weights and read back, encode/decode against
// each architecture's formula written out here, the trace splice (identity without an edit, exact
// edits, reconstruction, gradients, generation), and the errors bad files get.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "methods/methods_helpers.hpp"
#include "nnterp/error.hpp"
#include "nnterp/generate.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/sae.hpp"

namespace nnterp {
namespace {

namespace fs = std::filesystem;
using torch::indexing::Slice;

constexpr int64_t kHidden = 128;  // the default model's
constexpr int64_t kFeatures = 96;

fs::path scratch(const std::string& name) {
  auto dir = fs::temp_directory_path() / ("nnterp_sae_test_" + std::to_string(::getpid())) / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream(path) << text;
}

// Weights shaped for the default model with every optional tensor, so each architecture finds its own.
struct Params {
  torch::Tensor W_enc, b_enc, W_dec, b_dec, threshold, b_gate, b_mag, r_mag, W_skip;
  explicit Params(int64_t d_in = kHidden, int64_t d_out = kHidden, uint64_t seed = 7) {
    torch::manual_seed(seed);
    W_enc = torch::randn({d_in, kFeatures}) * 0.2;
    b_enc = torch::randn({kFeatures}) * 0.1;
    W_dec = torch::randn({kFeatures, d_out}) * 0.2;
    b_dec = torch::randn({d_out}) * 0.1;
    threshold = torch::rand({kFeatures}) * 0.3;
    b_gate = torch::randn({kFeatures}) * 0.1;
    b_mag = torch::randn({kFeatures}) * 0.1;
    r_mag = torch::randn({kFeatures}) * 0.1;
    W_skip = torch::randn({d_out, d_in}) * 0.05;
  }
};

void save(const fs::path& file, const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  io::save_safetensors(file, tensors);
}

fs::path write_saelens(const std::string& name, const std::string& cfg,
                       const std::vector<std::pair<std::string, torch::Tensor>>& tensors) {
  auto dir = scratch(name);
  write_text(dir / "cfg.json", cfg);
  save(dir / "sae_weights.safetensors", tensors);
  return dir;
}

std::string saelens_cfg(const std::string& architecture, const std::string& extra, const std::string& hook = "blocks.1.hook_resid_post") {
  return R"({"architecture": ")" + architecture + R"(", "d_in": 128, "d_sae": 96, "dtype": "float32",
            "hook_name": ")" + hook + R"(", "model_name": "default")" + (extra.empty() ? "" : ", " + extra) + "}";
}

torch::Tensor jumprelu(const torch::Tensor& pre, const torch::Tensor& threshold) {
  return pre.relu() * (pre > threshold).to(torch::kFloat32);
}

class Sae_ : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model = new StandardizedTransformer(default_model_dir().string()); }
  static void TearDownTestSuite() {
    delete model;
    model = nullptr;
  }
  static torch::Tensor input(int64_t rows = 6) {
    torch::manual_seed(11);
    return torch::randn({2, rows / 2, kHidden}) * 2.0;
  }
  static StandardizedTransformer* model;
};
StandardizedTransformer* Sae_::model = nullptr;

const std::vector<std::string> kPrompts = {"The capital of France is", "A cat sat on"};

// ---- formats and formulas -------------------------------------------------------------------

TEST_F(Sae_, SaeLensStandardIsReluOnInputMinusDecoderBias) {
  Params p;
  auto sae = Sae::load(write_saelens("standard", saelens_cfg("standard", ""),
                                     {{"W_enc", p.W_enc}, {"b_enc", p.b_enc}, {"W_dec", p.W_dec}, {"b_dec", p.b_dec}}));
  const auto x = input();
  const auto f = torch::relu(torch::matmul(x - p.b_dec, p.W_enc) + p.b_enc);
  EXPECT_TRUE(torch::allclose(sae.encode(x), f, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(sae.decode(f), torch::matmul(f, p.W_dec) + p.b_dec, 1e-6, 1e-6));
  ASSERT_TRUE(sae.config().input_point.has_value());
  EXPECT_EQ(sae.config().input_point->name(), "layers.1.output");
  EXPECT_EQ(sae.config().format, "saelens");
  EXPECT_EQ(sae.config().model_name, "default");
}

TEST_F(Sae_, SaeLensTopKKeepsTheKLargestInBothConfigSpellings) {
  Params p;
  const std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"W_enc", p.W_enc}, {"b_enc", p.b_enc}, {"W_dec", p.W_dec}, {"b_dec", p.b_dec}};
  auto v6 = Sae::load(write_saelens("topk6", saelens_cfg("topk", R"("k": 5)"), tensors));
  auto v5 = Sae::load(write_saelens(
      "topk5", saelens_cfg("standard", R"("activation_fn_str": "topk", "activation_fn_kwargs": {"k": 5})"), tensors));
  const auto x = input();
  const auto pre = torch::matmul(x - p.b_dec, p.W_enc) + p.b_enc;
  const auto kth = std::get<0>(pre.topk(5, -1)).index({"...", Slice(4, 5)});
  const auto expected = torch::where(pre >= kth, pre.relu(), torch::zeros_like(pre));
  EXPECT_TRUE(torch::allclose(v6.encode(x), expected, 1e-6, 1e-6));
  EXPECT_TRUE(torch::equal(v5.encode(x), v6.encode(x)));
  EXPECT_LE(v6.encode(x).ne(0).sum(-1).max().item<int64_t>(), 5);
  EXPECT_EQ(v6.config().k, 5);
}

TEST_F(Sae_, SaeLensJumpReluGatesOnThreshold) {
  Params p;
  auto sae = Sae::load(write_saelens("jumprelu", saelens_cfg("jumprelu", ""),
                                     {{"W_enc", p.W_enc}, {"b_enc", p.b_enc}, {"W_dec", p.W_dec}, {"b_dec", p.b_dec},
                                      {"threshold", p.threshold}}));
  const auto x = input();
  const auto pre = torch::matmul(x - p.b_dec, p.W_enc) + p.b_enc;
  EXPECT_TRUE(torch::allclose(sae.encode(x), jumprelu(pre, p.threshold), 1e-6, 1e-6));
  // Some features sit between 0 and their threshold: the gate, not the ReLU, zeroes them.
  EXPECT_GT(((pre > 0) & (pre <= p.threshold)).sum().item<int64_t>(), 0);
}

TEST_F(Sae_, SaeLensGatedMultipliesGateAndMagnitude) {
  Params p;
  auto sae = Sae::load(write_saelens("gated", saelens_cfg("gated", ""),
                                     {{"W_enc", p.W_enc}, {"W_dec", p.W_dec}, {"b_dec", p.b_dec}, {"b_gate", p.b_gate},
                                      {"b_mag", p.b_mag}, {"r_mag", p.r_mag}}));
  const auto x = input();
  const auto centred = x - p.b_dec;
  const auto gate = (torch::matmul(centred, p.W_enc) + p.b_gate > 0).to(torch::kFloat32);
  const auto magnitude = torch::relu(torch::matmul(centred, p.W_enc * p.r_mag.exp()) + p.b_mag);
  EXPECT_TRUE(torch::allclose(sae.encode(x), gate * magnitude, 1e-6, 1e-6));
}

TEST_F(Sae_, SaeLensNormalizationsMapTheOutputBack) {
  Params p;
  const std::vector<std::pair<std::string, torch::Tensor>> tensors = {
      {"W_enc", p.W_enc}, {"b_enc", p.b_enc}, {"W_dec", p.W_dec}, {"b_dec", p.b_dec}};
  const auto x = input();
  {  // constant_norm_rescale: x·sqrt(d)/|x| in, the inverse out
    auto sae = Sae::load(write_saelens("cnr", saelens_cfg("standard", R"("normalize_activations": "constant_norm_rescale")"), tensors));
    const auto coeff = std::sqrt(128.0) / x.norm(2, -1, true);
    const auto f = torch::relu(torch::matmul(x * coeff - p.b_dec, p.W_enc) + p.b_enc);
    EXPECT_TRUE(torch::allclose(sae.encode(x), f, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(sae.reconstruct(x), (torch::matmul(f, p.W_dec) + p.b_dec) / coeff, 1e-5, 1e-5));
    EXPECT_THROW(sae.decode(f), Error);  // per-token statistics: decode needs the input
    EXPECT_TRUE(torch::allclose(sae.decode(f, x), sae.reconstruct(x)));
  }
  {  // layer_norm: (x − μ)/(σ + 1e-5) in, ·σ + μ out (σ unbiased, as torch.std)
    auto sae = Sae::load(write_saelens("ln", saelens_cfg("standard", R"("normalize_activations": "layer_norm")"), tensors));
    const auto mu = x.mean(-1, true);
    const auto sigma = (x - mu).std(-1, true, true);
    const auto f = torch::relu(torch::matmul((x - mu) / (sigma + 1e-5) - p.b_dec, p.W_enc) + p.b_enc);
    EXPECT_TRUE(torch::allclose(sae.encode(x), f, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(sae.reconstruct(x), (torch::matmul(f, p.W_dec) + p.b_dec) * sigma + mu, 1e-5, 1e-5));
  }
  {  // expected_average_only_in with its factor: x·c in, ÷c out; without one (as SAELens's load_from_disk): none
    auto scaled = Sae::load(write_saelens(
        "eao", saelens_cfg("standard", R"("normalize_activations": "expected_average_only_in", "norm_scaling_factor": 0.5)"), tensors));
    const auto f = torch::relu(torch::matmul(x * 0.5 - p.b_dec, p.W_enc) + p.b_enc);
    EXPECT_TRUE(torch::allclose(scaled.encode(x), f, 1e-5, 1e-5));
    EXPECT_TRUE(torch::allclose(scaled.reconstruct(x), (torch::matmul(f, p.W_dec) + p.b_dec) / 0.5, 1e-5, 1e-5));
    auto unscaled = Sae::load(write_saelens("eao0", saelens_cfg("standard", R"("normalize_activations": "expected_average_only_in")"), tensors));
    EXPECT_EQ(unscaled.config().normalization, SaeNormalization::None);
  }
}

TEST_F(Sae_, SaeLensTranscodersReadOnePointAndWriteAnother) {
  Params p;
  const std::string cfg = R"({"architecture": "jumprelu_skip_transcoder", "d_in": 128, "d_sae": 96, "d_out": 128,
    "apply_b_dec_to_input": false, "metadata": {"hook_name": "blocks.2.ln2.hook_normalized", "hook_name_out": "blocks.2.hook_mlp_out"}})";
  auto tc = Sae::load(write_saelens("transcoder", cfg,
                                    {{"W_enc", p.W_enc}, {"b_enc", p.b_enc}, {"W_dec", p.W_dec}, {"b_dec", p.b_dec},
                                     {"threshold", p.threshold}, {"W_skip", p.W_skip}}));
  EXPECT_TRUE(tc.config().transcoder);
  EXPECT_EQ(tc.config().input_point->name(), "layers.2.mlp_input");
  EXPECT_EQ(tc.config().output_point->name(), "layers.2.mlp_output");
  const auto x = input();
  const auto f = jumprelu(torch::matmul(x, p.W_enc) + p.b_enc, p.threshold);  // no b_dec on a transcoder's input
  EXPECT_TRUE(torch::allclose(tc.encode(x), f, 1e-6, 1e-6));
  EXPECT_TRUE(torch::allclose(tc.reconstruct(x), torch::matmul(f, p.W_dec) + p.b_dec + torch::matmul(x, p.W_skip.t()), 1e-5, 1e-5));
  tc.check_fits(*model);
}

TEST_F(Sae_, GemmaScopeParamsAreJumpReluWithoutDecoderBiasOnTheInput) {
  Params p;
  auto dir = scratch("gemma-scope-2b-pt-res") / "layer_3" / "width_16k" / "average_l0_20";
  fs::create_directories(dir);
  save(dir / "params.safetensors",
       {{"W_enc", p.W_enc}, {"W_dec", p.W_dec}, {"b_enc", p.b_enc}, {"b_dec", p.b_dec}, {"threshold", p.threshold}});
  auto sae = Sae::load(dir);
  EXPECT_EQ(sae.config().format, "gemma-scope");
  EXPECT_EQ(sae.config().input_point->name(), "layers.3.output");
  const auto x = input();
  const auto pre = torch::matmul(x, p.W_enc) + p.b_enc;
  EXPECT_TRUE(torch::allclose(sae.encode(x), (pre > p.threshold).to(torch::kFloat32) * pre.relu(), 1e-6, 1e-6));
  // The file alone works too, with the point given.
  auto file = Sae::load(dir / "params.safetensors", {PointId{Point::MlpOutput, 1}, {}, {}, {}});
  EXPECT_EQ(file.config().input_point->name(), "layers.1.mlp_output");
  // Gemma Scope transcoders read the MLP's input and write its output.
  auto tdir = scratch("gemma-scope-2b-pt-transcoders") / "layer_1" / "width_16k" / "average_l0_8";
  fs::create_directories(tdir);
  save(tdir / "params.safetensors",
       {{"W_enc", p.W_enc}, {"W_dec", p.W_dec}, {"b_enc", p.b_enc}, {"b_dec", p.b_dec}, {"threshold", p.threshold}});
  auto tc = Sae::load(tdir);
  EXPECT_TRUE(tc.config().transcoder);
  EXPECT_EQ(tc.config().input_point->name(), "layers.1.mlp_input");
  EXPECT_EQ(tc.config().output_point->name(), "layers.1.mlp_output");
}

TEST_F(Sae_, SparsifyFoldersAreTopKWithTheFolderAsHook) {
  Params p;
  auto dir = scratch("sparsify") / "layers.2";
  fs::create_directories(dir);
  write_text(dir / "cfg.json", R"({"expansion_factor": 1, "normalize_decoder": true, "num_latents": 96, "k": 4})");
  save(dir / "sae.safetensors",
       {{"encoder.weight", p.W_enc.t().contiguous()}, {"encoder.bias", p.b_enc}, {"W_dec", p.W_dec}, {"b_dec", p.b_dec}});
  auto sae = Sae::load(dir);
  EXPECT_EQ(sae.config().input_point->name(), "layers.2.output");
  const auto x = input();
  const auto pre = torch::matmul(x - p.b_dec, p.W_enc) + p.b_enc;
  const auto kth = std::get<0>(pre.topk(4, -1)).index({"...", Slice(3, 4)});
  EXPECT_TRUE(torch::allclose(sae.encode(x), torch::where(pre >= kth, pre.relu(), torch::zeros_like(pre)), 1e-6, 1e-6));
}

TEST_F(Sae_, SavedSaeLensLoadsBackIdentically) {
  Params p;
  SaeConfig c;
  c.activation = SaeActivation::TopK;
  c.k = 7;
  c.d_in = c.d_out = kHidden;
  c.d_sae = kFeatures;
  c.input_point = c.output_point = PointId{Point::LayerOutput, 2};
  c.model_name = "default";
  Sae sae(c, SaeWeights{p.W_enc, p.b_enc, p.W_dec, p.b_dec, {}, {}, {}, {}, {}});
  auto dir = scratch("saved");
  sae.save_saelens(dir);
  auto back = Sae::load(dir);
  EXPECT_EQ(back.config().hook_name, "blocks.2.hook_resid_post");
  EXPECT_EQ(back.config().input_point->name(), "layers.2.output");
  EXPECT_EQ(back.config().k, 7);
  const auto x = input();
  EXPECT_TRUE(torch::equal(back.encode(x), sae.encode(x)));
  EXPECT_TRUE(torch::equal(back.reconstruct(x), sae.reconstruct(x)));
}

TEST_F(Sae_, HookNamesMapToPoints) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"blocks.8.hook_resid_pre", "layers.8.input"},      {"blocks.8.hook_resid_post", "layers.8.output"},
      {"blocks.3.hook_resid_mid", "layers.3.resid_mid"},  {"blocks.3.hook_mlp_out", "layers.3.mlp_output"},
      {"blocks.3.hook_attn_out", "layers.3.attn_output"}, {"blocks.2.attn.hook_z", "layers.2.z"},
      {"blocks.5.ln2.hook_normalized", "layers.5.mlp_input"}, {"blocks.5.mlp.hook_post", "layers.5.mlp_hidden"},
      {"model.layers.8", "layers.8.output"},             {"model.layers.3.mlp", "layers.3.mlp_output"},
      {"model.layers.2.self_attn", "layers.2.attn_output"}, {"layers.10", "layers.10.output"},
      {"transformer.h.4", "layers.4.output"},            {"layers.8.output", "layers.8.output"},
      {"hook_embed", "embed.output"}};
  for (const auto& [hook, point] : cases) {
    auto p = point_from_hook_name(hook);
    ASSERT_TRUE(p.has_value()) << hook;
    EXPECT_EQ(p->name(), point) << hook;
  }
  EXPECT_FALSE(point_from_hook_name("blocks.3.hook_nonsense").has_value());
  EXPECT_FALSE(point_from_hook_name("decoder.block.3").has_value());
}

// ---- bad files --------------------------------------------------------------------------------

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

TEST_F(Sae_, BadFilesAreClearErrors) {
  Params p;
  const std::vector<std::pair<std::string, torch::Tensor>> base = {
      {"W_enc", p.W_enc}, {"b_enc", p.b_enc}, {"W_dec", p.W_dec}, {"b_dec", p.b_dec}};
  auto msg = error_of([&] { Sae::load(write_saelens("unknown", saelens_cfg("crosscoder", ""), base)); });
  EXPECT_NE(msg.find("unknown SAE architecture 'crosscoder'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("cfg.json (architecture)"), std::string::npos) << msg;
  msg = error_of([&] { Sae::load(write_saelens("nothreshold", saelens_cfg("jumprelu", ""), base)); });
  EXPECT_NE(msg.find("threshold"), std::string::npos) << msg;
  EXPECT_NE(msg.find("needs threshold"), std::string::npos) << msg;
  msg = error_of([&] { Sae::load(write_saelens("nok", saelens_cfg("topk", ""), base)); });
  EXPECT_NE(msg.find("activation_fn_kwargs.k"), std::string::npos) << msg;
  msg = error_of([&] {
    Sae::load(write_saelens("badshape", saelens_cfg("standard", ""),
                            {{"W_enc", p.W_enc.index({Slice(0, 64)})}, {"b_enc", p.b_enc}, {"W_dec", p.W_dec}, {"b_dec", p.b_dec}}));
  });
  EXPECT_NE(msg.find("W_enc"), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected [128, 96]"), std::string::npos) << msg;
  msg = error_of([&] {
    auto extra = base;
    extra.emplace_back("W_mystery", p.b_enc);
    Sae::load(write_saelens("extra", saelens_cfg("standard", ""), extra));
  });
  EXPECT_NE(msg.find("W_mystery"), std::string::npos) << msg;
  msg = error_of([&] { Sae::load(write_saelens("badhook", saelens_cfg("standard", "", "blocks.1.hook_nonsense"), base)); });
  EXPECT_NE(msg.find("blocks.1.hook_nonsense"), std::string::npos) << msg;
  EXPECT_NE(msg.find("--point"), std::string::npos) << msg;
  msg = error_of([&] { Sae::load(scratch("empty")); });
  EXPECT_NE(msg.find("no SAE here"), std::string::npos) << msg;
  msg = error_of([&] {
    auto dir = scratch("notjson");
    write_text(dir / "cfg.json", "{\"d_in\": ");
    save(dir / "sae_weights.safetensors", base);
    Sae::load(dir);
  });
  EXPECT_NE(msg.find("invalid JSON"), std::string::npos) << msg;
}

TEST_F(Sae_, AnSaeForAnotherModelIsRefusedNamingBothWidths) {
  Params wide(256, 256);
  auto dir = write_saelens("wide", R"({"architecture": "standard", "d_in": 256, "d_sae": 96, "hook_name": "blocks.1.hook_resid_post"})",
                           {{"W_enc", wide.W_enc}, {"b_enc", wide.b_enc}, {"W_dec", wide.W_dec}, {"b_dec", wide.b_dec}});
  auto sae = Sae::load(dir);
  auto msg = error_of([&] { sae.check_fits(*model); });
  EXPECT_NE(msg.find("256"), std::string::npos) << msg;
  EXPECT_NE(msg.find("128"), std::string::npos) << msg;
  EXPECT_NE(msg.find("layers.1.output"), std::string::npos) << msg;
  msg = error_of([&] { model->trace(kPrompts, [&](Trace& t) { t.sae(sae); }); });
  EXPECT_NE(msg.find("reads 256 values per token but layers.1.output has 128"), std::string::npos) << msg;
  Params p;
  auto deep = Sae::load(write_saelens("deep", saelens_cfg("standard", "", "blocks.9.hook_resid_post"),
                                      {{"W_enc", p.W_enc}, {"b_enc", p.b_enc}, {"W_dec", p.W_dec}, {"b_dec", p.b_dec}}));
  msg = error_of([&] { deep.check_fits(*model); });
  EXPECT_NE(msg.find("has 4 layers"), std::string::npos) << msg;
}

// ---- the splice -------------------------------------------------------------------------------

std::vector<Sae> every_architecture() {
  Params p;
  std::vector<Sae> saes;
  SaeConfig c;
  c.d_in = c.d_out = kHidden;
  c.d_sae = kFeatures;
  c.input_point = c.output_point = PointId{Point::LayerOutput, 1};
  c.activation = SaeActivation::ReLU;
  saes.emplace_back(c, SaeWeights{p.W_enc, p.b_enc, p.W_dec, p.b_dec, {}, {}, {}, {}, {}});
  c.activation = SaeActivation::TopK;
  c.k = 6;
  c.normalization = SaeNormalization::LayerNorm;
  saes.emplace_back(c, SaeWeights{p.W_enc, p.b_enc, p.W_dec, p.b_dec, {}, {}, {}, {}, {}});
  c.activation = SaeActivation::JumpReLU;
  c.normalization = SaeNormalization::ConstantNormRescale;
  c.apply_b_dec_to_input = false;
  saes.emplace_back(c, SaeWeights{p.W_enc, p.b_enc, p.W_dec, p.b_dec, p.threshold, {}, {}, {}, {}});
  c.activation = SaeActivation::Gated;
  c.normalization = SaeNormalization::None;
  c.apply_b_dec_to_input = true;
  saes.emplace_back(c, SaeWeights{p.W_enc, {}, p.W_dec, p.b_dec, {}, p.b_gate, p.b_mag, p.r_mag, {}});
  c.activation = SaeActivation::JumpReLU;
  c.transcoder = true;
  c.apply_b_dec_to_input = false;
  c.input_point = PointId{Point::MlpInput, 2};
  c.output_point = PointId{Point::MlpOutput, 2};
  saes.emplace_back(c, SaeWeights{p.W_enc, p.b_enc, p.W_dec, p.b_dec, p.threshold, {}, {}, {}, p.W_skip});
  return saes;
}

TEST_F(Sae_, AnUneditedSpliceLeavesTheLogitsBitIdentical) {
  const auto clean = model->trace(kPrompts, {});
  for (const auto& sae : every_architecture()) {
    int64_t active = 0;
    const auto spliced = model->trace(kPrompts, [&](Trace& t) { active = t.sae(sae).ne(0).sum().item<int64_t>(); });
    EXPECT_GT(active, 0) << sae.config().architecture;  // the SAE does fire: the identity is not vacuous
    EXPECT_TRUE(torch::equal(spliced, clean)) << static_cast<int>(sae.config().activation);
  }
  // Also at z, whose heads the SAE sees flattened.
  Params p(kHidden, kHidden);
  SaeConfig c;
  c.d_in = c.d_out = kHidden;
  c.d_sae = kFeatures;
  const Sae z_sae(c, SaeWeights{p.W_enc, p.b_enc, p.W_dec, p.b_dec, {}, {}, {}, {}, {}});
  EXPECT_TRUE(torch::equal(model->trace(kPrompts, [&](Trace& t) { t.sae("layers.0.z", z_sae); }), clean));
}

TEST_F(Sae_, AnAblationChangesThePointByExactlyTheFeaturesDecoderRow) {
  for (const auto& sae : every_architecture()) {
    const auto in = *sae.config().input_point, out = *sae.config().output_point;
    int64_t feature = -1;
    const auto edited = model->trace(kPrompts, [&](Trace& t) {
      auto& f = t.sae(sae);
      feature = f.ne(0).flatten(0, -2).sum(0).argmax().item<int64_t>();  // the feature firing on the most tokens
      f.index_put_({"...", feature}, 0.0);
    });
    // By hand: the point minus f_j · W_dec[j] (times the normalization's output scale).
    torch::Tensor expected_logits = model->trace(kPrompts, [&](Trace& t) {
      auto& x = t.at(in);
      auto encoding = sae.encode_full(x);
      auto change = -encoding.features.index({"...", Slice(feature, feature + 1)}) * sae.weights().W_dec[feature];
      if (encoding.out_scale.defined()) change = change * encoding.out_scale;
      auto& y = t.at(out);
      y = y + change;
    });
    EXPECT_TRUE(torch::allclose(edited, expected_logits, 1e-5, 1e-5)) << sae.config().architecture;
    EXPECT_FALSE(torch::allclose(edited, model->trace(kPrompts, {}), 1e-4, 1e-4)) << "the ablation changed nothing";
  }
}

TEST_F(Sae_, ReconstructionModeReplacesThePointWithDecode) {
  for (const auto& sae : every_architecture()) {
    const auto in = *sae.config().input_point, out = *sae.config().output_point;
    const auto spliced = model->trace(kPrompts, [&](Trace& t) { t.sae(sae, SaeSpliceOptions{false}); });
    const auto manual = model->trace(kPrompts, [&](Trace& t) {
      const auto x = t.at(in).clone();
      auto& y = t.at(out);
      y = sae.reconstruct(x);
    });
    EXPECT_TRUE(torch::equal(spliced, manual)) << sae.config().architecture;
  }
}

TEST_F(Sae_, FeatureGradientsFlowThroughTheSplice) {
  const auto sae = every_architecture()[0];
  torch::Tensor grad, grad_x;
  const int64_t target = 5;
  model->trace(
      kPrompts,
      [&](Trace& t) {
        auto& f = t.sae(sae);
        f.requires_grad_();
        auto logits = t.logits();
        logits.index({0, -1, target}).backward();
        grad = f.grad().clone();
      },
      TraceOptions{true});
  // d logit / d f = W_dec · d logit / d x at the point.
  model->trace(
      kPrompts,
      [&](Trace& t) {
        auto& x = t.layers_output[1];
        x.requires_grad_();
        t.logits().index({0, -1, target}).backward();
        grad_x = x.grad().clone();
      },
      TraceOptions{true});
  EXPECT_TRUE(torch::allclose(grad, torch::matmul(grad_x, sae.weights().W_dec.t()), 1e-5, 1e-6));
  EXPECT_GT(grad.abs().sum().item<double>(), 0.0);
  // An earlier point's gradient passes the unedited splice as the identity (the features are
  // leaves: no second path back through the encoder).
  auto embedding_grad = [&](bool with_sae) {
    torch::Tensor g;
    model->trace(
        kPrompts,
        [&](Trace& t) {
          auto& e = t.token_embeddings();
          e.requires_grad_();
          if (with_sae) t.sae(sae).requires_grad_();
          t.logits().index({0, -1, target}).backward();
          g = e.grad().clone();
        },
        TraceOptions{true});
    return g;
  };
  EXPECT_TRUE(torch::allclose(embedding_grad(true), embedding_grad(false), 1e-6, 1e-7));
}

TEST_F(Sae_, FeatureSteeringDuringGenerationEditsEveryStep) {
  const auto sae = every_architecture()[0];
  GenerateOptions options;
  options.max_new_tokens = 6;
  const torch::Tensor row = sae.weights().W_dec[3];
  auto steered = model->generate(kPrompts, options, at_all_steps([&](Trace& t) {
                                   auto& f = t.sae(sae);
                                   f.index({"...", 3}) += 40.0;
                                 }));
  auto manual = model->generate(kPrompts, options, at_all_steps([&](Trace& t) {
                                  auto& x = t.layers_output[1];
                                  x = x + 40.0 * row;
                                }));
  auto plain = model->generate(kPrompts, options);
  EXPECT_TRUE(torch::equal(steered.ids, manual.ids));
  EXPECT_FALSE(torch::equal(steered.ids, plain.ids)) << "steering by 40 should change the greedy tokens";
  // An unedited splice at every step generates exactly what the model does.
  auto unedited = model->generate(kPrompts, options, at_all_steps([&](Trace& t) { t.sae(sae); }));
  EXPECT_TRUE(torch::equal(unedited.ids, plain.ids));
}

TEST_F(Sae_, SpliceMisuseIsAClearError) {
  const auto sae = every_architecture()[0];
  auto msg = error_of([&] {
    model->trace(kPrompts, [&](Trace& t) {
      auto& f = t.sae(sae);
      f = torch::zeros({1, 2, 3});
      t.logits();
    });
  });
  EXPECT_NE(msg.find("the features must keep their shape"), std::string::npos) << msg;
  msg = error_of([&] {
    model->trace(kPrompts, [&](Trace& t) {
      t.layers_output[2];
      t.sae(sae);
    });
  });
  EXPECT_NE(msg.find("layers.1.output"), std::string::npos) << msg;
  SaeConfig bare = sae.config();
  bare.input_point.reset();
  bare.output_point.reset();
  const Sae pointless(bare, sae.weights());
  msg = error_of([&] { model->trace(kPrompts, [&](Trace& t) { t.sae(pointless); }); });
  EXPECT_NE(msg.find("names no point"), std::string::npos) << msg;
  // The same SAE given a point works there.
  EXPECT_TRUE(torch::equal(model->trace(kPrompts, [&](Trace& t) { t.sae("layers.3.output", pointless); }),
                           model->trace(kPrompts, {})));
}

}  // namespace
}  // namespace nnterp

// Every fixture architecture in bfloat16 and float16 against its own float32 run (must-show of
// docs/dtypes.md): load-time validation passes, the logits agree within the documented per-dtype
// tolerances (top-1 agreement and relative error), and bf16 generation with the KV cache equals
// bf16 recompute. The measured numbers are printed as "[dtype]" lines: docs/architectures.md
// tables them.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <torch/cuda.h>

#include <fstream>

#include "common/edited_fixture.hpp"
#include "common/fixtures.hpp"
#include "nnterp/error.hpp"
#include "nnterp/generate.hpp"

namespace nnterp::testing {
namespace {

namespace fs = std::filesystem;

struct Agreement {
  double top1 = 0;          // share of real positions whose argmax equals float32's
  double relative = 0;      // max |logit - float32 logit| / max |float32 logit| over real positions
};

Agreement compare_logits(const torch::Tensor& low, const torch::Tensor& reference, const torch::Tensor& mask) {
  auto valid = mask.to(torch::kBool);
  auto a = low.to(torch::kFloat64).index({valid}), b = reference.to(torch::kFloat64).index({valid});
  Agreement out;
  out.top1 = a.argmax(-1).eq(b.argmax(-1)).to(torch::kFloat64).mean().item<double>();
  out.relative = (a - b).abs().max().item<double>() / b.abs().max().item<double>();
  return out;
}

// The documented tolerances (docs/dtypes.md): a few units of each dtype's rounding unit on these
// 2-4 layer random models, whose logits are small and close together. Top-1 agreement is
// reported and bounded loosely: near-ties between random logits flip under any rounding.
struct Tolerance {
  torch::ScalarType dtype;
  double relative;
  double top1;
};
constexpr Tolerance kBFloat16{torch::kBFloat16, 0.04, 0.8};
constexpr Tolerance kFloat16{torch::kFloat16, 0.005, 0.9};

class Dtypes : public ::testing::TestWithParam<std::string> {};

torch::Tensor fixture_logits(const StandardizedTransformer& model, const Fixture& fx) {
  torch::NoGradGuard no_grad;
  return model.forward(fx.input_ids, fx.attention_mask).to(torch::kFloat32);
}

TEST_P(Dtypes, LowPrecisionAgreesWithFloat32) {
  Fixture fx(GetParam());
  StandardizedTransformer reference(fx.dir.string());
  const auto expected = fixture_logits(reference, fx);
  std::string line = fmt::format("[dtype] {:<18}", fx.name);
  for (const auto& tol : {kBFloat16, kFloat16}) {
    LoadOptions options;
    options.dtype = tol.dtype;
    StandardizedTransformer model(fx.dir.string(), options);  // validates at load
    ASSERT_EQ(model.dtype(), tol.dtype);
    const auto logits = fixture_logits(model, fx);
    const auto agreement = compare_logits(logits, expected, fx.attention_mask);
    EXPECT_LE(agreement.relative, tol.relative) << fx.name << " " << dtype_name(tol.dtype);
    EXPECT_GE(agreement.top1, tol.top1) << fx.name << " " << dtype_name(tol.dtype);
    line += fmt::format(" | {} top-1 {:5.1f}% rel {:.1e}", dtype_name(tol.dtype), 100 * agreement.top1, agreement.relative);
  }
  fmt::print("{}\n", line);
}

TEST_P(Dtypes, Bfloat16GenerationWithTheCacheEqualsRecompute) {
  Fixture fx(GetParam());
  LoadOptions options;
  options.dtype = torch::kBFloat16;
  StandardizedTransformer model(fx.dir.string(), options);
  GenerateOptions greedy;
  greedy.max_new_tokens = 6;
  greedy.keep_logits = true;
  auto cached = model.generate(TokenBatch{fx.input_ids, fx.attention_mask}, greedy);
  greedy.recompute = true;
  auto recomputed = model.generate(TokenBatch{fx.input_ids, fx.attention_mask}, greedy);
  EXPECT_TRUE(torch::equal(cached.ids, recomputed.ids)) << fx.name;
  // The same bf16 numbers up to the GEMM's row blocking: one bf16 rounding unit of the logits.
  const double scale = recomputed.step_logits.abs().max().item<double>();
  EXPECT_LE((cached.step_logits - recomputed.step_logits).abs().max().item<double>(), scale / 128) << fx.name;
}

INSTANTIATE_TEST_SUITE_P(HF, Dtypes, ::testing::ValuesIn(hf_fixture_names()), [](const auto& info) { return info.param; });

LoadOptions with_dtype(std::optional<torch::ScalarType> dtype) {
  LoadOptions options;
  options.dtype = dtype;
  return options;
}

Error load_error(const std::string& path, const LoadOptions& options) {
  try {
    StandardizedTransformer model(path, options);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "loading " << path << " did not fail";
  return Error(ErrorKind::InvalidArgument, "", "");
}

// The llama fixture re-saved in bfloat16 (as real checkpoints are), config.json saying so.
struct Bfloat16Llama : EditedFixture {
  Bfloat16Llama() : EditedFixture("llama") {
    edit_weights([](auto& tensors) {
      for (auto& [name, t] : tensors) t = t.to(torch::kBFloat16);
    });
    config()["dtype"] = "bfloat16";
  }
};

TEST(DtypeAuto, UsesTheCheckpointsDtypeWithItsWeightsInPlace) {
  Bfloat16Llama fx;
  StandardizedTransformer model(fx.path(), with_dtype(kAutoDType));
  EXPECT_EQ(model.dtype(), torch::kBFloat16);
  const auto& report = model.load_report();
  ASSERT_EQ(report.stored_bytes.size(), 1u);  // every tensor is BF16
  EXPECT_LT(report.stored_bytes.at("BF16"), static_cast<int64_t>(fs::file_size(fx.dir() / "model.safetensors")));
  // Embeddings, o_proj, down_proj, norms and lm_head are the file's own bytes; q|k|v and
  // gate|up are fused copies.
  EXPECT_GT(report.bytes_in_place, 0);
  EXPECT_GT(report.bytes_copied, 0);
  EXPECT_EQ(report.bytes_in_place + report.bytes_copied, report.stored_bytes.at("BF16"));
  // The same numbers as the float32 fixture loaded in bfloat16: one rounding of each weight.
  Fixture f32("llama");
  StandardizedTransformer converted(f32.dir.string(), with_dtype(torch::kBFloat16));
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(model.forward(f32.input_ids, f32.attention_mask), converted.forward(f32.input_ids, f32.attention_mask)));
}

TEST(DtypeAuto, FollowsConfigJsonThenTheTensors) {
  EditedFixture fx("llama");  // float32 tensors
  fx.config()["dtype"] = "float16";
  EXPECT_EQ(StandardizedTransformer(fx.path(), with_dtype(kAutoDType)).dtype(), torch::kFloat16);  // as HF: the config wins
  fx.config().erase("dtype");
  EXPECT_EQ(StandardizedTransformer(fx.path(), with_dtype(kAutoDType)).dtype(), torch::kFloat32);
  fx.config()["torch_dtype"] = "bfloat16";  // the pre-4.56 key
  EXPECT_EQ(StandardizedTransformer(fx.path(), with_dtype(kAutoDType)).dtype(), torch::kBFloat16);
  fx.config()["torch_dtype"] = "float8_e4m3fn";
  Error e = load_error(fx.path(), with_dtype(kAutoDType));
  EXPECT_EQ(e.kind(), ErrorKind::Config);
  EXPECT_NE(e.subject().find("torch_dtype"), std::string::npos) << e.what();
}

TEST(DtypeAuto, ShardsThatDisagreeInDtypeAreAnError) {
  EditedFixture fx("llama");
  auto tensors = fx.weights();
  fs::remove(fx.dir() / "model.safetensors");
  // Shard 1 in bfloat16, shard 2 left in float32, as a half-converted download would be.
  const size_t half = tensors.size() / 2;
  std::vector<std::pair<std::string, torch::Tensor>> first(tensors.begin(), tensors.begin() + half), second(tensors.begin() + half, tensors.end());
  for (auto& [name, t] : first) t = t.to(torch::kBFloat16);
  io::save_safetensors(fx.dir() / "model-00001-of-00002.safetensors", first);
  io::save_safetensors(fx.dir() / "model-00002-of-00002.safetensors", second);
  nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
  for (const auto& [name, t] : first) index["weight_map"][name] = "model-00001-of-00002.safetensors";
  for (const auto& [name, t] : second) index["weight_map"][name] = "model-00002-of-00002.safetensors";
  std::ofstream(fx.dir() / "model.safetensors.index.json") << index.dump();

  Error e = load_error(fx.path(), with_dtype(kAutoDType));
  EXPECT_NE(e.message().find("disagree"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("'" + first.front().first + "'"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("'" + second.front().first + "'"), std::string::npos) << e.what();
  EXPECT_NE(e.hint().find("--dtype"), std::string::npos);
  // An explicit dtype is well defined: every tensor is converted to it.
  EXPECT_EQ(StandardizedTransformer(fx.path(), with_dtype(torch::kBFloat16)).dtype(), torch::kBFloat16);
}

TEST(DtypeOptions, BadValuesNameTheirOption) {
  try {
    parse_dtype_option("bf17", "--dtype");
    ADD_FAILURE();
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "--dtype");
    EXPECT_NE(e.hint().find("bfloat16"), std::string::npos);
  }
  EXPECT_EQ(parse_dtype_option("bf16"), torch::kBFloat16);
  EXPECT_EQ(parse_dtype_option("auto"), kAutoDType);
  for (const char* bad : {"tpu", "cuda:x", ""}) {
    try {
      parse_device_option(bad, "--device");
      ADD_FAILURE() << bad;
    } catch (const Error& e) {
      EXPECT_EQ(e.subject(), "--device") << bad;
    }
  }
  EXPECT_EQ(parse_device_option("cpu"), torch::Device(torch::kCPU));
  // float64 and integer dtypes cannot run a model.
  Error e = load_error((hf_fixture_dir() / "llama").string(), with_dtype(torch::kInt8));
  EXPECT_EQ(e.subject(), "LoadOptions::dtype");
}

TEST(DtypeOptions, CudaFromACpuOnlyLibtorchSaysHowToGetOne) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this libtorch has CUDA: tools/gpu_tests.sh runs the GPU tests";
  for (const char* device : {"cuda", "cuda:1"}) {
    try {
      parse_device_option(device, "--device");
      ADD_FAILURE() << device;
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::Unsupported);
      EXPECT_NE(e.hint().find("CMAKE_PREFIX_PATH"), std::string::npos) << e.what();
    }
  }
  LoadOptions options;
  options.device = torch::Device("cuda");
  EXPECT_EQ(load_error((hf_fixture_dir() / "llama").string(), options).kind(), ErrorKind::Unsupported);
}

// A weight of layer 1 scaled so that its MLP output passes float16's 65504 (but no weight does).
std::string overflowing_llama(EditedFixture& fx) {
  fx.edit_weights([](auto& tensors) {
    for (auto& [name, t] : tensors)
      if (name.find("layers.1.mlp.") != std::string::npos) t = t * 60;
  });
  return fx.path();
}

TEST(Validation, AFloat16OverflowIsReportedWithItsLayer) {
  EditedFixture fx("llama");
  const std::string path = overflowing_llama(fx);
  StandardizedTransformer fp32(path);  // float32 and bfloat16 hold these values
  StandardizedTransformer bf16(path, with_dtype(torch::kBFloat16));
  Error e = load_error(path, with_dtype(torch::kFloat16));
  EXPECT_NE(e.message().find("every activation is finite"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("layers.1.mlp_output holds inf"), std::string::npos) << e.what();
  EXPECT_NE(e.message().find("float16 overflow"), std::string::npos) << e.what();
}

TEST(Validation, CatchesACorruptedWeightInEveryDtype) {
  EditedFixture fx("llama");
  fx.edit_weights([](auto& tensors) {
    for (auto& [name, t] : tensors)
      if (name == "model.layers.2.self_attn.o_proj.weight") t.view(-1)[17] = std::numeric_limits<float>::quiet_NaN();
  });
  const std::string path = fx.path();
  for (auto dtype : {torch::kFloat32, torch::kBFloat16, torch::kFloat16}) {
    Error e = load_error(path, with_dtype(dtype));
    EXPECT_NE(e.message().find("first non-finite point: layers.2.attn_output holds NaN"), std::string::npos)
        << dtype_name(dtype) << ": " << e.what();
  }
}

TEST(Validation, AWeightBeyondFloat16sRangeIsNamed) {
  EditedFixture fx("llama");
  fx.edit_weights([](auto& tensors) {
    for (auto& [name, t] : tensors)
      if (name == "model.layers.0.mlp.down_proj.weight") t.view(-1)[3] = 1e6;
  });
  Error e = load_error(fx.path(), with_dtype(torch::kFloat16));
  EXPECT_EQ(e.subject(), "model.layers.0.mlp.down_proj.weight");
  EXPECT_NE(e.message().find("65504"), std::string::npos) << e.what();
}

TEST(Cuda, ForwardOnTheGpuEqualsTheCpuWithinRounding) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device (Debian's libtorch is CPU-only): tools/gpu_tests.sh runs this on a GPU machine";
  Fixture fx("llama");
  StandardizedTransformer cpu(fx.dir.string());
  LoadOptions options;
  options.device = torch::Device("cuda");
  StandardizedTransformer gpu(fx.dir.string(), options);
  EXPECT_TRUE(gpu.device().is_cuda());
  torch::NoGradGuard no_grad;
  auto on_gpu = gpu.forward(fx.input_ids, fx.attention_mask);  // CPU inputs are moved
  EXPECT_TRUE(on_gpu.is_cuda());
  EXPECT_LE(masked_relative_error(on_gpu.cpu(), cpu.forward(fx.input_ids, fx.attention_mask), fx.attention_mask, false, false), 1e-4);
  GenerateOptions greedy;
  greedy.max_new_tokens = 4;
  EXPECT_TRUE(torch::equal(gpu.generate(TokenBatch{fx.input_ids, fx.attention_mask}, greedy).ids,
                           cpu.generate(TokenBatch{fx.input_ids, fx.attention_mask}, greedy).ids));
}

namespace memory {

int64_t resident_bytes() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6)) * 1024;
  return -1;
}

// A Llama-shaped bf16 checkpoint of ~310 MB (hidden 1024, 8 layers, GQA 16/4, vocab 32000,
// untied): big enough that the weights dominate the process's memory growth.
struct MidSizeBfloat16Checkpoint {
  fs::path dir = fs::temp_directory_path() / ("nnterp_midsize_" + std::to_string(::getpid()));
  int64_t file_bytes = 0, tensor_bytes = 0;
  MidSizeBfloat16Checkpoint() {
    fs::create_directories(dir);
    const int64_t H = 1024, I = 2816, L = 8, V = 32000, heads = 16, kv = 4, hd = H / heads;
    nlohmann::json config = {{"architectures", {"LlamaForCausalLM"}}, {"model_type", "llama"}, {"hidden_size", H},
                             {"intermediate_size", I}, {"num_hidden_layers", L}, {"num_attention_heads", heads},
                             {"num_key_value_heads", kv}, {"vocab_size", V}, {"rms_norm_eps", 1e-5},
                             {"max_position_embeddings", 2048}, {"tie_word_embeddings", false}, {"dtype", "bfloat16"}};
    std::ofstream(dir / "config.json") << config.dump(2);
    torch::manual_seed(0);
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    auto add = [&](const std::string& name, std::vector<int64_t> shape, bool norm = false) {
      auto t = norm ? torch::ones(shape) : torch::randn(shape) * 0.02;
      tensors.emplace_back(name, t.to(torch::kBFloat16));
      tensor_bytes += static_cast<int64_t>(tensors.back().second.nbytes());
    };
    add("model.embed_tokens.weight", {V, H});
    for (int64_t i = 0; i < L; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      add(p + "input_layernorm.weight", {H}, true);
      add(p + "self_attn.q_proj.weight", {heads * hd, H});
      add(p + "self_attn.k_proj.weight", {kv * hd, H});
      add(p + "self_attn.v_proj.weight", {kv * hd, H});
      add(p + "self_attn.o_proj.weight", {H, heads * hd});
      add(p + "post_attention_layernorm.weight", {H}, true);
      add(p + "mlp.gate_proj.weight", {I, H});
      add(p + "mlp.up_proj.weight", {I, H});
      add(p + "mlp.down_proj.weight", {H, I});
    }
    add("model.norm.weight", {H}, true);
    add("lm_head.weight", {V, H});
    io::save_safetensors(dir / "model.safetensors", tensors);
    file_bytes = static_cast<int64_t>(fs::file_size(dir / "model.safetensors"));
  }
  ~MidSizeBfloat16Checkpoint() { fs::remove_all(dir); }
};

TEST(Memory, ABfloat16CheckpointLoadsInPlace) {
  MidSizeBfloat16Checkpoint ckpt;
  const int64_t before = resident_bytes();
  StandardizedTransformer model(ckpt.dir.string(), with_dtype(kAutoDType));  // validation runs a forward
  const int64_t growth = resident_bytes() - before;
  const auto& report = model.load_report();
  fmt::print("[memory] bf16 checkpoint {:.0f} MB: resident growth {:.0f} MB ({:.2f}x), in place {:.0f} MB, copied {:.0f} MB\n",
             ckpt.file_bytes / 1e6, growth / 1e6, double(growth) / ckpt.file_bytes, report.bytes_in_place / 1e6,
             report.bytes_copied / 1e6);
  EXPECT_EQ(model.dtype(), torch::kBFloat16);
  EXPECT_LE(growth, 1.1 * ckpt.file_bytes);
  EXPECT_GT(report.bytes_in_place, ckpt.tensor_bytes / 3);  // embeddings, lm_head, o_proj, down_proj
}

TEST(Memory, Float32GrowthIsTheConvertedSize) {
  MidSizeBfloat16Checkpoint ckpt;
  const int64_t before = resident_bytes();
  StandardizedTransformer model(ckpt.dir.string(), with_dtype(torch::kFloat32));
  const int64_t growth = resident_bytes() - before;
  const double converted = 2.0 * ckpt.tensor_bytes;
  fmt::print("[memory] float32 from a {:.0f} MB bf16 checkpoint: resident growth {:.0f} MB ({:.2f}x the converted size)\n",
             ckpt.file_bytes / 1e6, growth / 1e6, growth / converted);
  EXPECT_EQ(model.load_report().bytes_in_place, 0);
  EXPECT_GE(growth, 0.9 * converted);
  EXPECT_LE(growth, 1.1 * converted);
}

}  // namespace memory

}  // namespace
}  // namespace nnterp::testing

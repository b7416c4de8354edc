// Helpers for tests over the HuggingFace fixtures in tests/data/hf/<arch>/.
#pragma once

#include <torch/types.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nnterp/model.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::testing {

// docs/architectures.md: the parity table (parity_test.cpp) and, after kDtypeSection, the
// low-precision table (dtype_test.cpp); each writer rewrites its own part and keeps the other.
inline std::filesystem::path support_table_path() {
  return std::filesystem::path(NNTERP_TEST_DATA) / ".." / ".." / "docs" / "architectures.md";
}
inline constexpr const char* kDtypeSection = "\n## bfloat16 and float16\n";
// The doc split at kDtypeSection: {the parity part, the dtype section (with its heading) or ""}.
inline std::pair<std::string, std::string> support_table_parts() {
  std::ifstream in(support_table_path());
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const auto at = text.find(kDtypeSection);
  if (at == std::string::npos) return {text, ""};
  return {text.substr(0, at), text.substr(at)};
}

inline std::filesystem::path hf_fixture_dir() { return std::filesystem::path(NNTERP_TEST_DATA) / "hf"; }

// Every architecture folder under tests/data/hf, sorted.
inline std::vector<std::string> hf_fixture_names() {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(hf_fixture_dir()))
    if (e.is_directory() && std::filesystem::exists(e.path() / "expected.safetensors")) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  return names;
}

struct Fixture {
  std::string name;
  std::filesystem::path dir;
  std::shared_ptr<io::SafetensorsFile> expected;
  nlohmann::json meta;
  torch::Tensor input_ids, attention_mask;

  explicit Fixture(const std::string& arch) : name(arch), dir(hf_fixture_dir() / arch) {
    expected = io::SafetensorsFile::open(dir / "expected.safetensors");
    std::ifstream in(dir / "meta.json");
    meta = nlohmann::json::parse(in);
    input_ids = tensor("input_ids");
    attention_mask = tensor("attention_mask");
  }
  torch::Tensor tensor(const std::string& n) const { return expected->tensor(n).clone(); }
  bool has(const std::string& n) const { return expected->contains(n); }
};

// How the fixture tests load a model: on the CPU, or on NNTERP_TEST_DEVICE (tools/gpu_tests.sh
// runs the parity and generation suites with NNTERP_TEST_DEVICE=cuda).
inline LoadOptions fixture_load_options() {
  LoadOptions options;
  if (const char* device = std::getenv("NNTERP_TEST_DEVICE")) options.device = parse_device_option(device, "NNTERP_TEST_DEVICE");
  return options;
}

// max |a - e| over positions whose attention_mask is 1, relative to max(1, max |e|).
// Handles [B,T,...] activations, [B,H,T,S] attention (query rows) and [B*T,E] router logits.
inline double masked_relative_error(const torch::Tensor& actual, const torch::Tensor& expected,
                                    const torch::Tensor& mask, bool attention, bool flat_tokens) {
  auto valid = mask.to(torch::kBool);
  torch::Tensor a = actual.to(torch::kCPU, torch::kFloat64), e = expected.to(torch::kCPU, torch::kFloat64);
  if (attention) {  // [B,H,T,S] → [B,T,H,S], then keep valid query rows
    a = a.transpose(1, 2);
    e = e.transpose(1, 2);
  }
  if (flat_tokens) valid = valid.reshape({-1});
  a = a.index({valid});
  e = e.index({valid});
  double scale = std::max(1.0, e.abs().max().item<double>());
  return (a - e).abs().max().item<double>() / scale;
}

}  // namespace nnterp::testing

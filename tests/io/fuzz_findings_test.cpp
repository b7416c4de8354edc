// Replays the fuzzers' findings (tests/data/fuzz_findings/, see its README.md) in the normal test
// suite. A `config-*` file is raw input of fuzz_config: it is decoded exactly as the fuzzer decodes
// it (fuzz/config_input.hpp: a whole config.json, or edit records over tests/data/hf/*/config.json)
// and must then either build an ArchSpec or throw nnterp::Error, never anything else.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <string>
#include <vector>

#include "config_input.hpp"
#include "io/config_json.hpp"
#include "model/arch.hpp"
#include "nnterp/config.hpp"
#include "nnterp/error.hpp"

namespace fuzz_findings_test {

namespace fs = std::filesystem;

fs::path findings_dir() { return fs::path(NNTERP_TEST_DATA) / "fuzz_findings"; }

const std::vector<nlohmann::json>& base_configs() {
  static const std::vector<nlohmann::json> all = nnterp::fuzz::load_base_configs(fs::path(NNTERP_TEST_DATA) / "hf");
  return all;
}

std::vector<fs::path> findings(const std::string& prefix) {
  std::vector<fs::path> out;
  for (const auto& e : fs::directory_iterator(findings_dir()))
    if (e.is_regular_file() && e.path().filename().string().rfind(prefix, 0) == 0) out.push_back(e.path());
  std::sort(out.begin(), out.end());
  return out;
}

// The config.json fuzz_config checked for the input in `path`; nullopt when the fuzzer skips it.
std::optional<nlohmann::json> decode(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return nnterp::fuzz::decode_config_input(bytes.data(), bytes.size(), base_configs());
}

// arch_from_config on `j`: nullopt when it built an ArchSpec, else the nnterp::Error's message.
// Any other exception fails the test (and is reported with the decoded config).
std::optional<std::string> build_arch(const nlohmann::json& j, const std::string& name) {
  try {
    nnterp::model::arch_from_config(nnterp::ConfigAccess::from_json(j, "config.json"));
    return std::nullopt;
  } catch (const nnterp::Error& e) {
    return std::string(e.what());
  } catch (const std::exception& e) {
    ADD_FAILURE() << name << ": arch_from_config threw a non-nnterp exception: " << e.what()
                  << "\ndecoded config.json:\n" << j.dump(2);
    return std::string("(not an nnterp::Error)");
  }
}

TEST(FuzzFindings, ConfigFindingsAreAnArchOrAnError) {
  const auto files = findings("config-");
  ASSERT_GE(files.size(), 2u) << "no config-* findings in " << findings_dir();
  ASSERT_FALSE(base_configs().empty());
  for (const auto& f : files) {
    SCOPED_TRACE(f.filename().string());
    const std::optional<nlohmann::json> j = decode(f);
    if (!j) continue;  // not JSON in whole-file mode: the fuzzer skips it too
    build_arch(*j, f.filename().string());
    // fuzz_config also reads the generation settings of the same JSON.
    for (const char* key : {"eos_token_id", "pad_token_id"}) {
      try {
        nnterp::ConfigAccess::from_json(*j, "generation_config.json").token_ids(key);
      } catch (const nnterp::Error& e) {
        EXPECT_NE(e.message().find(key), std::string::npos) << e.what();
      } catch (const std::exception& e) {
        ADD_FAILURE() << key << ": a non-nnterp exception: " << e.what() << "\ndecoded:\n" << j->dump(2);
      }
    }
  }
}

// The two inputs that once let nlohmann::json::type_error escape qwen2_moe.cpp (an element of
// mlp_only_layers that is an object, read with a raw get<int64_t>()).
TEST(FuzzFindings, MlpOnlyLayersElementThatIsNotANumberIsAConfigError) {
  for (const char* name : {"config-crash-052251ac11e478661d889b7fd75d8e0b029650f9",
                           "config-crash-32d2e500e69f839cd005945155e484a318328e33"}) {
    SCOPED_TRACE(name);
    ASSERT_TRUE(fs::exists(findings_dir() / name));
    const std::optional<nlohmann::json> j = decode(findings_dir() / name);
    ASSERT_TRUE(j.has_value()) << "the fuzzer's decoding skipped the input";
    const std::optional<std::string> error = build_arch(*j, name);
    ASSERT_TRUE(error.has_value()) << "built an ArchSpec; decoded config.json:\n" << j->dump(2);
    EXPECT_NE(error->find("mlp_only_layers"), std::string::npos)
        << "error: " << *error << "\ndecoded config.json:\n" << j->dump(2)
        << "\n(if a fixture was added to tests/data/hf, edit-record inputs decode against other base configs)";
  }
}

}  // namespace fuzz_findings_test

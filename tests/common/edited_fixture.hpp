// A temporary copy of a fixture folder whose config.json and weights a test may change.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include <gtest/gtest.h>

#include "common/fixtures.hpp"
#include "nnterp/error.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::testing {

// A copy of a fixture folder whose config.json / weights a test may change.
class EditedFixture {
 public:
  explicit EditedFixture(const std::string& arch) {
    namespace fs = std::filesystem;
    dir_ = fs::temp_directory_path() / ("nnterp_edited_" + arch + "_" + std::to_string(::getpid()) + "_" + std::to_string(counter_++));
    fs::create_directories(dir_);
    for (const char* f : {"config.json", "model.safetensors"}) fs::copy_file(hf_fixture_dir() / arch / f, dir_ / f);
    std::ifstream in(dir_ / "config.json");
    config_ = nlohmann::json::parse(in);
  }
  ~EditedFixture() { std::filesystem::remove_all(dir_); }
  nlohmann::json& config() { return config_; }
  std::string path() {
    std::ofstream(dir_ / "config.json") << config_.dump(2);
    return dir_.string();
  }
  const std::filesystem::path& dir() const { return dir_; }
  // The checkpoint's tensors, in file order (copies).
  std::vector<std::pair<std::string, torch::Tensor>> weights() const {
    auto file = io::SafetensorsFile::open(dir_ / "model.safetensors");
    std::vector<std::pair<std::string, torch::Tensor>> tensors;
    for (const auto& t : file->tensors()) tensors.emplace_back(t.name, file->tensor(t.name).clone());
    return tensors;
  }
  // Rewrites model.safetensors through `edit` (name → tensor map).
  template <typename F>
  void edit_weights(F edit) {
    auto tensors = weights();
    edit(tensors);
    io::save_safetensors(dir_ / "model.safetensors", tensors);
  }

 private:
  static inline int counter_ = 0;
  std::filesystem::path dir_;
  nlohmann::json config_;
};

// The Error loading `path` throws (a test failure, and an empty Error, when it loads).
inline Error load_error(const std::string& path, const LoadOptions& options = {}) {
  try {
    StandardizedTransformer model(path, options);
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "loading " << path << " did not fail";
  return Error(ErrorKind::InvalidArgument, "", "");
}

}  // namespace nnterp::testing

// Helpers shared by the methods tests (header-only: the test binary is a unity build).
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>

#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "common/fixtures.hpp"
#include "nnterp/methods.hpp"

namespace nnterp::testing {

// Random prompts of varied lengths (ids 3..vocab-1), left-padded.
inline TokenBatch random_batch(int n, int min_len, int max_len, int64_t vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> len(min_len, max_len);
  std::uniform_int_distribution<int64_t> tok(3, vocab - 1);
  std::vector<std::vector<int64_t>> rows(static_cast<size_t>(n));
  for (auto& r : rows) {
    r.resize(static_cast<size_t>(len(rng)));
    for (auto& t : r) t = tok(rng);
  }
  return left_pad(rows);
}

inline bool close(const torch::Tensor& a, const torch::Tensor& b, double tol = 1e-5) {
  return a.sizes() == b.sizes() && torch::allclose(a.to(torch::kFloat64), b.to(torch::kFloat64), tol, tol);
}

// What a run of the nnterp binary printed (stdout and stderr together) and its exit code.
struct CliResult {
  int code = -1;
  std::string out;
};

// Runs `nnterp ARGS` through the shell with `env` ("VAR=value ...") set for it; a run that hangs
// is killed after 120 s (exit code 124) instead of hanging the test.
inline CliResult nnterp_cli(const std::string& args, const std::string& env = "") {
  CliResult r;
  const std::string cmd = "env " + env + " timeout 120 " + std::string(NNTERP_CLI_PATH) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  // Under AddressSanitizer the first fiber switch of a trace prints a one-line notice that no
  // option turns off ("ASan doesn't fully support makecontext/swapcontext"); it is not output.
  const std::string notice = "makecontext/swapcontext";
  for (size_t at; (at = r.out.find(notice)) != std::string::npos;) {
    const size_t previous_newline = r.out.rfind('\n', at), newline = r.out.find('\n', at);
    const size_t line_start = previous_newline == std::string::npos ? 0 : previous_newline + 1;
    const size_t line_end = newline == std::string::npos ? r.out.size() : newline + 1;
    r.out.erase(line_start, line_end - line_start);
  }
  return r;
}

// A temporary folder, removed at the end of its scope.
struct TempDir {
  std::filesystem::path path;
  explicit TempDir(const std::string& tag) {
    path = std::filesystem::temp_directory_path() / ("nnterp_methods_" + tag + "_" + std::to_string(::getpid()));
    std::filesystem::remove_all(path);
    std::filesystem::create_directories(path);
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
};

// The llama fixture (vocab 1000) with the tiny test tokenizer (tests/data/tiny_tokenizer, 447
// tokens), in a temporary folder that lives as long as the test binary.
inline std::filesystem::path tiny_model_dir() {
  namespace fs = std::filesystem;
  static TempDir dir("tiny_llama");
  static bool made = [] {
    for (const auto& e : fs::directory_iterator(hf_fixture_dir() / "llama"))
      fs::copy_file(e.path(), dir.path / e.path().filename(), fs::copy_options::overwrite_existing);
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      fs::copy_file(fs::path(NNTERP_TEST_DATA) / "tiny_tokenizer" / f, dir.path / f, fs::copy_options::overwrite_existing);
    return true;
  }();
  (void)made;
  return dir.path;
}

}  // namespace nnterp::testing

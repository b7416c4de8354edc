// Helpers shared by the io tests (the io test files are compiled as one unity translation unit).
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nnterp/error.hpp"

namespace io_test {

namespace fs = std::filesystem;

// A fresh folder under the system temp dir, removed with everything in it at the end of the test.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "nnterp_io_XXXXXX").string();
    std::vector<char> buf(pattern.begin(), pattern.end());
    buf.push_back('\0');
    if (!mkdtemp(buf.data())) throw std::runtime_error("mkdtemp failed");
    path_ = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

inline void write_bytes(const fs::path& path, const std::vector<uint8_t>& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(out.good()) << path;
}

inline void write_text(const fs::path& path, const std::string& text) {
  write_bytes(path, std::vector<uint8_t>(text.begin(), text.end()));
}

inline std::vector<uint8_t> read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::vector<uint8_t>((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// A safetensors file from raw header text and data bytes; `header_len` overrides the length field.
inline std::vector<uint8_t> raw_safetensors(const std::string& header, const std::vector<uint8_t>& data = {},
                                            std::optional<uint64_t> header_len = std::nullopt) {
  uint64_t n = header_len ? *header_len : header.size();
  std::vector<uint8_t> out(8);
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>((n >> (8 * i)) & 0xff);
  out.insert(out.end(), header.begin(), header.end());
  out.insert(out.end(), data.begin(), data.end());
  return out;
}

inline std::vector<uint8_t> iota_bytes(size_t n) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(i * 7 + 1);
  return out;
}

// Runs `body`, which must throw nnterp::Error of `kind` whose what() contains every piece of `parts`.
// Returns the error text (empty if the expectation failed).
template <typename F>
std::string expect_error(F&& body, nnterp::ErrorKind kind, std::initializer_list<std::string> parts) {
  try {
    body();
  } catch (const nnterp::Error& e) {
    EXPECT_EQ(static_cast<int>(e.kind()), static_cast<int>(kind))
        << "got kind '" << nnterp::to_string(e.kind()) << "', want '" << nnterp::to_string(kind) << "': " << e.what();
    std::string text = e.what();
    for (const auto& part : parts) EXPECT_NE(text.find(part), std::string::npos) << "'" << part << "' not in: " << text;
    return text;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "threw a non-nnterp exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "did not throw";
  return "";
}

// Sets or unsets environment variables for the duration of a test, restoring them afterwards.
class EnvGuard {
 public:
  explicit EnvGuard(std::initializer_list<const char*> names) {
    for (const char* name : names) {
      const char* v = std::getenv(name);
      saved_[name] = v ? std::optional<std::string>(v) : std::nullopt;
    }
  }
  ~EnvGuard() {
    for (const auto& [name, value] : saved_) {
      if (value) ::setenv(name.c_str(), value->c_str(), 1);
      else ::unsetenv(name.c_str());
    }
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;
  void set(const std::string& name, const std::string& value) {
    ASSERT_TRUE(saved_.count(name)) << name << " is not guarded";
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  void unset(const std::string& name) {
    ASSERT_TRUE(saved_.count(name)) << name << " is not guarded";
    ::unsetenv(name.c_str());
  }

 private:
  std::map<std::string, std::optional<std::string>> saved_;
};

}  // namespace io_test

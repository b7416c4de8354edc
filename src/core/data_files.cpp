#include "core/data_files.hpp"

#include <dlfcn.h>

#include <cstdlib>
#include <vector>

#include "nnterp/error.hpp"

namespace nnterp {

namespace fs = std::filesystem;

namespace {

// The folder of the shared object holding this function (libnnterp.so, wherever it was installed).
fs::path library_dir() {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&library_dir), &info) == 0 || !info.dli_fname) return {};
  std::error_code ec;
  const fs::path lib = fs::weakly_canonical(info.dli_fname, ec);
  return ec ? fs::path() : lib.parent_path();
}

fs::path program_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? fs::path() : exe.parent_path();
}

}  // namespace

fs::path find_data_path(const char* env, const std::string& installed, const std::string& in_source, const std::string& what) {
  if (const char* value = env ? std::getenv(env) : nullptr; value && *value) {
    std::error_code ec;
    if (fs::exists(value, ec)) return value;
    throw Error(ErrorKind::NotFound, what, std::string(env) + " is set to '" + value + "', which does not exist",
                std::string("unset ") + env + " to use nnterp's own copy, or point it at an existing path");
  }
  std::vector<fs::path> candidates;
  for (const fs::path& dir : {library_dir(), program_dir()})
    if (!dir.empty()) candidates.push_back(dir.parent_path() / "share" / "nnterp" / installed);
  candidates.push_back(fs::path(NNTERP_SOURCE_DIR) / in_source);
  std::string tried;
  for (const auto& p : candidates) {
    std::error_code ec;
    if (fs::exists(p, ec)) return p;
    tried += "\n  " + p.string();
  }
  throw Error(ErrorKind::NotFound, what, "not found; looked in:" + tried,
              std::string("set ") + (env ? env : "the path") + " to it (`cmake --install` puts it under <prefix>/share/nnterp)");
}

}  // namespace nnterp

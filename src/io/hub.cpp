#include "nnterp/hub.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>

#include "core/data_files.hpp"
#include "nnterp/error.hpp"

namespace nnterp {

namespace fs = std::filesystem;

std::vector<fs::path> hub_cache_dirs() {
  if (const char* cache = std::getenv("HF_HUB_CACHE"); cache && *cache) return {fs::path(cache)};
  if (const char* cache = std::getenv("HUGGINGFACE_HUB_CACHE"); cache && *cache) return {fs::path(cache)};  // legacy name
  if (const char* home = std::getenv("HF_HOME"); home && *home) return {fs::path(home) / "hub"};
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) return {fs::path(xdg) / "huggingface" / "hub"};
  if (const char* user = std::getenv("HOME"); user && *user) return {fs::path(user) / ".cache" / "huggingface" / "hub"};
  return {};
}

static std::string read_first_line(const fs::path& p) {
  std::ifstream in(p);
  std::string line;
  std::getline(in, line);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

// "name" or "org/name": letters, digits, '-', '_', '.', no "..", not starting with '.' or '-'.
static bool looks_like_repo_id(const std::string& id) {
  if (id.empty() || id.front() == '.' || id.front() == '-' || id.find("..") != std::string::npos) return false;
  int slashes = 0;
  for (char c : id) {
    if (c == '/') ++slashes;
    else if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) return false;
  }
  return slashes <= 1 && id.back() != '/' && id.find("/.") == std::string::npos;
}

// A branch, tag or commit: may hold '/' (refs/pr/1, feature/x) but must stay inside the repo folder.
static bool safe_revision(const std::string& rev) {
  if (rev.empty() || rev.front() == '/' || rev.find("..") != std::string::npos) return false;
  for (char c : rev)
    if (std::iscntrl(static_cast<unsigned char>(c)) || c == '\\') return false;
  return true;
}

fs::path resolve_model(const std::string& id_or_path) {
  std::error_code ec;
  if (!id_or_path.empty() && fs::is_directory(id_or_path, ec)) return fs::path(id_or_path);
  std::vector<std::string> searched = {fs::absolute(id_or_path, ec).string() + " (as a folder)"};
  std::string id = id_or_path, revision = "main";
  if (auto at = id.find('@'); at != std::string::npos) {
    revision = id.substr(at + 1);
    id = id.substr(0, at);
  }
  std::string note;
  if (!looks_like_repo_id(id) || !safe_revision(revision)) {
    note = "; not a hub id (expected name or org/name, optionally @revision), so no cache was searched";
  } else {
    std::string folder = "models";
    for (char c : "--" + id) folder += (c == '/') ? std::string("--") : std::string(1, c);
    auto caches = hub_cache_dirs();
    if (caches.empty()) note = "; no hub cache (HF_HUB_CACHE, HF_HOME and HOME are unset)";
    for (const auto& cache : caches) {
      fs::path repo = cache / folder;
      fs::path ref = repo / "refs" / revision;
      bool has_ref = fs::is_regular_file(ref, ec);
      std::string commit = has_ref ? read_first_line(ref) : revision;  // a commit hash works too
      fs::path snapshot = repo / "snapshots" / commit;
      if (safe_revision(commit) && fs::is_directory(snapshot, ec)) return snapshot;
      if (!fs::is_directory(repo, ec))
        searched.push_back(repo.string() + " (no such folder)");
      else if (has_ref)
        searched.push_back(snapshot.string() + " (named by " + ref.string() + ")");
      else
        searched.push_back(snapshot.string() + " (no " + ref.string() + ")");
    }
  }
  std::string where;
  for (const auto& s : searched) where += "\n    " + s;
  throw Error(ErrorKind::NotFound, id_or_path, "no model folder found; searched:" + where + note,
              "pass a folder holding config.json and *.safetensors, or a hub id present in the local "
              "HuggingFace cache (set HF_HUB_CACHE or HF_HOME); nnterp never downloads");
}

std::filesystem::path default_model_dir() {
  return find_data_path("NNTERP_DEFAULT_MODEL", "models/default", "models/default", "the default model");
}

}  // namespace nnterp

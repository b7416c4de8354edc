// Offline model resolution in a fake HuggingFace cache, and config.json accessors.
#include "io/io_helpers.hpp"
#include "io/config_json.hpp"
#include "nnterp/config.hpp"
#include "nnterp/hub.hpp"

using namespace io_test;
using nnterp::ErrorKind;
using nnterp::resolve_model;

namespace {

const std::initializer_list<const char*> kHubVars = {"HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME",
                                                     "XDG_CACHE_HOME", "HOME"};

// <cache>/models--<org>--<name>/{refs/<ref>, snapshots/<commit>/config.json}; returns the snapshot.
fs::path add_cached_model(const fs::path& cache, const std::string& repo_folder, const std::string& commit,
                          const std::string& ref = "main") {
  fs::path repo = cache / repo_folder;
  fs::path snapshot = repo / "snapshots" / commit;
  fs::create_directories(snapshot);
  write_text(snapshot / "config.json", "{\"model_type\": \"gpt2\"}");
  if (!ref.empty()) write_text(repo / "refs" / ref, commit + "\n");
  return snapshot;
}

// resolve_model(id) must fail with NotFound, its text holding every piece of `parts`.
std::string expect_not_found(const std::string& id, std::initializer_list<std::string> parts) {
  return expect_error([&] { resolve_model(id); }, ErrorKind::NotFound, parts);
}

}  // namespace

// Every HubResolve test: a temp folder, and every hub variable unset so that a test sets exactly
// what it needs.
class HubResolve : public ::testing::Test {
 protected:
  HubResolve() {
    for (const char* name : kHubVars) env.unset(name);
  }
  void use_hub_cache(const fs::path& where) { env.set("HF_HUB_CACHE", where.string()); }
  // "<snapshots/ref> (no <refs/ref>)": what NotFound says of a revision that is neither a ref nor a snapshot.
  std::string no_ref(const std::string& ref) const {
    return (repo / "snapshots" / ref).string() + " (no " + (repo / "refs" / ref).string() + ")";
  }

  TempDir dir;
  EnvGuard env{kHubVars};
  const fs::path cache = dir / "cache";
  const fs::path repo = cache / "models--org--name";  // the cache folder of "org/name"
};

TEST_F(HubResolve, HubCacheVariable) {
  auto snapshot = add_cached_model(cache, "models--org--name", "abc123");
  use_hub_cache(cache);
  EXPECT_EQ(resolve_model("org/name"), snapshot);
  EXPECT_TRUE(fs::exists(resolve_model("org/name") / "config.json"));
}

TEST_F(HubResolve, LegacyHubCacheVariable) {
  auto snapshot = add_cached_model(dir / "legacy", "models--org--name", "abc123");
  env.set("HUGGINGFACE_HUB_CACHE", (dir / "legacy").string());
  EXPECT_EQ(resolve_model("org/name"), snapshot);
}

TEST_F(HubResolve, HfHome) {
  auto snapshot = add_cached_model(dir / "hfhome" / "hub", "models--org--name", "c0ffee");
  env.set("HF_HOME", (dir / "hfhome").string());
  EXPECT_EQ(resolve_model("org/name"), snapshot);
}

TEST_F(HubResolve, XdgCacheHome) {
  auto snapshot = add_cached_model(dir / "xdg" / "huggingface" / "hub", "models--gpt2", "1111");
  env.set("XDG_CACHE_HOME", (dir / "xdg").string());
  EXPECT_EQ(resolve_model("gpt2"), snapshot);
}

TEST_F(HubResolve, HomeCache) {
  auto snapshot = add_cached_model(dir / "user" / ".cache" / "huggingface" / "hub", "models--org--name", "feed");
  env.set("HOME", (dir / "user").string());
  EXPECT_EQ(resolve_model("org/name"), snapshot);
}

TEST_F(HubResolve, Precedence) {
  auto in_hub_cache = add_cached_model(cache, "models--org--name", "aaaa");
  auto in_hf_home = add_cached_model(dir / "hfhome" / "hub", "models--org--name", "bbbb");
  auto in_home = add_cached_model(dir / "user" / ".cache" / "huggingface" / "hub", "models--org--name", "cccc");
  use_hub_cache(cache);
  env.set("HF_HOME", (dir / "hfhome").string());
  env.set("HOME", (dir / "user").string());
  EXPECT_EQ(nnterp::hub_cache_dirs(), std::vector<fs::path>{cache});
  EXPECT_EQ(resolve_model("org/name"), in_hub_cache);
  env.unset("HF_HUB_CACHE");
  EXPECT_EQ(nnterp::hub_cache_dirs(), std::vector<fs::path>{dir / "hfhome" / "hub"});
  EXPECT_EQ(resolve_model("org/name"), in_hf_home);
  env.unset("HF_HOME");
  EXPECT_EQ(resolve_model("org/name"), in_home);
  env.set("HF_HUB_CACHE", "");  // empty counts as unset, as in huggingface_hub
  EXPECT_EQ(resolve_model("org/name"), in_home);
}

TEST_F(HubResolve, OnlyTheFirstApplicableCacheIsSearched) {
  // huggingface_hub does not fall back from HF_HUB_CACHE to ~/.cache: neither does nnterp.
  add_cached_model(dir / "user" / ".cache" / "huggingface" / "hub", "models--org--name", "cccc");
  fs::create_directories(cache);
  use_hub_cache(cache);
  env.set("HOME", (dir / "user").string());
  expect_not_found("org/name", {repo.string() + " (no such folder)"});
}

TEST_F(HubResolve, RefsMainNamesTheSnapshot) {
  auto current = add_cached_model(cache, "models--org--name", "2222");
  add_cached_model(cache, "models--org--name", "1111", "");  // an older snapshot, no ref
  use_hub_cache(cache);
  EXPECT_EQ(resolve_model("org/name"), current);
  write_text(repo / "refs" / "main", "1111");  // no trailing newline
  EXPECT_EQ(resolve_model("org/name"), repo / "snapshots" / "1111");
}

TEST_F(HubResolve, Revisions) {
  auto main = add_cached_model(cache, "models--org--name", "aaaa");
  auto v1 = add_cached_model(cache, "models--org--name", "bbbb", "v1.0");
  auto pr = add_cached_model(cache, "models--org--name", "cccc", "pr/7");  // refs may hold '/'
  auto bare = add_cached_model(cache, "models--org--name", "0123456789abcdef", "");
  use_hub_cache(cache);
  EXPECT_EQ(resolve_model("org/name"), main);
  EXPECT_EQ(resolve_model("org/name@main"), main);
  EXPECT_EQ(resolve_model("org/name@v1.0"), v1);
  EXPECT_EQ(resolve_model("org/name@pr/7"), pr);
  EXPECT_EQ(resolve_model("org/name@0123456789abcdef"), bare);  // a commit hash with no ref
  expect_not_found("org/name@v2", {"org/name@v2", no_ref("v2")});
}

TEST_F(HubResolve, SingleNameIds) {
  auto snapshot = add_cached_model(cache, "models--gpt2", "e7da7f2");
  use_hub_cache(cache);
  EXPECT_EQ(resolve_model("gpt2"), snapshot);
  EXPECT_EQ(resolve_model("gpt2@main"), snapshot);
}

TEST_F(HubResolve, FolderPathReturnedAsIs) {
  fs::create_directories(dir / "my-model");
  EXPECT_EQ(resolve_model((dir / "my-model").string()), dir / "my-model");
  // A local folder wins over a cache entry of the same name (relative paths resolve from the cwd).
  auto cwd = fs::current_path();
  fs::create_directories(dir / "work" / "org" / "name");
  add_cached_model(cache, "models--org--name", "abcd");
  use_hub_cache(cache);
  fs::current_path(dir / "work");
  auto resolved = resolve_model("org/name");
  fs::current_path(cwd);
  EXPECT_EQ(resolved, fs::path("org/name"));
}

TEST_F(HubResolve, NotFoundListsEveryPlaceSearched) {
  fs::create_directories(cache);
  use_hub_cache(cache);
  auto text = expect_not_found("org/missing", {"not found in org/missing: no model folder found; searched:",
                                               (fs::current_path() / "org/missing").string() + " (as a folder)",
                                               (cache / "models--org--missing").string() + " (no such folder)",
                                               "hint: pass a folder holding config.json", "nnterp never downloads"});
  EXPECT_FALSE(text.empty());
}

TEST_F(HubResolve, NoRefAndNoSnapshot) {
  add_cached_model(cache, "models--org--name", "1234", "");  // a snapshot, but no refs/main
  use_hub_cache(cache);
  expect_not_found("org/name", {no_ref("main")});
}

TEST_F(HubResolve, RefPointsAtAMissingSnapshot) {
  write_text(repo / "refs" / "main", "deadbeef\n");
  use_hub_cache(cache);
  expect_not_found("org/name",
                   {(repo / "snapshots" / "deadbeef").string() + " (named by " + (repo / "refs" / "main").string() + ")"});
}

TEST_F(HubResolve, NotAHubId) {
  use_hub_cache(cache);
  for (std::string id : {"a/b/c", "../escape", "org/name@../../x", "/abs/missing", "we ird"})
    expect_not_found(id, {"(as a folder)", "not a hub id (expected name or org/name, optionally @revision), so no cache was searched"});
  // A ref whose content would leave the repo folder is not followed.
  write_text(repo / "refs" / "main", "../../../etc");
  fs::create_directories(dir / "etc");
  expect_not_found("org/name", {"searched:"});
}

TEST_F(HubResolve, NoCacheAtAll) {
  EXPECT_TRUE(nnterp::hub_cache_dirs().empty());
  expect_not_found("org/name", {"no hub cache (HF_HUB_CACHE, HF_HOME and HOME are unset)"});
}

// ---- config.json ---------------------------------------------------------------------------

namespace {

nnterp::Config config_from(const TempDir& dir, const std::string& text) {
  write_text(dir / "config.json", text);
  return nnterp::Config::load(dir / "config.json");
}

}  // namespace

TEST(ConfigAccess, TypedValuesAndAliases) {
  TempDir dir;
  auto c = config_from(dir, R"({"model_type":"gpt2","n_layer":12,"n_embd":768.0,"layer_norm_epsilon":1e-5,
                                "scale_attn_weights":true,"activation_function":"gelu_new","rope_scaling":null})");
  EXPECT_EQ(c.source(), (dir / "config.json").string());
  EXPECT_EQ(c.model_type(), "gpt2");
  EXPECT_EQ(c.integer({"num_hidden_layers", "n_layer"}), 12);
  EXPECT_EQ(c.integer({"hidden_size", "n_embd"}), 768);  // 768.0 is an integer
  EXPECT_DOUBLE_EQ(c.number({"rms_norm_eps", "layer_norm_epsilon"}), 1e-5);
  EXPECT_DOUBLE_EQ(c.number({"n_layer"}), 12.0);  // an integer is a number
  EXPECT_TRUE(c.boolean_or({"scale_attn_weights"}, false));
  EXPECT_EQ(c.string({"hidden_act", "activation_function"}), "gelu_new");
  EXPECT_EQ(c.integer_or({"num_key_value_heads"}, 12), 12);
  EXPECT_EQ(c.string_or({"rope_scaling"}, "none"), "none");  // null counts as absent
  EXPECT_FALSE(c.has("rope_scaling"));
  EXPECT_TRUE(c.has("n_layer"));
  EXPECT_EQ(nnterp::config_find(c, {"nope"}), nullptr);
}

TEST(ConfigAccess, MissingKeyNamesFileAndKeys) {
  TempDir dir;
  auto c = config_from(dir, R"({"model_type":"llama"})");
  auto text = expect_error([&] { c.integer({"num_hidden_layers", "n_layer"}); }, ErrorKind::Config,
                           {(dir / "config.json").string(), "missing 'num_hidden_layers' or 'n_layer' (an integer)"});
  EXPECT_EQ(text, "config error in " + (dir / "config.json").string() +
                      ": missing 'num_hidden_layers' or 'n_layer' (an integer)");
  expect_error([&] { c.number({"rms_norm_eps"}); }, ErrorKind::Config, {"missing 'rms_norm_eps' (a number)"});
  expect_error([&] { c.string({"hidden_act"}); }, ErrorKind::Config, {"missing 'hidden_act' (a string)"});
}

TEST(ConfigAccess, WrongTypeNamesFileAndKey) {
  TempDir dir;
  auto c = config_from(dir, R"({"model_type":"llama","num_hidden_layers":"12","hidden_size":2.5,"tie":"yes",
                                "rms_norm_eps":"1e-6","hidden_act":["silu"],"big":18446744073709551615,"huge":1e300})");
  std::string file = (dir / "config.json").string();
  expect_error([&] { c.integer({"n_layer", "num_hidden_layers"}); }, ErrorKind::Config,
               {file, "'num_hidden_layers' should be an integer, got \"12\""});
  expect_error([&] { c.integer({"hidden_size"}); }, ErrorKind::Config, {file, "'hidden_size' should be an integer, got 2.5"});
  expect_error([&] { c.integer_or({"hidden_size"}, 3); }, ErrorKind::Config, {"'hidden_size' should be an integer"});
  expect_error([&] { c.boolean_or({"tie"}, false); }, ErrorKind::Config, {file, "'tie' should be true or false, got \"yes\""});
  expect_error([&] { c.number({"rms_norm_eps"}); }, ErrorKind::Config, {"'rms_norm_eps' should be a number, got \"1e-6\""});
  expect_error([&] { c.string({"hidden_act"}); }, ErrorKind::Config, {"'hidden_act' should be a string, got [\"silu\"]"});
  expect_error([&] { c.integer({"big"}); }, ErrorKind::Config, {"'big' should be an integer, got 18446744073709551615"});
  expect_error([&] { c.integer({"huge"}); }, ErrorKind::Config, {"'huge' should be an integer"});
}

TEST(ConfigAccess, DtypeOrTorchDtype) {
  TempDir dir;
  EXPECT_EQ(config_from(dir, R"({"dtype":"bfloat16"})").checkpoint_dtype(), std::optional<std::string>("bfloat16"));
  EXPECT_EQ(config_from(dir, R"({"torch_dtype":"float16"})").checkpoint_dtype(), std::optional<std::string>("float16"));
  EXPECT_EQ(config_from(dir, R"({"dtype":"float32","torch_dtype":"float16"})").checkpoint_dtype(),
            std::optional<std::string>("float32"));  // the newer key wins
  EXPECT_EQ(config_from(dir, R"({"dtype":null,"torch_dtype":"float16"})").checkpoint_dtype(),
            std::optional<std::string>("float16"));
  EXPECT_EQ(config_from(dir, R"({})").checkpoint_dtype(), std::nullopt);
  auto c = config_from(dir, R"({"torch_dtype":"float32"})");
  EXPECT_EQ(c.string({"dtype", "torch_dtype"}), "float32");
  expect_error([&] { config_from(dir, R"({"torch_dtype":16})").checkpoint_dtype(); }, ErrorKind::Config,
               {"'torch_dtype' should be a string, got 16"});
}

TEST(ConfigAccess, BadFiles) {
  TempDir dir;
  std::string file = (dir / "config.json").string();
  expect_error([&] { config_from(dir, R"({"model_type": )"); }, ErrorKind::Format, {file, "invalid JSON"});
  expect_error([&] { config_from(dir, R"([1, 2])"); }, ErrorKind::Config, {file, "config is not a JSON object"});
  expect_error([&] { nnterp::Config::load(dir / "absent.json"); }, ErrorKind::Io,
               {(dir / "absent.json").string(), "cannot open", "hint: a model folder must contain config.json"});
  expect_error([&] { nnterp::Config::load(dir.path()); }, ErrorKind::Io, {"cannot open"});
  nnterp::Config empty = nnterp::Config::parse("{}", "inline");
  expect_error([&] { empty.model_type(); }, ErrorKind::Config, {"config error in inline: missing 'model_type'"});
}

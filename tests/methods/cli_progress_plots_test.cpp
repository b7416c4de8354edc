// Progress bars of the CLI (cli/progress.hpp) and the sizing of the HTML plots (nnterp/plot.hpp):
// a command drawing a bar runs its prompts (patches) in chunks, with the same results bit for bit as
// one call; the bar goes to stderr only (NNTERP_PROGRESS=always stands in for a terminal), never
// into --json's stdout, and --quiet turns it off. Plots are sized to their rows and columns, and
// --width / --height set the size; patch and patchscope write --html heatmaps too.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <sstream>

#include "methods/methods_helpers.hpp"
#include "nnterp/error.hpp"
#include "nnterp/plot.hpp"

namespace nnterp::testing {
namespace cli_progress_plots {

namespace fs = std::filesystem;

// A run of `nnterp ARGS` with stdout and stderr apart.
struct SplitRun {
  int code = -1;
  std::string out, err;
};

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

SplitRun run_split(const std::string& args, const std::string& env, const fs::path& dir) {
  SplitRun r;
  const fs::path err = dir / "stderr.txt";
  const std::string cmd = "cd '" + dir.string() + "' && env " + env + " timeout 120 " + std::string(NNTERP_CLI_PATH) + " " + args +
                          " 2>'" + err.string() + "'";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.out.append(buf, n);
  const int status = ::pclose(p);
  r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.err = read_file(err);
  return r;
}

bool parses_as_json(const std::string& s) { return nlohmann::json::accept(s); }

// The figures (data, layout) a page hands to Plotly.newPlot.
nlohmann::json figures_of(const std::string& html) {
  const std::string start = "var figures = ";
  const size_t at = html.find(start);
  if (at == std::string::npos) return nlohmann::json::array();
  const size_t end = html.find(";\n  var pending", at);
  return nlohmann::json::parse(html.substr(at + start.size(), end - at - start.size()));
}

std::string prompts(int n) {
  static const char* countries[] = {"France", "Spain", "Italy", "Germany", "Japan"};
  std::string out;
  for (int i = 0; i < n; ++i) out += std::string(" --prompt 'The capital of ") + countries[i % 5] + (i >= 5 ? " really" : "") + " is'";
  return out;
}

const std::string kPatchPrompts =
    " --prompt 'The capital of France is' --prompt 'The capital of Italy is'"
    " --corrupted-prompt 'The capital of Spain is' --corrupted-prompt 'The capital of Spain is'"
    " --correct ' Paris' --incorrect ' Madrid'";

class CliProgress : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first: " << NNTERP_CLI_PATH;
  }
  TempDir dir{"cli_progress"};

  // Runs `args` (with --json and --out) with a bar and without; both must succeed and agree bit
  // for bit, stdout parse as JSON, and only the first draw a bar counting `unit`.
  void expect_chunked_equals_one_call(const std::string& args, const std::string& unit) {
    SCOPED_TRACE(args);
    auto with = run_split(args + " --json --out with.safetensors", "NNTERP_PROGRESS=always", dir.path);
    auto without = run_split(args + " --json --out without.safetensors", "NNTERP_PROGRESS=never", dir.path);
    ASSERT_EQ(with.code, 0) << with.err;
    ASSERT_EQ(without.code, 0) << without.err;
    EXPECT_TRUE(parses_as_json(with.out)) << with.out.substr(0, 400);
    EXPECT_EQ(with.out, without.out);
    const auto a = read_file(dir.path / "with.safetensors"), b = read_file(dir.path / "without.safetensors");
    EXPECT_FALSE(a.empty());
    EXPECT_TRUE(a == b) << "the chunked run's tensors differ from one call's";
    EXPECT_NE(with.err.find("ETA"), std::string::npos) << with.err;
    EXPECT_NE(with.err.find(" " + unit + " "), std::string::npos) << with.err;
    EXPECT_NE(with.err.find('\r'), std::string::npos) << with.err;
    EXPECT_EQ(without.err.find("ETA"), std::string::npos) << without.err;
  }
};

TEST_F(CliProgress, LogitLensManyPromptsChunkedIsBitIdenticalAndJsonStaysClean) {
  expect_chunked_equals_one_call("logit-lens" + prompts(40) + " --batch-size 4 --inverse --top 3", "prompts");
}

TEST_F(CliProgress, DlaPatchscopePatchChunkedAreBitIdentical) {
  expect_chunked_equals_one_call("dla" + prompts(5) + " --target ' Paris' --batch-size 2", "prompts");
  expect_chunked_equals_one_call("patchscope" + prompts(5) + " --batch-size 2 --top 3", "sources");
  // Rows per pass 8 / 2 prompts = 4 patches, 6 positions a layer: chunks of 2 layers.
  expect_chunked_equals_one_call("patch" + kPatchPrompts + " --batch-size 8", "layers");
  expect_chunked_equals_one_call("patch" + kPatchPrompts + " --point q --batch-size 6", "layers");
  expect_chunked_equals_one_call("patch" + kPatchPrompts + " --point v --all-positions --batch-size 10", "layers");
}

TEST_F(CliProgress, QuietOrNoTerminalDrawsNoBar) {
  for (const std::string& args :
       std::vector<std::string>{"logit-lens" + prompts(5) + " --batch-size 2", "dla" + prompts(5) + " --target ' Paris' --batch-size 2",
                                "patchscope" + prompts(5) + " --batch-size 2", "patch" + kPatchPrompts}) {
    SCOPED_TRACE(args);
    const std::string quiet = args.rfind("logit-lens", 0) == 0 ? " -q" : " --quiet";  // the short form once
    auto r = run_split(args + quiet + " --json", "NNTERP_PROGRESS=always", dir.path);
    ASSERT_EQ(r.code, 0) << r.err;
    EXPECT_TRUE(parses_as_json(r.out));
    EXPECT_EQ(r.err.find("ETA"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find('\r'), std::string::npos) << r.err;
  }
  // Without NNTERP_PROGRESS, stderr (a file here, not a terminal) gets no bar (one check: the
  // commands share progress_wanted).
  auto piped = run_split("logit-lens" + prompts(5) + " --batch-size 2 --json", "NNTERP_PROGRESS=", dir.path);
  ASSERT_EQ(piped.code, 0) << piped.err;
  EXPECT_EQ(piped.err.find("ETA"), std::string::npos) << piped.err;
  // The commands whose bar is the library's take --quiet too.
  for (const char* cmd : {"collect", "run-prompts"}) {
    auto help = nnterp_cli(std::string(cmd) + " --help");
    EXPECT_NE(help.out.find("--quiet"), std::string::npos) << cmd;
  }
}

// ---- plot sizes --------------------------------------------------------------------------------

TEST(PlotSize, TopkHeightIsProportionalToTheLayers) {
  auto probs = torch::softmax(torch::randn({8, 50}), -1);
  TopkPlotOptions o;
  auto four = figures_of(plot_topk_tokens(probs.narrow(0, 0, 4), nullptr, o));
  auto eight = figures_of(plot_topk_tokens(probs, nullptr, o));
  ASSERT_EQ(four.size(), 1u);
  const int h4 = four[0]["layout"]["height"], h8 = eight[0]["layout"]["height"];
  EXPECT_EQ(h4, heatmap_size(4, 5).second);
  EXPECT_EQ(h8 - h4, 4 * (heatmap_size(5, 5).second - heatmap_size(4, 5).second));  // the same height per row
  EXPECT_LT(h4, 400);  // four rows do not take a page
  EXPECT_EQ(four[0]["layout"]["width"], heatmap_size(4, 5).first);
  o.k = 10;
  EXPECT_GT(figures_of(plot_topk_tokens(probs, nullptr, o))[0]["layout"]["width"].get<int>(), heatmap_size(4, 5).first);
  o.width = 900;
  o.height = 640;
  const auto html = plot_topk_tokens(probs, nullptr, o);
  EXPECT_EQ(figures_of(html)[0]["layout"]["width"], 900);
  EXPECT_EQ(figures_of(html)[0]["layout"]["height"], 640);
  EXPECT_NE(html.find("style=\"width:900px;height:640px\""), std::string::npos);
  // Bounds: a huge grid stays within the maximum, a tiny one gets the minimum.
  EXPECT_EQ(heatmap_size(1000, 1000), std::make_pair(1600, 4000));
  EXPECT_EQ(heatmap_size(1, 1), std::make_pair(480, 300));

  std::map<std::string, torch::Tensor> results{{"a", torch::rand({3, 4})}};
  CategoryPlotOptions co;
  co.width = 700;
  co.height = 300;
  auto curves = figures_of(plot_category_curves(results, co));
  EXPECT_EQ(curves[0]["layout"]["width"], 700);
  EXPECT_EQ(curves[0]["layout"]["height"], 300);
}

TEST(PlotSize, CliHtmlIsSizedToTheModelAndTakesWidthAndHeight) {
  if (!fs::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first";
  TempDir dir("cli_plot_size");
  const auto page = (dir.path / "p.html").string();
  auto r = nnterp_cli("logit-lens --prompt 'The capital of France is' --html " + page);
  ASSERT_EQ(r.code, 0) << r.out;
  auto figs = figures_of(read_file(page));
  ASSERT_EQ(figs.size(), 1u);
  EXPECT_EQ(figs[0]["layout"]["height"], heatmap_size(4, 5).second);  // the default model: 4 layers x top 5
  EXPECT_EQ(figs[0]["layout"]["width"], heatmap_size(4, 5).first);
  for (const std::string& cmd : std::vector<std::string>{"logit-lens --prompt 'The capital of France is'", "patchscope --prompt Paris",
                                                         "patch" + kPatchPrompts}) {
    SCOPED_TRACE(cmd);
    r = nnterp_cli(cmd + " --html " + page + " --width 1000 --height 700");
    ASSERT_EQ(r.code, 0) << r.out;
    figs = figures_of(read_file(page));
    ASSERT_FALSE(figs.empty());
    EXPECT_EQ(figs[0]["layout"]["width"], 1000);
    EXPECT_EQ(figs[0]["layout"]["height"], 700);
  }
  std::ofstream(dir.path / "p.jsonl") << R"({"prompt": "The capital of France is", "targets": {"fr": [" Paris"], "es": [" Madrid"]}})"
                                      << "\n";
  r = nnterp_cli("run-prompts --prompts " + (dir.path / "p.jsonl").string() + " --lens logit-lens --html " + page +
                 " --width 800 --height 450");
  ASSERT_EQ(r.code, 0) << r.out;
  figs = figures_of(read_file(page));
  EXPECT_EQ(figs[0]["layout"]["width"], 800);
  EXPECT_EQ(figs[0]["layout"]["height"], 450);
  r = nnterp_cli("logit-lens --prompt x --html " + page + " --height 0");
  EXPECT_EQ(r.code, 2) << r.out;
}

// ---- patch and patchscope heatmaps -------------------------------------------------------------

TEST(PlotPatching, CliPatchHtmlHasTokensOnXAndLayersOnY) {
  if (!fs::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first";
  TempDir dir("cli_plot_patch");
  const auto page = (dir.path / "patch.html").string();
  auto r = nnterp_cli("patch" + kPatchPrompts + " --normalized --html " + page);
  ASSERT_EQ(r.code, 0) << r.out;
  auto figs = figures_of(read_file(page));
  ASSERT_EQ(figs.size(), 1u);
  const auto& trace = figs[0]["data"][0];
  EXPECT_EQ(trace["type"], "heatmap");
  ASSERT_EQ(trace["z"].size(), 4u);  // layers
  const size_t T = trace["z"][0].size();
  const auto& x = figs[0]["layout"]["xaxis"]["ticktext"];
  ASSERT_EQ(x.size(), T);
  bool swapped = false;
  for (const auto& t : x) swapped |= t.get<std::string>().find("France\xE2\x86\x92\xE2\x90\xA3Spain") != std::string::npos;
  EXPECT_TRUE(swapped) << x.dump();
  EXPECT_EQ(figs[0]["layout"]["yaxis"]["ticktext"], nlohmann::json({"layer 0", "layer 1", "layer 2", "layer 3"}));
  EXPECT_EQ(figs[0]["layout"]["height"], heatmap_size(4, static_cast<int64_t>(T)).second);
  EXPECT_EQ(trace["zmid"], 0.0);  // normalized: 0 = the corrupted run
  EXPECT_NE(trace["customdata"][0][0].get<std::string>().find("clean"), std::string::npos);
}

TEST(PlotPatching, HeadRowsAndAllPositions) {
  PatchingResult r;
  r.values = torch::arange(24, torch::kFloat64).reshape({2, 3, 4});
  r.dims = {"layer", "head", "position"};
  r.layers = {0, 2};
  r.positions = {0, 1, 2, 3};
  r.corrupted_metric = 1.5;
  auto figs = figures_of(plot_patching(r, nullptr));
  ASSERT_EQ(figs[0]["data"][0]["z"].size(), 6u);
  EXPECT_EQ(figs[0]["layout"]["yaxis"]["ticktext"][4], "L2 H1");
  EXPECT_EQ(figs[0]["layout"]["height"], heatmap_size(6, 4).second);
  EXPECT_EQ(figs[0]["data"][0]["zmid"], 1.5);
  EXPECT_EQ(figs[0]["data"][0]["z"][5][3], 23.0);

  PatchingResult all;
  all.values = torch::tensor({0.5, 2.0}, torch::kFloat64);
  all.dims = {"layer"};
  all.layers = {1, 3};
  figs = figures_of(plot_patching(all, nullptr));
  EXPECT_EQ(figs[0]["layout"]["xaxis"]["ticktext"], nlohmann::json({"all positions"}));
  EXPECT_EQ(figs[0]["data"][0]["z"], nlohmann::json({{0.5}, {2.0}}));

  all.layers = {1};
  EXPECT_THROW(plot_patching(all, nullptr), Error);
}

TEST(PlotPatchscope, CliPatchscopeHtmlShowsTopTokensPerLayer) {
  if (!fs::exists(NNTERP_CLI_PATH)) GTEST_SKIP() << "build nnterp_cli first";
  TempDir dir("cli_plot_patchscope");
  const auto page = (dir.path / "ps.html").string();
  auto r = nnterp_cli("patchscope --prompt Paris --prompt 'the Eiffel Tower' --top 3 --layers 1-3 --html " + page);
  ASSERT_EQ(r.code, 0) << r.out;
  const auto html = read_file(page);
  auto figs = figures_of(html);
  ASSERT_EQ(figs.size(), 2u);  // one per source
  EXPECT_NE(figs[1]["layout"]["title"]["text"].get<std::string>().find("Patchscope"), std::string::npos);
  EXPECT_NE(figs[1]["layout"]["title"]["text"].get<std::string>().find("the Eiffel Tower"), std::string::npos);
  EXPECT_EQ(figs[0]["data"][0]["y"], nlohmann::json({"layer 1", "layer 2", "layer 3"}));
  EXPECT_EQ(figs[0]["data"][0]["x"].size(), 3u);
  EXPECT_EQ(figs[0]["layout"]["height"], heatmap_size(3, 3).second);
}

}  // namespace cli_progress_plots
}  // namespace nnterp::testing

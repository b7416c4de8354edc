// nnterp's HTML plots in a real browser: headless Chromium (Debian's `chromium`, installed by
// tools/install-deps.sh) opens the pages written by plot_topk_tokens / plot_category_curves;
// the test checks that plotly rendered (the plot's SVG is in the DOM, the page's "rendered" mark
// is set) and that the screenshot is not blank. Skipped, saying so, when /usr/bin/chromium is
// absent. NNTERP_SCREENSHOT_DIR=<dir> keeps the screenshots (docs/ has one).
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "nnterp/methods.hpp"
#include "nnterp/model.hpp"
#include "nnterp/plot.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::testing {
namespace {

namespace fs = std::filesystem;

constexpr const char* kChromium = "/usr/bin/chromium";

fs::path toy_dir() { return fs::path(NNTERP_TEST_DATA).parent_path().parent_path() / "models" / "default"; }

struct Scratch {
  fs::path path;
  explicit Scratch(const std::string& tag) {
    path = fs::temp_directory_path() / ("nnterp_browser_" + tag + "_" + std::to_string(::getpid()));
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~Scratch() { fs::remove_all(path); }
};

std::string read_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// The window a page fits in: its plots' <div>s (style="width:Wpx;height:Hpx", stacked) plus the
// body's margins; 1200 x 800 when it says no size.
std::pair<int, int> page_size(const std::string& html) {
  int width = 0, height = 0;
  const std::string mark = "class=\"nnterp-plot\" style=\"width:";
  for (size_t at = html.find(mark); at != std::string::npos; at = html.find(mark, at + 1)) {
    int w = 0, h = 0;
    if (std::sscanf(html.c_str() + at + mark.size(), "%dpx;height:%dpx", &w, &h) != 2) return {1200, 800};
    width = std::max(width, w);
    height += h + 12;
  }
  return width > 0 ? std::make_pair(width + 24, height + 12) : std::make_pair(1200, 800);
}

// Runs Chromium headless on `html` with `mode` (--dump-dom or --screenshot=...), offline and with
// a fresh profile, in a window of `window` pixels; returns the exit status, stdout in `out`, stderr in `log`.
int chromium(const fs::path& html, const std::string& mode, const fs::path& scratch, std::string& out, std::string& log,
             std::pair<int, int> window = {1200, 800}) {
  const fs::path profile = scratch / ("profile_" + std::to_string(std::rand()));
  fs::create_directories(profile);
  const fs::path out_file = scratch / "chromium.out", err_file = scratch / "chromium.err";
  const std::string cmd = std::string("timeout 180 ") + kChromium +
                          " --headless --no-sandbox --disable-gpu --disable-quic --no-first-run"
                          " --disable-background-networking --disable-component-update --disable-sync"
                          " --disable-dev-shm-usage --hide-scrollbars --window-size=" + std::to_string(window.first) + "," +
                          std::to_string(window.second) + " --virtual-time-budget=15000 --user-data-dir=" +
                          quote(profile.string()) + " " + mode + " " + quote("file://" + html.string()) + " > " +
                          quote(out_file.string()) + " 2> " + quote(err_file.string());
  const int status = std::system(cmd.c_str());
  out = read_file(out_file);
  log = read_file(err_file);
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A minimal PNG decoder for Chromium's screenshots: 8-bit RGB or RGBA, not interlaced.
struct Image {
  uint32_t width = 0, height = 0;
  std::vector<std::array<uint8_t, 3>> pixels;
};

uint32_t be32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }

Image decode_png(const std::string& bytes) {
  const auto* d = reinterpret_cast<const uint8_t*>(bytes.data());
  if (bytes.size() < 8 || bytes.compare(0, 8, "\x89PNG\r\n\x1a\n") != 0) throw std::runtime_error("not a PNG");
  Image img;
  int channels = 0;
  std::string idat;
  for (size_t pos = 8; pos + 8 <= bytes.size();) {
    const uint32_t len = be32(d + pos);
    const std::string type = bytes.substr(pos + 4, 4);
    if (pos + 12 + len > bytes.size()) throw std::runtime_error("truncated PNG chunk " + type);
    const uint8_t* body = d + pos + 8;
    if (type == "IHDR") {
      img.width = be32(body), img.height = be32(body + 4);
      if (body[8] != 8 || (body[9] != 2 && body[9] != 6) || body[12] != 0)
        throw std::runtime_error("unsupported PNG (bit depth " + std::to_string(body[8]) + ", colour type " +
                                 std::to_string(body[9]) + ", interlace " + std::to_string(body[12]) + ")");
      channels = body[9] == 6 ? 4 : 3;
    } else if (type == "IDAT") {
      idat.append(reinterpret_cast<const char*>(body), len);
    } else if (type == "IEND") {
      break;
    }
    pos += 12 + len;
  }
  const size_t stride = size_t(img.width) * channels;
  std::vector<uint8_t> raw((stride + 1) * img.height);
  uLongf raw_len = raw.size();
  if (uncompress(raw.data(), &raw_len, reinterpret_cast<const Bytef*>(idat.data()), idat.size()) != Z_OK ||
      raw_len != raw.size())
    throw std::runtime_error("cannot inflate the PNG data");
  std::vector<uint8_t> prev(stride, 0), cur(stride);
  img.pixels.reserve(size_t(img.width) * img.height);
  for (uint32_t y = 0; y < img.height; ++y) {
    const uint8_t filter = raw[y * (stride + 1)];
    const uint8_t* line = &raw[y * (stride + 1) + 1];
    for (size_t x = 0; x < stride; ++x) {
      const int a = x >= size_t(channels) ? cur[x - channels] : 0, b = prev[x],
                c = x >= size_t(channels) ? prev[x - channels] : 0;
      int v = line[x];
      switch (filter) {
        case 0: break;
        case 1: v += a; break;
        case 2: v += b; break;
        case 3: v += (a + b) / 2; break;
        case 4: {
          const int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
          v += (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
          break;
        }
        default: throw std::runtime_error("bad PNG filter " + std::to_string(filter));
      }
      cur[x] = static_cast<uint8_t>(v);
    }
    for (uint32_t x = 0; x < img.width; ++x)
      img.pixels.push_back({cur[x * channels], cur[x * channels + 1], cur[x * channels + 2]});
    std::swap(prev, cur);
  }
  return img;
}

struct ImageStats {
  double non_background = 0;  // fraction of pixels that differ from the most common colour
  size_t colours = 0;         // distinct colours
};

ImageStats stats(const Image& img) {
  std::map<uint32_t, size_t> counts;
  for (const auto& p : img.pixels) ++counts[(uint32_t(p[0]) << 16) | (uint32_t(p[1]) << 8) | p[2]];
  size_t top = 0;
  for (const auto& [c, n] : counts) top = std::max(top, n);
  return {1.0 - double(top) / double(img.pixels.size()), counts.size()};
}

class Browser : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kChromium))
      GTEST_SKIP() << "SKIPPED: " << kChromium << " is not installed (tools/install-deps.sh installs Debian's chromium); "
                   << "the HTML plots were not checked in a browser";
  }

  // Opens the page twice (DOM, screenshot) and checks both; returns the screenshot's path.
  void check_page(const std::string& html, const std::string& name, const std::vector<std::string>& dom_must_have) {
    Scratch scratch(name);
    const fs::path page = scratch.path / (name + ".html");
    save_html(page, html);
    std::string dom, log;
    ASSERT_EQ(chromium(page, "--dump-dom", scratch.path, dom, log), 0) << log;
    EXPECT_NE(dom.find("data-nnterp-rendered=\"true\""), std::string::npos) << "plotly did not finish rendering\n" << log;
    EXPECT_NE(dom.find("class=\"nnterp-plot"), std::string::npos);
    EXPECT_NE(dom.find("main-svg"), std::string::npos) << "no plotly SVG in the page";
    for (const auto& s : dom_must_have) EXPECT_NE(dom.find(s), std::string::npos) << "'" << s << "' not in the rendered DOM";

    const fs::path shot = scratch.path / (name + ".png");
    std::string out;
    // The window the page's plots fit in (they are sized to their content), so the screenshot is the plots.
    const auto window = page_size(html);
    ASSERT_EQ(chromium(page, "--screenshot=" + quote(shot.string()), scratch.path, out, log, window), 0) << log;
    ASSERT_TRUE(fs::exists(shot)) << "no screenshot\n" << log;
    const auto img = decode_png(read_file(shot));
    EXPECT_EQ(img.width, static_cast<uint32_t>(window.first));
    EXPECT_EQ(img.height, static_cast<uint32_t>(window.second));
    const auto s = stats(img);
    std::cout << name << ": screenshot " << img.width << "x" << img.height << ", " << s.colours << " colours, "
              << 100 * s.non_background << "% non-background pixels" << std::endl;
    EXPECT_GT(s.non_background, 0.05) << "the screenshot is (nearly) blank";
    EXPECT_GT(s.colours, 50u) << "the screenshot is (nearly) blank";
    if (const char* keep = std::getenv("NNTERP_SCREENSHOT_DIR"); keep && *keep)
      fs::copy_file(shot, fs::path(keep) / shot.filename(), fs::copy_options::overwrite_existing);
  }
};

TEST_F(Browser, LogitLensHeatmapRenders) {
  StandardizedTransformer model(toy_dir().string());
  const std::string prompt = "The capital of France is";
  auto probs = logit_lens(model, {prompt});  // [1, layers, vocab]
  TopkPlotOptions o;
  o.subtitles = {"\"" + prompt + "\" (nnterp's toy model)"};
  // The cell texts: plotly writes them into SVG <text> elements ("␣" marks a leading space).
  check_page(plot_topk_tokens(probs, model.tokenizer(), o), "logit_lens_heatmap",
             {"heatmaplayer", "\xE2\x90\xA3" "Paris"});
}

TEST_F(Browser, PatchingHeatmapRenders) {
  StandardizedTransformer model(toy_dir().string());
  const int64_t paris = model.tokenizer()->encode_ids(" Paris", false)[0], madrid = model.tokenizer()->encode_ids(" Madrid", false)[0];
  PatchingOptions po;
  po.metric = logit_diff_metric(paris, madrid);
  auto r = activation_patching(model, {"The capital of France is"}, {"The capital of Spain is"}, po);
  PatchPlotOptions o;
  auto ids = [&](const std::string& p) { return model.tokenizer()->encode_ids(p, true); };
  o.clean_tokens = ids("The capital of France is");
  o.corrupted_tokens = ids("The capital of Spain is");
  o.normalized = true;
  check_page(plot_patching(r, model.tokenizer(), o), "patching_heatmap", {"heatmaplayer", "layer 3", "Spain"});
}

TEST_F(Browser, CategoryCurvesRender) {
  StandardizedTransformer model(toy_dir().string());
  std::vector<Prompt> prompts;
  for (const char* c : {"France", "Spain", "Italy", "Germany"})
    prompts.push_back(Prompt::from_strings(std::string("The capital of ") + c + " is",
                                           {{"Paris", {"Paris"}}, {"Madrid", {"Madrid"}}, {"Rome", {"Rome"}}}, model));
  RunPromptsOptions ro;
  ro.probs = logit_lens_fn();
  ro.progress = false;
  auto results = run_prompts(model, prompts, ro);
  check_page(plot_category_curves(results), "category_curves", {"scatterlayer", "Madrid"});
}

}  // namespace
}  // namespace nnterp::testing

// Plots as self-contained HTML pages (plotly.js inlined, so they open offline), and the same
// top-k information as a terminal table.
//
//   auto probs = nnterp::logit_lens(model, {"The capital of France is"});   // [1, layers, vocab]
//   nnterp::save_html("lens.html", nnterp::plot_topk_tokens(probs, model.tokenizer()));
//
//   nnterp::RunPromptsOptions ro;
//   ro.probs = nnterp::logit_lens_fn();
//   auto results = nnterp::run_prompts(model, prompts, ro);               // {category: [N, layers]}
//   nnterp::save_html("curves.html", nnterp::plot_category_curves(results));
//
// plotly.js is the npm package plotly.js-dist-min, vendored as assets/plotly.min.js (MIT, see
// assets/README.md); it is read at run time from $NNTERP_PLOTLY_JS, else from the source tree
// nnterp was built from. Every page marks <body data-nnterp-rendered="true"> once all its plots
// have rendered (the browser test waits for it).
#pragma once

#include <torch/types.h>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

namespace nnterp {

class Tokenizer;

struct TopkPlotOptions {
  int64_t k = 5;                       // tokens per layer (columns)
  std::string title = "Logit lens: top tokens per layer";
  std::vector<int> layers;             // the layer of each row; default 0..L-1
  std::vector<std::string> subtitles;  // one per prompt (e.g. the prompt text); default "prompt b"
  std::string colorscale = "Blues";    // any plotly colorscale name
  bool dark_mode = false;
};

// A layers × top-k heatmap of `probs`, [layers, vocab] or [batch, layers, vocab] (one plot per
// prompt): each cell shows the token of that rank at that layer, coloured by its probability;
// hovering shows the token, its id, the layer and the probability. Without a tokenizer tokens
// show as "#id". Returns a complete HTML document.
std::string plot_topk_tokens(const torch::Tensor& probs, const Tokenizer* tokenizer, const TopkPlotOptions& options = {});

struct CategoryPlotOptions {
  std::string title = "Probability of each target category across layers";
  std::vector<int> layers;             // the x value of each column; default 0..L-1
  std::string x_title = "layer";
  std::string y_title = "probability";
  bool band = true;                    // shade mean ± one standard deviation over the prompts
  bool dark_mode = false;
};

// One curve per category: the mean over prompts of results[category] ([N, layers], as
// run_prompts returns with a logit-lens probs function; [N] or [N, 1] gives single points).
// Hovering shows the mean, the standard deviation and N. Returns a complete HTML document.
std::string plot_category_curves(const std::map<std::string, torch::Tensor>& results,
                                 const CategoryPlotOptions& options = {});

// The top-k tokens of each layer as an aligned text table:
//   layer  top 1          top 2          ...
//      0   " the"  0.214  " a"    0.101  ...
// probs: [layers, vocab]. Tokens are JSON-quoted so spaces and newlines are visible.
std::string topk_table(const torch::Tensor& probs, const Tokenizer* tokenizer, int64_t k = 5,
                       const std::vector<int>& layers = {});

// Writes `html` to `path` (throws Error(Io) naming the path).
void save_html(const std::filesystem::path& path, const std::string& html);

// Where plotly.min.js is read from, and its content (read once). Throws Error(Io) listing the
// places it looked when it is nowhere.
std::filesystem::path plotly_js_path();
const std::string& plotly_js();

}  // namespace nnterp

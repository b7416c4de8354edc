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
//   auto grid = nnterp::activation_patching(model, clean, corrupted, patching_options);
//   nnterp::save_html("patch.html", nnterp::plot_patching(grid, model.tokenizer()));
//
// Every plot is sized to its content (heatmap_size), or to the options' width / height.
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
#include <utility>
#include <vector>

#include "nnterp/patching.hpp"

namespace nnterp {

class Tokenizer;

struct TopkPlotOptions {
  int64_t k = 5;                       // tokens per layer (columns)
  std::string title = "Logit lens: top tokens per layer";
  std::vector<int> layers;             // the layer of each row; default 0..L-1
  // Rows that are not layers (e.g. "without steering" / "with steering"): one distinct label per
  // row, and the axis title; empty: "layer N" rows under "layer".
  std::vector<std::string> row_labels;
  std::string row_title = "layer";
  std::vector<std::string> subtitles;  // one per prompt (e.g. the prompt text); default "prompt b"
  std::string colorscale = "Blues";    // any plotly colorscale name
  bool dark_mode = false;
  int width = 0, height = 0;           // each plot's size in pixels; 0: sized to its rows and columns
};

// A layers × top-k heatmap of `probs`, [layers, vocab] or [batch, layers, vocab] (one plot per
// prompt): each cell shows the token of that rank at that layer, coloured by its probability;
// hovering shows the token, its id, the layer and the probability. Without a tokenizer tokens
// show as "#id". Each plot is sized to its content (see heatmap_size). Returns a complete HTML document.
std::string plot_topk_tokens(const torch::Tensor& probs, const Tokenizer* tokenizer, const TopkPlotOptions& options = {});

struct CategoryPlotOptions {
  std::string title = "Probability of each target category across layers";
  std::vector<int> layers;             // the x value of each column; default 0..L-1
  std::string x_title = "layer";
  std::string y_title = "probability";
  bool band = true;                    // shade mean ± one standard deviation over the prompts
  bool dark_mode = false;
  int width = 0, height = 0;           // pixels; 0: width from the number of layers, height 520
};

// One curve per category: the mean over prompts of results[category] ([N, layers], as
// run_prompts returns with a logit-lens probs function; [N] or [N, 1] gives single points).
// Hovering shows the mean, the standard deviation and N. Returns a complete HTML document.
std::string plot_category_curves(const std::map<std::string, torch::Tensor>& results,
                                 const CategoryPlotOptions& options = {});

struct PatchPlotOptions {
  std::string title = "Activation patching";
  bool normalized = false;             // plot result.normalized(): 1 = clean, 0 = corrupted
  // The tokens of each column of the batch (the first prompt's), clean and corrupted, for the x
  // axis labels and hover: every position of the batch (result.positions index them); empty: none.
  std::vector<int64_t> clean_tokens, corrupted_tokens;
  std::string colorscale = "RdBu";     // diverging, centred on the corrupted metric (0 when normalized)
  bool dark_mode = false;
  int width = 0, height = 0;           // pixels; 0: sized to the rows and columns
};

// The patching grid as a heatmap: one row per layer (per layer × head for head points), one
// column per patched position (labelled with its token; one column when every position was patched
// at once); hovering shows the layer, head, position, clean and corrupted tokens and the value.
// `result.values` is [layers (, heads) (, positions)] as activation_patching returns it.
std::string plot_patching(const PatchingResult& result, const Tokenizer* tokenizer, const PatchPlotOptions& options = {});

struct TokenFeaturePlotOptions {
  std::string title = "SAE features per token";
  std::vector<std::string> subtitles;  // one per prompt (e.g. the prompt text); default "prompt b"
  std::string value_title = "activation";
  std::string colorscale = "Blues";    // any plotly colorscale name (zero is white for the sequential ones)
  bool dark_mode = false;
  int width = 0, height = 0;           // each plot's size in pixels; 0: sized to its rows and columns
};

// Tokens × features heatmaps (an SAE's feature activations), one per prompt: values[b] is
// [tokens, features] (the prompt's tokens only), rows labelled by tokens[b] (spaces made visible),
// columns by "f<id>" from features[b]; hovering shows the token, its position, the feature and
// the value. Returns a complete HTML document.
std::string plot_token_features(const std::vector<torch::Tensor>& values, const std::vector<std::vector<std::string>>& tokens,
                                const std::vector<std::vector<int64_t>>& features, const TokenFeaturePlotOptions& options = {});

// The size in pixels a heatmap of `rows` × `columns` cells gets when options give none:
// width = clamp(200 + 110 × columns, 480, 1600), height = clamp(190 + 40 × rows, 300, 4000).
std::pair<int, int> heatmap_size(int64_t rows, int64_t columns);

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

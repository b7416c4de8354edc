// Self-contained HTML plots with plotly.js inlined (see include/nnterp/plot.hpp).
#include "nnterp/plot.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/data_files.hpp"
#include "nnterp/error.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp {

namespace fs = std::filesystem;
using nlohmann::json;

namespace plot_detail {  // named, not anonymous: the library is a unity build

// JSON for a <script> element: no "</" (which could close it) and valid UTF-8 (bytes of a
// partial character in a token are replaced).
std::string script_json(const json& j) {
  std::string s = j.dump(-1, ' ', false, json::error_handler_t::replace);
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '<' && i + 1 < s.size() && (s[i + 1] == '/' || s[i + 1] == '!')) {
      out += "\\u003c";
      continue;
    }
    out += s[i];
  }
  return out;
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '&': out += "&amp;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// Text shown by plotly, which renders a subset of HTML (<br>, <b>, ...): only the angle brackets
// are escaped (plotly shows other entities such as &quot; literally).
std::string plotly_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else out += c;
  }
  return out;
}

// Text with spaces and control characters made visible.
std::string visible_text(const std::string& t) {
  std::string out;
  for (char c : t) {
    switch (c) {
      case ' ': out += "\xE2\x90\xA3"; break;  // ␣
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default: out += c;
    }
  }
  return out;
}

// How a token reads in a cell: its text with spaces and control characters made visible.
std::string token_text(const Tokenizer* tok, int64_t id) {
  if (!tok) return "#" + std::to_string(id);
  std::string t = tok->decode({id}, false);
  if (t.empty()) t = tok->id_to_token(id);
  return visible_text(t);
}

// The token JSON-quoted (for tables and hover labels): " Paris" → "\" Paris\"".
std::string token_quoted(const Tokenizer* tok, int64_t id) {
  if (!tok) return "#" + std::to_string(id);
  return json(tok->decode({id}, false)).dump(-1, ' ', false, json::error_handler_t::replace);
}

json base_layout(const std::string& title, bool dark) {
  json layout = {{"title", {{"text", title}}},
                 {"margin", {{"l", 80}, {"r", 40}, {"t", 80}, {"b", 60}}},
                 {"hoverlabel", {{"font", {{"family", "monospace"}}}}}};
  if (dark) {
    layout["paper_bgcolor"] = "#111";
    layout["plot_bgcolor"] = "#111";
    layout["font"] = {{"color", "#eee"}};
  }
  return layout;
}

struct Figure {
  json data, layout;
  int width, height;  // pixels (also set in the layout)
};

// A figure of the given size: the layout says it, and so does its <div>.
Figure sized_figure(json data, json layout, int width, int height) {
  layout["width"] = width;
  layout["height"] = height;
  layout["autosize"] = false;
  return Figure{std::move(data), std::move(layout), width, height};
}

std::string page(const std::string& title, const std::vector<Figure>& figures, bool dark) {
  json figs = json::array();
  std::string divs;
  for (size_t i = 0; i < figures.size(); ++i) {
    const std::string id = "nnterp-plot-" + std::to_string(i);
    figs.push_back({{"id", id}, {"data", figures[i].data}, {"layout", figures[i].layout}});
    divs += fmt::format("<div id=\"{}\" class=\"nnterp-plot\" style=\"width:{}px;height:{}px\"></div>\n", id,
                        figures[i].width, figures[i].height);
  }
  std::string html;
  html.reserve(plotly_js().size() + 4096);
  html += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  html += "<meta name=\"generator\" content=\"nnterp\">\n<title>" + html_escape(title) + "</title>\n";
  html += fmt::format("<style>body{{font-family:sans-serif;margin:12px;background:{};color:{}}}"
                      ".nnterp-plot{{margin-bottom:12px}}</style>\n",
                      dark ? "#111" : "#fff", dark ? "#eee" : "#000");
  html += "<script type=\"text/javascript\">/* plotly.js (npm plotly.js-dist-min), MIT licence */\n";
  html += plotly_js();
  html += "\n</script>\n</head>\n<body>\n";
  html += divs;
  html += "<script type=\"text/javascript\">\n(function () {\n  var figures = ";
  html += script_json(figs);
  html += ";\n"
          "  var pending = figures.length;\n"
          "  figures.forEach(function (f) {\n"
          "    Plotly.newPlot(f.id, f.data, f.layout, {displaylogo: false}).then(function () {\n"
          "      if (--pending === 0) document.body.setAttribute('data-nnterp-rendered', 'true');\n"
          "    });\n"
          "  });\n"
          "})();\n</script>\n</body>\n</html>\n";
  return html;
}

std::vector<int> default_layers(const std::vector<int>& given, int64_t n, const char* what) {
  if (given.empty()) {
    std::vector<int> out(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out[static_cast<size_t>(i)] = static_cast<int>(i);
    return out;
  }
  if (static_cast<int64_t>(given.size()) != n)
    throw Error(ErrorKind::InvalidArgument, what,
                "has " + std::to_string(given.size()) + " layers but the probabilities have " + std::to_string(n) + " rows");
  return given;
}

}  // namespace plot_detail

using namespace plot_detail;

fs::path plotly_js_path() {
  return find_data_path("NNTERP_PLOTLY_JS", "plotly.min.js", "assets/plotly.min.js", "plotly.min.js");
}

const std::string& plotly_js() {
  static std::mutex mutex;
  static std::string content;
  std::lock_guard<std::mutex> lock(mutex);
  if (content.empty()) {
    const auto path = plotly_js_path();
    std::ifstream f(path, std::ios::binary);
    std::ostringstream ss;
    ss << f.rdbuf();
    if (!f || ss.str().empty()) throw Error(ErrorKind::Io, path.string(), "cannot read plotly.js");
    content = ss.str();
  }
  return content;
}

void save_html(const fs::path& path, const std::string& html) {
  std::ofstream f(path, std::ios::binary);
  if (!f) throw Error(ErrorKind::Io, path.string(), "cannot open for writing");
  f << html;
  f.close();
  if (!f) throw Error(ErrorKind::Io, path.string(), "write failed");
}

std::string plot_topk_tokens(const torch::Tensor& probs_in, const Tokenizer* tokenizer, const TopkPlotOptions& options) {
  if (!probs_in.defined() || (probs_in.dim() != 2 && probs_in.dim() != 3))
    throw Error(ErrorKind::Shape, "probs", "expected [layers, vocab] or [batch, layers, vocab]");
  const auto probs = (probs_in.dim() == 2 ? probs_in.unsqueeze(0) : probs_in).detach().to(torch::kCPU, torch::kFloat32);
  const int64_t B = probs.size(0), L = probs.size(1), V = probs.size(2);
  if (options.k < 1) throw Error(ErrorKind::InvalidArgument, "k", "must be at least 1");
  const int64_t k = std::min(options.k, V);
  const auto layers = default_layers(options.layers, L, "layers");
  if (!options.subtitles.empty() && static_cast<int64_t>(options.subtitles.size()) != B)
    throw Error(ErrorKind::InvalidArgument, "subtitles",
                "expected one per prompt (" + std::to_string(B) + "), got " + std::to_string(options.subtitles.size()));

  auto [values, ids] = probs.topk(k, -1);  // [B, L, k]
  auto va = values.accessor<float, 3>();
  auto ia = ids.accessor<int64_t, 3>();
  json x = json::array();
  for (int64_t r = 0; r < k; ++r) x.push_back("top " + std::to_string(r + 1));
  if (!options.row_labels.empty() && static_cast<int64_t>(options.row_labels.size()) != L)
    throw Error(ErrorKind::InvalidArgument, "row_labels",
                "expected one per row (" + std::to_string(L) + "), got " + std::to_string(options.row_labels.size()));
  std::vector<std::string> rows = options.row_labels;
  if (rows.empty()) {
    for (int l : layers) rows.push_back("layer " + std::to_string(l));
  }
  json y = json::array();
  for (const auto& row : rows) y.push_back(plotly_escape(row));

  std::vector<Figure> figures;
  for (int64_t b = 0; b < B; ++b) {
    json z = json::array(), text = json::array(), hover = json::array();
    for (int64_t l = 0; l < L; ++l) {
      json zr = json::array(), tr = json::array(), hr = json::array();
      for (int64_t r = 0; r < k; ++r) {
        const int64_t id = ia[b][l][r];
        const double p = va[b][l][r];
        zr.push_back(std::round(p * 1e6) / 1e6);
        tr.push_back(plotly_escape(token_text(tokenizer, id)));
        hr.push_back(fmt::format("token {} (id {})<br>{}, rank {}<br>p = {:.4f}", plotly_escape(token_quoted(tokenizer, id)),
                                 id, plotly_escape(rows[static_cast<size_t>(l)]), r + 1, p));
      }
      z.push_back(zr), text.push_back(tr), hover.push_back(hr);
    }
    json trace = {{"type", "heatmap"},
                  {"x", x},
                  {"y", y},
                  {"z", z},
                  {"zmin", 0.0},
                  {"zmax", 1.0},
                  {"text", text},
                  {"texttemplate", "%{text}"},
                  {"textfont", {{"size", 13}}},
                  {"customdata", hover},
                  {"hovertemplate", "%{customdata}<extra></extra>"},
                  {"colorscale", options.colorscale},
                  {"reversescale", options.colorscale == "Blues" || options.colorscale == "Greens" ||
                                       options.colorscale == "Reds" || options.colorscale == "Greys"},
                  {"colorbar", {{"title", {{"text", "probability"}}}}},
                  {"xgap", 2},
                  {"ygap", 2}};
    std::string title = options.title;
    const std::string sub = options.subtitles.empty() ? (B > 1 ? "prompt " + std::to_string(b) : "")
                                                      : options.subtitles[static_cast<size_t>(b)];
    if (!sub.empty()) title += "<br><sub>" + plotly_escape(sub) + "</sub>";
    json layout = base_layout(title, options.dark_mode);
    layout["xaxis"] = {{"side", "top"}, {"fixedrange", true}};
    layout["yaxis"] = {{"title", {{"text", plotly_escape(options.row_title)}}}, {"fixedrange", true}, {"autorange", true}};
    layout["margin"]["t"] = 110;
    const auto [w, h] = heatmap_size(L, k);
    figures.push_back(sized_figure(json::array({trace}), layout, options.width > 0 ? options.width : w,
                                   options.height > 0 ? options.height : h));
  }
  return page(options.title, figures, options.dark_mode);
}

std::string plot_category_curves(const std::map<std::string, torch::Tensor>& results, const CategoryPlotOptions& options) {
  if (results.empty()) throw Error(ErrorKind::InvalidArgument, "results", "no category to plot");
  static const char* palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
  int64_t L = -1;
  json data = json::array();
  size_t c = 0;
  std::vector<int> layers;
  for (const auto& [category, t] : results) {
    if (!t.defined() || t.dim() < 1 || t.dim() > 2 || t.size(0) == 0)
      throw Error(ErrorKind::Shape, "results['" + category + "']", "expected [prompts] or [prompts, layers]");
    auto r = (t.dim() == 1 ? t.unsqueeze(1) : t).detach().to(torch::kCPU, torch::kFloat64);
    if (L < 0) {
      L = r.size(1);
      layers = default_layers(options.layers, L, "layers");
    } else if (r.size(1) != L) {
      throw Error(ErrorKind::Shape, "results['" + category + "']",
                  "has " + std::to_string(r.size(1)) + " layers, the other categories " + std::to_string(L));
    }
    const int64_t N = r.size(0);
    auto mean = r.mean(0);
    auto sd = N > 1 ? r.std(0, /*unbiased=*/true) : torch::zeros_like(mean);
    json x = json::array(), y = json::array(), hi = json::array(), lo = json::array(), custom = json::array();
    for (int64_t l = 0; l < L; ++l) {
      const double m = mean[l].item<double>(), s = sd[l].item<double>();
      x.push_back(layers[static_cast<size_t>(l)]);
      y.push_back(m);
      hi.push_back(std::min(1.0, m + s));
      lo.push_back(std::max(0.0, m - s));
      custom.push_back(json::array({s, N}));
    }
    const std::string colour = palette[c++ % 10];
    if (options.band && N > 1) {
      data.push_back({{"type", "scatter"}, {"x", x}, {"y", lo}, {"mode", "lines"}, {"line", {{"width", 0}}},
                      {"hoverinfo", "skip"}, {"showlegend", false}, {"legendgroup", category}});
      data.push_back({{"type", "scatter"}, {"x", x}, {"y", hi}, {"mode", "lines"}, {"line", {{"width", 0}}},
                      {"fill", "tonexty"}, {"fillcolor", colour + "33"}, {"hoverinfo", "skip"}, {"showlegend", false},
                      {"legendgroup", category}});
    }
    data.push_back({{"type", "scatter"},
                    {"x", x},
                    {"y", y},
                    {"mode", L > 1 ? "lines+markers" : "markers"},
                    {"name", category},
                    {"legendgroup", category},
                    {"line", {{"color", colour}, {"width", 3}}},
                    {"marker", {{"color", colour}, {"size", 7}}},
                    {"customdata", custom},
                    {"hovertemplate", plotly_escape(category) + "<br>" + plotly_escape(options.x_title) +
                                          " %{x}<br>mean p = %{y:.4f}<br>sd = %{customdata[0]:.4f}, n = %{customdata[1]}<extra></extra>"}});
  }
  json layout = base_layout(options.title, options.dark_mode);
  layout["xaxis"] = {{"title", {{"text", options.x_title}}}, {"dtick", 1}};
  layout["yaxis"] = {{"title", {{"text", options.y_title}}}, {"rangemode", "tozero"}};
  layout["hovermode"] = "closest";
  const int width = options.width > 0 ? options.width : static_cast<int>(std::clamp<int64_t>(360 + 30 * L, 640, 1400));
  return page(options.title, {sized_figure(data, layout, width, options.height > 0 ? options.height : 520)}, options.dark_mode);
}

std::pair<int, int> heatmap_size(int64_t rows, int64_t columns) {
  return {static_cast<int>(std::clamp<int64_t>(200 + 110 * columns, 480, 1600)),
          static_cast<int>(std::clamp<int64_t>(190 + 40 * rows, 300, 4000))};
}

std::string plot_patching(const PatchingResult& result, const Tokenizer* tokenizer, const PatchPlotOptions& options) {
  if (!result.values.defined() || result.values.dim() < 1 || result.values.dim() != static_cast<int64_t>(result.dims.size()))
    throw Error(ErrorKind::Shape, "result.values", "expected [layers (, heads) (, positions)] matching result.dims");
  const bool heads = std::find(result.dims.begin(), result.dims.end(), "head") != result.dims.end();
  const bool per_position = result.dims.back() == "position";
  const auto values = (options.normalized ? result.normalized() : result.values).detach().to(torch::kCPU, torch::kFloat64);
  const int64_t L = values.size(0), H = heads ? values.size(1) : 1;
  const int64_t C = per_position ? values.size(values.dim() - 1) : 1;
  if (static_cast<int64_t>(result.layers.size()) != L)
    throw Error(ErrorKind::Shape, "result.layers", "has " + std::to_string(result.layers.size()) + " layers, the values " + std::to_string(L));
  if (per_position && static_cast<int64_t>(result.positions.size()) != C)
    throw Error(ErrorKind::Shape, "result.positions", "has " + std::to_string(result.positions.size()) + " positions, the values " + std::to_string(C));
  const auto grid = values.reshape({L * H, C}).contiguous();
  auto ga = grid.accessor<double, 2>();
  auto token_at = [&](const std::vector<int64_t>& ids, int64_t p) -> std::string {
    return p >= 0 && p < static_cast<int64_t>(ids.size()) ? token_quoted(tokenizer, ids[static_cast<size_t>(p)]) : "";
  };
  json x = json::array(), ticks = json::array();
  for (int64_t c = 0; c < C; ++c) {
    x.push_back(c);
    if (!per_position) {
      ticks.push_back("all positions");
      continue;
    }
    const int64_t p = result.positions[static_cast<size_t>(c)];
    const auto& ids = options.clean_tokens;
    std::string label = p < static_cast<int64_t>(ids.size()) ? plotly_escape(token_text(tokenizer, ids[static_cast<size_t>(p)])) : "";
    if (p < static_cast<int64_t>(options.corrupted_tokens.size()) && p < static_cast<int64_t>(ids.size()) &&
        options.corrupted_tokens[static_cast<size_t>(p)] != ids[static_cast<size_t>(p)])
      label += "→" + plotly_escape(token_text(tokenizer, options.corrupted_tokens[static_cast<size_t>(p)]));
    ticks.push_back(label + "<br>" + std::to_string(p));
  }
  json y = json::array(), yticks = json::array(), z = json::array(), hover = json::array();
  for (int64_t r = 0; r < L * H; ++r) {
    const int layer = result.layers[static_cast<size_t>(r / H)];
    y.push_back(r);
    yticks.push_back(heads ? fmt::format("L{} H{}", layer, r % H) : fmt::format("layer {}", layer));
    json zr = json::array(), hr = json::array();
    for (int64_t c = 0; c < C; ++c) {
      const double v = ga[r][c];
      zr.push_back(std::isfinite(v) ? json(std::round(v * 1e6) / 1e6) : json(nullptr));
      std::string where = per_position ? fmt::format("position {}", result.positions[static_cast<size_t>(c)]) : "every position";
      if (per_position) {
        const int64_t p = result.positions[static_cast<size_t>(c)];
        const std::string clean = token_at(options.clean_tokens, p), corrupted = token_at(options.corrupted_tokens, p);
        if (!clean.empty()) where += "<br>clean " + plotly_escape(clean);
        if (!corrupted.empty()) where += "<br>corrupted " + plotly_escape(corrupted);
      }
      hr.push_back(fmt::format("layer {}{}<br>{}<br>{} = {:.4f}", layer, heads ? fmt::format(", head {}", r % H) : "", where,
                               options.normalized ? "normalized" : "metric", v));
    }
    z.push_back(zr), hover.push_back(hr);
  }
  const double mid = options.normalized ? 0.0 : result.corrupted_metric;
  json trace = {{"type", "heatmap"},
                {"x", x},
                {"y", y},
                {"z", z},
                {"zmid", std::isfinite(mid) ? json(mid) : json(0.0)},
                {"customdata", hover},
                {"hovertemplate", "%{customdata}<extra></extra>"},
                {"colorscale", options.colorscale},
                {"colorbar", {{"title", {{"text", options.normalized ? "normalized" : "metric"}}}}},
                {"xgap", 1},
                {"ygap", 1}};
  if (L * H * C <= 400) {
    trace["texttemplate"] = "%{z:.2f}";
    trace["textfont"] = {{"size", 11}};
  }
  std::string title = options.title +
                      fmt::format("<br><sub>clean {:.4f}, corrupted {:.4f}{}</sub>", result.clean_metric, result.corrupted_metric,
                                  options.normalized ? "; normalized: 1 = clean, 0 = corrupted" : "");
  json layout = base_layout(title, options.dark_mode);
  layout["xaxis"] = {{"title", {{"text", per_position ? "position (clean token→corrupted token)" : ""}}},
                     {"tickmode", "array"}, {"tickvals", x}, {"ticktext", ticks}, {"fixedrange", true}};
  layout["yaxis"] = {{"title", {{"text", heads ? "layer, head" : "layer"}}}, {"tickmode", "array"}, {"tickvals", y},
                     {"ticktext", yticks}, {"fixedrange", true}};
  layout["margin"]["t"] = 100;
  layout["margin"]["b"] = 90;
  const auto [w, h] = heatmap_size(L * H, C);
  return page(options.title, {sized_figure(json::array({trace}), layout, options.width > 0 ? options.width : w,
                                           options.height > 0 ? options.height : h)},
              options.dark_mode);
}

std::string plot_token_features(const std::vector<torch::Tensor>& values, const std::vector<std::vector<std::string>>& tokens,
                                const std::vector<std::vector<int64_t>>& features, const TokenFeaturePlotOptions& options) {
  if (values.empty()) throw Error(ErrorKind::InvalidArgument, "values", "no prompt to plot");
  if (tokens.size() != values.size() || features.size() != values.size())
    throw Error(ErrorKind::InvalidArgument, "tokens / features",
                "expected one list per prompt (" + std::to_string(values.size()) + "), got " + std::to_string(tokens.size()) +
                    " / " + std::to_string(features.size()));
  if (!options.subtitles.empty() && options.subtitles.size() != values.size())
    throw Error(ErrorKind::InvalidArgument, "subtitles",
                "expected one per prompt (" + std::to_string(values.size()) + "), got " + std::to_string(options.subtitles.size()));
  const bool sequential = options.colorscale == "Blues" || options.colorscale == "Greens" || options.colorscale == "Reds" ||
                          options.colorscale == "Greys";
  std::vector<Figure> figures;
  for (size_t b = 0; b < values.size(); ++b) {
    const auto v = values[b].detach().to(torch::kCPU, torch::kFloat64).contiguous();
    const int64_t T = static_cast<int64_t>(tokens[b].size()), F = static_cast<int64_t>(features[b].size());
    if (v.dim() != 2 || v.size(0) != T || v.size(1) != F)
      throw Error(ErrorKind::Shape, "values[" + std::to_string(b) + "]",
                  "expected [" + std::to_string(T) + " tokens, " + std::to_string(F) + " features]");
    auto va = v.accessor<double, 2>();
    json x = json::array(), xticks = json::array(), y = json::array(), yticks = json::array(), z = json::array(),
         hover = json::array();
    for (int64_t f = 0; f < F; ++f) x.push_back(f), xticks.push_back("f" + std::to_string(features[b][static_cast<size_t>(f)]));
    for (int64_t t = 0; t < T; ++t) {
      y.push_back(t);
      yticks.push_back(plotly_escape(visible_text(tokens[b][static_cast<size_t>(t)])) + " (" + std::to_string(t) + ")");
      json zr = json::array(), hr = json::array();
      for (int64_t f = 0; f < F; ++f) {
        zr.push_back(std::round(va[t][f] * 1e6) / 1e6);
        hr.push_back(fmt::format("token {} (position {})<br>feature {}<br>{} = {:.4f}",
                                 plotly_escape(json(tokens[b][static_cast<size_t>(t)]).dump(-1, ' ', false, json::error_handler_t::replace)),
                                 t, features[b][static_cast<size_t>(f)], plotly_escape(options.value_title), va[t][f]));
      }
      z.push_back(zr), hover.push_back(hr);
    }
    json trace = {{"type", "heatmap"}, {"x", x}, {"y", y}, {"z", z}, {"customdata", hover},
                  {"hovertemplate", "%{customdata}<extra></extra>"}, {"colorscale", options.colorscale},
                  {"reversescale", sequential}, {"colorbar", {{"title", {{"text", plotly_escape(options.value_title)}}}}},
                  {"xgap", 1}, {"ygap", 1}};
    if (sequential) trace["zmin"] = 0.0;
    if (T * F <= 600) {
      trace["texttemplate"] = "%{z:.2f}";
      trace["textfont"] = {{"size", 10}};
    }
    std::string title = options.title;
    const std::string sub = options.subtitles.empty() ? (values.size() > 1 ? "prompt " + std::to_string(b) : "")
                                                      : options.subtitles[b];
    if (!sub.empty()) title += "<br><sub>" + plotly_escape(sub) + "</sub>";
    json layout = base_layout(title, options.dark_mode);
    layout["xaxis"] = {{"title", {{"text", "feature"}}}, {"side", "top"}, {"tickmode", "array"}, {"tickvals", x},
                       {"ticktext", xticks}, {"fixedrange", true}};
    layout["yaxis"] = {{"title", {{"text", "token"}}}, {"tickmode", "array"}, {"tickvals", y}, {"ticktext", yticks},
                       {"autorange", "reversed"}, {"fixedrange", true}};
    layout["margin"]["t"] = 130;
    layout["margin"]["l"] = 140;
    const auto [w, h] = heatmap_size(T, F);
    figures.push_back(sized_figure(json::array({trace}), layout, options.width > 0 ? options.width : w,
                                   options.height > 0 ? options.height : h));
  }
  return page(options.title, figures, options.dark_mode);
}

std::string topk_table(const torch::Tensor& probs_in, const Tokenizer* tokenizer, int64_t k, const std::vector<int>& layers_in) {
  if (!probs_in.defined() || probs_in.dim() != 2) throw Error(ErrorKind::Shape, "probs", "expected [layers, vocab]");
  if (k < 1) throw Error(ErrorKind::InvalidArgument, "k", "must be at least 1");
  const auto probs = probs_in.detach().to(torch::kCPU, torch::kFloat32);
  const int64_t L = probs.size(0);
  k = std::min(k, probs.size(1));
  const auto layers = default_layers(layers_in, L, "layers");
  auto [values, ids] = probs.topk(k, -1);
  auto va = values.accessor<float, 2>();
  auto ia = ids.accessor<int64_t, 2>();
  std::vector<std::vector<std::string>> tokens(static_cast<size_t>(L));
  size_t width = 5;
  for (int64_t l = 0; l < L; ++l)
    for (int64_t r = 0; r < k; ++r) {
      tokens[static_cast<size_t>(l)].push_back(token_quoted(tokenizer, ia[l][r]));
      width = std::max(width, tokens[static_cast<size_t>(l)].back().size());
    }
  width = std::min<size_t>(width, 24);
  std::string out = "layer";
  for (int64_t r = 0; r < k; ++r) out += fmt::format("  {:<{}}", fmt::format("top {}", r + 1), width + 6);
  out += "\n";
  for (int64_t l = 0; l < L; ++l) {
    out += fmt::format("{:>5}", layers[static_cast<size_t>(l)]);
    for (int64_t r = 0; r < k; ++r) {
      std::string t = tokens[static_cast<size_t>(l)][static_cast<size_t>(r)];
      if (t.size() > width) t = t.substr(0, width - 1) + "~";
      out += fmt::format("  {:<{}} {:.3f}", t, width, va[l][r]);
    }
    out += "\n";
  }
  return out;
}

}  // namespace nnterp

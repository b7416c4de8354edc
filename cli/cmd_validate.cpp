// nnterp validate MODEL: the load-time checks as a table.  nnterp points MODEL: the standardized
// points, which of them this model has (and why not), and their shapes, from its config alone.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "nnterp/error.hpp"
#include "nnterp/model.hpp"
#include "nnterp/points.hpp"
#include "nnterp/validate.hpp"

namespace nnterp::cli {

static void run_validate(const CommonOptions& options) {
  // Report the checks instead of failing on them.
  StandardizedTransformer model = load_model(options, /*validate=*/false);
  auto report = validate_model(model);
  if (options.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& c : report.checks) out.push_back({{"check", c.name}, {"passed", c.passed}, {"detail", c.detail}});
    fmt::print("{}\n", out.dump(2));
  } else {
    fmt::print("{} ({}, {} layers)\n", model.path().string(), model.hf_class(), model.num_layers());
    for (const auto& c : report.checks) fmt::print("  {:<4} {:<58} {}\n", c.passed ? "ok" : "FAIL", c.name, c.detail);
  }
  if (!report.passed()) throw Error(ErrorKind::Unsupported, model.path().string(), "validation failed:" + report.failures());
}

struct PointsOptions {
  CommonOptions common;
  int64_t batch = 1, tokens = 8;
};

// "0-2,5": layer numbers as ranges.
static std::string layer_ranges(const std::vector<int>& layers) {
  std::string out;
  for (size_t i = 0; i < layers.size();) {
    size_t j = i;
    while (j + 1 < layers.size() && layers[j + 1] == layers[j] + 1) ++j;
    out += (out.empty() ? "" : ",") + std::to_string(layers[i]) + (j > i ? "-" + std::to_string(layers[j]) : "");
    i = j + 1;
  }
  return out;
}

// One point of the table for this model: the layers that have it, its shape at the first of them,
// and why the others lack it (the first layer's reason).
struct PointAvailability {
  const PointInfo* info;
  std::vector<int> layers;  // per-layer points only
  std::vector<int64_t> shape;
  std::string why_not;      // empty when every layer (or the model) has it
};

static PointAvailability availability(const StandardizedTransformer& model, const PointInfo& info, const PointsOptions& o) {
  PointAvailability a{&info, {}, {}, {}};
  const int layers = info.per_layer() ? static_cast<int>(model.num_layers()) : 1;
  for (int i = 0; i < layers; ++i) {
    const PointId id{info.point, info.per_layer() ? i : -1};
    std::string why;
    if (!model.has_point(id, &why)) {
      if (a.why_not.empty()) a.why_not = why;
      continue;
    }
    if (info.per_layer()) a.layers.push_back(i);
    if (a.shape.empty()) a.shape = model.point_shape(id, o.batch, o.tokens);
  }
  return a;
}

static void run_points(const PointsOptions& o) {
  if (o.batch < 1 || o.tokens < 1)
    throw Error(ErrorKind::InvalidArgument, o.batch < 1 ? "--batch" : "--tokens", "must be at least 1");
  StandardizedTransformer model = load_model(o.common, /*validate=*/false);
  std::vector<PointAvailability> rows;
  for (const auto& info : point_table()) rows.push_back(availability(model, info, o));
  auto shape_of = [](const std::vector<int64_t>& s) { return s.empty() ? std::string("-") : fmt::format("[{}]", fmt::join(s, ",")); };
  if (o.common.json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& r : rows) {
      nlohmann::json row = {{"name", r.info->pattern}, {"trace", r.info->trace_name}, {"shape", r.info->shape},
                            {"meaning", r.info->meaning}, {"available", !r.shape.empty()}};
      if (!r.shape.empty()) row["model_shape"] = r.shape;
      if (r.info->per_layer()) row["layers"] = r.layers;
      if (!r.why_not.empty()) row["why_not"] = r.why_not;
      out.push_back(row);
    }
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("{} ({}, {} layers): shapes for {} row(s) of {} token(s)\n", model.path().string(), model.hf_class(),
             model.num_layers(), o.batch, o.tokens);
  fmt::print("{:<28} {:<24} {:<8} {:<18} {}\n", "point", "trace accessor", "layers", "shape", "meaning");
  for (const auto& r : rows) {
    const std::string layers = !r.info->per_layer() ? "" : r.layers.empty() ? "none" : layer_ranges(r.layers);
    fmt::print("{:<28} {:<24} {:<8} {:<18} {}\n", r.info->pattern, r.info->trace_name, layers, shape_of(r.shape),
               r.info->meaning);
    if (!r.why_not.empty()) fmt::print("{:<28} {}\n", "", (r.layers.empty() ? "absent: " : "elsewhere absent: ") + r.why_not);
  }
}

static CommandRegistration validate_command(15, [](CLI::App& app) {
  auto options = std::make_shared<CommonOptions>();
  auto* cmd = app.add_subcommand("validate", "run nnterp's load-time checks on a model and print them as a table");
  add_model_options(*cmd, *options);
  cmd->add_flag("--json", options->json, "machine-readable output");
  cmd->footer("Exit code 1 when a check fails.\nExample:\n  nnterp validate path/to/model");
  cmd->callback([options] { run_validate(*options); });

  auto points_options = std::make_shared<PointsOptions>();
  auto* points = app.add_subcommand("points", "list the standardized points: which layers of a model have each "
                                               "(and why the others do not) and its shape, from the config alone");
  add_model_options(*points, points_options->common);
  positive_integer(points->add_option("--batch", points_options->batch, "rows for the shapes shown (default 1)"));
  positive_integer(points->add_option("--tokens", points_options->tokens, "tokens per row for the shapes shown (default 8)"));
  points->add_flag("--json", points_options->common.json, "machine-readable output");
  points->footer("Example:\n  nnterp points path/to/model --tokens 16");
  points->callback([points_options] { run_points(*points_options); });
});

}  // namespace nnterp::cli

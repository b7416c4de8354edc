// nnterp validate MODEL: the load-time checks as a table.  nnterp points: the standardized points.
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

static void run_points(bool json) {
  if (json) {
    nlohmann::json out = nlohmann::json::array();
    for (const auto& p : point_table())
      out.push_back({{"name", p.pattern}, {"trace", p.trace_name}, {"shape", p.shape}, {"meaning", p.meaning}});
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("{:<26} {:<26} {:<20} {}\n", "point", "trace accessor", "shape", "meaning");
  for (const auto& p : point_table()) fmt::print("{:<26} {:<26} {:<20} {}\n", p.pattern, p.trace_name, p.shape, p.meaning);
}

static CommandRegistration validate_command(15, [](CLI::App& app) {
  auto options = std::make_shared<CommonOptions>();
  auto* cmd = app.add_subcommand("validate", "run nnterp's load-time checks on a model and print them as a table");
  add_model_options(*cmd, *options);
  cmd->add_flag("--json", options->json, "machine-readable output");
  cmd->footer("Exit code 1 when a check fails.\nExample:\n  nnterp validate path/to/model");
  cmd->callback([options] { run_validate(*options); });

  auto json = std::make_shared<bool>(false);
  auto* points = app.add_subcommand("points", "list the standardized points every model exposes");
  points->add_flag("--json", *json, "machine-readable output");
  points->callback([json] { run_points(*json); });
});

}  // namespace nnterp::cli

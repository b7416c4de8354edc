// nnterp info MODEL: architecture, sizes, the standardized tree and the HF weights behind it.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "nnterp/model.hpp"

namespace nnterp::cli {

static void run_info(const CommonOptions& options) {
  StandardizedTransformer model(prepare(options), LoadOptions{torch::kFloat32, false});
  auto modules = model.modules();
  if (options.json) {
    nlohmann::json out = {{"path", model.path().string()},     {"architecture", model.architecture()},
                          {"hf_class", model.hf_class()},      {"num_layers", model.num_layers()},
                          {"num_heads", model.num_heads()},    {"num_kv_heads", model.num_kv_heads()},
                          {"head_dim", model.head_dim()},      {"hidden_size", model.hidden_size()},
                          {"vocab_size", model.vocab_size()},  {"modules", nlohmann::json::object()}};
    for (const auto& m : modules) out["modules"][m.name] = m.weights;
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("model         {}\narchitecture  {} ({})\n", model.path().string(), model.architecture(), model.hf_class());
  fmt::print("layers {}  hidden {}  heads {} (kv {}, head_dim {})  vocab {}\n\n", model.num_layers(), model.hidden_size(),
             model.num_heads(), model.num_kv_heads(), model.head_dim(), model.vocab_size());
  fmt::print("standardized module → checkpoint tensors\n");
  for (const auto& m : modules) {
    fmt::print("{}\n", m.name);
    for (const auto& [weight, sources] : m.weights) {
      std::string joined;
      for (const auto& s : sources) joined += (joined.empty() ? "" : " + ") + s;
      fmt::print("    {:<34} ← {}\n", weight, joined);
    }
  }
}

static CommandRegistration info_command(10, [](CLI::App& app) {
  auto options = std::make_shared<CommonOptions>();
  auto* cmd = app.add_subcommand("info", "architecture, sizes and the standardized module tree of a model");
  add_model_options(*cmd, *options);
  cmd->add_flag("--json", options->json, "machine-readable output");
  cmd->footer("Example:\n  nnterp info path/to/model\n  nnterp info gpt2 --json");
  cmd->callback([options] { run_info(*options); });
});

}  // namespace nnterp::cli

// nnterp info MODEL: architecture, sizes, the standardized tree and the HF weights behind it.
#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "commands.hpp"
#include "common.hpp"
#include "nnterp/model.hpp"

namespace nnterp::cli {

// What the load did with the weights: their stored dtypes, what they compute in, where.
static nlohmann::json memory_json(const LoadReport& r) {
  return {{"stored_bytes", r.stored_bytes},        {"dtype", dtype_name(r.dtype)},
          {"matmul_dtype", dtype_name(r.matmul_dtype)}, {"device", r.device.str()},
          {"bytes_in_place", r.bytes_in_place},    {"bytes_copied", r.bytes_copied},
          {"load_seconds", r.load_seconds},        {"peak_rss_bytes", r.peak_rss_bytes}};
}

static std::string size_text(int64_t bytes) {
  return bytes >= 1e9 ? fmt::format("{:.2f} GB", bytes / 1e9) : fmt::format("{:.1f} MB", bytes / 1e6);
}

static void print_memory(const LoadReport& r) {
  std::string stored;
  for (const auto& [dtype, bytes] : r.stored_bytes) stored += (stored.empty() ? "" : ", ") + dtype + " " + size_text(bytes);
  fmt::print("stored        {}\n", stored);
  fmt::print("dtype         {} on {}", dtype_name(r.dtype), r.device.str());
  if (r.matmul_dtype != r.dtype)
    fmt::print(" (matmuls in {}: weights stay {} and are converted a slice at a time; libtorch's CPU kernels lack a fast {} GEMM)",
               dtype_name(r.matmul_dtype), dtype_name(r.dtype), dtype_name(r.dtype));
  fmt::print("\nweights       {} used in place from the mapped files, {} copied (converted, fused, re-ordered or moved)\n",
             size_text(r.bytes_in_place), size_text(r.bytes_copied));
  fmt::print("load          {:.2f} s, peak resident memory {}\n\n", r.load_seconds, size_text(r.peak_rss_bytes));
}

static void run_info(const CommonOptions& options) {
  StandardizedTransformer model = load_model(options, /*validate=*/false);
  auto modules = model.modules();
  if (options.json) {
    nlohmann::json out = {{"path", model.path().string()},     {"architecture", model.architecture()},
                          {"hf_class", model.hf_class()},      {"num_layers", model.num_layers()},
                          {"num_heads", model.num_heads()},    {"num_kv_heads", model.num_kv_heads()},
                          {"head_dim", model.head_dim()},      {"hidden_size", model.hidden_size()},
                          {"vocab_size", model.vocab_size()},  {"memory", memory_json(model.load_report())},
                          {"modules", nlohmann::json::object()}};
    for (const auto& m : modules) out["modules"][m.name] = m.weights;
    fmt::print("{}\n", out.dump(2));
    return;
  }
  fmt::print("model         {}\narchitecture  {} ({})\n", model.path().string(), model.architecture(), model.hf_class());
  fmt::print("layers {}  hidden {}  heads {} (kv {}, head_dim {})  vocab {}\n", model.num_layers(), model.hidden_size(),
             model.num_heads(), model.num_kv_heads(), model.head_dim(), model.vocab_size());
  print_memory(model.load_report());
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

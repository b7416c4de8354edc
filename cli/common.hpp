// Options shared by the subcommands, so flags are spelled the same everywhere.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>

#include "nnterp/model.hpp"
#include "nnterp/trace.hpp"

namespace nnterp::cli {

struct CommonOptions {
  std::string model;  // empty: the default model
  int threads = 0;    // 0: every core
  std::string dtype = "float32", device = "cpu";
  bool json = false;
};

// Adds the positional MODEL (optional: the default model when omitted) and add_load_options.
void add_model_options(CLI::App& cmd, CommonOptions& options, bool model_required = false);
// --threads, --dtype, --device: how the model is loaded and run (for a command with its own positionals).
void add_load_options(CLI::App& cmd, CommonOptions& options);
// Applies --threads (see threading.hpp) and returns the model name to load.
std::string prepare(const CommonOptions& options);
// --dtype and --device as LoadOptions (each bad value an error naming its flag).
LoadOptions load_options(const CommonOptions& options, bool validate = true);
// prepare() + load_options(): the model the command works on.
StandardizedTransformer load_model(const CommonOptions& options, bool validate = true);
// --json (print JSON: `json_help`) and --out FILE (save tensors to a safetensors file: `out_help`), the
// output options of the commands that compute tensors.
void add_json_out_options(CLI::App& cmd, CommonOptions& options, std::string& out, const std::string& json_help,
                          const std::string& out_help);

// Prompt `i` of `prompts` for JSON output: its text, or null for token inputs.
nlohmann::json prompt_json(const TraceInput& prompts, int64_t i);
// The `k` most probable tokens of `probs` [vocab]: [{"id", "token", "prob"}, ...] for --json, and
// "  <token> <prob>" repeated for text output.
nlohmann::json top_json(const StandardizedTransformer& model, const torch::Tensor& probs, int64_t k);
std::string top_text(const StandardizedTransformer& model, const torch::Tensor& probs, int64_t k);

}  // namespace nnterp::cli

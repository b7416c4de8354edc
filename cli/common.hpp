// Options shared by the subcommands, so flags are spelled the same everywhere.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <map>
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

// Checks of numeric options, run as the value is parsed; a bad value is a usage error (exit 2) that names
// the flag as typed and says what it takes: "--top must be a positive integer, got 0". Each returns `opt`.
CLI::Option* positive_integer(CLI::Option* opt);      // 1, 2, ...
CLI::Option* non_negative_integer(CLI::Option* opt);  // 0, 1, ...
CLI::Option* any_integer(CLI::Option* opt);           // ..., -1, 0, 1, ... (token indices)
CLI::Option* non_negative_number(CLI::Option* opt);   // 0, 0.5, ...
CLI::Option* positive_number(CLI::Option* opt);       // > 0
// A number `ok` accepts; `what` completes "--flag must be ...".
CLI::Option* number_where(CLI::Option* opt, std::function<bool(double)> ok, const std::string& what);

// A usage error naming a flag: printed as it is (no "VALUE not in range" of CLI11), exit 2.
struct UsageError : CLI::ParseError {
  explicit UsageError(const std::string& message) : CLI::ParseError(message, CLI::ExitCodes::ValidationError) {}
};

// MODEL when it is not a model but looks like a prompt (not a path, not shaped like a hub id
// `name`, `org/name` or `org/name@rev`): an error saying "did you mean --prompt "…"?".
void reject_prompt_as_model(const std::string& model);
// True when `word` is shaped like a hub id: name, org/name, org/name@revision (letters, digits, - _ .).
bool hub_id_shaped(const std::string& word);

// The library's errors name API fields (idx, batch_size, GenerateOptions::top_p, index_to_patch, ...);
// the CLI's user typed flags. The flag of `command` behind the field `subject`, or "" when `subject` is
// no such field (main.cpp then reports the error naming that flag, message and hint kept).
std::string flag_for_field(const std::string& command, const std::string& subject);

// Prompt `i` of `prompts` for JSON output: its text, or null for token inputs.
nlohmann::json prompt_json(const TraceInput& prompts, int64_t i);
// The `k` most probable tokens of `probs` [vocab]: [{"id", "token", "prob"}, ...] for --json, and
// "  <token> <prob>" repeated for text output.
nlohmann::json top_json(const StandardizedTransformer& model, const torch::Tensor& probs, int64_t k);
std::string top_text(const StandardizedTransformer& model, const torch::Tensor& probs, int64_t k);

}  // namespace nnterp::cli

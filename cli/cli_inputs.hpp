// Shared input/output helpers for the CLI commands: prompts from flags, text or JSONL files, or
// pre-tokenized safetensors (--inputs); layer lists; token display; result tensors (--out).
#pragma once

#include <CLI/CLI.hpp>
#include <istream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "nnterp/model.hpp"
#include "nnterp/trace.hpp"

namespace nnterp::io {
class SafetensorsFile;
}

namespace nnterp::cli {

// Where a command's prompts come from: exactly one of --prompt (repeatable), --prompts FILE or
// --inputs IN.safetensors.
struct PromptSource {
  std::vector<std::string> prompts;  // --prompt
  std::string prompts_file;          // --prompts
  std::string inputs;                // --inputs
  bool given() const { return !prompts.empty() || !prompts_file.empty() || !inputs.empty(); }
};

// Adds --prompt, --prompts and --inputs (`prefix` makes e.g. --clean-prompt, --clean-inputs).
void add_prompt_options(CLI::App& cmd, PromptSource& source, const std::string& prefix = "", const std::string& what = "prompts");
// The prompts (text) or token ids; `what` names them in errors.
TraceInput resolve_prompts(const PromptSource& source, const std::string& what = "prompts");

// Prompts from a file: .jsonl/.json lines (a JSON string, or an object with "prompt"), else one
// prompt per non-empty line.
std::vector<std::string> read_prompt_file(const std::string& path);
// Every non-empty line of a JSONL file, parsed; errors name the file and line.
std::vector<nlohmann::json> read_jsonl(const std::string& path);
// int64 input_ids [B, T] (+ attention_mask [B, T], default all ones) from a safetensors file.
TokenBatch read_token_inputs(const std::string& path);

// The same readers on content already open (tests, fuzzing: fuzz/fuzz_cli_inputs.cpp); `where`
// names the source in errors. `jsonl` picks the JSONL format, as a .jsonl/.json/.ndjson path does.
std::vector<std::string> read_prompts(std::istream& in, bool jsonl, const std::string& where);
std::vector<nlohmann::json> read_jsonl(std::istream& in, const std::string& where);
TokenBatch read_token_inputs(const io::SafetensorsFile& file);

// "all" (or empty), "0,2,5", "3-6", "-1" → layer numbers (negatives count from the end).
std::vector<int> parse_layers(const std::string& spec, const StandardizedTransformer& model);
std::vector<int> parse_layers(const std::string& spec, int64_t num_layers);

// A token for display: the tokenizer's decoded text (JSON-escaped when shown), or "#id" without a tokenizer.
std::string token_display(const StandardizedTransformer& model, int64_t id);

// The top-k (id, probability) of a probability vector [V].
std::vector<std::pair<int64_t, double>> top_k(const torch::Tensor& probs, int64_t k);

// Writes result tensors (float32 unless integer) with metadata naming the command and model.
void write_results(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   const StandardizedTransformer& model, const std::string& command);

// A per-layer point kind: "layers.{i}.attn_output", "attn_output" or the trace name "attentions_output".
Point parse_point_kind(const std::string& name);

// Loads the model for a command (tokenizer included when the folder has one).
StandardizedTransformer load_model(const std::string& name);

}  // namespace nnterp::cli

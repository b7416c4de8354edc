// Reading what a researcher gives as inputs: prompt files (one per line, or JSONL), pre-tokenized
// safetensors files (--inputs) and layer lists ("0,4,8", "2-5", "-1"). Every error names the file
// (and line or tensor) and says what was expected.
#pragma once

#include <cstdint>
#include <istream>
#include <string>
#include <vector>

#include "nnterp/token_batch.hpp"

namespace nnterp::io {

class SafetensorsFile;

// Prompts from a file: .jsonl/.json/.ndjson lines (a JSON string, or an object with "prompt"),
// else one prompt per non-empty line.
std::vector<std::string> read_prompt_file(const std::string& path);
// The same on content already open; `jsonl` picks the JSONL format; `where` names it in errors.
std::vector<std::string> read_prompts(std::istream& in, bool jsonl, const std::string& where);
// Whether a path names a JSONL file (.jsonl, .json, .ndjson).
bool is_jsonl_path(const std::string& path);

// int64 input_ids [B, T] (+ attention_mask [B, T], default all ones) from a safetensors file.
TokenBatch read_token_inputs(const std::string& path);
TokenBatch read_token_inputs(const SafetensorsFile& file);

// "all" (or empty), "0,2,5", "3-6", "-1" → layer numbers (negatives count from the end). Each
// number is checked against `num_layers` before a range is expanded; errors name `flag`.
std::vector<int> parse_layers(const std::string& spec, int64_t num_layers, const std::string& flag = "--layers");

}  // namespace nnterp::io

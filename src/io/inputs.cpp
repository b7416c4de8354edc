// Readers of user inputs: prompt files, pre-tokenized safetensors, layer lists (nnterp/inputs.hpp).
#include "nnterp/inputs.hpp"

#include <filesystem>
#include <fstream>

#include "core/tensor_text.hpp"
#include "io/json_limits.hpp"
#include "io/json_reader.hpp"
#include "io/jsonl.hpp"
#include "nnterp/error.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::io {

namespace fs = std::filesystem;

bool is_jsonl_path(const std::string& path) {
  auto ext = fs::path(path).extension().string();
  return ext == ".jsonl" || ext == ".json" || ext == ".ndjson";
}

std::vector<nlohmann::json> read_jsonl(std::istream& in, const std::string& where) {
  std::vector<nlohmann::json> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    check_json_depth(json_text_depth(line), where + ":" + std::to_string(n));
    try {
      out.push_back(nlohmann::json::parse(line));
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorKind::Format, where + ":" + std::to_string(n), std::string("invalid JSON: ") + e.what(),
                  "one JSON value per line (JSONL)");
    }
  }
  return out;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, path, "cannot open");
  return read_jsonl(in, path);
}

std::vector<std::string> read_prompts(std::istream& in, bool jsonl, const std::string& where) {
  std::vector<std::string> out;
  if (jsonl) {
    int64_t n = 0;
    for (const auto& record : read_jsonl(in, where)) {
      ++n;
      const JsonValue j(record, where + ":" + std::to_string(n));
      const auto prompt = j.is_object() ? j.find("prompt") : std::nullopt;
      if (j.is_string()) {
        out.push_back(j.string());
      } else if (prompt && prompt->is_string()) {
        out.push_back(prompt->string());
      } else {
        throw Error(ErrorKind::Format, where + " (record " + std::to_string(n) + ")", "is neither a string nor an object with a \"prompt\" string");
      }
    }
    return out;
  }
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

std::vector<std::string> read_prompt_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, path, "cannot open");
  return read_prompts(in, is_jsonl_path(path), path);
}

static torch::Tensor read_int64_2d(const SafetensorsFile& file, const std::string& name) {
  if (!file.contains(name))
    throw Error(ErrorKind::Format, file.path().string(), "no tensor '" + name + "'",
                "the inputs file needs int64 input_ids [B,T] (and attention_mask [B,T], left-padded)");
  auto t = file.tensor(name);
  if (t.scalar_type() != torch::kInt64 || t.dim() != 2)
    throw Error(ErrorKind::Shape, file.path().string() + " (tensor '" + name + "')", "expected int64 [batch, tokens], got " + tensor_text(t));
  return t.clone();
}

// Rows whose mask ends with padding (generate pads each row after its EOS) shifted right, so that
// every row ends with its last real token: left padding, as the methods read it.
static void left_align(TokenBatch& b) {
  const int64_t T = b.input_ids.size(1);
  for (int64_t r = 0; r < b.input_ids.size(0); ++r) {
    int64_t trailing = 0;
    while (trailing < T && b.attention_mask[r][T - 1 - trailing].item<int64_t>() == 0) ++trailing;
    if (trailing == 0 || trailing == T) continue;
    b.input_ids[r].copy_(b.input_ids[r].roll(trailing));
    b.attention_mask[r].copy_(b.attention_mask[r].roll(trailing));
  }
}

TokenBatch read_token_inputs(const SafetensorsFile& file) {
  TokenBatch b;
  // `nnterp generate --out` writes generated_ids (prompt + new tokens): read as inputs when the file
  // has no input_ids, its rows that stopped early (padded after their EOS) left-aligned.
  const bool generated = !file.contains("input_ids") && file.contains("generated_ids");
  if (!generated && !file.contains("input_ids"))
    throw Error(ErrorKind::Format, file.path().string(), "no tensor 'input_ids' (nor 'generated_ids', as `nnterp generate --out` writes)",
                "the inputs file needs int64 input_ids [B,T] (and attention_mask [B,T], left-padded); "
                "`nnterp tokenize --prompt TEXT --out IN.safetensors` writes one");
  const std::string ids_name = generated ? "generated_ids" : "input_ids";
  b.input_ids = read_int64_2d(file, ids_name);
  b.attention_mask = file.contains("attention_mask") ? read_int64_2d(file, "attention_mask") : torch::ones_like(b.input_ids);
  if (b.attention_mask.sizes() != b.input_ids.sizes())
    throw Error(ErrorKind::Shape, file.path().string() + " (tensor 'attention_mask')",
                "expected the shape of " + ids_name + " " + shape_text(b.input_ids.sizes()) + ", got " + shape_text(b.attention_mask.sizes()));
  if (generated) left_align(b);
  return b;
}

TokenBatch read_token_inputs(const std::string& path) { return read_token_inputs(*SafetensorsFile::open(path)); }

std::vector<int> parse_layers(const std::string& spec, int64_t num_layers, const std::string& flag) {
  const int64_t L = num_layers;
  std::vector<int> out;
  if (spec.empty() || spec == "all") {
    for (int64_t i = 0; i < L; ++i) out.push_back(static_cast<int>(i));
    return out;
  }
  auto bad = [&](const std::string& part) {
    return Error(ErrorKind::InvalidArgument, flag, "cannot read '" + part + "' in '" + spec + "'",
                 "e.g. all, 3, 0,4,8, 2-5 or -1 (the model has " + std::to_string(L) + " layers)");
  };
  // Each number is checked before a range is expanded: "0-2147483647" must not build a list of
  // two billion layers (found by fuzz/fuzz_cli_inputs.cpp).
  auto to_layer = [&](const std::string& s, const std::string& part) -> int {
    int64_t v = 0;
    try {
      size_t used = 0;
      v = std::stoll(s, &used);
      if (used != s.size()) throw bad(part);
    } catch (const std::logic_error&) {
      throw bad(part);
    }
    const int64_t layer = v < 0 ? v + L : v;
    if (layer < 0 || layer >= L)
      throw Error(ErrorKind::InvalidArgument, flag, "layer " + s + " is out of range (the model has " +
                                                             std::to_string(L) + " layers: 0.." + std::to_string(L - 1) +
                                                             ", or -1..-" + std::to_string(L) + " from the end)");
    return static_cast<int>(layer);
  };
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    std::string part = spec.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    size_t dash = part.find('-', 1);
    if (dash != std::string::npos) {
      int a = to_layer(part.substr(0, dash), part), b = to_layer(part.substr(dash + 1), part);
      if (a > b) throw bad(part);
      for (int i = a; i <= b; ++i) out.push_back(i);
    } else {
      out.push_back(to_layer(part, part));
    }
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}

}  // namespace nnterp::io

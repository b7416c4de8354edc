#include "cli_inputs.hpp"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>

#include "core/tensor_text.hpp"
#include "io/json_limits.hpp"
#include "nnterp/error.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::cli {

namespace fs = std::filesystem;

static bool is_jsonl(const std::string& path) {
  auto ext = fs::path(path).extension().string();
  return ext == ".jsonl" || ext == ".json" || ext == ".ndjson";
}

std::vector<nlohmann::json> read_jsonl(std::istream& in, const std::string& where) {
  std::vector<nlohmann::json> out;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    io::check_json_depth(io::json_text_depth(line), where + ":" + std::to_string(n));
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
    for (const auto& j : read_jsonl(in, where)) {
      ++n;
      if (j.is_string()) {
        out.push_back(j.get<std::string>());
      } else if (j.is_object() && j.contains("prompt") && j["prompt"].is_string()) {
        out.push_back(j["prompt"].get<std::string>());
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
  return read_prompts(in, is_jsonl(path), path);
}

static torch::Tensor read_int64_2d(const io::SafetensorsFile& file, const std::string& name) {
  if (!file.contains(name))
    throw Error(ErrorKind::Format, file.path().string(), "no tensor '" + name + "'",
                "the inputs file needs int64 input_ids [B,T] (and attention_mask [B,T], left-padded)");
  auto t = file.tensor(name);
  if (t.scalar_type() != torch::kInt64 || t.dim() != 2)
    throw Error(ErrorKind::Shape, file.path().string() + " (tensor '" + name + "')", "expected int64 [batch, tokens], got " + tensor_text(t));
  return t.clone();
}

TokenBatch read_token_inputs(const io::SafetensorsFile& file) {
  TokenBatch b;
  b.input_ids = read_int64_2d(file, "input_ids");
  b.attention_mask = file.contains("attention_mask") ? read_int64_2d(file, "attention_mask") : torch::ones_like(b.input_ids);
  if (b.attention_mask.sizes() != b.input_ids.sizes())
    throw Error(ErrorKind::Shape, file.path().string() + " (tensor 'attention_mask')",
                "expected the shape of input_ids " + shape_text(b.input_ids.sizes()) + ", got " + shape_text(b.attention_mask.sizes()));
  return b;
}

TokenBatch read_token_inputs(const std::string& path) { return read_token_inputs(*io::SafetensorsFile::open(path)); }

std::vector<int> parse_layers(const std::string& spec, int64_t num_layers) {
  const int64_t L = num_layers;
  std::vector<int> out;
  if (spec.empty() || spec == "all") {
    for (int64_t i = 0; i < L; ++i) out.push_back(static_cast<int>(i));
    return out;
  }
  auto bad = [&](const std::string& part) {
    return Error(ErrorKind::InvalidArgument, "--layers", "cannot read '" + part + "' in '" + spec + "'",
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
      throw Error(ErrorKind::InvalidArgument, "--layers", "layer " + s + " is out of range (the model has " +
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

// The rest needs the whole library; the fuzz target of the readers above (fuzz/fuzz_cli_inputs.cpp)
// compiles this file with NNTERP_CLI_INPUT_READERS_ONLY.
#ifndef NNTERP_CLI_INPUT_READERS_ONLY

void add_prompt_options(CLI::App& cmd, PromptSource& source, const std::string& prefix, const std::string& what) {
  const std::string p = prefix.empty() ? "" : prefix + "-";
  cmd.add_option("--" + p + "prompt", source.prompts, "a prompt (repeat for a batch)");
  cmd.add_option("--" + p + "prompts", source.prompts_file,
                 "file of " + what + ": one per line, or JSONL (a JSON string or {\"prompt\": ...} per line)")
      ->check(CLI::ExistingFile);
  cmd.add_option("--" + p + "inputs", source.inputs,
                 "pre-tokenized " + what + ": safetensors with int64 input_ids [B,T] and attention_mask [B,T] (left-padded)")
      ->check(CLI::ExistingFile);
}

TraceInput resolve_prompts(const PromptSource& source, const std::string& what) {
  const int given = !source.prompts.empty() + !source.prompts_file.empty() + !source.inputs.empty();
  if (given == 0)
    throw Error(ErrorKind::InvalidArgument, what, "none given", "use --prompt TEXT, --prompts FILE or --inputs IN.safetensors");
  if (given > 1)
    throw Error(ErrorKind::InvalidArgument, what, "given several ways at once", "use only one of --prompt, --prompts and --inputs");
  if (!source.inputs.empty()) return TraceInput(read_token_inputs(source.inputs));
  if (!source.prompts_file.empty()) {
    auto prompts = read_prompt_file(source.prompts_file);
    if (prompts.empty()) throw Error(ErrorKind::InvalidArgument, source.prompts_file, "holds no prompt");
    return TraceInput(prompts);
  }
  return TraceInput(source.prompts);
}

std::vector<int> parse_layers(const std::string& spec, const StandardizedTransformer& model) {
  return parse_layers(spec, model.num_layers());
}

std::string token_display(const StandardizedTransformer& model, int64_t id) {
  if (const Tokenizer* tok = model.tokenizer()) return tok->decode({id});
  return "#" + std::to_string(id);
}

std::vector<std::pair<int64_t, double>> top_k(const torch::Tensor& probs, int64_t k) {
  k = std::min<int64_t>(k, probs.size(-1));
  auto [values, indices] = probs.to(torch::kFloat64).topk(k);
  std::vector<std::pair<int64_t, double>> out;
  for (int64_t i = 0; i < k; ++i) out.emplace_back(indices[i].item<int64_t>(), values[i].item<double>());
  return out;
}

void write_results(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                   const StandardizedTransformer& model, const std::string& command) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, t] : tensors)
    out.emplace_back(name, t.is_floating_point() ? t.to(torch::kFloat32).contiguous() : t.contiguous());
  io::save_safetensors(path, out, {{"model", model.path().string()}, {"architecture", model.architecture()}, {"command", command}});
}

Point parse_point_kind(const std::string& name) {
  std::string known;
  for (const auto& info : point_table()) {
    if (!info.per_layer()) continue;
    const std::string pattern = info.pattern;
    const std::string suffix = pattern.substr(pattern.rfind('.') + 1);
    if (name == pattern || name == suffix || name == info.trace_name) return info.point;
    known += (known.empty() ? "" : ", ") + suffix;
  }
  throw Error(ErrorKind::InvalidArgument, "--point", "unknown point '" + name + "'", "one of: " + known);
}

StandardizedTransformer load_model(const std::string& name) { return StandardizedTransformer(name); }

#endif  // NNTERP_CLI_INPUT_READERS_ONLY

}  // namespace nnterp::cli

#include "cli_inputs.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <nlohmann/json.hpp>

#include "nnterp/error.hpp"
#include "nnterp/inputs.hpp"
#include "nnterp/plot.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::cli {

void add_prompt_options(CLI::App& cmd, PromptSource& source, const std::string& prefix, const std::string& what) {
  const std::string p = prefix.empty() ? "" : prefix + "-";
  source.prefix = prefix;
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
  const std::string p = "--" + (source.prefix.empty() ? "" : source.prefix + "-");
  if (given == 0)
    throw Error(ErrorKind::InvalidArgument, what, "none given",
                "use " + p + "prompt TEXT, " + p + "prompts FILE or " + p + "inputs IN.safetensors");
  if (given > 1)
    throw Error(ErrorKind::InvalidArgument, what, "given several ways at once",
                "use only one of " + p + "prompt, " + p + "prompts and " + p + "inputs");
  if (!source.inputs.empty()) return TraceInput(io::read_token_inputs(source.inputs));
  if (!source.prompts_file.empty()) {
    auto prompts = io::read_prompt_file(source.prompts_file);
    if (prompts.empty()) throw Error(ErrorKind::InvalidArgument, source.prompts_file, "holds no prompt");
    return TraceInput(prompts);
  }
  return TraceInput(source.prompts);
}

void add_chat_options(CLI::App& cmd, ChatFlags& flags, const std::string& what) {
  cmd.add_flag("--chat", flags.chat,
               "instruct models: each of the " + what + " becomes a user turn of the model's chat template, "
               "followed by the assistant header (see `nnterp chat-template`)");
  cmd.add_option("--system", flags.system, "with --chat: a system turn before each prompt");
  cmd.add_option("--chat-template", flags.template_name,
                 "with --chat: one of the model's named templates (e.g. tool_use), or a .jinja file");
}

std::string chat_template_choice(const std::string& name_or_file, const Tokenizer& tokenizer, const std::string& flag) {
  if (name_or_file.empty()) return "";
  const auto names = tokenizer.chat_template_names();
  if (std::find(names.begin(), names.end(), name_or_file) != names.end()) return name_or_file;
  std::error_code ec;
  if (!std::filesystem::is_regular_file(name_or_file, ec)) {
    std::string list;
    for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
    throw Error(ErrorKind::InvalidArgument, flag, "'" + name_or_file + "' is neither a template of this model nor a file",
                names.empty() ? "give a .jinja file" : "the model's templates: " + list + "; or give a .jinja file");
  }
  std::ifstream in(name_or_file, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  if (!in && !in.eof()) throw Error(ErrorKind::Io, name_or_file, "cannot read the chat template");
  return text.str();
}

ChatPromptOptions ChatFlags::options(const StandardizedTransformer& model) const {
  ChatPromptOptions o;
  o.system = system;
  if (model.tokenizer()) o.chat.chat_template = chat_template_choice(template_name, *model.tokenizer());
  return o;
}

TraceInput apply_chat(const TraceInput& input, const ChatFlags& flags, const StandardizedTransformer& model,
                      const std::string& what) {
  if (!flags.chat) {
    if (!flags.system.empty() || !flags.template_name.empty())
      throw Error(ErrorKind::InvalidArgument, "--system / --chat-template", "only mean something with --chat", "add --chat");
    return input;
  }
  if (input.tokens)
    throw Error(ErrorKind::InvalidArgument, "--chat", "wraps text " + what + ", but these are token ids (--inputs)",
                "give text prompts, or token ids that already hold the chat template");
  return TraceInput(chat_inputs(model, input.prompts, flags.options(model)));
}

// A steering vector file: safetensors (the tensor "vector", else its only tensor) or whitespace-
// separated numbers, as `generate --steer` reads it; [hidden] float32.
torch::Tensor read_steering_vector(const std::string& path, const StandardizedTransformer& model, const std::string& flag) {
  torch::Tensor v;
  if (path.size() > 12 && path.substr(path.size() - 12) == ".safetensors") {
    auto file = io::SafetensorsFile::open(path);
    std::string name = file->contains("vector") ? "vector" : "";
    if (name.empty() && file->tensors().size() == 1) name = file->tensors()[0].name;
    if (name.empty()) throw Error(ErrorKind::Format, flag + " " + path, "expected a tensor named 'vector' or exactly one tensor");
    v = file->tensor(name).to(torch::kFloat32).reshape({-1}).clone();
  } else {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error(ErrorKind::Io, flag + " " + path, "cannot open");
    std::vector<float> values;
    double x;
    while (in >> x) values.push_back(static_cast<float>(x));
    if (!in.eof() || values.empty())
      throw Error(ErrorKind::Format, flag + " " + path, "expected whitespace-separated numbers (or a .safetensors file)");
    v = torch::tensor(values);
  }
  if (v.numel() != model.hidden_size())
    throw Error(ErrorKind::Shape, flag + " " + path,
                "the steering vector has " + std::to_string(v.numel()) + " values, the model's hidden size is " +
                    std::to_string(model.hidden_size()));
  if (!torch::isfinite(v).all().item<bool>()) throw Error(ErrorKind::InvalidArgument, flag + " " + path, "holds NaN or Inf values");
  return v;
}

void save_comparison_html(const std::string& path, const torch::Tensor& first, const torch::Tensor& second,
                          const std::vector<std::string>& rows, const std::string& title,
                          const StandardizedTransformer& model, const TraceInput& prompts, int64_t top, int width,
                          int height) {
  TopkPlotOptions po;
  po.k = top;
  po.title = title;
  po.row_labels = rows;
  po.row_title = "";
  po.width = width;
  po.height = height;
  if (!prompts.tokens) po.subtitles = prompts.prompts;
  save_html(path, plot_topk_tokens(torch::stack({first, second}, 1), model.tokenizer(), po));  // [prompts, 2, vocab]
  fmt::print(stderr, "wrote {}\n", path);
}

std::vector<int> parse_layers(const std::string& spec, const StandardizedTransformer& model) {
  return io::parse_layers(spec, model.num_layers());
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

int64_t answer_token(const StandardizedTransformer& model, const std::string& word, int64_t id, const char* flag) {
  if (id >= 0 && !word.empty())
    throw Error(ErrorKind::InvalidArgument, flag, "given both as a word and as an id", "use one of them");
  if (id >= 0) return id;
  if (word.empty()) throw Error(ErrorKind::InvalidArgument, flag, "missing", std::string("give ") + flag + " WORD or " + flag + "-id N");
  if (!model.tokenizer())
    throw Error(ErrorKind::InvalidArgument, flag, "the model has no tokenizer", std::string("give the token id with ") + flag + "-id N");
  auto ids = model.tokenizer()->encode_ids(word, false);
  if (ids.empty()) throw Error(ErrorKind::Tokenizer, flag, "'" + word + "' tokenizes to nothing");
  if (ids.size() > 1)
    fmt::print(stderr, "nnterp: note: {} '{}' is {} tokens; using the first, {}\n", flag, word, ids.size(),
               nlohmann::json(model.tokenizer()->decode({ids[0]})).dump());
  return ids[0];
}

Point parse_point_kind(const std::string& name, bool residual_only) {
  auto residual = [](Point p) {
    return p == Point::LayerInput || p == Point::LayerOutput || p == Point::AttnInput || p == Point::AttnOutput ||
           p == Point::ResidMid || p == Point::MlpInput || p == Point::MlpOutput;
  };
  std::string known;
  for (const auto& info : point_table()) {
    if (!info.per_layer() || (residual_only && !residual(info.point))) continue;
    const std::string pattern = info.pattern;
    const std::string suffix = pattern.substr(pattern.rfind('.') + 1);
    if (name == pattern || name == suffix || name == info.trace_name) return info.point;
    known += (known.empty() ? "" : ", ") + suffix;
  }
  throw Error(ErrorKind::InvalidArgument, "--point", "unknown point '" + name + "'", "one of: " + known);
}


}  // namespace nnterp::cli

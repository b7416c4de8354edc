// nnterp tokenize [MODEL_OR_TOKENIZER_DIR] [--special] [--jsonl] [--text TEXT] [--prompt TEXT]...
// [--prompts FILE] [--out IN.safetensors]: token ids of text, with the model's own tokenizer
// (tokenizer.json + tokenizer_config.json); the default model's when none is given.
//   --jsonl: stdin holds one JSON string per line; stdout gets one JSON array of ids per line.
//   --prompt / --prompts: each prompt printed as a table (below).
//   otherwise: one text (stdin, minus one trailing newline, or --text) printed as a table of
//   ids, token strings and the text each token decodes to.
//   --out: the texts (any of the above) written instead as an --inputs file: int64 input_ids [B,T]
//   and attention_mask, left-padded, with the special tokens the methods add to --prompt (unless
//   --no-special), so that `--inputs` gives what `--prompt` gives.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <iterator>

#include "commands.hpp"
#include "nnterp/error.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/inputs.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/tokenizer.hpp"
#include "nnterp/tokenizer_tensors.hpp"

namespace nnterp::cli {

namespace {

struct TokenizeOptions {
  std::string model;
  bool special = false;
  bool no_special = false;
  bool jsonl = false;
  std::optional<std::string> text;
  std::vector<std::string> prompts;  // --prompt
  std::string prompts_file;          // --prompts
  std::string out;                   // --out
};

// A folder (or hub id resolved offline), or a tokenizer.json(.gz) file itself.
Tokenizer load_tokenizer(const std::string& name) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_regular_file(name, ec)) {
    const fs::path config = fs::path(name).parent_path() / "tokenizer_config.json";
    return Tokenizer::from_file(name, fs::is_regular_file(config, ec) ? config : fs::path());
  }
  return Tokenizer::from_folder(resolve_model(name));
}

std::string json_string(const std::string& s) {
  return nlohmann::json(s).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// Each stdin line's JSON string, to `each`.
template <typename F>
void for_each_jsonl_line(F&& each) {
  std::string line;
  size_t line_no = 0;
  while (std::getline(std::cin, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(ErrorKind::InvalidArgument, "stdin line " + std::to_string(line_no),
                  std::string("not valid JSON: ") + e.what(), "each line must be one JSON string, e.g. \"Hello\"");
    }
    if (!j.is_string()) {
      throw Error(ErrorKind::InvalidArgument, "stdin line " + std::to_string(line_no), "expected a JSON string",
                  "each line must be one JSON string, e.g. \"Hello\"");
    }
    each(j.get_ref<const std::string&>());
  }
}

void run_jsonl(const Tokenizer& tok, bool special) {
  std::string out;
  for_each_jsonl_line([&](const std::string& text) {
    const auto ids = tok.encode_ids(text, special);
    out.clear();
    out.push_back('[');
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out.push_back(',');
      out += std::to_string(ids[i]);
    }
    out += "]\n";
    std::cout << out;
  });
  std::cout.flush();
}

std::string stdin_text() {
  std::string text(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>{});
  if (!text.empty() && text.back() == '\n') text.pop_back();
  if (!text.empty() && text.back() == '\r') text.pop_back();
  return text;
}

void print_table(const Tokenizer& tok, const std::string& text, const TokenizeOptions& options) {
  const Encoding e = tok.encode(text, options.special);
  fmt::print("{} tokens{}\n", e.ids.size(), options.special ? " (special tokens added)" : "");
  fmt::print("{:>6}  {:>8}  {:<24}  {}\n", "#", "id", "token", "text");
  for (size_t i = 0; i < e.ids.size(); ++i) {
    fmt::print("{:>6}  {:>8}  {:<24}  {}\n", i, e.ids[i], json_string(e.tokens[i]),
               json_string(tok.decode({e.ids[i]}, false)));
  }
  std::string ids;
  for (size_t i = 0; i < e.ids.size(); ++i) ids += (i ? ", " : "") + std::to_string(e.ids[i]);
  fmt::print("ids: [{}]\n", ids);
}

// The texts the options name: --prompt..., --prompts FILE, --jsonl (stdin lines), --text, else stdin.
std::vector<std::string> input_texts(const TokenizeOptions& options) {
  if (!options.prompts.empty()) return options.prompts;
  if (!options.prompts_file.empty()) {
    auto prompts = io::read_prompt_file(options.prompts_file);
    if (prompts.empty()) throw Error(ErrorKind::InvalidArgument, "--prompts " + options.prompts_file, "holds no prompt");
    return prompts;
  }
  if (options.jsonl) {
    std::vector<std::string> texts;
    for_each_jsonl_line([&](const std::string& text) { texts.push_back(text); });
    if (texts.empty()) throw Error(ErrorKind::InvalidArgument, "--jsonl", "stdin holds no line", "one JSON string per line, e.g. \"Hello\"");
    return texts;
  }
  return {options.text ? *options.text : stdin_text()};
}

// --out: the texts left-padded as the methods tokenize --prompt (nnterp/inputs.hpp reads it back).
void write_inputs(const Tokenizer& tok, const TokenizeOptions& options) {
  const auto texts = input_texts(options);
  BatchOptions batch;
  batch.add_special_tokens = !options.no_special;
  const TokenBatch b = encode_batch_tensors(tok, texts, batch);
  for (size_t i = 0; i < texts.size(); ++i)
    if (b.attention_mask.size(1) == 0 || b.attention_mask[static_cast<int64_t>(i)].sum().item<int64_t>() == 0)
      throw Error(ErrorKind::InvalidArgument, "prompt " + std::to_string(i), "tokenizes to no token",
                  "give a non-empty prompt: a forward pass needs at least one token per prompt");
  io::save_safetensors(options.out, {{"input_ids", b.input_ids}, {"attention_mask", b.attention_mask}},
                       {{"command", "tokenize"}, {"special_tokens", options.no_special ? "no" : "yes"}});
  fmt::print(stderr, "wrote {} prompt{} ({} tokens, left-padded) to {}\n", b.input_ids.size(0),
             b.input_ids.size(0) == 1 ? "" : "s", b.input_ids.size(1), options.out);
}

}  // namespace

static CommandRegistration tokenize_command(30, [](CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "token ids of text with a model's tokenizer (tokenizer.json), or an --inputs file");
  cmd->add_option("model", options->model,
                  "model or tokenizer folder, tokenizer.json file, or HuggingFace hub id (resolved offline "
                  "in the HF cache); default: the embedded toy model");
  cmd->add_flag("--special", options->special,
                "add the special tokens (BOS/EOS) the tokenizer adds for a model (with --out: the default)");
  cmd->add_flag("--no-special", options->no_special, "with --out: no special tokens (the ids of the text alone)");
  cmd->add_flag("--jsonl", options->jsonl, "batch mode: one JSON string per stdin line -> one JSON id array per line");
  cmd->add_option("--text", options->text, "the text to tokenize (default: all of stdin, minus one trailing newline)");
  cmd->add_option("--prompt", options->prompts, "a prompt (repeat for a batch): each printed as a table, or all to --out");
  cmd->add_option("--prompts", options->prompts_file,
                  "file of prompts: one per line, or JSONL (a JSON string or {\"prompt\": ...} per line)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--out", options->out,
                  "write the texts as an --inputs file instead: int64 input_ids [B,T] + attention_mask, left-padded, "
                  "special tokens added as --prompt adds them (so --inputs gives what --prompt gives)");
  cmd->footer(
      "Examples:\n"
      "  echo 'Hello world' | nnterp tokenize gpt2\n"
      "  nnterp tokenize path/to/model --special --text 'Hello world'\n"
      "  printf '\"Hello\"\\n\"world\"\\n' | nnterp tokenize path/to/model --jsonl\n"
      "  nnterp tokenize --prompt 'The capital of France is' --prompt 'The sky is' --out in.safetensors\n"
      "  nnterp logit-lens --inputs in.safetensors      # the same as with the two --prompt");
  cmd->callback([options] {
    const int sources = (options->jsonl ? 1 : 0) + (options->text ? 1 : 0) + (!options->prompts.empty() ? 1 : 0) +
                        (!options->prompts_file.empty() ? 1 : 0);
    if (sources > 1)
      throw CLI::ValidationError("--text / --jsonl / --prompt / --prompts", "give the texts one way: only one of them");
    if (options->special && options->no_special)
      throw CLI::ValidationError("--special / --no-special", "--special and --no-special cannot be combined");
    if (options->no_special && options->out.empty())
      throw CLI::ValidationError("--no-special", "--no-special only means something with --out (without it, no special tokens is the default)");
    const Tokenizer tok = load_tokenizer(options->model.empty() ? default_model() : options->model);
    if (!options->out.empty()) {
      write_inputs(tok, *options);
    } else if (options->jsonl) {
      run_jsonl(tok, options->special);
    } else {
      for (const auto& text : input_texts(*options)) print_table(tok, text, *options);
    }
  });
});

}  // namespace nnterp::cli

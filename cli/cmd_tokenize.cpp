// nnterp tokenize MODEL_OR_TOKENIZER_DIR [--special] [--jsonl] [--text TEXT]: token ids of text,
// with the model's own tokenizer (tokenizer.json + tokenizer_config.json).
//   --jsonl: stdin holds one JSON string per line; stdout gets one JSON array of ids per line.
//   otherwise: one text (stdin, minus one trailing newline, or --text) printed as a table of
//   ids, token strings and the text each token decodes to.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <iostream>
#include <iterator>

#include "commands.hpp"
#include "nnterp/error.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::cli {

namespace {

struct TokenizeOptions {
  std::string model;
  bool special = false;
  bool jsonl = false;
  std::optional<std::string> text;
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

void run_jsonl(const Tokenizer& tok, bool special) {
  std::string line;
  size_t line_no = 0;
  std::string out;
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
    const auto ids = tok.encode_ids(j.get_ref<const std::string&>(), special);
    out.clear();
    out.push_back('[');
    for (size_t i = 0; i < ids.size(); ++i) {
      if (i) out.push_back(',');
      out += std::to_string(ids[i]);
    }
    out += "]\n";
    std::cout << out;
  }
  std::cout.flush();
}

void run_text(const Tokenizer& tok, const TokenizeOptions& options) {
  std::string text;
  if (options.text) {
    text = *options.text;
  } else {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
    if (!text.empty() && text.back() == '\n') text.pop_back();
    if (!text.empty() && text.back() == '\r') text.pop_back();
  }
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

}  // namespace

static CommandRegistration tokenize_command(30, [](CLI::App& app) {
  auto options = std::make_shared<TokenizeOptions>();
  auto* cmd = app.add_subcommand("tokenize", "token ids of text with a model's tokenizer (tokenizer.json)");
  cmd->add_option("model", options->model,
                  "model or tokenizer folder, tokenizer.json file, or HuggingFace hub id (resolved offline "
                  "in the HF cache)")
      ->required();
  cmd->add_flag("--special", options->special, "add the special tokens (BOS/EOS) the tokenizer adds for a model");
  cmd->add_flag("--jsonl", options->jsonl, "batch mode: one JSON string per stdin line -> one JSON id array per line");
  cmd->add_option("--text", options->text, "the text to tokenize (default: all of stdin, minus one trailing newline)");
  cmd->footer(
      "Examples:\n"
      "  echo 'Hello world' | nnterp tokenize gpt2\n"
      "  nnterp tokenize path/to/model --special --text 'Hello world'\n"
      "  printf '\"Hello\"\\n\"world\"\\n' | nnterp tokenize path/to/model --jsonl");
  cmd->callback([options] {
    if (options->jsonl && options->text) {
      throw CLI::ValidationError("--text", "--text and --jsonl cannot be combined");
    }
    const Tokenizer tok = load_tokenizer(options->model);
    if (options->jsonl) {
      run_jsonl(tok, options->special);
    } else {
      run_text(tok, *options);
    }
  });
});

}  // namespace nnterp::cli

// nnterp chat-template MODEL (--messages FILE.json | --user TEXT) [...]: a conversation rendered
// with the model's chat template exactly as transformers' tokenizer.apply_chat_template renders it;
// --ids prints the token ids instead, --list the model's templates.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <sstream>

#include <unistd.h>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/error.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::cli {

namespace {

struct ChatTemplateCmd {
  std::string model, messages, tools, documents, template_name, time;
  std::string system, user;
  std::vector<std::string> vars;
  bool add_generation_prompt = false, continue_final_message = false, ids = false, json = false, list = false;
};

// A JSON file's text, or stdin's for "-".
std::string read_text(const std::string& path, const std::string& flag) {
  if (path == "-") return std::string(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, path, "cannot open the file given to " + flag);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// --var KEY=VALUE...: VALUE is JSON when it parses as JSON (true, 3, "x", [..]), else a string.
std::string extra_variables(const std::vector<std::string>& vars) {
  if (vars.empty()) return "";
  nlohmann::ordered_json extra = nlohmann::ordered_json::object();
  for (const auto& var : vars) {
    const size_t eq = var.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(ErrorKind::InvalidArgument, "--var " + var, "expected KEY=VALUE", "e.g. --var enable_thinking=false");
    const std::string value = var.substr(eq + 1);
    nlohmann::ordered_json parsed = nlohmann::ordered_json::parse(value, nullptr, /*allow_exceptions=*/false);
    extra[var.substr(0, eq)] = parsed.is_discarded() ? nlohmann::ordered_json(value) : parsed;
  }
  return extra.dump();
}

std::string messages_json(const ChatTemplateCmd& o) {
  if (!o.messages.empty()) {
    if (!o.user.empty() || !o.system.empty())
      throw Error(ErrorKind::InvalidArgument, "--messages", "cannot be combined with --user / --system");
    return read_text(o.messages, "--messages");
  }
  if (o.user.empty())
    throw Error(ErrorKind::InvalidArgument, "chat-template", "no conversation given",
                "use --messages FILE.json (a JSON list of {\"role\", \"content\"} objects, - for stdin) or --user TEXT");
  nlohmann::ordered_json list = nlohmann::ordered_json::array();
  if (!o.system.empty()) list.push_back({{"role", "system"}, {"content", o.system}});
  list.push_back({{"role", "user"}, {"content", o.user}});
  return list.dump();
}

void list_templates(const Tokenizer& tok) {
  if (!tok.has_chat_template()) {
    fmt::print("no chat template\n");
    return;
  }
  const auto names = tok.chat_template_names();
  if (names.empty()) {
    fmt::print("one chat template ({} bytes)\n", tok.chat_template_source().size());
    return;
  }
  for (const auto& name : names) {
    ChatTemplateOptions options;
    options.chat_template = name;
    fmt::print("{} ({} bytes)\n", name, tok.chat_template_source(options).size());
  }
}

void run(const ChatTemplateCmd& o) {
  reject_prompt_as_model(o.model);
  const Tokenizer tok = Tokenizer::from_folder(resolve_model(o.model.empty() ? default_model() : o.model));
  if (o.list) return list_templates(tok);
  ChatTemplateOptions options;
  options.add_generation_prompt = o.add_generation_prompt;
  options.continue_final_message = o.continue_final_message;
  options.chat_template = chat_template_choice(o.template_name, tok, "--template");
  if (!o.tools.empty()) options.tools_json = read_text(o.tools, "--tools");
  if (!o.documents.empty()) options.documents_json = read_text(o.documents, "--documents");
  options.extra_json = extra_variables(o.vars);
  options.render.fixed_time = o.time;
  std::string text;
  try {
    text = tok.apply_chat_template_json(messages_json(o), options);
  } catch (const Error& e) {
    if (e.subject() != "ChatRenderOptions::fixed_time") throw;
    throw Error(e.kind(), "--time", e.message(), e.hint());  // name the flag the user typed
  }
  if (!o.ids && !o.json) {
    std::cout << text;  // byte for byte when piped; a final newline only for the eye on a terminal
    if (isatty(STDOUT_FILENO) && (text.empty() || text.back() != '\n')) std::cout << "\n";
    return;
  }
  const auto ids = tok.encode_ids(text, false);  // the template writes the special tokens itself
  if (o.json) {
    fmt::print("{}\n", nlohmann::json{{"text", text}, {"ids", ids}}.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
    return;
  }
  fmt::print("{}\n", nlohmann::json(ids).dump());
}

}  // namespace

static CommandRegistration chat_template_command(32, [](CLI::App& app) {
  auto o = std::make_shared<ChatTemplateCmd>();
  auto* cmd = app.add_subcommand("chat-template",
                                 "a conversation in the model's chat template, as transformers' apply_chat_template renders it");
  cmd->add_option("model", o->model,
                  "model or tokenizer folder, or HuggingFace hub id (resolved offline); default: the embedded model");
  cmd->add_option("--messages", o->messages,
                  "the conversation: a JSON file holding a list of {\"role\", \"content\", ...} messages (- for stdin)");
  cmd->add_option("--user", o->user, "instead of --messages: one user turn with this text");
  cmd->add_option("--system", o->system, "with --user: a system turn before it");
  cmd->add_flag("--add-generation-prompt", o->add_generation_prompt, "end with the header of a new assistant turn");
  cmd->add_flag("--continue-final-message", o->continue_final_message,
                "leave the last message open so the model continues it (cut as transformers cuts it)");
  cmd->add_option("--template", o->template_name, "one of the model's named templates (see --list), or a .jinja file");
  cmd->add_option("--tools", o->tools, "a JSON file holding a list of tool schemas (the template's `tools`)");
  cmd->add_option("--documents", o->documents, "a JSON file holding a list of documents (the template's `documents`)");
  cmd->add_option("--var", o->vars, "a further template variable KEY=VALUE (VALUE as JSON when it parses), repeatable");
  cmd->add_option("--time", o->time, "strftime_now's clock, \"YYYY-MM-DD HH:MM:SS\" (default: now)");
  cmd->add_flag("--ids", o->ids, "print the token ids (the text encoded without added special tokens) instead");
  cmd->add_flag("--json", o->json, "print {\"text\": ..., \"ids\": [...]}");
  cmd->add_flag("--list", o->list, "list the model's chat templates and exit");
  cmd->footer(
      "Examples:\n"
      "  nnterp chat-template path/to/Qwen3-0.6B --user \"Hi\" --add-generation-prompt\n"
      "  nnterp chat-template path/to/model --messages chat.json --var enable_thinking=false --ids\n"
      "  nnterp chat-template path/to/model --messages chat.json --tools tools.json --template tool_use");
  cmd->callback([o] {
    if (o->add_generation_prompt && o->continue_final_message)
      throw CLI::ValidationError("--continue-final-message", "cannot be combined with --add-generation-prompt");
    if (o->ids && o->json) throw CLI::ValidationError("--ids", "--ids and --json cannot be combined");
    run(*o);
  });
});

}  // namespace nnterp::cli

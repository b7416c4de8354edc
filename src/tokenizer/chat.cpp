// Chat templates of a tokenizer: loaded and applied as transformers' PreTrainedTokenizerBase does
// (from_pretrained's chat_template.jinja / additional_chat_templates handling, get_chat_template,
// apply_chat_template and render_jinja_template's continue_final_message cut).
#include "tokenizer/tok_chat.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include "chat/chat_template_internal.hpp"
#include "chat/jinja_text.hpp"

namespace nnterp::tok {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;

namespace {

constexpr const char* kNoTemplateHint =
    "this tokenizer has no chat template (no \"chat_template\" in tokenizer_config.json, no "
    "chat_template.jinja): pass one as the chat_template argument (Python: "
    "apply_chat_template(..., chat_template=SOURCE); C++: ChatTemplateOptions::chat_template; CLI: --template FILE)";

// A template file read as transformers reads it (Python's text mode): "\r\n" and a lone "\r" read as
// "\n". Rendering does not depend on it (Jinja2 normalizes newlines), the source we report does.
std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::Io, path.string(), "cannot open the chat template");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  const std::string raw = bytes.str();
  std::string text;
  text.reserve(raw.size());
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] != '\r') {
      text += raw[i];
    } else {
      text += '\n';
      if (i + 1 < raw.size() && raw[i + 1] == '\n') ++i;
    }
  }
  return text;
}

NamedChatTemplate make_template(std::string name, std::string origin, std::string source) {
  NamedChatTemplate t{std::move(name), std::move(origin), std::move(source), nullptr, std::nullopt};
  const std::string label = t.name.empty() ? t.origin : t.origin + " '" + t.name + "'";
  try {
    t.parsed = std::make_shared<const chat::Template>(t.source, label);
  } catch (const chat::TemplateError& e) {
    t.parse_error = chat_internal::to_error(e);  // loading still succeeds: the tokenizer works without it
  }
  return t;
}

// Adds a named template as transformers fills its dict of templates: a name seen before keeps its
// place and takes the new source (the last one wins).
void add_named(std::vector<NamedChatTemplate>& templates, NamedChatTemplate t) {
  for (auto& existing : templates) {
    if (existing.name == t.name) {
      existing = std::move(t);
      return;
    }
  }
  templates.push_back(std::move(t));
}

// tokenizer_config.json's "chat_template": a string, or a list of {"name", "template"}.
std::vector<NamedChatTemplate> config_templates(const io::JsonValue& config, bool& named) {
  std::vector<NamedChatTemplate> out;
  const auto value = config.find("chat_template");
  if (!value) return out;
  if (value->is_string()) {
    out.push_back(make_template("", "tokenizer_config.json", value->string()));
    return out;
  }
  if (!value->is_array()) value->fail("a string or a list of {\"name\", \"template\"} objects");
  named = true;
  for (const auto& entry : value->elements()) {
    add_named(out, make_template(entry.at("name").string(), "tokenizer_config.json", entry.at("template").string()));
  }
  return out;
}

// transformers' special_tokens_map, as strings: SPECIAL_TOKENS_ATTRIBUTES (those set, non-empty),
// then tokenizer_config.json's "extra_special_tokens" ({"image_token": "<...>", ...}; v4.47+).
// The values come from tokenizer_config.json; special_tokens_map.json is read only on
// from_pretrained's legacy path (a config without "added_tokens_decoder"), and there its values
// win, its additional_special_tokens appended to the config's (those not already there; a string
// and a token object never compare equal).
json special_tokens_map(const io::JsonValue& config, const io::JsonValue& special_map) {
  const bool legacy = !config.contains("added_tokens_decoder");
  const auto lookup = [&](const char* key) { return special_token_entry(config, special_map, key); };
  json out = json::object();
  for (const char* key : {"bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token"}) {
    if (const auto value = lookup(key)) {
      const std::string content = special_token_content(*value);
      if (!content.empty()) out[key] = content;
    }
  }
  std::vector<std::pair<bool, std::string>> extra;  // (a token object?, content)
  const auto append = [&extra](const io::JsonValue& list, bool dedupe) {
    for (const auto& token : list.elements()) {
      std::pair<bool, std::string> entry{token.is_object(), special_token_content(token)};
      if (!dedupe || std::find(extra.begin(), extra.end(), entry) == extra.end()) extra.push_back(std::move(entry));
    }
  };
  const auto from_map = legacy ? special_map.find("additional_special_tokens") : std::nullopt;
  if (from_map && from_map->is_array()) {
    if (const auto from_config = config.find("additional_special_tokens")) append(*from_config, false);
    append(*from_map, true);
  } else if (const auto list = lookup("additional_special_tokens")) {
    append(*list, false);
  }
  if (!extra.empty()) {
    json list = json::array();
    for (auto& [is_object, content] : extra) list.push_back(std::move(content));
    out["additional_special_tokens"] = std::move(list);
  }
  // A list here is transformers 5's format, which 4.x cannot load; nnterp ignores it.
  if (const auto named = config.find("extra_special_tokens"); named && named->is_object()) {
    for (const auto& [key, value] : named->items()) {
      const std::string content = special_token_content(value);
      if (content.empty()) {
        out.erase(key);
      } else {
        out[key] = content;
      }
    }
  }
  return out;
}

// Python's str.strip / str.lstrip (Unicode whitespace).
std::string_view py_lstrip(std::string_view s) {
  size_t start = 0;
  while (size_t n = chat::jinja_detail::space_length_at(s, start)) start += n;
  return s.substr(start);
}
std::string_view py_strip(std::string_view s) { return chat::jinja_detail::strip_spaces_right(py_lstrip(s)); }

json parse_list(std::string_view text, const std::string& what) {
  json value = chat_internal::parse_json(text, what);
  if (!value.is_array()) throw Error(ErrorKind::InvalidArgument, what, "expected a JSON list");
  return value;
}

json parse_messages(std::string_view messages_json) {
  json messages = parse_list(messages_json, "the chat messages");
  for (size_t i = 0; i < messages.size(); ++i) {
    if (!messages[i].is_object()) {
      throw Error(ErrorKind::InvalidArgument, "the chat messages",
                  "message " + std::to_string(i) + " is not an object",
                  R"(each message is {"role": "user", "content": "..."}; one conversation per call)");
    }
  }
  return messages;
}

// The text of the last message that continue_final_message leaves open: its content, or the
// last text part of a list of parts.
std::string final_message_text(const json& messages) {
  const char* subject = "the chat messages";
  if (messages.empty()) {
    throw Error(ErrorKind::InvalidArgument, subject, "continue_final_message needs at least one message");
  }
  const json& last = messages.back();
  const auto content = last.find("content");
  if (content == last.end()) {
    throw Error(ErrorKind::InvalidArgument, subject, "continue_final_message: the final message has no \"content\"");
  }
  if (content->is_string()) return content->get<std::string>();  // json: type-checked
  const auto no_text = [subject] {
    return Error(ErrorKind::InvalidArgument, subject,
                 "continue_final_message is set but we could not find any text to continue in the final message",
                 "the final message's content is a string, or a list of parts whose last {\"text\": ...} part "
                 "is continued");
  };
  if (!content->is_array()) throw no_text();
  // transformers takes the last part `p` with `"text" in p` and continues p["text"]: a part that
  // is not an object passes that test (and then fails) when it is a string containing "text", a
  // list holding "text", or anything else Python's `in` refuses.
  for (auto part = content->rbegin(); part != content->rend(); ++part) {
    if (part->is_object()) {
      const auto text = part->find("text");
      if (text == part->end()) continue;
      if (text->is_string()) return text->get<std::string>();  // json: type-checked
      throw no_text();
    }
    if (part->is_string()) {
      if (part->get_ref<const std::string&>().find("text") == std::string::npos) continue;  // json: type-checked
    } else if (part->is_array()) {
      if (std::find(part->begin(), part->end(), json("text")) == part->end()) continue;
    }
    throw no_text();
  }
  throw no_text();
}

// render_jinja_template's cut: the rendering ends right after the final message's text.
std::string cut_after_final_message(std::string rendered, const std::string& final_message) {
  const std::string_view stripped = py_strip(final_message);
  const size_t at = rendered.rfind(stripped);
  if (at == std::string::npos) {
    throw Error(ErrorKind::Template, "continue_final_message",
                "the final message does not appear in the chat after applying the chat template",
                "the template rewrites or drops the final message (e.g. an assistant turn's reasoning); "
                "render without continue_final_message and cut the text yourself");
  }
  const size_t lstripped = py_lstrip(final_message).size();
  if (rendered.compare(at, lstripped, final_message) == 0) {
    rendered.resize(std::min(rendered.size(), at + lstripped));  // the template kept the spacing
  } else {
    rendered.resize(at + stripped.size());  // trailing spacing was trimmed by the template
  }
  return rendered;
}

}  // namespace

std::optional<io::JsonValue> special_token_entry(const io::JsonValue& config, const io::JsonValue& special_map,
                                                const char* key) {
  const bool legacy = !config.contains("added_tokens_decoder");
  return legacy && special_map.contains(key) ? special_map.find(key) : config.find(key);
}

std::string special_token_content(const io::JsonValue& v) {
  if (v.is_object()) return v.at("content").string();
  if (!v.is_string()) v.fail("a string or an AddedToken object");
  return v.string();
}

ChatTemplateFiles read_chat_template_files(const fs::path& dir) {
  ChatTemplateFiles files;
  std::error_code ec;
  const fs::path main = dir / "chat_template.jinja";
  if (fs::is_regular_file(main, ec)) files.main = read_text_file(main);
  const fs::path extra = dir / "additional_chat_templates";
  if (fs::is_directory(extra, ec)) {
    for (const auto& entry : fs::directory_iterator(extra, ec)) {
      if (entry.path().extension() != ".jinja" || !entry.is_regular_file(ec)) continue;
      files.additional.emplace_back(entry.path().stem().string(), read_text_file(entry.path()));
    }
    std::sort(files.additional.begin(), files.additional.end());
  }
  return files;
}

ChatTemplates load_chat_templates(const io::JsonValue& config, const io::JsonValue& special_map,
                                  ChatTemplateFiles files) {
  ChatTemplates out;
  out.special_tokens = special_tokens_map(config, special_map);
  out.templates = config_templates(config, out.named);
  if (files.main) {  // from_pretrained: chat_template.jinja clobbers the config's template
    out.templates.clear();
    out.named = false;
    out.templates.push_back(make_template("", "chat_template.jinja", std::move(*files.main)));
  }
  if (!files.additional.empty()) {
    if (!out.named) {
      for (auto& t : out.templates) t.name = "default";
      out.named = true;
    }
    for (auto& [name, source] : files.additional) {  // additional_chat_templates/default.jinja replaces the main one
      add_named(out.templates, make_template(name, "additional_chat_templates/" + name + ".jinja", std::move(source)));
    }
  }
  return out;
}

const NamedChatTemplate& select_chat_template(const ChatTemplates& templates, const ChatTemplateOptions& options,
                                              bool has_tools) {
  const auto by_name = [&](const std::string& name) -> const NamedChatTemplate* {
    for (const auto& t : templates.templates) {
      if (templates.named && t.name == name) return &t;
    }
    return nullptr;
  };
  if (templates.templates.empty()) throw Error(ErrorKind::Template, "chat_template", "no chat template", kNoTemplateHint);
  if (!templates.named) return templates.templates.front();
  if (options.chat_template.empty()) {
    if (has_tools) {
      if (const auto* t = by_name("tool_use")) return *t;
    }
    if (const auto* t = by_name("default")) return *t;
    std::vector<std::string> sorted;
    for (const auto& t : templates.templates) sorted.push_back(t.name);
    std::sort(sorted.begin(), sorted.end());
    std::string names;
    for (const auto& name : sorted) names += (names.empty() ? "" : ", ") + name;
    throw Error(ErrorKind::Template, "chat_template", "this model has several chat templates and none is named 'default'",
                "pick one by name with the chat_template argument (Python: chat_template=NAME; C++: "
                "ChatTemplateOptions::chat_template; CLI: --template NAME), or pass a template's source; "
                "available: " + names);
  }
  const auto* t = by_name(options.chat_template);
  if (!t) throw Error(ErrorKind::Template, "chat_template", "no template named '" + options.chat_template + "'");
  return *t;
}

namespace {

std::string apply_to(const ChatTemplates& templates, const json& messages, const ChatTemplateOptions& options) {
  if (options.add_generation_prompt && options.continue_final_message) {
    throw Error(ErrorKind::InvalidArgument, "ChatTemplateOptions",
                "continue_final_message and add_generation_prompt are not compatible",
                "continue_final_message continues the last message; add_generation_prompt starts a new assistant turn");
  }
  json tools = nullptr, documents = nullptr;
  if (!options.tools_json.empty()) tools = parse_list(options.tools_json, "the tools");
  if (!options.documents_json.empty()) documents = parse_list(options.documents_json, "the documents");
  for (const json* list : {&tools, &documents}) {
    for (const auto& item : list->is_array() ? *list : json::array()) {
      if (!item.is_object()) {
        throw Error(ErrorKind::InvalidArgument, list == &tools ? "the tools" : "the documents",
                    "expected a list of JSON objects, found " + std::string(item.type_name()));
      }
    }
  }

  // An explicit template source is used as it is; a name picks one of the model's templates.
  std::optional<chat::Template> given;
  const chat::Template* parsed = nullptr;
  const bool is_name = templates.named && std::any_of(templates.templates.begin(), templates.templates.end(),
                                                      [&](const auto& t) { return t.name == options.chat_template; });
  if (!options.chat_template.empty() && !is_name) {
    try {
      given.emplace(options.chat_template, "the given chat template");
    } catch (const chat::TemplateError& e) {
      throw chat_internal::to_error(e);
    }
    parsed = &*given;
  } else {
    const NamedChatTemplate& chosen = select_chat_template(templates, options, tools.is_array());
    if (chosen.parse_error) throw *chosen.parse_error;
    parsed = chosen.parsed.get();
  }

  // render(messages=..., tools=..., documents=..., add_generation_prompt=..., **special_tokens, **kwargs)
  json context = templates.special_tokens;
  if (!options.extra_json.empty()) {
    const json extra = chat_internal::parse_json(options.extra_json, "the extra template variables");
    if (!extra.is_object()) {
      throw Error(ErrorKind::InvalidArgument, "the extra template variables", "expected a JSON object",
                  R"(e.g. {"enable_thinking": false})");
    }
    for (const auto& [key, value] : extra.items()) {
      if (key == "messages" || key == "tools" || key == "documents" || key == "add_generation_prompt") {
        throw Error(ErrorKind::InvalidArgument, "the extra template variables",
                    "'" + key + "' is set by apply_chat_template itself", "use the option of that name instead");
      }
      context[key] = value;
    }
  }
  context["messages"] = messages;
  context["tools"] = tools;
  context["documents"] = documents;
  context["add_generation_prompt"] = options.add_generation_prompt;
  std::string rendered = chat_internal::render(*parsed, context, options.render);
  if (options.continue_final_message) rendered = cut_after_final_message(std::move(rendered), final_message_text(messages));
  return rendered;
}

}  // namespace

std::string apply_chat_template(const ChatTemplates& templates, std::string_view messages_json,
                                const ChatTemplateOptions& options) {
  return apply_to(templates, parse_messages(messages_json), options);
}

std::string apply_chat_template(const ChatTemplates& templates, const std::vector<ChatMessage>& messages,
                                const ChatTemplateOptions& options) {
  json list = json::array();
  for (const auto& m : messages) list.push_back(json{{"role", m.role}, {"content", m.content}});
  return apply_to(templates, list, options);
}

}  // namespace nnterp::tok

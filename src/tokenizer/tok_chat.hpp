// A tokenizer's chat templates, loaded as transformers loads them, and apply_chat_template.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "chat/jinja.hpp"
#include "io/json_reader.hpp"
#include "nnterp/error.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::tok {

struct NamedChatTemplate {
  std::string name;    // empty for a model's single template
  std::string origin;  // where it came from ("chat_template.jinja", "tokenizer_config.json"), for errors
  std::string source;
  std::shared_ptr<const chat::Template> parsed;  // null when the source does not parse...
  std::optional<Error> parse_error;              // ...and this says why (reported when it is used)
};

struct ChatTemplates {
  std::vector<NamedChatTemplate> templates;  // one unnamed template, or named ones
  bool named = false;
  // transformers' special_tokens_map, passed to every template: bos_token, eos_token, unk_token,
  // sep_token, pad_token, cls_token, mask_token (strings) and additional_special_tokens (a list),
  // those that are set.
  nlohmann::ordered_json special_tokens = nlohmann::ordered_json::object();
};

// The template files of a model folder: chat_template.jinja (it replaces tokenizer_config.json's
// template) and additional_chat_templates/NAME.jinja (named templates besides it).
struct ChatTemplateFiles {
  std::optional<std::string> main;
  std::vector<std::pair<std::string, std::string>> additional;  // name, source (sorted by name)
};
ChatTemplateFiles read_chat_template_files(const std::filesystem::path& dir);

ChatTemplates load_chat_templates(const io::JsonValue& config, const io::JsonValue& special_map,
                                  ChatTemplateFiles files);

// The template `options` select (transformers' get_chat_template), or Error(Template).
const NamedChatTemplate& select_chat_template(const ChatTemplates& templates, const ChatTemplateOptions& options,
                                              bool has_tools);
std::string apply_chat_template(const ChatTemplates& templates, std::string_view messages_json,
                                const ChatTemplateOptions& options);
std::string apply_chat_template(const ChatTemplates& templates, const std::vector<ChatMessage>& messages,
                                const ChatTemplateOptions& options);

// Special token `key` ("bos_token", ...) as transformers' from_pretrained settles it: from
// tokenizer_config.json, except on its legacy path (a config without "added_tokens_decoder"),
// where special_tokens_map.json's value wins. nullopt: absent or null.
std::optional<io::JsonValue> special_token_entry(const io::JsonValue& config, const io::JsonValue& special_map,
                                                const char* key);

// A special token of tokenizer_config.json / special_tokens_map.json: "content" or an
// AddedToken object {"content": ...}.
std::string special_token_content(const io::JsonValue& v);

}  // namespace nnterp::tok

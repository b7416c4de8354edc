// HuggingFace tokenizers in C++: reads a model folder's tokenizer.json (or tokenizer.json.gz)
// and tokenizer_config.json, and encodes/decodes exactly as the Rust `tokenizers` library
// (0.23.x) does. Torch-free; see nnterp/tokenizer_tensors.hpp for tensors.
//
// Thread safety: a Tokenizer is immutable once built; every const method may be called from
// several threads at once. A DecodeStream belongs to one thread.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nnterp/chat_template.hpp"

namespace nnterp {

// The result of encoding one text.
struct Encoding {
  std::vector<int64_t> ids;
  std::vector<std::string> tokens;  // the token strings (vocabulary form, e.g. "Ġworld")
};

enum class PaddingSide { Left, Right };

struct BatchOptions {
  bool add_special_tokens = true;
  // Left padding is the default: every nnterp method reads the last position of each row.
  PaddingSide padding_side = PaddingSide::Left;
  // Truncate each sequence to at most this many tokens (special tokens included).
  std::optional<size_t> max_length;
  PaddingSide truncation_side = PaddingSide::Right;
  // Threads encoding the texts: 0 = automatic (all cores for large batches), 1 = this thread.
  unsigned num_threads = 0;
};

// Rectangular after padding: input_ids[b].size() == attention_mask[b].size() == T for all b.
struct BatchEncoding {
  std::vector<std::vector<int64_t>> input_ids;
  std::vector<std::vector<int64_t>> attention_mask;
  size_t batch_size() const { return input_ids.size(); }
  size_t seq_len() const { return input_ids.empty() ? 0 : input_ids.front().size(); }
};

// One turn of a conversation, for conversations of plain-text turns. Turns with structured
// content (lists of parts, tool calls, reasoning) go through the JSON overloads below.
struct ChatMessage {
  std::string role;     // "system", "user", "assistant", "tool", ...
  std::string content;
};

// transformers' apply_chat_template arguments.
struct ChatTemplateOptions {
  // Append the template's header for a new assistant turn.
  bool add_generation_prompt = false;
  // Leave the last message open (no end-of-turn after it) so the model continues it; the
  // rendering is cut after that message's text exactly as transformers cuts it. Not with
  // add_generation_prompt.
  bool continue_final_message = false;
  // Which of the model's templates: a name from chat_template_names(), or the source of a
  // template to use instead of the model's (transformers' `chat_template=` argument). Empty: the
  // model's template ("tool_use" when tools are given and the model has one, else "default").
  std::string chat_template;
  // JSON lists of tool schemas and of documents (each an object); empty: None.
  std::string tools_json;
  std::string documents_json;
  // A JSON object of further template variables (transformers' **kwargs), e.g.
  // {"enable_thinking": false}; they override the special tokens of the same name.
  std::string extra_json;
  // Limits and strftime_now's clock (nnterp/chat_template.hpp).
  ChatRenderOptions render;
};

struct TokenizerOptions {
  // Apply tokenizer_config.json's add_bos_token / add_eos_token to the post-processor, as
  // transformers' fast tokenizers do (see docs/tokenizers.md). When false, special tokens come
  // from tokenizer.json's post_processor alone, exactly as the Rust library does.
  bool follow_tokenizer_config = true;
};

class Tokenizer {
 public:
  // `dir` holds tokenizer.json or tokenizer.json.gz, and optionally tokenizer_config.json and
  // special_tokens_map.json. Throws nnterp::Error (Io, Format, Unsupported).
  static Tokenizer from_folder(const std::filesystem::path& dir, const TokenizerOptions& options = {});
  // An explicit tokenizer.json (or .gz) and an optional tokenizer_config.json.
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json,
                             const std::filesystem::path& tokenizer_config = {},
                             const TokenizerOptions& options = {});
  // The content of a tokenizer.json (and optionally of a tokenizer_config.json).
  static Tokenizer from_json_string(std::string_view tokenizer_json, std::string_view tokenizer_config = {},
                                    const TokenizerOptions& options = {});

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Throws Error(Tokenizer) when `text` is not valid UTF-8.
  Encoding encode(std::string_view text, bool add_special_tokens = true) const;
  std::vector<int64_t> encode_ids(std::string_view text, bool add_special_tokens = true) const;
  BatchEncoding encode_batch(const std::vector<std::string>& texts, const BatchOptions& options = {}) const;

  // Unknown ids are skipped, as the Rust library does.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special_tokens = false) const;
  std::vector<std::string> decode_batch(const std::vector<std::vector<int64_t>>& ids,
                                        bool skip_special_tokens = false) const;

  std::optional<int64_t> token_to_id(std::string_view token) const;
  // The token string of an id ("" when the id is unknown).
  std::string id_to_token(int64_t id) const;
  // Number of distinct ids: the model's vocabulary plus the added tokens outside it.
  size_t vocab_size() const;
  bool is_special_id(int64_t id) const;

  std::optional<int64_t> pad_token_id() const;
  std::optional<int64_t> bos_token_id() const;
  std::optional<int64_t> eos_token_id() const;
  // The id used to pad batches: pad, else eos, else 0 (the attention mask hides it anyway).
  int64_t padding_id() const;

  // Chat templates: tokenizer_config.json's "chat_template" (a string, or a list of {"name",
  // "template"}), overridden by chat_template.jinja next to it, plus additional_chat_templates/
  // NAME.jinja, as transformers loads them.
  bool has_chat_template() const;
  // The named templates ("default", "tool_use", ...); empty when the model has a single template.
  std::vector<std::string> chat_template_names() const;
  // The source of the template `options` select; throws Error(Template) when there is none.
  std::string chat_template_source(const ChatTemplateOptions& options = {}) const;

  // transformers' apply_chat_template(messages, tokenize=False): the template rendered with
  // `messages`, add_generation_prompt, tools, documents, the special tokens (bos_token,
  // eos_token, ... as strings) and extra_json's variables. `messages_json` is a JSON list of
  // message objects. Throws Error(Template) (no template, a template error, a message the
  // continue_final_message cut cannot find) or Error(InvalidArgument) (malformed JSON).
  std::string apply_chat_template(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options = {}) const;
  std::string apply_chat_template_json(std::string_view messages_json, const ChatTemplateOptions& options = {}) const;
  // tokenize=True: the rendering encoded without adding special tokens (the template writes them).
  std::vector<int64_t> encode_chat(const std::vector<ChatMessage>& messages, const ChatTemplateOptions& options = {}) const;

  // Incremental decoding of generated ids, as HuggingFace's DecodeStream: step() returns the
  // new text once it is complete (no trailing partial UTF-8 character), std::nullopt before.
  class DecodeStream {
   public:
    explicit DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens = false);
    std::optional<std::string> step(int64_t id);

   private:
    const Tokenizer* tokenizer_;
    bool skip_special_tokens_;
    std::vector<int64_t> ids_;
    std::string prefix_;
    size_t prefix_index_ = 0;
  };
  DecodeStream decode_stream(bool skip_special_tokens = false) const { return DecodeStream(*this, skip_special_tokens); }

  struct Impl;  // opaque

 private:
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace nnterp

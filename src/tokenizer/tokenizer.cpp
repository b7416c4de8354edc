// The Tokenizer: loading tokenizer.json (+ tokenizer_config.json), the encode pipeline (added
// tokens -> normalizer -> pre-tokenizer -> model -> post-processor), batches, and decoding.
#include "nnterp/tokenizer.hpp"

#include <nlohmann/json.hpp>
#include <zlib.h>

#include <algorithm>
#include <exception>
#include <limits>
#include <thread>

#include "io/json_limits.hpp"
#include "io/json_reader.hpp"
#include "nnterp/error.hpp"
#include "tokenizer/added_vocabulary.hpp"
#include "tokenizer/tok_chat.hpp"
#include "tokenizer/tok_components.hpp"

namespace nnterp {

namespace fs = std::filesystem;
using tok::AddedSplit;
using tok::PtState;

struct Tokenizer::Impl {
  std::unique_ptr<tok::TokNormalizer> normalizer;
  std::unique_ptr<tok::TokPreTokenizer> pre_tokenizer;
  std::unique_ptr<tok::TokModel> model;
  std::unique_ptr<tok::TokPostProcessor> post_processor;
  std::unique_ptr<tok::TokDecoder> decoder;
  tok::AddedVocabulary added;
  std::optional<int64_t> pad_id, bos_id, eos_id;
  tok::ChatTemplates chat;

  // Everything up to (not including) the post-processor.
  void encode_content(std::string_view text, std::vector<uint32_t>& ids, std::vector<std::string>* tokens) const;
  void post_process(std::vector<uint32_t>& ids, std::vector<std::string>* tokens, bool add_special) const {
    if (post_processor) post_processor->process(ids, tokens, add_special);
  }
  size_t added_special_count() const { return post_processor ? post_processor->added_tokens() : 0; }
  bool token_string(uint32_t id, std::string* out) const {
    if (auto t = added.decode_text(id)) {
      out->assign(t->data(), t->size());
      return true;
    }
    return model->id_to_token(id, out);
  }
  int64_t lookup(std::string_view token) const {
    const int64_t a = added.token_to_id(token);
    return a >= 0 ? a : model->token_to_id(token);
  }
};

namespace {

void tok_check_utf8(std::string_view text) {
  if (text.size() >= std::numeric_limits<uint32_t>::max() / 4) {
    throw Error(ErrorKind::Tokenizer, "input text", "the text is too long (" + std::to_string(text.size()) + " bytes)",
                "split it into pieces under 1 GB");
  }
  const size_t valid = tok::utf8_valid_prefix(text);
  if (valid != text.size()) {
    throw Error(ErrorKind::Tokenizer, "input text",
                "invalid UTF-8 at byte " + std::to_string(valid) + " of " + std::to_string(text.size()),
                "tokenizers only accept UTF-8 text; decode or clean the input first");
  }
}

struct TokEncodeWorkspace {
  std::vector<AddedSplit> raw_splits, norm_splits;
  std::string norm;
  PtState st, scratch;
};

std::string tok_read_file(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw Error(ErrorKind::Io, path.string(), "no such file");
  }
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw Error(ErrorKind::Io, path.string(), "cannot open the file");
  gzbuffer(f, 1 << 17);
  std::string out;
  const auto size = fs::file_size(path, ec);
  if (!ec) out.reserve(static_cast<size_t>(size) * (path.extension() == ".gz" ? 4 : 1));
  char buf[1 << 16];
  while (true) {
    const int n = gzread(f, buf, sizeof buf);
    if (n < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      const std::string m = msg ? msg : "read error";
      gzclose(f);
      throw Error(ErrorKind::Io, path.string(), "cannot read the file: " + m);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  gzclose(f);
  return out;
}

}  // namespace

void Tokenizer::Impl::encode_content(std::string_view text, std::vector<uint32_t>& ids,
                                     std::vector<std::string>* tokens) const {
  thread_local TokEncodeWorkspace ws;
  std::vector<AddedSplit>& raw = ws.raw_splits;
  added.split(text, false, raw);
  for (size_t r = 0; r < raw.size(); ++r) {
    const AddedSplit rs = raw[r];
    if (rs.id >= 0) {
      ids.push_back(static_cast<uint32_t>(rs.id));
      if (tokens) tokens->emplace_back(text.substr(rs.start, rs.end - rs.start));
      continue;
    }
    if (rs.end <= rs.start) continue;
    ws.norm.assign(text.data() + rs.start, rs.end - rs.start);
    if (normalizer) normalizer->normalize(ws.norm);
    added.split(ws.norm, true, ws.norm_splits);
    for (const AddedSplit& ns : ws.norm_splits) {
      if (ns.id >= 0) {
        ids.push_back(static_cast<uint32_t>(ns.id));
        if (tokens) tokens->emplace_back(ws.norm.substr(ns.start, ns.end - ns.start));
        continue;
      }
      if (ns.end <= ns.start) continue;
      PtState& st = ws.st;
      st.text.assign(ws.norm.data() + ns.start, ns.end - ns.start);
      st.splits.clear();
      st.splits.push_back({0, static_cast<uint32_t>(st.text.size()), rs.start == 0 && ns.start == 0});
      if (pre_tokenizer) pre_tokenizer->pre_tokenize(st, ws.scratch);
      for (const auto& sp : st.splits) {
        model->tokenize(std::string_view(st.text.data() + sp.b, sp.e - sp.b), ids, tokens);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Loading

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

namespace {

// Parses a JSON file's text (its nesting checked first: see io/json_limits.hpp).
nlohmann::json tok_parse_json(std::string_view text, const std::string& subject) {
  io::check_json_depth(io::json_text_depth(text), subject);
  try {
    return nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::Format, subject, std::string("malformed JSON: ") + e.what());
  }
}

// tokenizer_config.json and special_tokens_map.json are optional: no text reads as {}.
nlohmann::json tok_parse_optional(std::string_view text, const std::string& subject) {
  if (text.empty()) return nlohmann::json::object();
  nlohmann::json j = tok_parse_json(text, subject);
  if (!j.is_object()) throw Error(ErrorKind::Format, subject, "expected a JSON object");
  return j;
}

// tokenizer.json's "added_tokens", in file order.
std::vector<tok::AddedTokenSpec> tok_added_tokens(const io::JsonValue& root) {
  std::vector<tok::AddedTokenSpec> specs;
  const auto added = root.find("added_tokens");
  if (!added) return specs;
  for (const auto& a : added->elements()) {
    tok::AddedTokenSpec s;
    s.content = a.at("content").string();
    s.single_word = a.boolean_or("single_word", false);
    s.lstrip = a.boolean_or("lstrip", false);
    s.rstrip = a.boolean_or("rstrip", false);
    s.special = a.boolean_or("special", false);
    s.normalized = a.boolean_or("normalized", !s.special);
    if (tok::utf8_valid_prefix(s.content) != s.content.size()) {
      throw Error(ErrorKind::Format, root.source(), "an added token is not valid UTF-8");
    }
    specs.push_back(std::move(s));
  }
  return specs;
}

// The pipeline and the added tokens of tokenizer.json (`root`, an object).
void tok_load_pipeline(const io::JsonValue& root, Tokenizer::Impl& impl) {
  const io::JsonValue model = root.at("model");
  if (const auto n = root.find("normalizer")) impl.normalizer = tok::make_normalizer(*n);
  if (const auto p = root.find("pre_tokenizer")) impl.pre_tokenizer = tok::make_pre_tokenizer(*p);
  impl.model = tok::make_model(model);
  if (const auto p = root.find("post_processor")) impl.post_processor = tok::make_post_processor(*p);
  if (const auto d = root.find("decoder")) impl.decoder = tok::make_decoder(*d);
  impl.added.add_tokens(tok_added_tokens(root), *impl.model, impl.normalizer.get());
}

// The id of special token `key` ("bos_token"...), settled as transformers settles it (the token
// the chat template sees too, tok::special_token_entry); none when its content is not in the
// vocabulary.
std::optional<int64_t> tok_special_id(const Tokenizer::Impl& impl, const io::JsonValue& config,
                                      const io::JsonValue& special_map, const char* key) {
  const auto value = tok::special_token_entry(config, special_map, key);
  if (!value) return std::nullopt;
  const int64_t id = impl.lookup(tok::special_token_content(*value));
  if (id < 0) return std::nullopt;
  return id;
}

std::unique_ptr<Tokenizer::Impl> tok_build_checked(std::string_view json_text, std::string_view config_text,
                                                   std::string_view special_map_text, tok::ChatTemplateFiles chat_files,
                                                   const TokenizerOptions& options, const std::string& subject,
                                                   const std::string& config_subject) {
  auto impl = std::make_unique<Tokenizer::Impl>();
  const nlohmann::json j = tok_parse_json(json_text, subject);
  if (!j.is_object()) throw Error(ErrorKind::Format, subject, "a tokenizer.json must be a JSON object");
  tok_load_pipeline(io::JsonValue(j, subject), *impl);

  const nlohmann::json config_json = tok_parse_optional(config_text, config_subject);
  const nlohmann::json special_map_json = tok_parse_optional(special_map_text, "special_tokens_map.json");
  const io::JsonValue config(config_json, config_subject), special_map(special_map_json, "special_tokens_map.json");
  impl->pad_id = tok_special_id(*impl, config, special_map, "pad_token");
  impl->bos_id = tok_special_id(*impl, config, special_map, "bos_token");
  impl->eos_id = tok_special_id(*impl, config, special_map, "eos_token");
  impl->chat = tok::load_chat_templates(config, special_map, std::move(chat_files));

  // add_bos_token / add_eos_token: transformers' fast tokenizers rebuild the post-processor
  // from them; we do when they disagree with what tokenizer.json's post-processor does.
  const auto flag = [&config](const char* key) -> std::optional<bool> {
    if (const auto v = config.find(key)) return v->boolean();
    return std::nullopt;
  };
  const auto add_bos = flag("add_bos_token"), add_eos = flag("add_eos_token");
  if (options.follow_tokenizer_config && (add_bos || add_eos)) {
    constexpr uint32_t kSentinel = std::numeric_limits<uint32_t>::max();
    std::vector<uint32_t> probe{kSentinel};
    std::vector<std::string> probe_tokens{""};
    impl->post_process(probe, &probe_tokens, true);
    const auto at = std::find(probe.begin(), probe.end(), kSentinel) - probe.begin();
    std::vector<uint32_t> prefix(probe.begin(), probe.begin() + at), suffix(probe.begin() + at + 1, probe.end());
    std::vector<std::string> prefix_t(probe_tokens.begin(), probe_tokens.begin() + at),
        suffix_t(probe_tokens.begin() + at + 1, probe_tokens.end());
    bool changed = false;
    const auto adjust = [&](std::vector<uint32_t>& ids, std::vector<std::string>& toks, std::optional<int64_t> id,
                            bool want, bool at_front) {
      if (!id) return;
      const auto u = static_cast<uint32_t>(*id);
      const bool has = std::find(ids.begin(), ids.end(), u) != ids.end();
      if (want && !has) {
        std::string t;
        impl->token_string(u, &t);
        ids.insert(at_front ? ids.begin() : ids.end(), u);
        toks.insert(at_front ? toks.begin() : toks.end(), t);
        changed = true;
      } else if (!want && has) {
        for (size_t k = ids.size(); k-- > 0;) {
          if (ids[k] == u) {
            ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(k));
            toks.erase(toks.begin() + static_cast<std::ptrdiff_t>(k));
          }
        }
        changed = true;
      }
    };
    if (add_bos) adjust(prefix, prefix_t, impl->bos_id, *add_bos, true);
    if (add_eos) adjust(suffix, suffix_t, impl->eos_id, *add_eos, false);
    if (changed) {
      impl->post_processor = tok::make_simple_template(std::move(prefix), std::move(prefix_t), std::move(suffix),
                                                       std::move(suffix_t));
    }
  }
  return impl;
}

std::unique_ptr<Tokenizer::Impl> tok_build(std::string_view json_text, std::string_view config_text,
                                           std::string_view special_map_text, const TokenizerOptions& options,
                                           const std::string& subject, const std::string& config_subject,
                                           tok::ChatTemplateFiles chat_files = {}) {
  try {
    return tok_build_checked(json_text, config_text, special_map_text, std::move(chat_files), options, subject,
                             config_subject);
  } catch (const nlohmann::json::exception& e) {
    // A last line of defence: every read goes through io::JsonValue, whose errors name the key.
    throw Error(ErrorKind::Format, subject, std::string("unexpected content: ") + e.what());
  }
}

}  // namespace

Tokenizer Tokenizer::from_json_string(std::string_view tokenizer_json, std::string_view tokenizer_config,
                                      const TokenizerOptions& options) {
  return Tokenizer(tok_build(tokenizer_json, tokenizer_config, {}, options, "tokenizer.json", "tokenizer_config.json"));
}

Tokenizer Tokenizer::from_file(const fs::path& tokenizer_json, const fs::path& tokenizer_config,
                               const TokenizerOptions& options) {
  const std::string json = tok_read_file(tokenizer_json);
  std::string config, special_map;
  if (!tokenizer_config.empty()) {
    config = tok_read_file(tokenizer_config);
    const fs::path sm = tokenizer_config.parent_path() / "special_tokens_map.json";
    std::error_code ec;
    if (fs::is_regular_file(sm, ec)) special_map = tok_read_file(sm);
  }
  return Tokenizer(tok_build(json, config, special_map, options, tokenizer_json.string(),
                             tokenizer_config.empty() ? std::string("tokenizer_config.json") : tokenizer_config.string(),
                             tokenizer_config.empty() ? tok::ChatTemplateFiles{}
                                                      : tok::read_chat_template_files(tokenizer_config.parent_path())));
}

Tokenizer Tokenizer::from_folder(const fs::path& dir, const TokenizerOptions& options) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(ErrorKind::Io, dir.string(), "not a folder");
  fs::path json = dir / "tokenizer.json";
  if (!fs::is_regular_file(json, ec)) json = dir / "tokenizer.json.gz";
  if (!fs::is_regular_file(json, ec)) {
    throw Error(ErrorKind::NotFound, dir.string(), "no tokenizer.json (or tokenizer.json.gz) in this folder",
                "nnterp reads HuggingFace 'fast' tokenizers; save one with tokenizer.save_pretrained()");
  }
  const fs::path config = dir / "tokenizer_config.json";
  const std::string json_text = tok_read_file(json);
  std::string config_text, special_map;
  if (fs::is_regular_file(config, ec)) config_text = tok_read_file(config);
  const fs::path sm = dir / "special_tokens_map.json";
  if (fs::is_regular_file(sm, ec)) special_map = tok_read_file(sm);
  return Tokenizer(tok_build(json_text, config_text, special_map, options, json.string(), config.string(),
                             tok::read_chat_template_files(dir)));
}

// ---------------------------------------------------------------------------------------------
// Chat templates (tokenizer/chat.cpp)

bool Tokenizer::has_chat_template() const { return !impl_->chat.templates.empty(); }

std::vector<std::string> Tokenizer::chat_template_names() const {
  std::vector<std::string> names;
  if (impl_->chat.named) {
    for (const auto& t : impl_->chat.templates) names.push_back(t.name);
  }
  return names;
}

std::string Tokenizer::chat_template_source(const ChatTemplateOptions& options) const {
  return tok::select_chat_template(impl_->chat, options, !options.tools_json.empty()).source;
}

std::string Tokenizer::apply_chat_template(const std::vector<ChatMessage>& messages,
                                           const ChatTemplateOptions& options) const {
  return tok::apply_chat_template(impl_->chat, messages, options);
}

std::string Tokenizer::apply_chat_template_json(std::string_view messages_json, const ChatTemplateOptions& options) const {
  return tok::apply_chat_template(impl_->chat, messages_json, options);
}

std::vector<int64_t> Tokenizer::encode_chat(const std::vector<ChatMessage>& messages,
                                            const ChatTemplateOptions& options) const {
  return encode_ids(apply_chat_template(messages, options), false);
}

// ---------------------------------------------------------------------------------------------
// Encoding

Encoding Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  tok_check_utf8(text);
  std::vector<uint32_t> ids;
  Encoding e;
  impl_->encode_content(text, ids, &e.tokens);
  impl_->post_process(ids, &e.tokens, add_special_tokens);
  e.ids.assign(ids.begin(), ids.end());
  return e;
}

std::vector<int64_t> Tokenizer::encode_ids(std::string_view text, bool add_special_tokens) const {
  tok_check_utf8(text);
  thread_local std::vector<uint32_t> ids;
  ids.clear();
  impl_->encode_content(text, ids, nullptr);
  impl_->post_process(ids, nullptr, add_special_tokens);
  return std::vector<int64_t>(ids.begin(), ids.end());
}

BatchEncoding Tokenizer::encode_batch(const std::vector<std::string>& texts, const BatchOptions& options) const {
  for (const auto& t : texts) tok_check_utf8(t);
  std::vector<std::vector<uint32_t>> rows(texts.size());
  const size_t specials = options.add_special_tokens ? impl_->added_special_count() : 0;
  const auto encode_range = [&](size_t begin, size_t end) {
    for (size_t b = begin; b < end; ++b) {
      auto& ids = rows[b];
      impl_->encode_content(texts[b], ids, nullptr);
      if (options.max_length) {
        const size_t budget = *options.max_length > specials ? *options.max_length - specials : 0;
        if (ids.size() > budget) {
          if (options.truncation_side == PaddingSide::Right) {
            ids.resize(budget);
          } else {
            ids.erase(ids.begin(), ids.end() - static_cast<std::ptrdiff_t>(budget));
          }
        }
      }
      impl_->post_process(ids, nullptr, options.add_special_tokens);
    }
  };
  // Large batches are spread over threads (each text is encoded independently).
  size_t threads = options.num_threads;
  if (threads == 0) {
    threads = texts.size() >= 64 ? std::max(1u, std::thread::hardware_concurrency()) : 1;
  }
  threads = std::min(threads, std::max<size_t>(1, texts.size() / 16));
  if (threads <= 1) {
    encode_range(0, texts.size());
  } else {
    std::vector<std::thread> pool;
    std::vector<std::exception_ptr> errors(threads);
    const size_t chunk = (texts.size() + threads - 1) / threads;
    for (size_t t = 0; t < threads; ++t) {
      const size_t begin = std::min(texts.size(), t * chunk), end = std::min(texts.size(), begin + chunk);
      pool.emplace_back([&, t, begin, end] {
        try {
          encode_range(begin, end);
        } catch (...) {
          errors[t] = std::current_exception();
        }
      });
    }
    for (auto& th : pool) th.join();
    for (auto& e : errors) {
      if (e) std::rethrow_exception(e);
    }
  }
  size_t longest = 0;
  for (const auto& r : rows) longest = std::max(longest, r.size());
  BatchEncoding out;
  out.input_ids.resize(texts.size());
  out.attention_mask.resize(texts.size());
  const int64_t pad = padding_id();
  for (size_t b = 0; b < texts.size(); ++b) {
    const auto& ids = rows[b];
    const size_t n_pad = longest - ids.size();
    auto& row = out.input_ids[b];
    auto& mask = out.attention_mask[b];
    row.reserve(longest);
    mask.reserve(longest);
    if (options.padding_side == PaddingSide::Left) {
      row.assign(n_pad, pad);
      mask.assign(n_pad, 0);
    }
    row.insert(row.end(), ids.begin(), ids.end());
    mask.insert(mask.end(), ids.size(), 1);
    if (options.padding_side == PaddingSide::Right) {
      row.insert(row.end(), n_pad, pad);
      mask.insert(mask.end(), n_pad, 0);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Decoding

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  tokens.reserve(ids.size());
  std::string t;
  for (int64_t id : ids) {
    if (id < 0 || id > std::numeric_limits<uint32_t>::max()) continue;
    if (!impl_->token_string(static_cast<uint32_t>(id), &t)) continue;
    if (skip_special_tokens && impl_->added.has_specials() && impl_->added.is_special(t)) continue;
    tokens.push_back(t);
  }
  if (impl_->decoder) {
    impl_->decoder->decode_chain(tokens);
    std::string out;
    for (const auto& s : tokens) out += s;
    return out;
  }
  std::string out;
  for (size_t k = 0; k < tokens.size(); ++k) {
    if (k) out.push_back(' ');
    out += tokens[k];
  }
  return out;
}

std::vector<std::string> Tokenizer::decode_batch(const std::vector<std::vector<int64_t>>& ids,
                                                 bool skip_special_tokens) const {
  std::vector<std::string> out;
  out.reserve(ids.size());
  for (const auto& row : ids) out.push_back(decode(row, skip_special_tokens));
  return out;
}

Tokenizer::DecodeStream::DecodeStream(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(&tokenizer), skip_special_tokens_(skip_special_tokens) {}

std::optional<std::string> Tokenizer::DecodeStream::step(int64_t id) {
  static const std::string kReplacement = "\xEF\xBF\xBD";
  const auto ends_with_replacement = [](const std::string& s) {
    return s.size() >= 3 && s.compare(s.size() - 3, 3, kReplacement) == 0;
  };
  if (prefix_.empty() && !ids_.empty()) {
    std::string new_prefix = tokenizer_->decode(ids_, skip_special_tokens_);
    if (!ends_with_replacement(new_prefix)) {
      prefix_ = std::move(new_prefix);
      prefix_index_ = ids_.size();
    }
  }
  ids_.push_back(id);
  const std::string text = tokenizer_->decode(ids_, skip_special_tokens_);
  if (text.size() > prefix_.size() && !ends_with_replacement(text)) {
    if (text.compare(0, prefix_.size(), prefix_) != 0) {
      throw Error(ErrorKind::Tokenizer, "decode stream",
                  "invalid prefix while decoding token " + std::to_string(id) + ": expected '" + prefix_ +
                      "', got '" + text + "'");
    }
    std::string new_text = text.substr(prefix_.size());
    const size_t new_prefix_index = ids_.size() - prefix_index_;
    ids_.erase(ids_.begin(), ids_.begin() + static_cast<std::ptrdiff_t>(prefix_index_));
    prefix_ = tokenizer_->decode(ids_, skip_special_tokens_);
    prefix_index_ = new_prefix_index;
    return new_text;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Vocabulary

std::optional<int64_t> Tokenizer::token_to_id(std::string_view token) const {
  const int64_t id = impl_->lookup(token);
  if (id < 0) return std::nullopt;
  return id;
}

std::string Tokenizer::id_to_token(int64_t id) const {
  if (id < 0 || id > std::numeric_limits<uint32_t>::max()) return {};
  const auto u = static_cast<uint32_t>(id);
  if (const auto* t = impl_->added.find(u)) return t->content;
  std::string out;
  impl_->model->id_to_token(u, &out);
  return out;
}

size_t Tokenizer::vocab_size() const {
  const size_t n = impl_->model->vocab_size();
  return n + impl_->added.count_beyond(n);
}

bool Tokenizer::is_special_id(int64_t id) const {
  if (id < 0 || id > std::numeric_limits<uint32_t>::max()) return false;
  std::string t;
  return impl_->token_string(static_cast<uint32_t>(id), &t) && impl_->added.is_special(t);
}

std::optional<int64_t> Tokenizer::pad_token_id() const { return impl_->pad_id; }
std::optional<int64_t> Tokenizer::bos_token_id() const { return impl_->bos_id; }
std::optional<int64_t> Tokenizer::eos_token_id() const { return impl_->eos_id; }

int64_t Tokenizer::padding_id() const {
  if (impl_->pad_id) return *impl_->pad_id;
  if (impl_->eos_id) return *impl_->eos_id;
  return 0;
}

}  // namespace nnterp

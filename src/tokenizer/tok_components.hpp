// The pipeline components of a HuggingFace tokenizer.json: normalizer, pre-tokenizer, model,
// post-processor and decoder, each built from its JSON object by a factory.
//
// The factories read tokenizer.json only through io::JsonValue: a value of the wrong type is an
// Error(Format) naming the file and the key path ("model.vocab.abc"). A component's errors name
// it as "<file>: <path>" (tok_subject), e.g. "tokenizer.json: normalizer.normalizers[1]".
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tok_common.hpp"

namespace nnterp::io {
class JsonValue;
}

namespace nnterp::tok {

// ---------------------------------------------------------------------------------------------
// Normalizers: rewrite a piece of text (one piece between added tokens) in place.

class TokNormalizer {
 public:
  virtual ~TokNormalizer() = default;
  virtual void normalize(std::string& s) const = 0;
};

// Each factory returns null for JSON null.
std::unique_ptr<TokNormalizer> make_normalizer(const io::JsonValue& j);

// ---------------------------------------------------------------------------------------------
// Pre-tokenizers: split a normalized piece into words, possibly transforming them.

struct PtSplit {
  uint32_t b, e;       // byte range in PtState::text
  bool at_origin;      // its first byte maps to offset 0 of the original input
};

struct PtState {
  std::string text;
  std::vector<PtSplit> splits;
  void clear() {
    text.clear();
    splits.clear();
  }
};

class TokPreTokenizer {
 public:
  virtual ~TokPreTokenizer() = default;
  // Rewrites `st`; `scratch` is a buffer the implementation may use (contents unspecified).
  virtual void pre_tokenize(PtState& st, PtState& scratch) const = 0;
};

std::unique_ptr<TokPreTokenizer> make_pre_tokenizer(const io::JsonValue& j);

// ---------------------------------------------------------------------------------------------
// Models: one word -> ids.

class TokModel {
 public:
  virtual ~TokModel() = default;
  // Appends the ids of `word` (non-empty), and the token strings when `tokens` is not null.
  virtual void tokenize(std::string_view word, std::vector<uint32_t>& ids,
                        std::vector<std::string>* tokens) const = 0;
  virtual int64_t token_to_id(std::string_view token) const = 0;  // -1 when absent
  virtual bool id_to_token(uint32_t id, std::string* out) const = 0;
  virtual size_t vocab_size() const = 0;
};

std::unique_ptr<TokModel> make_model(const io::JsonValue& j);

// ---------------------------------------------------------------------------------------------
// Post-processors: add special tokens around an encoded sequence.

class TokPostProcessor {
 public:
  virtual ~TokPostProcessor() = default;
  virtual void process(std::vector<uint32_t>& ids, std::vector<std::string>* tokens,
                       bool add_special_tokens) const = 0;
  // How many tokens `process` adds to a single sequence when add_special_tokens is true.
  virtual size_t added_tokens() const = 0;
};

std::unique_ptr<TokPostProcessor> make_post_processor(const io::JsonValue& j);

// A TemplateProcessing for a single sequence: prefix ids + sequence + suffix ids.
std::unique_ptr<TokPostProcessor> make_simple_template(std::vector<uint32_t> prefix_ids,
                                                       std::vector<std::string> prefix_tokens,
                                                       std::vector<uint32_t> suffix_ids,
                                                       std::vector<std::string> suffix_tokens);

// ---------------------------------------------------------------------------------------------
// Decoders: token strings -> text pieces (joined by the caller).

class TokDecoder {
 public:
  virtual ~TokDecoder() = default;
  virtual void decode_chain(std::vector<std::string>& tokens) const = 0;
};

std::unique_ptr<TokDecoder> make_decoder(const io::JsonValue& j);

// ---------------------------------------------------------------------------------------------
// Shared helpers for the JSON factories.

// "<file>: <path>", how errors name the component at `j`.
std::string tok_subject(const io::JsonValue& j);
// The "type" of a component object.
std::string tok_component_type(const io::JsonValue& j);
// A string setting that must be exactly one character (Metaspace replacement, Strip content...).
uint32_t tok_single_char(const io::JsonValue& v);
// Metaspace options shared by the pre-tokenizer and the decoder: the replacement code point, and
// the prepend scheme as 0 = always, 1 = first, 2 = never (legacy add_prefix_space honoured).
uint32_t tok_metaspace_replacement(const io::JsonValue& j);
int tok_metaspace_scheme(const io::JsonValue& j, const std::string& subject);
[[noreturn]] void tok_unknown_component(const std::string& kind, const std::string& type,
                                        const std::string& subject);

// Limits nesting of Sequence components (a hostile file could otherwise exhaust the stack).
class TokDepthGuard {
 public:
  explicit TokDepthGuard(const std::string& subject);
  ~TokDepthGuard();
  TokDepthGuard(const TokDepthGuard&) = delete;
  TokDepthGuard& operator=(const TokDepthGuard&) = delete;
};

// A vocabulary id read from JSON: an integer in [0, 2^28) (not 1.5, 2.0, 1e30, "3" or -1; ids
// above 2^28 are refused: no real vocabulary is that large, and the reverse tables are dense).
uint32_t tok_checked_id(const io::JsonValue& id, const std::string& subject);
// An optional non-negative integer setting `key` of `j` (`fallback` when absent or null), checked
// to lie in [min, max]: a float, a negative or a huge value is an Error(Format) naming the key.
size_t tok_json_count(const io::JsonValue& j, const char* key, size_t fallback, size_t min, size_t max,
                      const std::string& subject);

// A {token: id} vocabulary (BPE, WordLevel, WordPiece) and its reverse table.
struct TokPlainVocab {
  StrIdMap map;
  std::vector<std::string> r;
  std::vector<bool> present;
  void load(const io::JsonValue& vocab, const std::string& subject);
  bool id_to_token(uint32_t id, std::string* out) const {
    if (id >= r.size() || !present[id]) return false;
    *out = r[id];
    return true;
  }
};

// The byte-level alphabet (GPT-2's bytes_to_unicode): byte -> code point, and the reverse
// (-1 for code points that are not in it).
const uint32_t* byte_level_byte_to_cp();
int byte_level_cp_to_byte(uint32_t cp);
// UTF-8 of the byte-level char of each byte (precomputed).
std::string_view byte_level_char_utf8(unsigned char b);

}  // namespace nnterp::tok

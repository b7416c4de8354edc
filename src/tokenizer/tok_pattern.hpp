// Patterns used to split and replace text: Oniguruma regexes (the engine HuggingFace tokenizers
// uses, compiled as the Rust `onig` crate's Regex::new does: ONIG_OPTION_NONE, the default
// Oniguruma syntax, UTF-8), literal strings, and character predicates; plus the split behaviors.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tok_common.hpp"

namespace nnterp::io {
class JsonValue;
}

namespace nnterp::tok {

// One piece of a text: [start, end) and whether it is a match of the pattern.
struct PatSeg {
  uint32_t start, end;
  bool is_match;
};

class OnigRegex {
 public:
  // Throws Error(Format, subject) when the pattern does not compile.
  OnigRegex(const std::string& pattern, const std::string& subject);
  ~OnigRegex();
  OnigRegex(const OnigRegex&) = delete;
  OnigRegex& operator=(const OnigRegex&) = delete;

  // Every match, as the onig crate's find_iter yields them (including its handling of empty
  // matches); appends (start, end) pairs.
  void find_iter(std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& out) const;

 private:
  void* re_ = nullptr;
};

// Hand-written matchers for the pre-tokenization regexes nearly every byte-level tokenizer uses
// (GPT-2's, and the cl100k-style one of Llama-3 / OLMo-2 / Qwen2), with character classes taken
// from Oniguruma itself; they produce exactly the matches Oniguruma does (tested against it),
// without its per-search allocations.
enum class FastRegexKind { None, Gpt2, Cl100k, Cl100kSingleDigit };
FastRegexKind fast_regex_kind(const std::string& pattern);
void fast_regex_find_iter(FastRegexKind kind, std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& out);
// The regex used by the ByteLevel pre-tokenizer.
extern const char* const kByteLevelRegex;

// A Split/Replace pattern: {"String": "..."} or {"Regex": "..."}.
class TextPattern {
 public:
  static TextPattern literal(std::string s, const std::string& subject);
  // `allow_fast`: use a hand-written matcher when the pattern is one of the known ones.
  static TextPattern regex(const std::string& re, const std::string& subject, bool allow_fast = true);

  // The covering list of segments, as tokenizers' Pattern::find_matches returns it: for an
  // empty text a single non-match (0,0).
  void find_matches(std::string_view text, std::vector<PatSeg>& out) const;

 private:
  std::string literal_;
  std::shared_ptr<OnigRegex> regex_;
  FastRegexKind fast_ = FastRegexKind::None;
};

// Covering segments where every code point satisfying `pred` is its own match (tokenizers'
// Pattern for Fn(char) -> bool).
template <typename Pred>
void find_char_matches(std::string_view text, Pred pred, std::vector<PatSeg>& out) {
  out.clear();
  if (text.empty()) {
    out.push_back({0, 0, false});
    return;
  }
  uint32_t last = 0;
  uint32_t i = 0;
  const uint32_t n = static_cast<uint32_t>(text.size());
  while (i < n) {
    int len;
    const uint32_t cp = utf8_decode_at(text.data() + i, &len);
    if (pred(cp)) {
      if (last < i) out.push_back({last, i, false});
      out.push_back({i, i + static_cast<uint32_t>(len), true});
      last = i + static_cast<uint32_t>(len);
    }
    i += static_cast<uint32_t>(len);
  }
  if (n > last) out.push_back({last, n, false});
}

enum class SplitBehavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

SplitBehavior parse_split_behavior(const std::string& s, const std::string& subject);

// Applies a split behavior to covering segments (after optional inversion); appends the
// [start, end) ranges that are kept, empty ones included (callers drop empty splits).
void apply_split_behavior(std::vector<PatSeg>& segs, SplitBehavior behavior, bool invert,
                          std::vector<std::pair<uint32_t, uint32_t>>& out);

// A {"String": ...} / {"Regex": ...} pattern object; `subject` names its component in regex errors.
TextPattern tok_pattern_from_json(const io::JsonValue& j, const std::string& subject);

// Escapes a literal so that it can be compiled as an Oniguruma regex.
std::string onig_escape(std::string_view literal);

}  // namespace nnterp::tok

#include "tokenizer/tok_pattern.hpp"

#include <algorithm>
#include <cstring>
#include <mutex>

#define ONIG_ESCAPE_REGEX_T_COLLISION 1
#include <oniguruma.h>

namespace nnterp::tok {

namespace {

void tok_onig_init_once() {
  static std::once_flag flag;
  std::call_once(flag, [] {
    OnigEncoding encodings[1] = {ONIG_ENCODING_UTF8};
    onig_initialize(encodings, 1);
  });
}

// One region per thread, reused by every search.
struct TokOnigRegionHolder {
  OnigRegion* region = onig_region_new();
  ~TokOnigRegionHolder() { onig_region_free(region, 1); }
};

OnigRegion* tok_thread_region() {
  thread_local TokOnigRegionHolder holder;
  return holder.region;
}

std::string tok_onig_error(int code, OnigErrorInfo* info) {
  OnigUChar buf[ONIG_MAX_ERROR_MESSAGE_LEN];
  const int n = info ? onig_error_code_to_str(buf, code, info) : onig_error_code_to_str(buf, code);
  return std::string(reinterpret_cast<const char*>(buf), n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace

OnigRegex::OnigRegex(const std::string& pattern, const std::string& subject) {
  tok_onig_init_once();
  OnigRegexType* re = nullptr;
  OnigErrorInfo info{};
  const auto* p = reinterpret_cast<const OnigUChar*>(pattern.data());
  static std::mutex compile_mutex;  // the onig crate serializes onig_new too
  int r;
  {
    std::lock_guard<std::mutex> lock(compile_mutex);
    r = onig_new(&re, p, p + pattern.size(), ONIG_OPTION_NONE, ONIG_ENCODING_UTF8,
                 ONIG_SYNTAX_DEFAULT, &info);
  }
  if (r != ONIG_NORMAL) {
    throw Error(ErrorKind::Format, subject,
                "invalid regex pattern '" + pattern + "': " + tok_onig_error(r, &info));
  }
  re_ = re;
}

OnigRegex::~OnigRegex() {
  if (re_) onig_free(static_cast<OnigRegexType*>(re_));
}

void OnigRegex::find_iter(std::string_view text,
                          std::vector<std::pair<uint32_t, uint32_t>>& out) const {
  auto* re = static_cast<OnigRegexType*>(re_);
  OnigRegion* region = tok_thread_region();
  const auto* begin = reinterpret_cast<const OnigUChar*>(text.data());
  const auto* end = begin + text.size();
  size_t last_end = 0;
  bool skip_next_empty = false;
  while (last_end <= text.size()) {
    onig_region_clear(region);
    const int r = onig_search(re, begin, end, begin + last_end, end, region, ONIG_OPTION_NONE);
    if (r == ONIG_MISMATCH) break;
    if (r < 0) {
      throw Error(ErrorKind::Tokenizer, "regex", "Oniguruma search failed: " + tok_onig_error(r, nullptr));
    }
    const auto s = static_cast<size_t>(region->beg[0]);
    const auto e = static_cast<size_t>(region->end[0]);
    last_end = e;
    if (e == s) {
      last_end += last_end < text.size()
                      ? static_cast<size_t>(utf8_seq_len(static_cast<unsigned char>(text[last_end])))
                      : 1;
      if (skip_next_empty) {
        skip_next_empty = false;
        continue;
      }
    } else {
      skip_next_empty = true;
    }
    out.emplace_back(static_cast<uint32_t>(s), static_cast<uint32_t>(e));
  }
}

std::string onig_escape(std::string_view literal) {
  std::string out;
  for (char c : literal) {
    switch (c) {
      case '\\': case '.': case '+': case '*': case '?': case '(': case ')': case '|': case '[':
      case ']': case '{': case '}': case '^': case '$': case '#': case '&': case '-': case '~':
        out.push_back('\\');
        out.push_back(c);
        break;
      default:
        out.push_back(c);
    }
  }
  return out;
}

TextPattern TextPattern::literal(std::string s, const std::string& subject) {
  TextPattern p;
  if (s.empty()) {
    // An empty literal compiles to an empty regex: it matches (emptily) everywhere.
    p.regex_ = std::make_shared<OnigRegex>(std::string(), subject);
  } else {
    p.literal_ = std::move(s);
  }
  return p;
}

TextPattern TextPattern::regex(const std::string& re, const std::string& subject, bool allow_fast) {
  TextPattern p;
  p.regex_ = std::make_shared<OnigRegex>(re, subject);
  if (allow_fast) p.fast_ = fast_regex_kind(re);
  return p;
}

void TextPattern::find_matches(std::string_view text, std::vector<PatSeg>& out) const {
  out.clear();
  if (text.empty()) {
    out.push_back({0, 0, false});
    return;
  }
  uint32_t prev = 0;
  const auto emit = [&](uint32_t s, uint32_t e) {
    if (prev != s) out.push_back({prev, s, false});
    out.push_back({s, e, true});
    prev = e;
  };
  if (regex_) {
    thread_local std::vector<std::pair<uint32_t, uint32_t>> matches;
    matches.clear();
    if (fast_ != FastRegexKind::None) {
      fast_regex_find_iter(fast_, text, matches);
    } else {
      regex_->find_iter(text, matches);
    }
    for (auto [s, e] : matches) emit(s, e);
  } else {
    size_t pos = 0;
    while (true) {
      const size_t f = text.find(literal_, pos);
      if (f == std::string_view::npos) break;
      emit(static_cast<uint32_t>(f), static_cast<uint32_t>(f + literal_.size()));
      pos = f + literal_.size();
    }
  }
  if (prev != text.size()) out.push_back({prev, static_cast<uint32_t>(text.size()), false});
}

SplitBehavior parse_split_behavior(const std::string& s, const std::string& subject) {
  if (s == "Removed") return SplitBehavior::Removed;
  if (s == "Isolated") return SplitBehavior::Isolated;
  if (s == "MergedWithPrevious") return SplitBehavior::MergedWithPrevious;
  if (s == "MergedWithNext") return SplitBehavior::MergedWithNext;
  if (s == "Contiguous") return SplitBehavior::Contiguous;
  throw Error(ErrorKind::Unsupported, subject, "unknown split behavior '" + s + "'");
}

void apply_split_behavior(std::vector<PatSeg>& segs, SplitBehavior behavior, bool invert,
                          std::vector<std::pair<uint32_t, uint32_t>>& out) {
  if (invert) {
    for (auto& s : segs) s.is_match = !s.is_match;
  }
  switch (behavior) {
    case SplitBehavior::Isolated:
      for (const auto& s : segs) out.emplace_back(s.start, s.end);
      return;
    case SplitBehavior::Removed:
      for (const auto& s : segs) {
        if (!s.is_match) out.emplace_back(s.start, s.end);
      }
      return;
    case SplitBehavior::Contiguous: {
      const size_t base = out.size();
      bool previous_match = false;
      for (const auto& s : segs) {
        if (s.is_match == previous_match && out.size() > base) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.start, s.end);
        }
        previous_match = s.is_match;
      }
      return;
    }
    case SplitBehavior::MergedWithPrevious: {
      const size_t base = out.size();
      bool previous_match = false;
      for (const auto& s : segs) {
        if (s.is_match && !previous_match && out.size() > base) {
          out.back().second = s.end;
        } else {
          out.emplace_back(s.start, s.end);
        }
        previous_match = s.is_match;
      }
      return;
    }
    case SplitBehavior::MergedWithNext: {
      const size_t base = out.size();
      bool previous_match = false;
      for (size_t k = segs.size(); k-- > 0;) {
        const auto& s = segs[k];
        if (s.is_match && !previous_match && out.size() > base) {
          out.back().first = s.start;
        } else {
          out.emplace_back(s.start, s.end);
        }
        previous_match = s.is_match;
      }
      std::reverse(out.begin() + static_cast<std::ptrdiff_t>(base), out.end());
      return;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Fast matchers

const char* const kByteLevelRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

constexpr const char* kCl100kRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kCl100kSingleDigitRegex =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

enum : uint8_t { kClsL = 1, kClsN = 2, kClsS = 4 };

// \p{L}, \p{N} and \s as Oniguruma's UTF-8 encoding defines them.
struct TokOnigClasses {
  OnigCtype ctype_l = 0, ctype_n = 0;
  std::vector<uint8_t> bmp;
  TokOnigClasses() {
    tok_onig_init_once();
    const OnigEncoding enc = ONIG_ENCODING_UTF8;
    const auto prop = [enc](const char* name) {
      const auto* p = reinterpret_cast<const OnigUChar*>(name);
      return static_cast<OnigCtype>(ONIGENC_PROPERTY_NAME_TO_CTYPE(enc, const_cast<OnigUChar*>(p),
                                                                    const_cast<OnigUChar*>(p) + std::strlen(name)));
    };
    ctype_l = prop("L");
    ctype_n = prop("N");
    bmp.resize(0x10000);
    for (uint32_t cp = 0; cp < 0x10000; ++cp) bmp[cp] = compute(cp);
  }
  uint8_t compute(uint32_t cp) const {
    const OnigEncoding enc = ONIG_ENCODING_UTF8;
    uint8_t c = 0;
    if (ONIGENC_IS_CODE_CTYPE(enc, cp, ctype_l)) c |= kClsL;
    if (ONIGENC_IS_CODE_CTYPE(enc, cp, ctype_n)) c |= kClsN;
    if (ONIGENC_IS_CODE_CTYPE(enc, cp, ONIGENC_CTYPE_SPACE)) c |= kClsS;
    return c;
  }
  uint8_t of(uint32_t cp) const { return cp < 0x10000 ? bmp[cp] : compute(cp); }
};

const TokOnigClasses& tok_onig_classes() {
  static const TokOnigClasses classes;
  return classes;
}

// A decoded view of the text: code points, their classes and byte offsets.
struct TokCpView {
  std::vector<uint32_t> cp;
  std::vector<uint8_t> cls;
  std::vector<uint32_t> off;  // size n + 1
  void build(std::string_view s) {
    const auto& t = tok_onig_classes();
    cp.clear();
    cls.clear();
    off.clear();
    size_t i = 0;
    while (i < s.size()) {
      const auto b = static_cast<unsigned char>(s[i]);
      off.push_back(static_cast<uint32_t>(i));
      if (b < 0x80) {
        cp.push_back(b);
        cls.push_back(t.bmp[b]);
        ++i;
      } else {
        int len;
        const uint32_t c = utf8_decode_at(s.data() + i, &len);
        cp.push_back(c);
        cls.push_back(t.of(c));
        i += static_cast<size_t>(len);
      }
    }
    off.push_back(static_cast<uint32_t>(s.size()));
  }
};

// Length (in code points) of a contraction 's 't 're 've 'm 'll 'd at i (0 if none).
size_t tok_contraction(const TokCpView& v, size_t i, bool case_insensitive) {
  const size_t n = v.cp.size();
  if (v.cp[i] != '\'' || i + 1 >= n) return 0;
  const auto is = [&](size_t k, char lower) {
    if (k >= n) return false;
    const uint32_t c = v.cp[k];
    if (c == static_cast<uint32_t>(lower)) return true;
    if (!case_insensitive) return false;
    if (c == static_cast<uint32_t>(lower - 32)) return true;
    return lower == 's' && c == 0x17F;  // LATIN SMALL LETTER LONG S folds to s
  };
  if (is(i + 1, 's') || is(i + 1, 't') || is(i + 1, 'm') || is(i + 1, 'd')) return 2;
  if ((is(i + 1, 'r') || is(i + 1, 'v')) && is(i + 2, 'e')) return 3;
  if (is(i + 1, 'l') && is(i + 2, 'l')) return 3;
  return 0;
}

inline bool tok_other(uint8_t c) { return (c & (kClsL | kClsN | kClsS)) == 0; }

// End (exclusive, in code points) of the run starting at i whose classes satisfy pred.
template <typename P>
size_t tok_run(const TokCpView& v, size_t i, P pred) {
  while (i < v.cp.size() && pred(v.cls[i], v.cp[i])) ++i;
  return i;
}

// \s*[\r\n]+ | \s+(?!\S) | \s+ at a whitespace position i; `with_newline_rule` enables the first.
size_t tok_whitespace_match(const TokCpView& v, size_t i, bool with_newline_rule) {
  const size_t j = tok_run(v, i, [](uint8_t c, uint32_t) { return (c & kClsS) != 0; });
  if (with_newline_rule) {
    for (size_t k = j; k-- > i;) {
      if (v.cp[k] == '\r' || v.cp[k] == '\n') return k + 1;
    }
  }
  if (j == v.cp.size()) return j;  // (?!\S) holds at the end
  if (j - i >= 2) return j - 1;    // give one back so that a space, not \S, follows
  return j;                        // plain \s+
}

void tok_gpt2_find(const TokCpView& v, std::vector<std::pair<uint32_t, uint32_t>>& out) {
  const size_t n = v.cp.size();
  size_t i = 0;
  while (i < n) {
    size_t end;
    if (size_t k = tok_contraction(v, i, false)) {
      end = i + k;
    } else {
      const bool sp = v.cp[i] == ' ' && i + 1 < n;
      const size_t s = (sp && !(v.cls[i + 1] & kClsS)) ? i + 1 : i;  // ' ?' when a non-space follows
      const uint8_t c = v.cls[s];
      if (c & kClsL) {
        end = tok_run(v, s, [](uint8_t x, uint32_t) { return (x & kClsL) != 0; });
      } else if (c & kClsN) {
        end = tok_run(v, s, [](uint8_t x, uint32_t) { return (x & kClsN) != 0; });
      } else if (tok_other(c)) {
        end = tok_run(v, s, [](uint8_t x, uint32_t) { return tok_other(x); });
      } else {
        end = tok_whitespace_match(v, i, false);
      }
    }
    out.emplace_back(v.off[i], v.off[end]);
    i = end;
  }
}

void tok_cl100k_find(const TokCpView& v, size_t max_digits, std::vector<std::pair<uint32_t, uint32_t>>& out) {
  const size_t n = v.cp.size();
  const auto is_letter = [](uint8_t x, uint32_t) { return (x & kClsL) != 0; };
  const auto is_crlf = [](uint8_t, uint32_t c) { return c == '\r' || c == '\n'; };
  size_t i = 0;
  while (i < n) {
    size_t end = 0;
    const uint8_t c = v.cls[i];
    const uint32_t ch = v.cp[i];
    if (size_t k = tok_contraction(v, i, true)) {
      end = i + k;
    } else if (!(c & (kClsL | kClsN)) && ch != '\r' && ch != '\n' && i + 1 < n && (v.cls[i + 1] & kClsL)) {
      end = tok_run(v, i + 1, is_letter);  // [^\r\n\p{L}\p{N}]\p{L}+
    } else if (c & kClsL) {
      end = tok_run(v, i, is_letter);
    } else if (c & kClsN) {
      end = i;
      while (end < n && end - i < max_digits && (v.cls[end] & kClsN)) ++end;
    } else if ((ch == ' ' && i + 1 < n && tok_other(v.cls[i + 1])) || tok_other(c)) {
      const size_t s = tok_other(c) ? i : i + 1;  //  ?[^\s\p{L}\p{N}]+[\r\n]*
      end = tok_run(v, s, [](uint8_t x, uint32_t) { return tok_other(x); });
      end = tok_run(v, end, is_crlf);
    } else {
      end = tok_whitespace_match(v, i, true);
    }
    out.emplace_back(v.off[i], v.off[end]);
    i = end;
  }
}

}  // namespace

FastRegexKind fast_regex_kind(const std::string& pattern) {
  if (pattern == kByteLevelRegex) return FastRegexKind::Gpt2;
  if (pattern == kCl100kRegex) return FastRegexKind::Cl100k;
  if (pattern == kCl100kSingleDigitRegex) return FastRegexKind::Cl100kSingleDigit;
  return FastRegexKind::None;
}

void fast_regex_find_iter(FastRegexKind kind, std::string_view text, std::vector<std::pair<uint32_t, uint32_t>>& out) {
  thread_local TokCpView view;
  view.build(text);
  switch (kind) {
    case FastRegexKind::Gpt2: tok_gpt2_find(view, out); break;
    case FastRegexKind::Cl100k: tok_cl100k_find(view, 3, out); break;
    case FastRegexKind::Cl100kSingleDigit: tok_cl100k_find(view, 1, out); break;
    case FastRegexKind::None: break;
  }
}

}  // namespace nnterp::tok

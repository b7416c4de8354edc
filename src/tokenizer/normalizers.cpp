// Normalizers of tokenizer.json, and the helpers every component factory shares.
#include <utf8proc.h>

#include <cstdlib>

#include "io/json_reader.hpp"
#include "tokenizer/precompiled.hpp"
#include "tokenizer/tok_components.hpp"
#include "tokenizer/tok_pattern.hpp"

namespace nnterp::tok {

namespace {

bool tok_is_ascii(const std::string& s) {
  for (char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

class UnicodeNormalizer final : public TokNormalizer {
 public:
  explicit UnicodeNormalizer(int options) : options_(options) {}
  void normalize(std::string& s) const override {
    if (s.empty() || tok_is_ascii(s)) return;
    utf8proc_uint8_t* dst = nullptr;
    const utf8proc_ssize_t n =
        utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(s.data()),
                     static_cast<utf8proc_ssize_t>(s.size()), &dst,
                     static_cast<utf8proc_option_t>(options_));
    if (n < 0) {
      std::free(dst);
      throw Error(ErrorKind::Tokenizer, "normalizer", std::string("Unicode normalization failed: ") +
                                                          utf8proc_errmsg(n));
    }
    s.assign(reinterpret_cast<const char*>(dst), static_cast<size_t>(n));
    std::free(dst);
  }

 private:
  int options_;
};

class LowercaseNormalizer final : public TokNormalizer {
 public:
  void normalize(std::string& s) const override {
    if (tok_is_ascii(s)) {
      for (char& c : s) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      }
      return;
    }
    std::string out;
    out.reserve(s.size());
    size_t i = 0;
    while (i < s.size()) {
      int len;
      const uint32_t cp = utf8_decode_at(s.data() + i, &len);
      uc_append_lower(out, cp);
      i += static_cast<size_t>(len);
    }
    s.swap(out);
  }
};

class StripNormalizer final : public TokNormalizer {
 public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& s) const override {
    size_t b = 0, e = s.size();
    if (left_) {
      while (b < e) {
        int len;
        const uint32_t cp = utf8_decode_at(s.data() + b, &len);
        if (!uc_is_whitespace(cp)) break;
        b += static_cast<size_t>(len);
      }
    }
    if (right_) {
      while (e > b) {
        size_t p = e - 1;
        while (p > b && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
        int len;
        const uint32_t cp = utf8_decode_at(s.data() + p, &len);
        if (!uc_is_whitespace(cp)) break;
        e = p;
      }
    }
    s = s.substr(b, e - b);
  }

 private:
  bool left_, right_;
};

// Keeps code points for which keep(cp) holds, mapping them through map(cp).
template <typename Keep, typename Map>
void tok_filter_map(std::string& s, Keep keep, Map map) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    int len;
    const uint32_t cp = utf8_decode_at(s.data() + i, &len);
    if (keep(cp)) utf8_append(out, map(cp));
    i += static_cast<size_t>(len);
  }
  s.swap(out);
}

class StripAccentsNormalizer final : public TokNormalizer {
 public:
  void normalize(std::string& s) const override {
    tok_filter_map(s, [](uint32_t cp) { return !uc_is_combining_mark(cp); },
                   [](uint32_t cp) { return cp; });
  }
};

class NmtNormalizer final : public TokNormalizer {
 public:
  void normalize(std::string& s) const override {
    tok_filter_map(
        s,
        [](uint32_t c) {
          return !((c >= 0x01 && c <= 0x08) || c == 0x0B || (c >= 0x0E && c <= 0x1F) || c == 0x7F ||
                   c == 0x8F || c == 0x9F);
        },
        [](uint32_t c) -> uint32_t {
          switch (c) {
            case 0x09: case 0x0A: case 0x0C: case 0x0D: case 0x1680: case 0x2028: case 0x2029:
            case 0x2581: case 0xFEFF: case 0xFFFD:
              return ' ';
            default:
              return (c >= 0x200B && c <= 0x200F) ? uint32_t{' '} : c;
          }
        });
  }
};

class BertNormalizer final : public TokNormalizer {
 public:
  BertNormalizer(bool clean_text, bool chinese, bool strip_accents, bool lowercase)
      : clean_text_(clean_text), chinese_(chinese), strip_accents_(strip_accents), lowercase_(lowercase) {}

  void normalize(std::string& s) const override {
    if (clean_text_) {
      tok_filter_map(
          s,
          [](uint32_t c) {
            const bool control = !(c == '\t' || c == '\n' || c == '\r') && uc_is_other(c);
            return !(c == 0 || c == 0xFFFD || control);
          },
          [](uint32_t c) -> uint32_t {
            return (c == '\t' || c == '\n' || c == '\r' || uc_is_whitespace(c)) ? uint32_t{' '} : c;
          });
    }
    if (chinese_) {
      std::string out;
      out.reserve(s.size() + 8);
      size_t i = 0;
      while (i < s.size()) {
        int len;
        const uint32_t c = utf8_decode_at(s.data() + i, &len);
        const bool cjk = (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) ||
                         (c >= 0x20000 && c <= 0x2A6DF) || (c >= 0x2A700 && c <= 0x2B73F) ||
                         (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B920 && c <= 0x2CEAF) ||
                         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
        if (cjk) out.push_back(' ');
        out.append(s, i, static_cast<size_t>(len));
        if (cjk) out.push_back(' ');
        i += static_cast<size_t>(len);
      }
      s.swap(out);
    }
    if (strip_accents_) {
      UnicodeNormalizer(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE).normalize(s);
      tok_filter_map(s, [](uint32_t c) { return !uc_is_mark_nonspacing(c); },
                     [](uint32_t c) { return c; });
    }
    if (lowercase_) LowercaseNormalizer().normalize(s);
  }

 private:
  bool clean_text_, chinese_, strip_accents_, lowercase_;
};

class PrependNormalizer final : public TokNormalizer {
 public:
  explicit PrependNormalizer(std::string prepend) : prepend_(std::move(prepend)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prepend_);
  }

 private:
  std::string prepend_;
};

class ReplaceNormalizer final : public TokNormalizer {
 public:
  ReplaceNormalizer(TextPattern pattern, std::string content)
      : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void normalize(std::string& s) const override {
    thread_local std::vector<PatSeg> segs;
    pattern_.find_matches(s, segs);
    bool any = false;
    for (const auto& g : segs) any = any || g.is_match;
    if (!any) return;
    std::string out;
    out.reserve(s.size() + 16);
    for (const auto& g : segs) {
      if (g.is_match) {
        out += content_;
      } else {
        out.append(s, g.start, g.end - g.start);
      }
    }
    s.swap(out);
  }

 private:
  TextPattern pattern_;
  std::string content_;
};

class PrecompiledNormalizer final : public TokNormalizer {
 public:
  explicit PrecompiledNormalizer(PrecompiledCharsMap map) : map_(std::move(map)) {}
  void normalize(std::string& s) const override { map_.normalize(s); }

 private:
  PrecompiledCharsMap map_;
};

class ByteLevelNormalizer final : public TokNormalizer {
 public:
  void normalize(std::string& s) const override {
    std::string out;
    out.reserve(s.size() * 2);
    for (char c : s) {
      const auto v = byte_level_char_utf8(static_cast<unsigned char>(c));
      out.append(v.data(), v.size());
    }
    s.swap(out);
  }
};

class SequenceNormalizer final : public TokNormalizer {
 public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<TokNormalizer>> items) : items_(std::move(items)) {}
  void normalize(std::string& s) const override {
    for (const auto& n : items_) n->normalize(s);
  }

 private:
  std::vector<std::unique_ptr<TokNormalizer>> items_;
};

}  // namespace

std::string tok_subject(const io::JsonValue& j) { return j.path().empty() ? j.source() : j.source() + ": " + j.path(); }

std::string tok_component_type(const io::JsonValue& j) { return j.at("type").string(); }

uint32_t tok_single_char(const io::JsonValue& v) {
  const std::string s = v.string();
  if (s.empty() || utf8_valid_prefix(s) != s.size()) v.fail("one character");
  int len;
  const uint32_t cp = utf8_decode_at(s.data(), &len);
  if (static_cast<size_t>(len) != s.size()) v.fail("one character");
  return cp;
}

namespace {
thread_local int tok_component_depth = 0;
}

TokDepthGuard::TokDepthGuard(const std::string& subject) {
  if (++tok_component_depth > 64) {
    --tok_component_depth;
    throw Error(ErrorKind::Format, subject, "components nested more than 64 levels deep");
  }
}

TokDepthGuard::~TokDepthGuard() { --tok_component_depth; }

uint32_t tok_checked_id(const io::JsonValue& id, const std::string& subject) {
  if (!id.is_number()) id.fail("an integer in [0, 2^28)");
  // Whole floats (2.0) are refused too: the Rust library reads ids as u32.
  const bool integral = id.raw().is_number_integer() && id.is_integer();
  if (integral && id.integer() >= 0 && id.integer() < (int64_t{1} << 28)) return static_cast<uint32_t>(id.integer());
  throw Error(ErrorKind::Format, subject,
              "token id " + id.raw().dump() + (integral ? " is out of range" : " is not an integer in [0, 2^28)") +
                  " (at '" + id.path() + "')");
}

size_t tok_json_count(const io::JsonValue& j, const char* key, size_t fallback, size_t min, size_t max,
                      const std::string& subject) {
  const auto v = j.find(key);
  if (!v) return fallback;
  const std::string range = "[" + std::to_string(min) + ", " + std::to_string(max) + "]";
  if (!v->is_number()) v->fail("an integer in " + range);
  // Whole floats (5.0) are refused too: the Rust library reads these settings as usize.
  const bool in_range =
      v->raw().is_number_integer() && v->is_uinteger() && v->uinteger() >= min && v->uinteger() <= max;
  if (!in_range) {
    throw Error(ErrorKind::Format, subject,
                "'" + std::string(key) + "' is " + v->raw().dump() + ", expected an integer in " + range);
  }
  return static_cast<size_t>(v->uinteger());
}

void tok_unknown_component(const std::string& kind, const std::string& type, const std::string& subject) {
  throw Error(ErrorKind::Unsupported, subject, "unknown " + kind + " type '" + type + "'",
              "nnterp implements the components listed in docs/tokenizers.md");
}

TextPattern tok_pattern_from_json(const io::JsonValue& j, const std::string& subject) {
  if (const auto s = j.find("String")) return TextPattern::literal(s->string(), subject);
  if (const auto r = j.find("Regex")) return TextPattern::regex(r->string(), subject);
  j.fail("{\"String\": ...} or {\"Regex\": ...}");
}

std::unique_ptr<TokNormalizer> make_normalizer(const io::JsonValue& j) {
  if (j.is_null()) return nullptr;
  const std::string subject = tok_subject(j);
  const TokDepthGuard depth(subject);
  const std::string type = tok_component_type(j);
  const std::string sub = subject + " (" + type + ")";
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
  if (type == "NFKC") {
    return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
  }
  if (type == "NFKD") {
    return std::make_unique<UnicodeNormalizer>(UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
  }
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Strip") {
    return std::make_unique<StripNormalizer>(j.boolean_or("strip_left", true), j.boolean_or("strip_right", true));
  }
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Nmt") return std::make_unique<NmtNormalizer>();
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(j.at("prepend").string());
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(tok_pattern_from_json(j.at("pattern"), sub), j.at("content").string());
  }
  if (type == "Precompiled") {
    // A null charsmap is an empty one: the identity (an absent one is an error).
    if (j.contains("precompiled_charsmap") && !j.has("precompiled_charsmap")) {
      return std::make_unique<SequenceNormalizer>(std::vector<std::unique_ptr<TokNormalizer>>{});
    }
    const std::string blob = tok_base64_decode(j.at("precompiled_charsmap").string(), sub);
    return std::make_unique<PrecompiledNormalizer>(PrecompiledCharsMap(blob, sub));
  }
  if (type == "BertNormalizer") {
    const bool lowercase = j.boolean_or("lowercase", true);
    // strip_accents null (the usual value) follows lowercase, as in the Rust library.
    return std::make_unique<BertNormalizer>(j.boolean_or("clean_text", true),
                                            j.boolean_or("handle_chinese_chars", true),
                                            j.boolean_or("strip_accents", lowercase), lowercase);
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<TokNormalizer>> items;
    for (const auto& item : j.at("normalizers").elements()) {
      if (auto n = make_normalizer(item)) items.push_back(std::move(n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(items));
  }
  tok_unknown_component("normalizer", type, subject);
}

}  // namespace nnterp::tok

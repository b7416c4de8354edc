// Normalizers of tokenizer.json.
#include <nlohmann/json.hpp>
#include <utf8proc.h>

#include <cstdlib>

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

TextPattern tok_parse_pattern(const nlohmann::json& j, const std::string& subject) {
  if (!j.is_object()) throw Error(ErrorKind::Format, subject, "'pattern' must be an object");
  if (j.contains("String")) return TextPattern::literal(j.at("String").get<std::string>(), subject);
  if (j.contains("Regex")) return TextPattern::regex(j.at("Regex").get<std::string>(), subject);
  throw Error(ErrorKind::Format, subject, "'pattern' must have a 'String' or 'Regex' key");
}

}  // namespace

std::string tok_component_type(const nlohmann::json& j, const std::string& subject) {
  if (!j.is_object()) throw Error(ErrorKind::Format, subject, "expected a JSON object");
  auto it = j.find("type");
  if (it == j.end() || !it->is_string()) throw Error(ErrorKind::Format, subject, "missing string field 'type'");
  return it->get<std::string>();
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

uint32_t tok_checked_id(int64_t id, const std::string& subject) {
  if (id < 0 || id >= (int64_t{1} << 28)) {
    throw Error(ErrorKind::Format, subject, "token id " + std::to_string(id) + " is out of range");
  }
  return static_cast<uint32_t>(id);
}

uint32_t tok_checked_id(const nlohmann::json& id, const std::string& subject) {
  if (!id.is_number_integer() || (id.is_number_unsigned() && id.get<uint64_t>() > uint64_t{INT64_MAX})) {
    throw Error(ErrorKind::Format, subject, "token id " + id.dump() + " is not an integer in [0, 2^28)");
  }
  return tok_checked_id(id.get<int64_t>(), subject);
}

size_t tok_json_count(const nlohmann::json& j, const char* key, size_t fallback, size_t min, size_t max,
                      const std::string& subject) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return fallback;
  const bool in_range = it->is_number_unsigned()  ? it->get<uint64_t>() >= min && it->get<uint64_t>() <= max
                        : it->is_number_integer() ? it->get<int64_t>() >= 0 && static_cast<uint64_t>(it->get<int64_t>()) >= min &&
                                                        static_cast<uint64_t>(it->get<int64_t>()) <= max
                                                  : false;
  if (!in_range) {
    throw Error(ErrorKind::Format, subject, "'" + std::string(key) + "' is " + it->dump() + ", expected an integer in [" +
                                                std::to_string(min) + ", " + std::to_string(max) + "]");
  }
  return static_cast<size_t>(it->get<uint64_t>());
}

void tok_unknown_component(const std::string& kind, const std::string& type, const std::string& subject) {
  throw Error(ErrorKind::Unsupported, subject, "unknown " + kind + " type '" + type + "'",
              "nnterp implements the components listed in docs/tokenizers.md");
}

std::unique_ptr<TokNormalizer> make_normalizer(const nlohmann::json& j, const std::string& subject) {
  if (j.is_null()) return nullptr;
  const TokDepthGuard depth(subject);
  const std::string type = tok_component_type(j, subject);
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
    return std::make_unique<StripNormalizer>(j.value("strip_left", true), j.value("strip_right", true));
  }
  if (type == "StripAccents") return std::make_unique<StripAccentsNormalizer>();
  if (type == "Nmt") return std::make_unique<NmtNormalizer>();
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(j.at("prepend").get<std::string>());
  if (type == "Replace") {
    return std::make_unique<ReplaceNormalizer>(tok_parse_pattern(j.at("pattern"), sub),
                                               j.at("content").get<std::string>());
  }
  if (type == "Precompiled") {
    const auto& m = j.at("precompiled_charsmap");
    if (m.is_null()) {
      // An empty charsmap: the identity.
      return std::make_unique<SequenceNormalizer>(std::vector<std::unique_ptr<TokNormalizer>>{});
    }
    const std::string blob = tok_base64_decode(m.get<std::string>(), sub);
    return std::make_unique<PrecompiledNormalizer>(PrecompiledCharsMap(blob, sub));
  }
  if (type == "BertNormalizer") {
    const bool lowercase = j.value("lowercase", true);
    bool strip = lowercase;
    if (j.contains("strip_accents") && j.at("strip_accents").is_boolean()) strip = j.at("strip_accents").get<bool>();
    return std::make_unique<BertNormalizer>(j.value("clean_text", true), j.value("handle_chinese_chars", true),
                                            strip, lowercase);
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelNormalizer>();
  if (type == "Sequence") {
    std::vector<std::unique_ptr<TokNormalizer>> items;
    const auto& arr = j.at("normalizers");
    if (!arr.is_array()) throw Error(ErrorKind::Format, sub, "'normalizers' must be an array");
    for (size_t i = 0; i < arr.size(); ++i) {
      auto n = make_normalizer(arr[i], subject + ".normalizers[" + std::to_string(i) + "]");
      if (n) items.push_back(std::move(n));
    }
    return std::make_unique<SequenceNormalizer>(std::move(items));
  }
  tok_unknown_component("normalizer", type, subject);
}

TextPattern tok_pattern_from_json(const nlohmann::json& j, const std::string& subject) {
  return tok_parse_pattern(j, subject);
}

}  // namespace nnterp::tok

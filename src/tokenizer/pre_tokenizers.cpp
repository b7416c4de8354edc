// Pre-tokenizers of tokenizer.json.
#include <array>

#include "io/json_reader.hpp"
#include "tokenizer/tok_components.hpp"
#include "tokenizer/tok_pattern.hpp"

namespace nnterp::tok {

// ---------------------------------------------------------------------------------------------
// The byte-level alphabet (GPT-2's bytes_to_unicode).

namespace {
struct TokByteLevelTables {
  uint32_t byte_to_cp[256];
  char utf8[256][2];
  uint8_t utf8_len[256];
  std::array<int16_t, 512> cp_to_byte;
  TokByteLevelTables() {
    cp_to_byte.fill(-1);
    bool direct[256] = {};
    for (int b = '!'; b <= '~'; ++b) direct[b] = true;
    for (int b = 0xA1; b <= 0xAC; ++b) direct[b] = true;
    for (int b = 0xAE; b <= 0xFF; ++b) direct[b] = true;
    uint32_t n = 0;
    for (int b = 0; b < 256; ++b) {
      byte_to_cp[b] = direct[b] ? static_cast<uint32_t>(b) : 256 + n++;
    }
    for (int b = 0; b < 256; ++b) {
      const uint32_t cp = byte_to_cp[b];
      cp_to_byte[cp] = static_cast<int16_t>(b);
      std::string s;
      utf8_append(s, cp);
      utf8_len[b] = static_cast<uint8_t>(s.size());
      utf8[b][0] = s[0];
      utf8[b][1] = s.size() > 1 ? s[1] : 0;
    }
  }
};

const TokByteLevelTables& tok_byte_level_tables() {
  static const TokByteLevelTables tables;
  return tables;
}
}  // namespace

const uint32_t* byte_level_byte_to_cp() { return tok_byte_level_tables().byte_to_cp; }

int byte_level_cp_to_byte(uint32_t cp) {
  return cp < 512 ? tok_byte_level_tables().cp_to_byte[cp] : -1;
}

std::string_view byte_level_char_utf8(unsigned char b) {
  const auto& t = tok_byte_level_tables();
  return std::string_view(t.utf8[b], t.utf8_len[b]);
}

namespace {

// ---------------------------------------------------------------------------------------------
// Helpers over PtState.

// Splits every split with `find` (fills covering segments for a view) and `behavior`.
template <typename Find>
void tok_split_all(PtState& st, PtState& scratch, Find find, SplitBehavior behavior, bool invert) {
  thread_local std::vector<PatSeg> segs;
  thread_local std::vector<std::pair<uint32_t, uint32_t>> ranges;
  auto& out = scratch.splits;
  out.clear();
  for (const PtSplit& sp : st.splits) {
    const std::string_view view(st.text.data() + sp.b, sp.e - sp.b);
    segs.clear();
    find(view, segs);
    ranges.clear();
    apply_split_behavior(segs, behavior, invert, ranges);
    for (const auto& [s, e] : ranges) {
      if (s < e) out.push_back({sp.b + s, sp.b + e, sp.at_origin && s == 0});
    }
  }
  st.splits.swap(out);
}

// Rewrites every split through fn(view, out_text) (which appends the new content).
template <typename Fn>
void tok_transform_all(PtState& st, PtState& scratch, Fn fn) {
  scratch.text.clear();
  scratch.splits.clear();
  scratch.text.reserve(st.text.size() + st.text.size() / 2 + 16);
  for (const PtSplit& sp : st.splits) {
    const auto b = static_cast<uint32_t>(scratch.text.size());
    fn(std::string_view(st.text.data() + sp.b, sp.e - sp.b), sp.at_origin, scratch.text);
    const auto e = static_cast<uint32_t>(scratch.text.size());
    if (e > b) scratch.splits.push_back({b, e, sp.at_origin});
  }
  std::swap(st, scratch);
}

// ---------------------------------------------------------------------------------------------

class ByteLevelPreTokenizer final : public TokPreTokenizer {
 public:
  ByteLevelPreTokenizer(bool add_prefix_space, bool use_regex, const std::string& subject)
      : add_prefix_space_(add_prefix_space) {
    if (use_regex) {
      regex_ = std::make_unique<TextPattern>(TextPattern::regex(kByteLevelRegex, subject));
    }
  }

  void pre_tokenize(PtState& st, PtState& scratch) const override {
    if (add_prefix_space_) {
      bool needed = false;
      for (const auto& sp : st.splits) needed = needed || st.text[sp.b] != ' ';
      if (needed) {
        tok_transform_all(st, scratch, [](std::string_view v, bool, std::string& out) {
          if (v.front() != ' ') out.push_back(' ');
          out.append(v.data(), v.size());
        });
      }
    }
    if (regex_) {
      tok_split_all(
          st, scratch, [this](std::string_view v, std::vector<PatSeg>& segs) { regex_->find_matches(v, segs); },
          SplitBehavior::Isolated, false);
    }
    const auto& t = tok_byte_level_tables();
    tok_transform_all(st, scratch, [&t](std::string_view v, bool, std::string& out) {
      for (char c : v) {
        const auto b = static_cast<unsigned char>(c);
        out.append(t.utf8[b], t.utf8_len[b]);
      }
    });
  }

 private:
  bool add_prefix_space_;
  std::unique_ptr<TextPattern> regex_;
};

class SplitPreTokenizer final : public TokPreTokenizer {
 public:
  SplitPreTokenizer(TextPattern pattern, SplitBehavior behavior, bool invert)
      : pattern_(std::move(pattern)), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(PtState& st, PtState& scratch) const override {
    tok_split_all(
        st, scratch, [this](std::string_view v, std::vector<PatSeg>& segs) { pattern_.find_matches(v, segs); },
        behavior_, invert_);
  }

 private:
  TextPattern pattern_;
  SplitBehavior behavior_;
  bool invert_;
};

enum class TokPrependScheme { Always, First, Never };

class MetaspacePreTokenizer final : public TokPreTokenizer {
 public:
  MetaspacePreTokenizer(uint32_t replacement, TokPrependScheme scheme, bool split)
      : replacement_cp_(replacement), scheme_(scheme), split_(split) {
    utf8_append(replacement_, replacement);
  }
  void pre_tokenize(PtState& st, PtState& scratch) const override {
    tok_transform_all(st, scratch, [this](std::string_view v, bool at_origin, std::string& out) {
      const bool starts_with_space = v.front() == ' ';
      const bool starts_with_rep = v.substr(0, replacement_.size()) == replacement_;
      const bool prepend = !(starts_with_space || starts_with_rep) &&
                           (scheme_ == TokPrependScheme::Always ||
                            (scheme_ == TokPrependScheme::First && at_origin));
      if (prepend) out += replacement_;
      for (char c : v) {
        if (c == ' ') {
          out += replacement_;
        } else {
          out.push_back(c);
        }
      }
    });
    if (split_) {
      const uint32_t rep = replacement_cp_;
      tok_split_all(
          st, scratch,
          [rep](std::string_view v, std::vector<PatSeg>& segs) {
            find_char_matches(v, [rep](uint32_t cp) { return cp == rep; }, segs);
          },
          SplitBehavior::MergedWithNext, false);
    }
  }

 private:
  uint32_t replacement_cp_;
  std::string replacement_;
  TokPrependScheme scheme_;
  bool split_;
};

template <typename Pred>
class CharSplitPreTokenizer final : public TokPreTokenizer {
 public:
  CharSplitPreTokenizer(Pred pred, SplitBehavior behavior) : pred_(pred), behavior_(behavior) {}
  void pre_tokenize(PtState& st, PtState& scratch) const override {
    const Pred pred = pred_;
    tok_split_all(
        st, scratch,
        [pred](std::string_view v, std::vector<PatSeg>& segs) { find_char_matches(v, pred, segs); },
        behavior_, false);
  }

 private:
  Pred pred_;
  SplitBehavior behavior_;
};

template <typename Pred>
std::unique_ptr<TokPreTokenizer> tok_make_char_split(Pred pred, SplitBehavior behavior) {
  return std::make_unique<CharSplitPreTokenizer<Pred>>(pred, behavior);
}

struct TokIsNumeric {
  bool operator()(uint32_t cp) const { return uc_is_numeric(cp); }
};
struct TokIsPunct {
  bool operator()(uint32_t cp) const { return uc_is_ascii_punctuation(cp) || uc_is_punctuation(cp); }
};
struct TokIsSpace {
  bool operator()(uint32_t cp) const { return uc_is_whitespace(cp); }
};
struct TokIsChar {
  uint32_t c;
  bool operator()(uint32_t cp) const { return cp == c; }
};

// `\w+|[^\w\s]+`, keeping the matches: maximal runs of word characters and of other
// non-space characters.
class WhitespacePreTokenizer final : public TokPreTokenizer {
 public:
  void pre_tokenize(PtState& st, PtState& scratch) const override {
    tok_split_all(
        st, scratch,
        [](std::string_view v, std::vector<PatSeg>& segs) {
          if (v.empty()) {
            segs.push_back({0, 0, false});
            return;
          }
          uint32_t i = 0, prev = 0;
          const auto n = static_cast<uint32_t>(v.size());
          while (i < n) {
            int len;
            const uint32_t cp = utf8_decode_at(v.data() + i, &len);
            const int cls = uc_is_word(cp) ? 1 : uc_is_whitespace(cp) ? 0 : 2;
            if (cls == 0) {
              i += static_cast<uint32_t>(len);
              continue;
            }
            uint32_t j = i + static_cast<uint32_t>(len);
            while (j < n) {
              const uint32_t c2 = utf8_decode_at(v.data() + j, &len);
              const int cls2 = uc_is_word(c2) ? 1 : uc_is_whitespace(c2) ? 0 : 2;
              if (cls2 != cls) break;
              j += static_cast<uint32_t>(len);
            }
            if (prev != i) segs.push_back({prev, i, false});
            segs.push_back({i, j, true});
            prev = j;
            i = j;
          }
          if (prev != n) segs.push_back({prev, n, false});
        },
        SplitBehavior::Removed, true);
  }
};

class FixedLengthPreTokenizer final : public TokPreTokenizer {
 public:
  explicit FixedLengthPreTokenizer(size_t length) : length_(length) {}
  void pre_tokenize(PtState& st, PtState& scratch) const override {
    auto& out = scratch.splits;
    out.clear();
    for (const auto& sp : st.splits) {
      uint32_t i = sp.b;
      while (i < sp.e) {
        const uint32_t start = i;
        for (size_t k = 0; k < length_ && i < sp.e; ++k) {
          i += static_cast<uint32_t>(utf8_seq_len(static_cast<unsigned char>(st.text[i])));
        }
        out.push_back({start, i, sp.at_origin && start == sp.b});
      }
    }
    st.splits.swap(out);
  }

 private:
  size_t length_;
};

class SequencePreTokenizer final : public TokPreTokenizer {
 public:
  explicit SequencePreTokenizer(std::vector<std::unique_ptr<TokPreTokenizer>> items) : items_(std::move(items)) {}
  void pre_tokenize(PtState& st, PtState& scratch) const override {
    for (const auto& p : items_) p->pre_tokenize(st, scratch);
  }

 private:
  std::vector<std::unique_ptr<TokPreTokenizer>> items_;
};

class TwoStepPreTokenizer final : public TokPreTokenizer {
 public:
  TwoStepPreTokenizer(std::unique_ptr<TokPreTokenizer> a, std::unique_ptr<TokPreTokenizer> b)
      : a_(std::move(a)), b_(std::move(b)) {}
  void pre_tokenize(PtState& st, PtState& scratch) const override {
    a_->pre_tokenize(st, scratch);
    b_->pre_tokenize(st, scratch);
  }

 private:
  std::unique_ptr<TokPreTokenizer> a_, b_;
};

}  // namespace

uint32_t tok_metaspace_replacement(const io::JsonValue& j) { return tok_single_char(j.at("replacement")); }

// Shared with the Metaspace decoder: "always" / "first" / "never" as 0 / 1 / 2.
int tok_metaspace_scheme(const io::JsonValue& j, const std::string& subject) {
  int scheme = 0;
  const auto declared = j.find("prepend_scheme");
  if (declared) {
    const std::string s = declared->string();
    if (s == "always") scheme = 0;
    else if (s == "first") scheme = 1;
    else if (s == "never") scheme = 2;
    else declared->fail("\"always\", \"first\" or \"never\"");
  }
  if (!j.boolean_or("add_prefix_space", true)) {
    if (scheme != 2 && declared) {
      throw Error(ErrorKind::Format, subject, "add_prefix_space does not match declared prepend_scheme");
    }
    scheme = 2;
  }
  return scheme;
}

std::unique_ptr<TokPreTokenizer> make_pre_tokenizer(const io::JsonValue& j) {
  if (j.is_null()) return nullptr;
  const std::string subject = tok_subject(j);
  const TokDepthGuard depth(subject);
  const std::string type = tok_component_type(j);
  const std::string sub = subject + " (" + type + ")";
  if (type == "ByteLevel") {
    return std::make_unique<ByteLevelPreTokenizer>(j.boolean_or("add_prefix_space", true),
                                                   j.boolean_or("use_regex", true), sub);
  }
  if (type == "Split") {
    return std::make_unique<SplitPreTokenizer>(tok_pattern_from_json(j.at("pattern"), sub),
                                               parse_split_behavior(j.at("behavior").string(), sub),
                                               j.boolean_or("invert", false));
  }
  if (type == "Metaspace") {
    const int scheme = tok_metaspace_scheme(j, sub);
    return std::make_unique<MetaspacePreTokenizer>(
        tok_metaspace_replacement(j),
        scheme == 0 ? TokPrependScheme::Always : scheme == 1 ? TokPrependScheme::First : TokPrependScheme::Never,
        j.boolean_or("split", true));
  }
  if (type == "Digits") {
    return tok_make_char_split(TokIsNumeric{}, j.boolean_or("individual_digits", false) ? SplitBehavior::Isolated
                                                                                        : SplitBehavior::Contiguous);
  }
  if (type == "Punctuation") {
    const auto behavior = j.find("behavior");
    return tok_make_char_split(TokIsPunct{},
                               behavior ? parse_split_behavior(behavior->string(), sub) : SplitBehavior::Isolated);
  }
  if (type == "Whitespace") return std::make_unique<WhitespacePreTokenizer>();
  if (type == "WhitespaceSplit") return tok_make_char_split(TokIsSpace{}, SplitBehavior::Removed);
  if (type == "BertPreTokenizer") {
    return std::make_unique<TwoStepPreTokenizer>(tok_make_char_split(TokIsSpace{}, SplitBehavior::Removed),
                                                 tok_make_char_split(TokIsPunct{}, SplitBehavior::Isolated));
  }
  if (type == "CharDelimiterSplit") {
    return tok_make_char_split(TokIsChar{tok_single_char(j.at("delimiter"))}, SplitBehavior::Removed);
  }
  if (type == "FixedLength") return std::make_unique<FixedLengthPreTokenizer>(tok_json_count(j, "length", 5, 1, SIZE_MAX, sub));
  if (type == "Sequence") {
    std::vector<std::unique_ptr<TokPreTokenizer>> items;
    for (const auto& item : j.at("pretokenizers").elements()) {
      if (auto p = make_pre_tokenizer(item)) items.push_back(std::move(p));
    }
    return std::make_unique<SequencePreTokenizer>(std::move(items));
  }
  tok_unknown_component("pre-tokenizer", type, subject);
}

}  // namespace nnterp::tok

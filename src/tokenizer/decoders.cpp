// Decoders of tokenizer.json.
#include "io/json_reader.hpp"
#include "tokenizer/tok_components.hpp"
#include "tokenizer/tok_pattern.hpp"

namespace nnterp::tok {

namespace {

class ByteLevelDecoder final : public TokDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      const size_t mark = bytes.size();
      bool all = true;
      size_t i = 0;
      while (i < t.size()) {
        int len;
        const uint32_t cp = utf8_decode_at(t.data() + i, &len);
        const int b = byte_level_cp_to_byte(cp);
        if (b < 0) {
          all = false;
          break;
        }
        bytes.push_back(static_cast<char>(b));
        i += static_cast<size_t>(len);
      }
      if (!all) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class MetaspaceDecoder final : public TokDecoder {
 public:
  MetaspaceDecoder(uint32_t replacement, bool prepend) : replacement_(replacement), prepend_(prepend) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t k = 0; k < tokens.size(); ++k) {
      const std::string& t = tokens[k];
      std::string out;
      out.reserve(t.size());
      size_t i = 0;
      while (i < t.size()) {
        int len;
        const uint32_t cp = utf8_decode_at(t.data() + i, &len);
        if (cp == replacement_) {
          if (!(k == 0 && prepend_)) out.push_back(' ');
        } else {
          out.append(t, i, static_cast<size_t>(len));
        }
        i += static_cast<size_t>(len);
      }
      tokens[k].swap(out);
    }
  }

 private:
  uint32_t replacement_;
  bool prepend_;
};

class ReplaceDecoder final : public TokDecoder {
 public:
  ReplaceDecoder(TextPattern pattern, std::string content) : pattern_(std::move(pattern)), content_(std::move(content)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<PatSeg> segs;
    for (auto& t : tokens) {
      pattern_.find_matches(t, segs);
      std::string out;
      for (const auto& g : segs) {
        if (g.is_match) {
          out += content_;
        } else {
          out.append(t, g.start, g.end - g.start);
        }
      }
      t.swap(out);
    }
  }

 private:
  TextPattern pattern_;
  std::string content_;
};

class ByteFallbackDecoder final : public TokDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string pending;
    const auto flush = [&]() {
      if (pending.empty()) return;
      if (utf8_valid_prefix(pending) == pending.size()) {
        out.push_back(pending);
      } else {
        for (size_t k = 0; k < pending.size(); ++k) out.emplace_back("\xEF\xBF\xBD");
      }
      pending.clear();
    };
    for (auto& t : tokens) {
      int byte = -1;
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        const auto hex = [](char c) -> int {
          if (c >= '0' && c <= '9') return c - '0';
          if (c >= 'a' && c <= 'f') return c - 'a' + 10;
          if (c >= 'A' && c <= 'F') return c - 'A' + 10;
          return -1;
        };
        const int hi = hex(t[3]), lo = hex(t[4]);
        if (hi >= 0 && lo >= 0) byte = hi * 16 + lo;
      }
      if (byte >= 0) {
        pending.push_back(static_cast<char>(byte));
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens.swap(out);
  }
};

class FuseDecoder final : public TokDecoder {
 public:
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

class StripDecoder final : public TokDecoder {
 public:
  StripDecoder(uint32_t content, size_t start, size_t stop) : content_(content), start_(start), stop_(stop) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<uint32_t> cps;
    for (auto& t : tokens) {
      utf8_to_codepoints(t, cps);
      size_t start_cut = 0;
      for (size_t i = 0; i < cps.size() && i < start_; ++i) {
        if (cps[i] != content_) break;
        start_cut = i + 1;
      }
      size_t stop_cut = cps.size();
      for (size_t i = 0; i < stop_ && i < cps.size(); ++i) {
        const size_t index = cps.size() - i - 1;
        if (cps[index] != content_) break;
        stop_cut = index;
      }
      std::string out;
      for (size_t i = start_cut; i < stop_cut; ++i) utf8_append(out, cps[i]);
      t.swap(out);
    }
  }

 private:
  uint32_t content_;
  size_t start_, stop_;
};

std::string tok_wordpiece_cleanup(std::string s) {
  static const std::pair<const char*, const char*> kRules[] = {
      {" .", "."},   {" ?", "?"},   {" !", "!"},   {" ,", ","},   {" ' ", "'"},   {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  for (const auto& [from, to] : kRules) {
    const std::string f(from), r(to);
    std::string out;
    size_t pos = 0;
    while (true) {
      const size_t k = s.find(f, pos);
      if (k == std::string::npos) break;
      out.append(s, pos, k - pos);
      out += r;
      pos = k + f.size();
    }
    out.append(s, pos, std::string::npos);
    s.swap(out);
  }
  return s;
}

class WordPieceDecoder final : public TokDecoder {
 public:
  WordPieceDecoder(std::string prefix, bool cleanup) : prefix_(std::move(prefix)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string& t = tokens[i];
      if (i != 0) {
        if (t.compare(0, prefix_.size(), prefix_) == 0) {
          t.erase(0, prefix_.size());
        } else {
          t.insert(0, " ");
        }
      }
      if (cleanup_) t = tok_wordpiece_cleanup(std::move(t));
    }
  }

 private:
  std::string prefix_;
  bool cleanup_;
};

class BpeSuffixDecoder final : public TokDecoder {
 public:
  explicit BpeSuffixDecoder(std::string suffix) : suffix_(std::move(suffix)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (suffix_.empty()) continue;
      const std::string rep = i + 1 == tokens.size() ? "" : " ";
      std::string out;
      const std::string& t = tokens[i];
      size_t pos = 0;
      while (true) {
        const size_t k = t.find(suffix_, pos);
        if (k == std::string::npos) break;
        out.append(t, pos, k - pos);
        out += rep;
        pos = k + suffix_.size();
      }
      out.append(t, pos, std::string::npos);
      tokens[i].swap(out);
    }
  }

 private:
  std::string suffix_;
};

class CtcDecoder final : public TokDecoder {
 public:
  CtcDecoder(std::string pad, std::string delimiter, bool cleanup)
      : pad_(std::move(pad)), delimiter_(std::move(delimiter)), cleanup_(cleanup) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    for (size_t i = 0; i < tokens.size(); ++i) {
      if (i > 0 && tokens[i] == tokens[i - 1]) continue;  // dedup consecutive
      std::string t = replace_all(tokens[i], pad_, "");
      if (cleanup_) t = replace_all(tok_wordpiece_cleanup(std::move(t)), delimiter_, " ");
      if (!t.empty()) out.push_back(std::move(t));
    }
    tokens.swap(out);
  }

 private:
  static std::string replace_all(const std::string& s, const std::string& from, const std::string& to) {
    if (from.empty()) return s;
    std::string out;
    size_t pos = 0;
    while (true) {
      const size_t k = s.find(from, pos);
      if (k == std::string::npos) break;
      out.append(s, pos, k - pos);
      out += to;
      pos = k + from.size();
    }
    out.append(s, pos, std::string::npos);
    return out;
  }
  std::string pad_, delimiter_;
  bool cleanup_;
};

class SequenceDecoder final : public TokDecoder {
 public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<TokDecoder>> items) : items_(std::move(items)) {}
  void decode_chain(std::vector<std::string>& tokens) const override {
    for (const auto& d : items_) d->decode_chain(tokens);
  }

 private:
  std::vector<std::unique_ptr<TokDecoder>> items_;
};

}  // namespace

std::unique_ptr<TokDecoder> make_decoder(const io::JsonValue& j) {
  if (j.is_null()) return nullptr;
  const std::string subject = tok_subject(j);
  const TokDepthGuard depth(subject);
  const std::string type = tok_component_type(j);
  const std::string sub = subject + " (" + type + ")";
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Metaspace") {
    return std::make_unique<MetaspaceDecoder>(tok_metaspace_replacement(j), tok_metaspace_scheme(j, sub) != 2);
  }
  if (type == "Replace") {
    return std::make_unique<ReplaceDecoder>(tok_pattern_from_json(j.at("pattern"), sub), j.at("content").string());
  }
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip") {
    return std::make_unique<StripDecoder>(tok_single_char(j.at("content")),
                                          tok_json_count(j, "start", 0, 0, SIZE_MAX, sub),
                                          tok_json_count(j, "stop", 0, 0, SIZE_MAX, sub));
  }
  if (type == "WordPiece") {
    return std::make_unique<WordPieceDecoder>(j.string_or("prefix", "##"), j.boolean_or("cleanup", true));
  }
  if (type == "BPEDecoder") return std::make_unique<BpeSuffixDecoder>(j.string_or("suffix", "</w>"));
  if (type == "CTC") {
    return std::make_unique<CtcDecoder>(j.string_or("pad_token", "<pad>"), j.string_or("word_delimiter_token", "|"),
                                        j.boolean_or("cleanup", true));
  }
  if (type == "Sequence") {
    std::vector<std::unique_ptr<TokDecoder>> items;
    for (const auto& item : j.at("decoders").elements()) {
      if (auto d = make_decoder(item)) items.push_back(std::move(d));
    }
    return std::make_unique<SequenceDecoder>(std::move(items));
  }
  tok_unknown_component("decoder", type, subject);
}

}  // namespace nnterp::tok

// Unigram (SentencePiece) model: Viterbi over the vocabulary's pieces; WordLevel and WordPiece;
// and the model factory.
#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "io/json_reader.hpp"
#include "tokenizer/tok_components.hpp"

namespace nnterp::tok {

std::unique_ptr<TokModel> tok_make_bpe(const io::JsonValue& j, const std::string& subject);

void TokPlainVocab::load(const io::JsonValue& vocab, const std::string& subject) {
  if (!vocab.is_object()) vocab.fail("an object");
  map.reserve(vocab.size());
  vocab.for_each_item([&](const std::string& token, const io::JsonValue& value) {
    const uint32_t id = tok_checked_id(value, subject);
    map.insert(token, id);
    if (id >= r.size()) {
      r.resize(size_t{id} + 1);
      present.resize(size_t{id} + 1, false);
    }
    r[id] = token;
    present[id] = true;
  });
}

namespace {

// A byte trie over the vocabulary for common-prefix search.
class UnigramTrie {
 public:
  void insert(std::string_view key, uint32_t id) {
    if (nodes_.empty()) nodes_.emplace_back();
    uint32_t node = 0;
    for (char ch : key) {
      const auto c = static_cast<unsigned char>(ch);
      uint32_t child = find_child(node, c);
      if (child == 0) {
        child = static_cast<uint32_t>(nodes_.size());
        nodes_.emplace_back();
        nodes_[node].children.emplace_back(c, child);
      }
      node = child;
    }
    nodes_[node].id = static_cast<int64_t>(id);
  }

  void finalize() {
    for (auto& n : nodes_) std::sort(n.children.begin(), n.children.end());
  }

  // Calls f(length, id) for every vocabulary piece that is a prefix of `s`, shortest first.
  template <typename F>
  void common_prefix_search(std::string_view s, F f) const {
    if (nodes_.empty()) return;
    uint32_t node = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      node = find_child_sorted(node, static_cast<unsigned char>(s[i]));
      if (node == 0) return;
      if (nodes_[node].id >= 0) f(i + 1, static_cast<uint32_t>(nodes_[node].id));
    }
  }

 private:
  struct Node {
    int64_t id = -1;
    std::vector<std::pair<unsigned char, uint32_t>> children;
  };
  uint32_t find_child(uint32_t node, unsigned char c) const {
    for (const auto& [k, v] : nodes_[node].children) {
      if (k == c) return v;
    }
    return 0;
  }
  uint32_t find_child_sorted(uint32_t node, unsigned char c) const {
    const auto& ch = nodes_[node].children;
    auto it = std::lower_bound(ch.begin(), ch.end(), std::make_pair(c, uint32_t{0}));
    return (it != ch.end() && it->first == c) ? it->second : 0;
  }
  std::vector<Node> nodes_;
};

// A Unigram vocabulary entry: [piece, score].
std::pair<std::string, double> tok_unigram_entry(const io::JsonValue& e) {
  if (!e.is_array() || e.size() != 2) e.fail("[piece, score]");
  const auto pair = e.elements();
  std::string piece = pair[0].string();
  return {std::move(piece), pair[1].number()};
}

class UnigramModel final : public TokModel {
 public:
  UnigramModel(const io::JsonValue& j, const std::string& subject) : subject_(subject) {
    const auto vocab = j.at("vocab");
    if (!vocab.is_array()) vocab.fail("an array");
    vocab_.reserve(vocab.size());
    token_to_ids_.reserve(vocab.size());
    min_score_ = std::numeric_limits<double>::infinity();
    vocab.for_each_element([this](const io::JsonValue& entry) {
      vocab_.push_back(tok_unigram_entry(entry));
      token_to_ids_.insert(vocab_.back().first, static_cast<uint32_t>(vocab_.size() - 1));
      if (vocab_.back().second < min_score_) min_score_ = vocab_.back().second;
    });
    for (const auto& [piece, score] : vocab_) {
      trie_.insert(piece, static_cast<uint32_t>(token_to_ids_.find(piece)));
    }
    trie_.finalize();
    if (const auto unk_id = j.find("unk_id")) {
      const size_t unk = tok_checked_id(*unk_id, subject);
      if (vocab_.empty()) throw Error(ErrorKind::Format, subject, "the vocabulary is empty but an unk_id is set");
      if (unk >= vocab_.size()) throw Error(ErrorKind::Format, subject, "unk_id is larger than the vocabulary");
      unk_id_ = unk;
    }
    byte_fallback_ = j.boolean_or("byte_fallback", false);
  }

  void tokenize(std::string_view word, std::vector<uint32_t>& ids,
                std::vector<std::string>* tokens) const override {
    if (word.empty()) return;
    thread_local std::vector<std::pair<size_t, size_t>> pieces;
    encode(word, pieces);
    for (const auto& [b, e] : pieces) {
      const std::string_view piece = word.substr(b, e - b);
      const int64_t id = token_to_ids_.find(piece);
      if (id >= 0) {
        ids.push_back(static_cast<uint32_t>(id));
        if (tokens) tokens->emplace_back(piece);
        continue;
      }
      if (byte_fallback_) {
        bool all = true;
        char name[7];
        for (char c : piece) {
          tok_byte_token(static_cast<unsigned char>(c), name);
          all = all && token_to_ids_.find(std::string_view(name, 6)) >= 0;
        }
        if (all) {
          for (char c : piece) {
            tok_byte_token(static_cast<unsigned char>(c), name);
            ids.push_back(static_cast<uint32_t>(token_to_ids_.find(std::string_view(name, 6))));
            if (tokens) tokens->emplace_back(name, 6);
          }
          continue;
        }
      }
      ids.push_back(static_cast<uint32_t>(require_unk()));
      if (tokens) tokens->emplace_back(piece);
    }
  }

  int64_t token_to_id(std::string_view token) const override { return token_to_ids_.find(token); }
  bool id_to_token(uint32_t id, std::string* out) const override {
    if (id >= vocab_.size()) return false;
    *out = vocab_[id].first;
    return true;
  }
  size_t vocab_size() const override { return vocab_.size(); }

 private:
  size_t require_unk() const {
    if (!unk_id_) throw Error(ErrorKind::Tokenizer, subject_, "encountered an unknown piece but the Unigram model has no unk_id");
    return *unk_id_;
  }

  // SentencePiece's optimized Viterbi; pieces as byte ranges of `s`, consecutive unknowns fused.
  void encode(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const {
    struct Best {
      size_t id = 0;
      double score = 0.0;
      bool set = false;
      size_t starts_at = 0;
    };
    thread_local std::vector<Best> best;
    const size_t size = s.size();
    best.assign(size + 1, Best{});
    const double unk_score = min_score_ - 10.0;
    size_t starts_at = 0;
    while (starts_at < size) {
      const double till_here = best[starts_at].score;
      bool has_single_node = false;
      const size_t mblen = static_cast<size_t>(utf8_seq_len(static_cast<unsigned char>(s[starts_at])));
      trie_.common_prefix_search(s.substr(starts_at), [&](size_t length, uint32_t id) {
        Best& target = best[starts_at + length];
        const double candidate = vocab_[id].second + till_here;
        if (!target.set || candidate > target.score) {
          target.score = candidate;
          target.set = true;
          target.starts_at = starts_at;
          target.id = id;
        }
        if (!has_single_node && length == mblen) has_single_node = true;
      });
      if (!has_single_node) {
        Best& target = best[starts_at + mblen];
        const double candidate = unk_score + till_here;
        if (!target.set || candidate > target.score) {
          target.score = candidate;
          target.set = true;
          target.starts_at = starts_at;
          target.id = require_unk();
        }
      }
      starts_at += mblen;
    }
    out.clear();
    size_t ends_at = size;
    size_t fused_end = 0;
    bool fusing = false;
    while (ends_at > 0) {
      const Best& node = best[ends_at];
      const size_t start = node.starts_at;
      if (unk_id_ && node.id == *unk_id_) {  // fuse_unk is always on for Unigram
        if (!fusing) {
          fusing = true;
          fused_end = ends_at;
        }
      } else {
        if (fusing) {
          out.emplace_back(ends_at, fused_end);
          fusing = false;
        }
        out.emplace_back(start, ends_at);
      }
      ends_at = start;
    }
    if (fusing) out.emplace_back(0, fused_end);
    std::reverse(out.begin(), out.end());
  }

  std::vector<std::pair<std::string, double>> vocab_;
  StrIdMap token_to_ids_;
  UnigramTrie trie_;
  double min_score_ = 0.0;
  std::optional<size_t> unk_id_;
  bool byte_fallback_ = false;
  std::string subject_;
};

class WordLevelModel final : public TokModel {
 public:
  WordLevelModel(const io::JsonValue& j, const std::string& subject) : subject_(subject) {
    vocab_.load(j.at("vocab"), subject);
    unk_ = j.string_or("unk_token", "<unk>");
  }
  void tokenize(std::string_view word, std::vector<uint32_t>& ids, std::vector<std::string>* tokens) const override {
    int64_t id = vocab_.map.find(word);
    if (id < 0) {
      id = vocab_.map.find(unk_);
      if (id < 0) throw Error(ErrorKind::Tokenizer, subject_, "WordLevel: the unk token '" + unk_ + "' is not in the vocabulary");
    }
    ids.push_back(static_cast<uint32_t>(id));
    if (tokens) tokens->push_back(vocab_.r[static_cast<size_t>(id)]);
  }
  int64_t token_to_id(std::string_view token) const override { return vocab_.map.find(token); }
  bool id_to_token(uint32_t id, std::string* out) const override { return vocab_.id_to_token(id, out); }
  size_t vocab_size() const override { return vocab_.map.size(); }

 private:
  TokPlainVocab vocab_;
  std::string unk_;
  std::string subject_;
};

class WordPieceModel final : public TokModel {
 public:
  WordPieceModel(const io::JsonValue& j, const std::string& subject) : subject_(subject) {
    vocab_.load(j.at("vocab"), subject);
    unk_ = j.string_or("unk_token", "[UNK]");
    prefix_ = j.string_or("continuing_subword_prefix", "##");
    max_chars_ = tok_json_count(j, "max_input_chars_per_word", 100, 0, SIZE_MAX, subject);
  }
  void tokenize(std::string_view word, std::vector<uint32_t>& ids, std::vector<std::string>* tokens) const override {
    size_t chars = 0;
    for (char c : word) chars += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
    const size_t first = ids.size();
    bool bad = chars > max_chars_;
    std::string piece;
    size_t start = 0;
    while (!bad && start < word.size()) {
      size_t end = word.size();
      int64_t found = -1;
      while (start < end) {
        piece.clear();
        if (start > 0) piece += prefix_;
        piece.append(word.data() + start, end - start);
        found = vocab_.map.find(piece);
        if (found >= 0) break;
        --end;
        while (end > start && (static_cast<unsigned char>(word[end]) & 0xC0) == 0x80) --end;
      }
      if (found < 0) {
        bad = true;
        break;
      }
      ids.push_back(static_cast<uint32_t>(found));
      start = end;
    }
    if (bad) {
      ids.resize(first);
      const int64_t unk = vocab_.map.find(unk_);
      if (unk < 0) throw Error(ErrorKind::Tokenizer, subject_, "WordPiece: the unk token '" + unk_ + "' is not in the vocabulary");
      ids.push_back(static_cast<uint32_t>(unk));
    }
    if (tokens) {
      for (size_t k = first; k < ids.size(); ++k) tokens->push_back(vocab_.r[ids[k]]);
    }
  }
  int64_t token_to_id(std::string_view token) const override { return vocab_.map.find(token); }
  bool id_to_token(uint32_t id, std::string* out) const override { return vocab_.id_to_token(id, out); }
  size_t vocab_size() const override { return vocab_.map.size(); }

 private:
  TokPlainVocab vocab_;
  std::string unk_, prefix_;
  size_t max_chars_ = 100;
  std::string subject_;
};

}  // namespace

std::unique_ptr<TokModel> make_model(const io::JsonValue& j) {
  const std::string subject = tok_subject(j);
  if (!j.is_object()) j.fail("an object");
  std::string type;
  if (j.contains("type")) {
    type = tok_component_type(j);
  } else if (j.contains("merges")) {  // files written before the "type" tag existed
    type = "BPE";
  } else if (const auto vocab = j.find("vocab"); vocab && vocab->is_array()) {
    type = "Unigram";
  } else if (j.contains("continuing_subword_prefix") || j.contains("max_input_chars_per_word")) {
    type = "WordPiece";
  } else {
    type = "WordLevel";
  }
  const std::string sub = subject + " (" + type + ")";
  if (type == "BPE") return tok_make_bpe(j, sub);
  if (type == "Unigram") return std::make_unique<UnigramModel>(j, sub);
  if (type == "WordLevel") return std::make_unique<WordLevelModel>(j, sub);
  if (type == "WordPiece") return std::make_unique<WordPieceModel>(j, sub);
  tok_unknown_component("model", type, subject);
}

}  // namespace nnterp::tok

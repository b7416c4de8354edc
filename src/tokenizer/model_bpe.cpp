// BPE model: byte-level BPE (GPT-2 family) and SentencePiece-style BPE with byte fallback.
//
// Merging uses a priority queue over a linked list of symbols (lowest merge rank first, leftmost
// first among equal ranks), so a word of n symbols costs O(n log n): Gemma and Mistral
// tokenizers have no pre-tokenizer and hand whole text segments to the model. Words shorter
// than 256 bytes are cached.
#include <algorithm>
#include <array>
#include <mutex>
#include <optional>

#include "io/json_reader.hpp"
#include "tokenizer/tok_components.hpp"

namespace nnterp::tok {

namespace {

struct BpeSymbol {
  uint32_t c;
  int32_t prev, next;
  uint32_t len;
  uint32_t version;  // bumped whenever the symbol changes
};

struct BpeMergeItem {
  uint32_t rank;
  uint32_t pos;
  uint32_t new_id;
  // The pair as it was when queued: when both symbols are unchanged the entry is known to be
  // current without looking the pair up again.
  int32_t next;
  uint32_t left_version, right_version;
};

// Max-heap comparator placing the lowest (rank, pos) on top.
struct BpeMergeLess {
  bool operator()(const BpeMergeItem& a, const BpeMergeItem& b) const {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  }
};

// A direct-mapped, lock-striped cache of word -> ids.
class BpeWordCache {
 public:
  static constexpr size_t kSlots = size_t{1} << 16;
  static constexpr size_t kStripes = 64;
  static constexpr size_t kMaxWordLength = 256;

  BpeWordCache() : slots_(kSlots) {}

  bool get(std::string_view word, uint64_t hash, std::vector<uint32_t>& ids) const {
    const size_t s = hash & (kSlots - 1);
    std::lock_guard<std::mutex> lock(stripes_[s & (kStripes - 1)]);
    const Slot& slot = slots_[s];
    if (slot.hash != hash || slot.key != word) return false;
    ids.insert(ids.end(), slot.ids.begin(), slot.ids.end());
    return true;
  }

  void put(std::string_view word, uint64_t hash, const uint32_t* ids, size_t n) const {
    const size_t s = hash & (kSlots - 1);
    std::lock_guard<std::mutex> lock(stripes_[s & (kStripes - 1)]);
    Slot& slot = slots_[s];
    slot.hash = hash;
    slot.key.assign(word.data(), word.size());
    slot.ids.assign(ids, ids + n);
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    std::string key;
    std::vector<uint32_t> ids;
  };
  mutable std::vector<Slot> slots_;
  mutable std::array<std::mutex, kStripes> stripes_;
};

class BpeModel final : public TokModel {
 public:
  BpeModel(const io::JsonValue& j, const std::string& subject);

  void tokenize(std::string_view word, std::vector<uint32_t>& ids,
                std::vector<std::string>* tokens) const override;
  int64_t token_to_id(std::string_view token) const override { return vocab_.map.find(token); }
  bool id_to_token(uint32_t id, std::string* out) const override { return vocab_.id_to_token(id, out); }
  size_t vocab_size() const override { return vocab_.map.size(); }

 private:
  void load_merges(const io::JsonValue& merges);
  void merge_word(std::string_view word, std::vector<uint32_t>& out) const;
  uint32_t unk_id() const;

  TokPlainVocab vocab_;
  PairMap merges_;
  std::optional<std::string> unk_token_;
  std::string prefix_, suffix_;  // continuing_subword_prefix / end_of_word_suffix ("" = none)
  bool fuse_unk_ = false, byte_fallback_ = false, ignore_merges_ = false;
  std::vector<int32_t> char_ids_;    // code point < 0x10000 -> id of the one-char token, or -1
  std::array<int32_t, 256> byte_ids_;  // byte -> id of "<0xAB>", or -1
  std::string subject_;
  BpeWordCache cache_;
};

// Merge `m` as its two tokens; false for the "#version" line of old merges files.
bool tok_merge_pair(const io::JsonValue& m, uint32_t rank, const std::string& subject, std::string& a, std::string& b) {
  if (m.is_array() && m.size() == 2) {  // ["a", "b"]
    size_t k = 0;
    m.for_each_element([&](const io::JsonValue& token) { (k++ == 0 ? a : b) = token.string(); });
    return true;
  }
  if (!m.is_string()) m.fail("\"a b\" or [\"a\", \"b\"]");
  const std::string line = m.string();
  if (line.rfind("#version", 0) == 0) return false;
  const size_t sp = line.find(' ');
  if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos) {
    throw Error(ErrorKind::Format, subject, "merge " + std::to_string(rank + 1) + " ('" + line +
                                                "') is not two tokens separated by one space");
  }
  a = line.substr(0, sp);
  b = line.substr(sp + 1);
  return true;
}

BpeModel::BpeModel(const io::JsonValue& j, const std::string& subject) : subject_(subject) {
  vocab_.load(j.at("vocab"), subject);
  if (const auto unk = j.find("unk_token")) unk_token_ = unk->string();
  prefix_ = j.string_or("continuing_subword_prefix", "");
  suffix_ = j.string_or("end_of_word_suffix", "");
  fuse_unk_ = j.boolean_or("fuse_unk", false);
  byte_fallback_ = j.boolean_or("byte_fallback", false);
  ignore_merges_ = j.boolean_or("ignore_merges", false);
  load_merges(j.at("merges"));

  if (prefix_.empty() && suffix_.empty()) {
    char_ids_.assign(0x10000, -1);
    std::string s;
    for (uint32_t cp = 0; cp < 0x10000; ++cp) {
      if (cp >= 0xD800 && cp <= 0xDFFF) continue;
      s.clear();
      utf8_append(s, cp);
      const int64_t id = vocab_.map.find(s);
      if (id >= 0) char_ids_[cp] = static_cast<int32_t>(id);
    }
  }
  for (int b = 0; b < 256; ++b) {
    char name[7];
    tok_byte_token(static_cast<unsigned char>(b), name);
    const int64_t id = vocab_.map.find(std::string_view(name, 6));
    byte_ids_[static_cast<size_t>(b)] = static_cast<int32_t>(id);
  }
}

void BpeModel::load_merges(const io::JsonValue& merges) {
  if (!merges.is_array()) merges.fail("an array");
  merges_.reserve(merges.size());
  std::string a, b, buffer;
  uint32_t rank = 0;
  merges.for_each_element([&](const io::JsonValue& m) {
    if (!tok_merge_pair(m, rank, subject_, a, b)) return;
    const int64_t a_id = vocab_.map.find(a), b_id = vocab_.map.find(b);
    if (a_id < 0 || b_id < 0) {
      throw Error(ErrorKind::Format, subject_, "merge token '" + (a_id < 0 ? a : b) + "' is not in the vocabulary");
    }
    if (b.size() < prefix_.size()) {
      throw Error(ErrorKind::Format, subject_, "merge token '" + b + "' is shorter than the subword prefix");
    }
    buffer.assign(a);
    buffer.append(b, prefix_.size(), std::string::npos);
    const int64_t new_id = vocab_.map.find(buffer);
    if (new_id < 0) throw Error(ErrorKind::Format, subject_, "merged token '" + buffer + "' is not in the vocabulary");
    merges_.insert(static_cast<uint32_t>(a_id), static_cast<uint32_t>(b_id), rank, static_cast<uint32_t>(new_id));
    ++rank;
  });
}

uint32_t BpeModel::unk_id() const {
  const int64_t id = vocab_.map.find(*unk_token_);
  if (id < 0) {
    throw Error(ErrorKind::Tokenizer, subject_, "the unk token '" + *unk_token_ + "' is not in the vocabulary");
  }
  return static_cast<uint32_t>(id);
}

void BpeModel::merge_word(std::string_view w, std::vector<uint32_t>& out) const {
  thread_local std::vector<BpeSymbol> symbols;
  thread_local std::vector<BpeMergeItem> heap;
  thread_local std::string piece;
  symbols.clear();
  heap.clear();

  const auto add = [](uint32_t c, uint32_t len) {
    const auto n = static_cast<int32_t>(symbols.size());
    if (n > 0) symbols.back().next = n;
    symbols.push_back(BpeSymbol{c, n - 1, -1, len, 0});
  };

  bool have_unk = false;
  uint32_t unk = 0, unk_len = 0;
  const size_t n = w.size();
  size_t i = 0;
  while (i < n) {
    int len;
    const uint32_t cp = utf8_decode_at(w.data() + i, &len);
    const size_t end = i + static_cast<size_t>(len);
    const bool is_first = i == 0, is_last = end == n;
    int64_t id = -1;
    std::string_view s;
    if (!char_ids_.empty()) {
      s = w.substr(i, static_cast<size_t>(len));
      id = cp < 0x10000 ? char_ids_[cp] : vocab_.map.find(s);
    } else {
      piece.clear();
      if (!is_first) piece += prefix_;
      piece.append(w.data() + i, static_cast<size_t>(len));
      if (is_last) piece += suffix_;
      s = piece;
      id = vocab_.map.find(s);
    }
    const auto byte_len = static_cast<uint32_t>(len);
    if (id >= 0) {
      if (have_unk) {
        add(unk, unk_len);
        have_unk = false;
      }
      add(static_cast<uint32_t>(id), byte_len);
    } else {
      bool handled = false;
      if (byte_fallback_) {
        bool all = true;
        for (char c : s) all = all && byte_ids_[static_cast<unsigned char>(c)] >= 0;
        if (all) {
          for (char c : s) add(static_cast<uint32_t>(byte_ids_[static_cast<unsigned char>(c)]), 1);
          handled = true;
        }
      }
      if (!handled && unk_token_) {
        if (have_unk && fuse_unk_) {
          unk_len += byte_len;
        } else {
          if (have_unk) add(unk, unk_len);
          unk = unk_id();
          unk_len = byte_len;
          have_unk = true;
        }
      }
    }
    i = end;
  }
  if (have_unk) add(unk, unk_len);

  // Merge, lowest rank first.
  uint32_t rank, new_id;
  for (size_t k = 0; k + 1 < symbols.size(); ++k) {
    if (merges_.find(symbols[k].c, symbols[k + 1].c, &rank, &new_id)) {
      heap.push_back({rank, static_cast<uint32_t>(k), new_id, static_cast<int32_t>(k + 1), 0, 0});
    }
  }
  std::make_heap(heap.begin(), heap.end(), BpeMergeLess{});
  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end(), BpeMergeLess{});
    const BpeMergeItem top = heap.back();
    heap.pop_back();
    BpeSymbol& cur = symbols[top.pos];
    if (cur.len == 0 || cur.next == -1) continue;
    const auto next_pos = static_cast<size_t>(cur.next);
    const BpeSymbol right = symbols[next_pos];
    const bool unchanged = cur.next == top.next && cur.version == top.left_version && right.version == top.right_version;
    // Otherwise the entry is stale unless the pair now there merges into the same token (the
    // Rust library's rule, kept for identical results).
    if (!unchanged && (!merges_.find(cur.c, right.c, &rank, &new_id) || new_id != top.new_id)) continue;
    cur.c = top.new_id;
    cur.len += right.len;
    cur.next = right.next;
    ++cur.version;
    symbols[next_pos].len = 0;
    ++symbols[next_pos].version;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = static_cast<int32_t>(top.pos);
    if (cur.prev >= 0) {
      const BpeSymbol& prev = symbols[static_cast<size_t>(cur.prev)];
      if (merges_.find(prev.c, cur.c, &rank, &new_id)) {
        heap.push_back({rank, static_cast<uint32_t>(cur.prev), new_id, static_cast<int32_t>(top.pos), prev.version,
                        cur.version});
        std::push_heap(heap.begin(), heap.end(), BpeMergeLess{});
      }
    }
    if (cur.next >= 0) {
      const BpeSymbol& nxt = symbols[static_cast<size_t>(cur.next)];
      if (merges_.find(cur.c, nxt.c, &rank, &new_id)) {
        heap.push_back({rank, top.pos, new_id, cur.next, cur.version, nxt.version});
        std::push_heap(heap.begin(), heap.end(), BpeMergeLess{});
      }
    }
  }
  for (const BpeSymbol& s : symbols) {
    if (s.len != 0) out.push_back(s.c);
  }
}

void BpeModel::tokenize(std::string_view word, std::vector<uint32_t>& ids,
                        std::vector<std::string>* tokens) const {
  if (word.empty()) return;
  const size_t first = ids.size();
  bool done = false;
  if (ignore_merges_) {
    const int64_t id = vocab_.map.find(word);
    if (id >= 0) {
      ids.push_back(static_cast<uint32_t>(id));
      done = true;
    }
  }
  if (!done) {
    if (word.size() < BpeWordCache::kMaxWordLength) {
      const uint64_t h = tok_hash_bytes(word.data(), word.size());
      if (!cache_.get(word, h, ids)) {
        merge_word(word, ids);
        cache_.put(word, h, ids.data() + first, ids.size() - first);
      }
    } else {
      merge_word(word, ids);
    }
  }
  if (tokens) {
    for (size_t k = first; k < ids.size(); ++k) tokens->push_back(vocab_.r[ids[k]]);
  }
}

}  // namespace

std::unique_ptr<TokModel> tok_make_bpe(const io::JsonValue& j, const std::string& subject) {
  return std::make_unique<BpeModel>(j, subject);
}

}  // namespace nnterp::tok

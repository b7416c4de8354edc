#include "tokenizer/added_vocabulary.hpp"

#include <algorithm>

namespace nnterp::tok {

void AddedVocabulary::Trie::clear() {
  nodes_.assign(1, Node{});
  std::fill(std::begin(first_), std::end(first_), false);
}

void AddedVocabulary::Trie::insert(std::string_view key, uint32_t id) {
  if (key.empty()) return;
  first_[static_cast<unsigned char>(key[0])] = true;
  uint32_t node = 0;
  for (char ch : key) {
    const auto c = static_cast<unsigned char>(ch);
    uint32_t child = 0;
    for (const auto& [k, v] : nodes_[node].children) {
      if (k == c) {
        child = v;
        break;
      }
    }
    if (child == 0) {
      child = static_cast<uint32_t>(nodes_.size());
      nodes_.emplace_back();
      nodes_[node].children.emplace_back(c, child);
    }
    node = child;
  }
  nodes_[node].id = id;
}

bool AddedVocabulary::Trie::longest_at(std::string_view s, size_t pos, size_t* len, uint32_t* id) const {
  uint32_t node = 0;
  bool found = false;
  for (size_t i = pos; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    uint32_t child = 0;
    for (const auto& [k, v] : nodes_[node].children) {
      if (k == c) {
        child = v;
        break;
      }
    }
    if (child == 0) break;
    node = child;
    if (nodes_[node].id >= 0) {
      found = true;
      *len = i + 1 - pos;
      *id = static_cast<uint32_t>(nodes_[node].id);
    }
  }
  return found;
}

void AddedVocabulary::add_tokens(const std::vector<AddedTokenSpec>& tokens, const TokModel& model,
                                 const TokNormalizer* normalizer) {
  const size_t model_size = model.vocab_size();
  uint32_t next_id = static_cast<uint32_t>(model_size);
  if (!by_id_.empty()) {
    uint32_t max = 0;
    for (const auto& [id, t] : by_id_) max = std::max(max, id);
    next_id = (max >= model_size || model_size == 0) ? max + 1 : static_cast<uint32_t>(model_size);
  }
  for (const auto& token : tokens) {
    if (token.content.empty()) continue;
    if (auto it = by_content_.find(token.content); it != by_content_.end()) {
      auto jt = by_id_.find(it->second);
      if (jt != by_id_.end() && jt->second == token) continue;
    }
    uint32_t new_id;
    if (auto it = by_content_.find(token.content); it != by_content_.end()) {
      new_id = it->second;
    } else if (const int64_t m = model.token_to_id(token.content); m >= 0) {
      new_id = static_cast<uint32_t>(m);
    } else {
      new_id = next_id++;
    }
    if (token.normalized && normalizer) {
      std::string normed = token.content;
      normalizer->normalize(normed);
      if (normed != token.content) normalized_cache_[new_id] = std::move(normed);
    }
    by_content_[token.content] = new_id;
    if (token.special) specials_.insert(token.content);
    by_id_[new_id] = token;
  }
  refresh();
}

void AddedVocabulary::refresh() {
  raw_trie_.clear();
  normalized_trie_.clear();
  // Insert in id order so that the outcome does not depend on hash-map iteration order.
  std::vector<uint32_t> ids;
  ids.reserve(by_id_.size());
  for (const auto& [id, t] : by_id_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (uint32_t id : ids) {
    const AddedTokenSpec& t = by_id_.at(id);
    if (t.normalized) {
      auto it = normalized_cache_.find(id);
      normalized_trie_.insert(it != normalized_cache_.end() ? std::string_view(it->second) : std::string_view(t.content), id);
    } else {
      raw_trie_.insert(t.content, id);
    }
  }
}

int64_t AddedVocabulary::token_to_id(std::string_view content) const {
  auto it = by_content_.find(std::string(content));
  return it == by_content_.end() ? -1 : static_cast<int64_t>(it->second);
}

const AddedTokenSpec* AddedVocabulary::find(uint32_t id) const {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

std::optional<std::string_view> AddedVocabulary::decode_text(uint32_t id) const {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return std::nullopt;
  if (auto jt = normalized_cache_.find(id); jt != normalized_cache_.end()) return std::string_view(jt->second);
  return std::string_view(it->second.content);
}

size_t AddedVocabulary::count_beyond(size_t model_size) const {
  size_t n = 0;
  for (const auto& [id, t] : by_id_) n += id >= model_size;
  return n;
}

namespace {
// The code point ending just before s[end] (s valid UTF-8, end > 0).
uint32_t tok_cp_before(std::string_view s, size_t end, size_t* start) {
  size_t p = end - 1;
  while (p > 0 && (static_cast<unsigned char>(s[p]) & 0xC0) == 0x80) --p;
  int len;
  *start = p;
  return utf8_decode_at(s.data() + p, &len);
}
}  // namespace

void AddedVocabulary::split(std::string_view s, bool normalized, std::vector<AddedSplit>& out) const {
  out.clear();
  const auto n = static_cast<uint32_t>(s.size());
  const Trie& trie = normalized ? normalized_trie_ : raw_trie_;
  if (s.empty()) {
    out.push_back({0, 0, -1});
    return;
  }
  if (trie.empty()) {
    out.push_back({0, n, -1});
    return;
  }
  uint32_t start_offset = 0;
  size_t pos = 0;
  while (pos < s.size()) {
    // Leftmost-longest match at or after pos.
    size_t ms = pos, mlen = 0;
    uint32_t id = 0;
    bool found = false;
    for (; ms < s.size(); ++ms) {
      if (!trie.may_start(static_cast<unsigned char>(s[ms]))) continue;
      if (trie.longest_at(s, ms, &mlen, &id)) {
        found = true;
        break;
      }
    }
    if (!found) break;
    const size_t me = ms + mlen;
    pos = me;
    const AddedTokenSpec& tok = by_id_.at(id);
    if (tok.single_word) {
      bool start_space = true, stop_space = true;
      if (ms > 0) {
        size_t b;
        start_space = !uc_is_word(tok_cp_before(s, ms, &b));
      }
      if (me < s.size()) {
        int len;
        stop_space = !uc_is_word(utf8_decode_at(s.data() + me, &len));
      }
      if (!start_space || !stop_space) continue;
    }
    size_t start = ms, stop = me;
    if (tok.lstrip) {
      size_t newstart = ms;
      while (newstart > 0) {
        size_t b;
        const uint32_t cp = tok_cp_before(s, newstart, &b);
        if (!uc_is_whitespace(cp)) break;
        newstart = b;
      }
      start = std::max<size_t>(newstart, start_offset);
    }
    if (tok.rstrip) {
      while (stop < s.size()) {
        int len;
        const uint32_t cp = utf8_decode_at(s.data() + stop, &len);
        if (!uc_is_whitespace(cp)) break;
        stop += static_cast<size_t>(len);
      }
    }
    if (start_offset < start) out.push_back({start_offset, static_cast<uint32_t>(start), -1});
    out.push_back({static_cast<uint32_t>(start), static_cast<uint32_t>(stop), static_cast<int64_t>(id)});
    start_offset = static_cast<uint32_t>(stop);
  }
  if (start_offset != n) out.push_back({start_offset, n, -1});
}

}  // namespace nnterp::tok

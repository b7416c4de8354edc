// Added tokens (special or not): matched in the input before the model sees it, as the Rust
// AddedVocabulary does: leftmost-longest matching, first against the raw text for tokens with
// normalized=false, then against each normalized piece for tokens with normalized=true.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "tokenizer/tok_components.hpp"

namespace nnterp::tok {

struct AddedTokenSpec {
  std::string content;
  bool single_word = false, lstrip = false, rstrip = false, normalized = true, special = false;
  bool operator==(const AddedTokenSpec& o) const {
    return content == o.content && single_word == o.single_word && lstrip == o.lstrip && rstrip == o.rstrip &&
           normalized == o.normalized && special == o.special;
  }
};

// A covering piece of a string: [start, end) and the added token id, or -1 for plain text.
struct AddedSplit {
  uint32_t start, end;
  int64_t id;
};

class AddedVocabulary {
 public:
  // Adds tokens in order, as tokenizers' add_tokens does when a tokenizer.json is loaded.
  void add_tokens(const std::vector<AddedTokenSpec>& tokens, const TokModel& model, const TokNormalizer* normalizer);

  bool empty() const { return by_id_.empty(); }
  // Splits `s` on added tokens of one kind (normalized=true ones when `normalized`).
  void split(std::string_view s, bool normalized, std::vector<AddedSplit>& out) const;

  int64_t token_to_id(std::string_view content) const;
  const AddedTokenSpec* find(uint32_t id) const;
  // The string used for this id when decoding (its normalized form when it has one).
  std::optional<std::string_view> decode_text(uint32_t id) const;
  bool is_special(std::string_view content) const { return specials_.count(std::string(content)) != 0; }
  bool has_specials() const { return !specials_.empty(); }
  size_t count_beyond(size_t model_size) const;

 private:
  class Trie {
   public:
    void clear();
    void insert(std::string_view key, uint32_t id);
    bool empty() const { return nodes_.size() <= 1; }
    // Longest key starting at s[pos], or false.
    bool longest_at(std::string_view s, size_t pos, size_t* len, uint32_t* id) const;
    bool may_start(unsigned char c) const { return first_[c]; }

   private:
    struct Node {
      int64_t id = -1;
      std::vector<std::pair<unsigned char, uint32_t>> children;
    };
    std::vector<Node> nodes_{Node{}};
    bool first_[256] = {};
  };

  void refresh();

  std::unordered_map<std::string, uint32_t> by_content_;
  std::unordered_map<uint32_t, AddedTokenSpec> by_id_;
  std::unordered_map<uint32_t, std::string> normalized_cache_;
  std::unordered_set<std::string> specials_;
  Trie raw_trie_, normalized_trie_;
};

}  // namespace nnterp::tok

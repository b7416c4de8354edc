#include "bpe.hpp"

#include <cctype>
#include <map>
#include <set>
#include <stdexcept>

namespace nnterp::toy {

namespace {

// GPT-2's bytes_to_unicode: printable bytes map to themselves, the others to U+0100 onwards.
std::vector<std::string> byte_alphabet() {
  std::vector<int> printable;
  for (int b = '!'; b <= '~'; ++b) printable.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) printable.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) printable.push_back(b);
  std::vector<int> code(256, -1);
  for (int b : printable) code[b] = b;
  int next = 256;
  for (int b = 0; b < 256; ++b)
    if (code[b] < 0) code[b] = next++;
  std::vector<std::string> out(256);
  for (int b = 0; b < 256; ++b) {
    const int c = code[b];
    std::string s;
    if (c < 0x80) {
      s += static_cast<char>(c);
    } else {  // two-byte UTF-8 (all code points here are < 0x800)
      s += static_cast<char>(0xC0 | (c >> 6));
      s += static_cast<char>(0x80 | (c & 0x3F));
    }
    out[b] = s;
  }
  return out;
}

bool is_space(char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\f' || c == '\v'; }
bool is_letter(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
bool is_digit(char c) { return std::isdigit(static_cast<unsigned char>(c)) != 0; }
bool is_other(char c) { return !is_space(c) && !is_letter(c) && !is_digit(c); }

}  // namespace

std::vector<std::string> pretokenize_ascii(const std::string& text) {
  for (unsigned char c : text)
    if (c >= 0x80) throw std::invalid_argument("pretokenize_ascii: non-ASCII text: " + text);
  std::vector<std::string> out;
  const size_t n = text.size();
  size_t i = 0;
  while (i < n) {
    // Contractions.
    if (text[i] == '\'') {
      bool matched = false;
      for (const char* c : {"'s", "'t", "'re", "'ve", "'m", "'ll", "'d"}) {
        const std::string s(c);
        if (text.compare(i, s.size(), s) == 0) {
          out.push_back(s);
          i += s.size();
          matched = true;
          break;
        }
      }
      if (matched) continue;
    }
    const size_t start = i;
    const size_t body = (text[i] == ' ' && i + 1 < n && !is_space(text[i + 1])) ? i + 1 : i;
    auto run = [&](bool (*pred)(char)) {
      size_t j = body;
      while (j < n && pred(text[j])) ++j;
      return j;
    };
    if (body < n && is_letter(text[body])) {
      i = run(is_letter);
    } else if (body < n && is_digit(text[body])) {
      i = run(is_digit);
    } else if (body < n && is_other(text[body])) {
      i = run(is_other);
    } else {
      // Whitespace: \s+(?!\S) (the run, less its last character when a non-space follows), else \s+.
      size_t j = i;
      while (j < n && is_space(text[j])) ++j;
      if (j < n && j - i >= 2) j -= 1;
      i = j;
    }
    out.push_back(text.substr(start, i - start));
  }
  return out;
}

BpeResult train_bpe(const std::vector<std::string>& texts, size_t vocab_size, const std::string& special_token) {
  const auto alphabet = byte_alphabet();
  std::map<std::string, int64_t> word_counts;
  for (const auto& t : texts)
    for (const auto& w : pretokenize_ascii(t)) ++word_counts[w];

  struct Word {
    std::vector<std::string> symbols;
    int64_t count;
  };
  std::vector<Word> words;
  for (const auto& [w, count] : word_counts) {
    Word word{{}, count};
    for (unsigned char c : w) word.symbols.push_back(alphabet[c]);
    words.push_back(std::move(word));
  }

  BpeResult result;
  result.vocab.push_back(special_token);
  // The byte alphabet in byte order.
  for (int b = 0; b < 256; ++b) result.vocab.push_back(alphabet[b]);
  std::set<std::string> in_vocab(result.vocab.begin(), result.vocab.end());

  while (result.vocab.size() < vocab_size) {
    std::map<std::pair<std::string, std::string>, int64_t> pairs;
    for (const auto& w : words)
      for (size_t k = 0; k + 1 < w.symbols.size(); ++k) pairs[{w.symbols[k], w.symbols[k + 1]}] += w.count;
    const std::pair<std::string, std::string>* best = nullptr;
    int64_t best_count = 1;
    for (const auto& [pair, count] : pairs)  // map order: the smallest pair wins ties
      if (count > best_count) best = &pair, best_count = count;
    if (!best) break;
    const auto merged_pair = *best;
    const std::string merged = merged_pair.first + merged_pair.second;
    result.merges.push_back(merged_pair);
    // Different pairs can spell the same token ("ab"+"c", "a"+"bc"): one vocabulary entry.
    if (!in_vocab.count(merged)) {
      in_vocab.insert(merged);
      result.vocab.push_back(merged);
    }
    for (auto& w : words) {
      std::vector<std::string> next;
      next.reserve(w.symbols.size());
      for (size_t k = 0; k < w.symbols.size(); ++k) {
        if (k + 1 < w.symbols.size() && w.symbols[k] == merged_pair.first && w.symbols[k + 1] == merged_pair.second) {
          next.push_back(merged);
          ++k;
        } else {
          next.push_back(w.symbols[k]);
        }
      }
      w.symbols = std::move(next);
    }
  }
  return result;
}

nlohmann::json tokenizer_json(const BpeResult& bpe, const std::string& special_token) {
  using nlohmann::json;
  json vocab = json::object();
  for (size_t id = 0; id < bpe.vocab.size(); ++id) vocab[bpe.vocab[id]] = id;
  json merges = json::array();
  for (const auto& [a, b] : bpe.merges) merges.push_back(json::array({a, b}));
  const json byte_level = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  json t;
  t["version"] = "1.0";
  t["truncation"] = nullptr;
  t["padding"] = nullptr;
  t["added_tokens"] = json::array({{{"id", 0},
                                    {"content", special_token},
                                    {"single_word", false},
                                    {"lstrip", false},
                                    {"rstrip", false},
                                    {"normalized", false},
                                    {"special", true}}});
  t["normalizer"] = nullptr;
  t["pre_tokenizer"] = byte_level;
  t["post_processor"] = {
      {"type", "TemplateProcessing"},
      {"single", json::array({{{"SpecialToken", {{"id", special_token}, {"type_id", 0}}}},
                              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
      {"pair", json::array({{{"SpecialToken", {{"id", special_token}, {"type_id", 0}}}},
                            {{"Sequence", {{"id", "A"}, {"type_id", 0}}}},
                            {{"SpecialToken", {{"id", special_token}, {"type_id", 1}}}},
                            {{"Sequence", {{"id", "B"}, {"type_id", 1}}}}})},
      {"special_tokens", {{special_token, {{"id", special_token}, {"ids", json::array({0})}, {"tokens", json::array({special_token})}}}}}};
  t["decoder"] = byte_level;
  t["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", false},
                {"vocab", vocab},
                {"merges", merges}};
  return t;
}

nlohmann::json tokenizer_config_json(const std::string& special_token, size_t max_length) {
  using nlohmann::json;
  json c;
  c["added_tokens_decoder"] = {{"0",
                                {{"content", special_token},
                                 {"lstrip", false},
                                 {"normalized", false},
                                 {"rstrip", false},
                                 {"single_word", false},
                                 {"special", true}}}};
  c["bos_token"] = special_token;
  c["clean_up_tokenization_spaces"] = false;
  c["eos_token"] = special_token;
  c["extra_special_tokens"] = json::object();
  c["model_input_names"] = json::array({"input_ids", "attention_mask"});
  c["model_max_length"] = max_length;
  c["pad_token"] = special_token;
  c["padding_side"] = "left";
  c["tokenizer_class"] = "PreTrainedTokenizerFast";
  return c;
}

}  // namespace nnterp::toy

// A byte-level BPE trainer (GPT-2 style) that writes a HuggingFace tokenizer.json; the result is
// read back with nnterp::Tokenizer (and by HuggingFace `tokenizers`).
#pragma once

#include <cstddef>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace nnterp::toy {

// GPT-2's pre-tokenization regex ('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)
// for ASCII text. Throws on non-ASCII input.
std::vector<std::string> pretokenize_ascii(const std::string& text);

struct BpeResult {
  std::vector<std::string> vocab;  // id → token string (byte-level alphabet); id 0 is the special token
  std::vector<std::pair<std::string, std::string>> merges;
};

// Trains merges on `texts` until the vocabulary (the special token, the 256 bytes and the merges)
// has `vocab_size` entries or no pair occurs twice. Ties are broken by the lexicographically
// smallest pair, so the result is deterministic.
BpeResult train_bpe(const std::vector<std::string>& texts, size_t vocab_size, const std::string& special_token);

// tokenizer.json (ByteLevel pre-tokenizer and decoder, BPE model, a TemplateProcessing
// post-processor that prepends the special token as BOS) and tokenizer_config.json.
nlohmann::json tokenizer_json(const BpeResult& bpe, const std::string& special_token);
nlohmann::json tokenizer_config_json(const std::string& special_token, size_t max_length);

}  // namespace nnterp::toy

// SentencePiece's precompiled normalization map (the "Precompiled" normalizer): a double-array
// trie over UTF-8 bytes whose values index '\0'-terminated replacement strings. Interpreted as
// the Rust `spm_precompiled` crate does, and applied per grapheme cluster as tokenizers does.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace nnterp::tok {

class PrecompiledCharsMap {
 public:
  // `blob` is the decoded precompiled_charsmap; throws Error(Format, subject) when malformed.
  PrecompiledCharsMap(std::string_view blob, const std::string& subject);

  // The replacement for the shortest key that is a prefix of `chunk` (spm_precompiled's
  // `transform`), or nullopt.
  std::optional<std::string_view> transform(std::string_view chunk) const;

  void normalize(std::string& s) const;

 private:
  std::vector<uint32_t> array_;
  std::string normalized_;
};

// Standard base64 (with or without padding); throws Error(Format, subject) on bad input.
std::string tok_base64_decode(std::string_view in, const std::string& subject);

}  // namespace nnterp::tok

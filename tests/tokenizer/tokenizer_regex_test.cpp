// The hand-written matchers for the common pre-tokenization regexes against Oniguruma itself,
// on random text over an alphabet chosen to hit every alternative and class boundary.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tokenizer/tok_pattern.hpp"

namespace tokregex {

// Letters (ASCII, Latin-1, long s, Greek, CJK, supplementary), numbers (Nd, Nl, No), spaces of
// every kind, CR/LF, apostrophes, punctuation, marks, symbols, emoji.
const std::vector<std::string>& alphabet() {
  static const std::vector<std::string> a = {
      "a", "s", "t", "r", "e", "v", "m", "l", "d", "S", "T", "R", "E", "V", "M", "L", "D", "x", "Q",
      "\xC5\xBF" /* ſ */, "\xC3\xA9" /* é */, "\xCE\xB1" /* α */, "\xE6\x97\xA5" /* 日 */,
      "\xF0\x9D\x90\x80" /* 𝐀 */, "0", "7", "\xD9\xA3" /* ٣ */, "\xE2\x85\xAB" /* Ⅻ */, "\xC2\xBD" /* ½ */,
      " ", " ", " ", "  ", "\t", "\n", "\r", "\r\n", "\v", "\f", "\xC2\xA0", "\xC2\x85", "\xE2\x80\xA8",
      "\xE3\x80\x80", "\xE2\x80\x83", "'", "'", "!", ",", ".", "-", "_", "(", "$", "\xCC\x81" /* combining acute */,
      "\xE2\x82\xAC" /* € */, "\xF0\x9F\x8D\x95" /* 🍕 */, "\xE2\x80\x8B" /* zero width space */, "/"};
  return a;
}

std::string random_text(std::mt19937& rng, size_t pieces) {
  std::uniform_int_distribution<size_t> pick(0, alphabet().size() - 1);
  std::string s;
  for (size_t i = 0; i < pieces; ++i) s += alphabet()[pick(rng)];
  return s;
}

}  // namespace tokregex

TEST(TokenizerRegex, FastMatchersAgreeWithOniguruma) {
  const std::vector<std::pair<std::string, nnterp::tok::FastRegexKind>> patterns = {
      {nnterp::tok::kByteLevelRegex, nnterp::tok::FastRegexKind::Gpt2},
      {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
       nnterp::tok::FastRegexKind::Cl100k},
      {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
       nnterp::tok::FastRegexKind::Cl100kSingleDigit},
  };
  std::mt19937 rng(12345);
  size_t compared = 0;
  for (const auto& [pattern, kind] : patterns) {
    ASSERT_EQ(nnterp::tok::fast_regex_kind(pattern), kind);
    const nnterp::tok::OnigRegex onig(pattern, "test");
    for (int iter = 0; iter < 3000; ++iter) {
      const std::string text = tokregex::random_text(rng, 1 + iter % 40);
      std::vector<std::pair<uint32_t, uint32_t>> want, got;
      onig.find_iter(text, want);
      nnterp::tok::fast_regex_find_iter(kind, text, got);
      ASSERT_EQ(got, want) << "pattern " << pattern << "\ntext (escaped JSON-ish): " << [&] {
        std::string e;
        for (unsigned char c : text) e += (c < 0x20 || c >= 0x7F) ? "\\x" + std::to_string(c) + " " : std::string(1, c);
        return e;
      }();
      ++compared;
    }
  }
  EXPECT_EQ(compared, 9000u);
}

// Synthetic tokenizers (tests/data/tokenizers/synthetic/cases.json, written by generate.mjs with
// HuggingFace tokenizers 0.23.2): every model, normalizer, pre-tokenizer, split behavior,
// post-processor, decoder and added-token flag nnterp implements, against the Rust library.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>

#include "nnterp/tokenizer.hpp"

namespace toksyn {

const nlohmann::json& synthetic_cases() {
  static const nlohmann::json j = [] {
    std::ifstream in(std::filesystem::path(NNTERP_TEST_DATA) / "tokenizers" / "synthetic" / "cases.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

}  // namespace toksyn

TEST(TokenizerSynthetic, EveryComponentMatchesTheRustLibrary) {
  const auto& all = toksyn::synthetic_cases();
  size_t tokenizers = 0, checks = 0, failures = 0;
  for (const auto& entry : all.at("tokenizers")) {
    const std::string name = entry.at("name").get<std::string>();
    nnterp::TokenizerOptions raw;
    raw.follow_tokenizer_config = false;
    const auto tok = nnterp::Tokenizer::from_json_string(entry.at("tokenizer").dump(), {}, raw);
    ++tokenizers;
    size_t ok = 0, total = 0;
    for (const auto& c : entry.at("cases")) {
      const std::string text = c.at("text").get<std::string>();
      const auto e = tok.encode(text, false);
      const auto ws = tok.encode_ids(text, true);
      const auto want_ids = c.at("ids").get<std::vector<int64_t>>();
      const auto want_ws = c.at("ids_with_special").get<std::vector<int64_t>>();
      const struct {
        const char* what;
        bool good;
        std::string got, want;
      } results[] = {
          {"ids", e.ids == want_ids, nlohmann::json(e.ids).dump(), c.at("ids").dump()},
          {"tokens", e.tokens == c.at("tokens").get<std::vector<std::string>>(), nlohmann::json(e.tokens).dump(),
           c.at("tokens").dump()},
          {"ids_with_special", ws == want_ws, nlohmann::json(ws).dump(), c.at("ids_with_special").dump()},
          {"decoded", tok.decode(want_ids) == c.at("decoded").get<std::string>(),
           nlohmann::json(tok.decode(want_ids)).dump(), c.at("decoded").dump()},
          {"decoded_with_special", tok.decode(want_ws) == c.at("decoded_with_special").get<std::string>(),
           nlohmann::json(tok.decode(want_ws)).dump(), c.at("decoded_with_special").dump()},
          {"decoded_skip_special", tok.decode(want_ws, true) == c.at("decoded_skip_special").get<std::string>(),
           nlohmann::json(tok.decode(want_ws, true)).dump(), c.at("decoded_skip_special").dump()},
      };
      for (const auto& r : results) {
        ++total;
        ok += r.good;
        if (!r.good && failures++ < 25) {
          ADD_FAILURE() << name << " " << r.what << " for " << nlohmann::json(text).dump() << "\n  got:  " << r.got
                        << "\n  want: " << r.want;
        }
      }
    }
    checks += total;
    if (ok != total) std::cout << "[tokenizer] synthetic " << name << ": " << ok << "/" << total << std::endl;
  }
  std::cout << "[tokenizer] synthetic: " << tokenizers << " tokenizers, " << checks - failures << "/" << checks
            << " checks match" << std::endl;
  EXPECT_EQ(failures, 0u);
  EXPECT_GT(tokenizers, 40u);
}

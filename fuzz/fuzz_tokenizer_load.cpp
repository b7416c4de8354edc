// Fuzz target: loading a tokenizer.json (+ tokenizer_config.json), then using what loaded.
//
// Input: the text of a tokenizer.json, optionally followed by a NUL byte and the text of a
// tokenizer_config.json. A tokenizer that loads then encodes a few fixed texts, decodes fixed
// id lists (in one go and through a DecodeStream) and answers the vocabulary queries, so the
// fuzzer also reaches the normalizers, pre-tokenizers, models, post-processors and decoders
// that the mutated JSON configures.
#include <cstring>

#include "fuzz_common.hpp"
#include "nnterp/tokenizer.hpp"

using namespace nnterp;
using namespace nnterp::fuzz;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view all(reinterpret_cast<const char*>(data), size);
  std::string_view json = all, config;
  if (size_t nul = all.find('\0'); nul != std::string_view::npos) {
    json = all.substr(0, nul);
    config = all.substr(nul + 1);
  }
  for (bool follow : {true, false}) {
    if (!follow && config.empty()) break;  // follow_tokenizer_config only matters with a config
    std::optional<Tokenizer> tok;
    if (!accepts([&] { tok.emplace(Tokenizer::from_json_string(json, config, TokenizerOptions{follow})); })) continue;
    static const char* const kTexts[] = {"", "Hello world", " a  b\tc\n", "héllo wörld 東京 🤗", "<s>x</s><unk>[CLS]", "1234 + 5678"};
    for (const char* text : kTexts) {
      for (bool special : {true, false}) {
        accepts([&] {
          Encoding e = tok->encode(text, special);
          require(e.ids.size() == e.tokens.size(), "one token string per id");
          tok->decode(e.ids, false);
          tok->decode(e.ids, true);
        });
      }
    }
    const int64_t v = static_cast<int64_t>(tok->vocab_size());
    const std::vector<int64_t> ids = {0, 1, 2, v - 1, v, v + 1, -1, 3, 0};
    accepts([&] {
      tok->decode(ids, false);
      tok->decode(ids, true);
      auto stream = tok->decode_stream(false);
      for (int64_t id : ids) stream.step(id);
    });
    accepts([&] {
      BatchOptions o;
      o.num_threads = 1;
      o.max_length = 3;
      o.padding_side = PaddingSide::Right;
      auto b = tok->encode_batch({"Hello world", "", "a b c d e f"}, o);
      for (size_t i = 0; i < b.batch_size(); ++i)
        require(b.input_ids[i].size() == b.seq_len() && b.attention_mask[i].size() == b.seq_len(), "rectangular batch");
    });
    for (int64_t id : ids) {
      tok->id_to_token(id);
      tok->is_special_id(id);
    }
    tok->token_to_id("Hello");
    tok->pad_token_id();
    tok->bos_token_id();
    tok->eos_token_id();
    tok->padding_id();
  }
  return 0;
}

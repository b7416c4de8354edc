// Fuzz target: encode arbitrary bytes (invalid UTF-8 included) and decode arbitrary id lists
// with real committed tokenizers.
//
// Input: byte 0 picks the tokenizer, byte 1 holds flags, the rest is the text to encode or the
// ids to decode (3 bytes per id, mapped onto [-8, vocab + 8) so that known, special and
// unknown ids all occur; with the "raw ids" flag, 8 bytes per id, any int64).
//   flags bit 0: add special tokens        bit 1: skip special tokens when decoding
//   bit 2: decode ids instead of encoding   bit 3: also encode as a batch (two halves, padded)
//   bit 4: raw int64 ids                    bit 5: batch padding side right, with truncation
// Properties: encode either throws nnterp::Error (invalid UTF-8) or returns one token string per
// id, every id below vocab_size(); GPT-2's byte-level tokenizer decodes what it encoded (without
// special tokens, skipping none) back to the same text; a DecodeStream over the ids never throws
// anything but nnterp::Error.
#include <memory>
#include <vector>

#include "fuzz_common.hpp"
#include "nnterp/tokenizer.hpp"

using namespace nnterp;
using namespace nnterp::fuzz;

namespace {

struct Loaded {
  const char* name;
  std::unique_ptr<Tokenizer> tok;
  bool round_trips;  // decode(encode(text, no specials)) == text for every valid UTF-8 text
};

std::vector<Loaded>& tokenizers() {
  static std::vector<Loaded> all = [] {
    const std::string data = NNTERP_TEST_DATA;
    std::vector<Loaded> out;
    auto add = [&](const char* name, const std::string& dir, bool round_trips) {
      out.push_back({name, std::make_unique<Tokenizer>(Tokenizer::from_folder(dir)), round_trips});
    };
    add("tiny_tokenizer", data + "/tiny_tokenizer", false);  // WordLevel: <unk> loses text
    add("gpt2", data + "/tokenizers/gpt2", true);            // byte-level BPE
    add("t5", data + "/tokenizers/t5", false);               // Unigram, precompiled normalizer
    add("mistral", data + "/tokenizers/mistral", false);     // SentencePiece BPE, byte fallback
    add("qwen2", data + "/tokenizers/qwen2", false);         // byte-level BPE, NFC, big regex
    return out;
  }();
  return all;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  tokenizers();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes in{data, size};
  auto& all = tokenizers();
  Loaded& l = all[in.byte() % all.size()];
  const Tokenizer& tok = *l.tok;
  const uint8_t flags = in.byte();
  const bool add_special = flags & 1, skip_special = flags & 2;
  const int64_t vocab = static_cast<int64_t>(tok.vocab_size());

  if (flags & 4) {  // decode
    std::vector<int64_t> ids;
    while (in.n > 0) {
      if (flags & 16) {
        uint64_t v = 0;
        for (int i = 0; i < 8; ++i) v = (v << 8) | in.byte();
        ids.push_back(static_cast<int64_t>(v));
      } else {
        uint32_t v = (uint32_t{in.byte()} << 16) | (uint32_t{in.byte()} << 8) | in.byte();
        ids.push_back(static_cast<int64_t>(v % static_cast<uint32_t>(vocab + 16)) - 8);
      }
    }
    accepts([&] { tok.decode(ids, skip_special); });
    accepts([&] { tok.decode_batch({ids, {}, ids}, skip_special); });
    accepts([&] {
      auto stream = tok.decode_stream(skip_special);
      for (int64_t id : ids) stream.step(id);
    });
    for (size_t i = 0; i < ids.size() && i < 16; ++i) {
      tok.id_to_token(ids[i]);
      tok.is_special_id(ids[i]);
    }
    return 0;
  }

  const std::string_view text = in.rest();
  accepts([&] {
    Encoding e = tok.encode(text, add_special);
    require(e.ids.size() == e.tokens.size(), "one token string per id");
    for (int64_t id : e.ids) require(id >= 0 && id < vocab, "encoded ids lie in [0, vocab_size)");
    const std::string back = tok.decode(e.ids, skip_special);
    if (l.round_trips && !add_special && !skip_special && back != text) {
      std::fprintf(stderr, "%s: decode(encode(text)) != text\n", l.name);
      require(false, "byte-level BPE round trip");
    }
    auto stream = tok.decode_stream(skip_special);
    for (int64_t id : e.ids) stream.step(id);
    require(tok.encode_ids(text, add_special) == e.ids, "encode_ids agrees with encode");
  });
  if (flags & 8) {
    accepts([&] {
      const size_t half = text.size() / 2;
      BatchOptions o;
      o.add_special_tokens = add_special;
      o.num_threads = 1;
      if (flags & 32) {
        o.padding_side = PaddingSide::Right;
        o.truncation_side = PaddingSide::Left;
        o.max_length = 1 + text.size() % 7;
      }
      auto b = tok.encode_batch({std::string(text.substr(0, half)), std::string(text.substr(half))}, o);
      require(b.batch_size() == 2, "batch size");
      for (size_t i = 0; i < 2; ++i) {
        require(b.input_ids[i].size() == b.seq_len() && b.attention_mask[i].size() == b.seq_len(), "rectangular batch");
        if (o.max_length) require(b.seq_len() <= *o.max_length, "truncated to max_length");
      }
    });
  }
  return 0;
}

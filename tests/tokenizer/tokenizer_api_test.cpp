// Tokenizer API: batches (left padding by default), truncation, special ids, streaming decode,
// long inputs, and clear errors on bad input and bad files.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include <unistd.h>

#include "nnterp/error.hpp"
#include "nnterp/tokenizer.hpp"

namespace fs = std::filesystem;
using nnterp::BatchOptions;
using nnterp::ErrorKind;
using nnterp::PaddingSide;
using nnterp::Tokenizer;

namespace tokapi {

fs::path data_dir(const std::string& family) { return fs::path(NNTERP_TEST_DATA) / "tokenizers" / family; }

const Tokenizer& gpt2() {
  static const Tokenizer t = Tokenizer::from_folder(data_dir("gpt2"));
  return t;
}
const Tokenizer& mistral() {
  static const Tokenizer t = Tokenizer::from_folder(data_dir("mistral"));
  return t;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("nnterp_tok_test_" + name + "_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

template <typename F>
ErrorKind error_kind_of(F f, std::string* message = nullptr) {
  try {
    f();
  } catch (const nnterp::Error& e) {
    if (message) *message = e.what();
    return e.kind();
  }
  ADD_FAILURE() << "expected an nnterp::Error";
  return ErrorKind::Io;
}

}  // namespace tokapi

using namespace tokapi;

TEST(TokenizerApi, SpecialIdsFromConfig) {
  EXPECT_EQ(gpt2().bos_token_id(), 50256);
  EXPECT_EQ(gpt2().eos_token_id(), 50256);
  EXPECT_FALSE(gpt2().pad_token_id().has_value());
  EXPECT_EQ(gpt2().padding_id(), 50256);  // falls back to eos
  EXPECT_EQ(mistral().bos_token_id(), 1);
  EXPECT_EQ(mistral().eos_token_id(), 2);
  EXPECT_EQ(gpt2().vocab_size(), 50257u);
  EXPECT_EQ(gpt2().token_to_id("Hello"), 15496);
  EXPECT_EQ(gpt2().id_to_token(995), "\xC4\xA0world");
  EXPECT_TRUE(gpt2().is_special_id(50256));
  EXPECT_FALSE(gpt2().is_special_id(995));
  const Tokenizer qwen = Tokenizer::from_folder(data_dir("qwen2"));
  EXPECT_EQ(qwen.pad_token_id(), 151643);
  EXPECT_FALSE(qwen.bos_token_id().has_value());  // "bos_token": null
  EXPECT_EQ(qwen.eos_token_id(), 151645);
}

TEST(TokenizerApi, BatchIsLeftPaddedByDefault) {
  const std::vector<std::string> texts = {"Hello world", "Hi", "The quick brown fox jumps"};
  const auto b = mistral().encode_batch(texts);
  ASSERT_EQ(b.batch_size(), 3u);
  const size_t T = b.seq_len();
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = mistral().encode_ids(texts[i]);
    ASSERT_EQ(b.input_ids[i].size(), T);
    ASSERT_EQ(b.attention_mask[i].size(), T);
    const size_t pad = T - ids.size();
    for (size_t k = 0; k < pad; ++k) {
      EXPECT_EQ(b.attention_mask[i][k], 0);
      EXPECT_EQ(b.input_ids[i][k], mistral().padding_id());
    }
    EXPECT_EQ(std::vector<int64_t>(b.input_ids[i].begin() + static_cast<std::ptrdiff_t>(pad), b.input_ids[i].end()), ids);
    for (size_t k = pad; k < T; ++k) EXPECT_EQ(b.attention_mask[i][k], 1);
    EXPECT_EQ(b.input_ids[i].front() == 1, pad == 0);  // BOS right after the padding
  }
}

TEST(TokenizerApi, BatchRightPaddingAndTruncation) {
  BatchOptions opt;
  opt.padding_side = PaddingSide::Right;
  const auto b = gpt2().encode_batch({"Hello world", "Hello"}, opt);
  EXPECT_EQ(b.input_ids[0], (std::vector<int64_t>{15496, 995}));
  EXPECT_EQ(b.input_ids[1], (std::vector<int64_t>{15496, 50256}));
  EXPECT_EQ(b.attention_mask[1], (std::vector<int64_t>{1, 0}));

  BatchOptions trunc;
  trunc.max_length = 3;  // BOS included
  const auto full = mistral().encode_ids("one two three four five");
  const auto r = mistral().encode_batch({"one two three four five"}, trunc);
  EXPECT_EQ(r.input_ids[0], (std::vector<int64_t>{full[0], full[1], full[2]}));
  trunc.truncation_side = PaddingSide::Left;
  const auto l = mistral().encode_batch({"one two three four five"}, trunc);
  EXPECT_EQ(l.input_ids[0], (std::vector<int64_t>{1, full[full.size() - 2], full[full.size() - 1]}));

  BatchOptions none;
  none.add_special_tokens = false;
  EXPECT_EQ(mistral().encode_batch({"Hello"}, none).input_ids[0], mistral().encode_ids("Hello", false));
  EXPECT_EQ(mistral().encode_batch({}).batch_size(), 0u);
}

TEST(TokenizerApi, LargeBatchesUseThreadsAndKeepOrder) {
  std::vector<std::string> texts;
  for (int i = 0; i < 300; ++i) texts.push_back("text number " + std::to_string(i * 7919) + std::string(i % 13, '!'));
  BatchOptions parallel;
  parallel.num_threads = 4;
  BatchOptions serial;
  serial.num_threads = 1;
  const auto a = mistral().encode_batch(texts, parallel);
  const auto b = mistral().encode_batch(texts, serial);
  EXPECT_EQ(a.input_ids, b.input_ids);
  EXPECT_EQ(a.attention_mask, b.attention_mask);
  const size_t T = a.seq_len();
  for (size_t i = 0; i < texts.size(); ++i) {
    const auto ids = mistral().encode_ids(texts[i]);
    EXPECT_EQ(std::vector<int64_t>(a.input_ids[i].end() - static_cast<std::ptrdiff_t>(ids.size()), a.input_ids[i].end()), ids);
    EXPECT_EQ(a.input_ids[i].size(), T);
  }
  texts[200] = "bad \xFF";
  EXPECT_THROW(mistral().encode_batch(texts, parallel), nnterp::Error);
}

TEST(TokenizerApi, DecodeSkipsSpecialTokensAndUnknownIds) {
  const auto ids = mistral().encode_ids("Hello world");
  EXPECT_EQ(mistral().decode(ids), "<s> Hello world");
  EXPECT_EQ(mistral().decode(ids, true), "Hello world");
  EXPECT_EQ(gpt2().decode({15496, 99999999, -5, 995}), "Hello world");
  const auto batch = gpt2().decode_batch({{15496}, {995}});
  EXPECT_EQ(batch, (std::vector<std::string>{"Hello", " world"}));
}

TEST(TokenizerApi, DecodeStreamEmitsCompleteText) {
  // "I love 🍕": the emoji is split over byte tokens; nothing is emitted mid-character.
  const auto ids = gpt2().encode_ids("I love \xF0\x9F\x8D\x95!", false);
  auto stream = gpt2().decode_stream();
  std::string all;
  int nones = 0;
  for (int64_t id : ids) {
    auto piece = stream.step(id);
    if (piece) {
      EXPECT_EQ(piece->find("\xEF\xBF\xBD"), std::string::npos);
      all += *piece;
    } else {
      ++nones;
    }
  }
  EXPECT_EQ(all, "I love \xF0\x9F\x8D\x95!");
  EXPECT_GT(nones, 0);
  // Metaspace-style tokenizers keep the spaces between pieces.
  auto ms = mistral().decode_stream(true);
  std::string text;
  for (int64_t id : mistral().encode_ids("Hello big world")) {
    if (auto p = ms.step(id)) text += *p;
  }
  EXPECT_EQ(text, "Hello big world");
}

TEST(TokenizerApi, LongInputsWithoutPreTokenizerAreNotQuadratic) {
  // Mistral has no pre-tokenizer: the whole text reaches BPE as one word.
  std::string text;
  for (int i = 0; text.size() < 400000; ++i) text += "word" + std::to_string(i % 97) + "-and-more_";
  const auto t0 = std::chrono::steady_clock::now();
  const auto ids = mistral().encode_ids(text, false);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_GT(ids.size(), 50000u);
  EXPECT_LT(s, 5.0) << "400 KB without pre-tokenization took " << s << " s";
  EXPECT_EQ(mistral().decode(ids), text);
}

TEST(TokenizerApi, ConcurrentEncodingGivesTheSameIds) {
  const std::string text = "Concurrent tokenization: the same ids from every thread, 12345 times.";
  const auto want = gpt2().encode_ids(text);
  std::vector<std::thread> threads;
  std::vector<int> ok(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int k = 0; k < 200; ++k) ok[static_cast<size_t>(t)] += gpt2().encode_ids(text + std::to_string(k % 7)) ==
                                                                   gpt2().encode_ids(text + std::to_string(k % 7));
    });
  }
  for (auto& th : threads) th.join();
  for (int v : ok) EXPECT_EQ(v, 200);
  EXPECT_EQ(gpt2().encode_ids(text), want);
}

TEST(TokenizerErrors, InvalidUtf8Input) {
  std::string msg;
  const auto kind = error_kind_of([] { gpt2().encode("abc\xFF" "def"); }, &msg);
  EXPECT_EQ(kind, ErrorKind::Tokenizer);
  EXPECT_NE(msg.find("invalid UTF-8 at byte 3"), std::string::npos) << msg;
  EXPECT_EQ(error_kind_of([] { gpt2().encode_ids("\xC3"); }), ErrorKind::Tokenizer);  // truncated sequence
  EXPECT_EQ(error_kind_of([] { gpt2().encode_ids("\xED\xA0\x80"); }), ErrorKind::Tokenizer);  // surrogate
  EXPECT_EQ(error_kind_of([] { gpt2().encode_batch({"ok", "\xC0\xAF"}); }), ErrorKind::Tokenizer);  // overlong
}

TEST(TokenizerErrors, UnknownComponentType) {
  std::string msg;
  const auto kind = error_kind_of(
      [] {
        Tokenizer::from_json_string(R"({"normalizer": {"type": "Frobnicate"}, "pre_tokenizer": null,
          "model": {"type": "WordLevel", "vocab": {"a": 0, "<unk>": 1}, "unk_token": "<unk>"}})");
      },
      &msg);
  EXPECT_EQ(kind, ErrorKind::Unsupported);
  EXPECT_NE(msg.find("Frobnicate"), std::string::npos) << msg;
  EXPECT_NE(msg.find("normalizer"), std::string::npos) << msg;
  EXPECT_EQ(error_kind_of([] {
              Tokenizer::from_json_string(R"({"model": {"type": "Magic", "vocab": {}}})");
            }),
            ErrorKind::Unsupported);
  EXPECT_EQ(error_kind_of([] {
              Tokenizer::from_json_string(R"({"model": {"type": "WordLevel", "vocab": {"a": 0}},
                "decoder": {"type": "Sequence", "decoders": [{"type": "Nope"}]}})");
            }),
            ErrorKind::Unsupported);
}

TEST(TokenizerErrors, MalformedFiles) {
  EXPECT_EQ(error_kind_of([] { Tokenizer::from_json_string("{\"model\": {"); }), ErrorKind::Format);
  EXPECT_EQ(error_kind_of([] { Tokenizer::from_json_string("[1, 2]"); }), ErrorKind::Format);
  EXPECT_EQ(error_kind_of([] { Tokenizer::from_json_string("{}"); }), ErrorKind::Format);  // no model
  EXPECT_EQ(error_kind_of([] {
              Tokenizer::from_json_string(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": ["a b"]}})");
            }),
            ErrorKind::Format);  // merge of an unknown token
  EXPECT_EQ(error_kind_of([] {
              Tokenizer::from_json_string(R"({"model": {"type": "BPE", "vocab": {"a": 0}, "merges": [3]}})");
            }),
            ErrorKind::Format);
  EXPECT_EQ(error_kind_of([] {
              Tokenizer::from_json_string(R"({"model": {"type": "BPE", "vocab": "x", "merges": []}})");
            }),
            ErrorKind::Format);
  EXPECT_EQ(error_kind_of([] {
              Tokenizer::from_json_string(R"({"model": {"type": "WordLevel", "vocab": {"a": 0}},
                "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "(unclosed"}, "behavior": "Isolated", "invert": false}})");
            }),
            ErrorKind::Format);
  EXPECT_EQ(error_kind_of([] {
              Tokenizer::from_json_string(R"({"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 0},
                "normalizer": {"type": "Precompiled", "precompiled_charsmap": "!!notbase64"}})");
            }),
            ErrorKind::Format);
  EXPECT_EQ(error_kind_of([] {
              Tokenizer::from_json_string(R"({"model": {"type": "Unigram", "vocab": [["a", -1.0]], "unk_id": 0},
                "normalizer": {"type": "Precompiled", "precompiled_charsmap": "AAAA"}})");
            }),
            ErrorKind::Format);
  EXPECT_EQ(error_kind_of([] { Tokenizer::from_json_string(R"({"model": {"type": "WordLevel", "vocab": {"a": 0}}})", "{oops"); }),
            ErrorKind::Format);

  EXPECT_EQ(error_kind_of([] {
              Tokenizer::from_json_string(R"({"model": {"type": "WordLevel", "vocab": {"a": -1}}})");
            }),
            ErrorKind::Format);  // negative id
  EXPECT_EQ(error_kind_of([] {
              std::string nested = R"({"type": "Lowercase"})";
              for (int i = 0; i < 200; ++i) nested = R"({"type": "Sequence", "normalizers": [)" + nested + "]}";
              Tokenizer::from_json_string(R"({"model": {"type": "WordLevel", "vocab": {"a": 0}}, "normalizer": )" +
                                          nested + "}");
            }),
            ErrorKind::Format);  // nesting limit

  // Files: missing, truncated gzip, folder without a tokenizer.
  EXPECT_EQ(error_kind_of([] { Tokenizer::from_file("/nonexistent/tokenizer.json"); }), ErrorKind::Io);
  const fs::path dir = temp_dir("malformed");
  {
    std::ifstream in(data_dir("gpt2") / "tokenizer.json.gz", std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream out(dir / "tokenizer.json.gz", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size() / 2));
  }
  std::string msg;
  const auto kind = error_kind_of([&] { Tokenizer::from_folder(dir); }, &msg);
  EXPECT_TRUE(kind == ErrorKind::Format || kind == ErrorKind::Io) << msg;
  EXPECT_NE(msg.find("tokenizer.json.gz"), std::string::npos) << msg;
  const fs::path empty = temp_dir("empty");
  EXPECT_EQ(error_kind_of([&] { Tokenizer::from_folder(empty); }), ErrorKind::NotFound);
  fs::remove_all(dir);
  fs::remove_all(empty);
}

TEST(TokenizerApi, ReadsPlainFilesAndConfigs) {
  const fs::path dir = temp_dir("plain");
  {
    std::ofstream out(dir / "tokenizer.json", std::ios::binary);
    out << R"({"added_tokens": [{"id": 3, "content": "<eos>", "special": true}],
               "pre_tokenizer": {"type": "WhitespaceSplit"},
               "model": {"type": "WordLevel", "vocab": {"<unk>": 0, "hello": 1, "world": 2}, "unk_token": "<unk>"}})";
  }
  const Tokenizer plain = Tokenizer::from_folder(dir);
  EXPECT_EQ(plain.encode_ids("hello world<eos> x"), (std::vector<int64_t>{1, 2, 3, 0}));
  EXPECT_FALSE(plain.eos_token_id().has_value());  // no tokenizer_config.json yet
  EXPECT_EQ(plain.vocab_size(), 4u);
  {
    std::ofstream out(dir / "tokenizer_config.json");
    out << R"({"eos_token": {"content": "<eos>", "special": true}, "pad_token": "<unk>", "add_eos_token": true})";
  }
  const Tokenizer with_config = Tokenizer::from_folder(dir);
  EXPECT_EQ(with_config.eos_token_id(), 3);
  EXPECT_EQ(with_config.pad_token_id(), 0);
  EXPECT_EQ(with_config.encode_ids("hello"), (std::vector<int64_t>{1, 3}));  // add_eos_token honoured
  nnterp::TokenizerOptions raw;
  raw.follow_tokenizer_config = false;
  EXPECT_EQ(Tokenizer::from_folder(dir, raw).encode_ids("hello"), (std::vector<int64_t>{1}));
  EXPECT_EQ(with_config.decode({1, 3, 2}, true), "hello world");
  fs::remove_all(dir);
}

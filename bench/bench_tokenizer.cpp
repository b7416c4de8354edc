// Tokenizer throughput: encodes a few MB of mixed prose and code with several tokenizers and
// prints MB/s, in three modes:
//   whole  one encode_ids() call on the whole text (one thread);
//   docs   encode_ids() on each of the text's documents (~2 KB each), one after the other;
//   batch  encode_batch() over all documents at once (all cores; padded, with attention masks).
// The text is generated deterministically (prose from a word list, with numbers, accents, CJK
// and emoji; code from this repository's own sources). bench/run_tokenizer_bench.sh runs this
// and HuggingFace's official Node binding (bench/tokenizer_node) on the same text file.
//
//   bench_tokenizer [--write-text FILE] [--text FILE] [--mb N] [--repeat R] [DIR ...]
// Without DIRs: gpt2 (tests/data), llama3 and gemma2 (../shared/fixtures, when present).
// Each result line is also printed as JSON ("RESULT {...}") for scripts.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "nnterp/error.hpp"
#include "nnterp/tokenizer.hpp"

namespace fs = std::filesystem;

namespace {

const fs::path kRepo = fs::path(__FILE__).parent_path().parent_path();

struct Rng {
  uint64_t s;
  uint64_t next() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return s;
  }
  size_t below(size_t n) { return static_cast<size_t>(next() % n); }
};

std::string prose_paragraph(Rng& rng) {
  static const char* words[] = {
      "the", "of", "and", "to", "in", "a", "is", "that", "for", "it", "as", "was", "with", "be", "by", "on", "not",
      "he", "this", "are", "or", "his", "from", "at", "which", "but", "have", "an", "had", "they", "you", "were",
      "their", "one", "all", "we", "can", "her", "has", "there", "been", "if", "more", "when", "will", "would",
      "who", "so", "no", "model", "attention", "layer", "residual", "stream", "neuron", "activation", "token",
      "probability", "interpretability", "researcher", "experiment", "hypothesis", "gradient", "embedding",
      "transformer", "circuit", "feature", "superposition", "language", "prompt", "logit", "lens", "patching",
      "causal", "intervention", "representation", "dimension", "vector", "matrix", "analysis", "result",
      "evidence", "surprisingly", "however", "therefore", "Paris", "France", "Eiffel", "Tower", "London",
      "Einstein", "relativity", "don't", "it's", "we'll", "they're", "I'm", "you've", "naïve", "café",
      "résumé", "Zürich", "São", "Paulo", "façade", "coöperate", "Ελληνικά", "русский", "язык", "日本語",
      "中文", "한국어", "العربية", "हिन्दी", "🍕", "🎉", "🤖", "👩‍💻", "∑", "∞", "≈", "→"};
  const size_t n_words = sizeof(words) / sizeof(words[0]);
  std::string p;
  const size_t sentences = 3 + rng.below(6);
  for (size_t s = 0; s < sentences; ++s) {
    const size_t len = 6 + rng.below(18);
    for (size_t w = 0; w < len; ++w) {
      std::string word = words[rng.below(n_words)];
      if (w == 0 && word[0] >= 'a' && word[0] <= 'z') word[0] = static_cast<char>(word[0] - 32);
      if (rng.below(23) == 0) word = std::to_string(rng.below(100000));
      if (rng.below(41) == 0) word = fmt::format("{}.{}%", rng.below(100), rng.below(10));
      p += word;
      if (w + 1 < len) p += rng.below(11) == 0 ? ", " : " ";
    }
    p += rng.below(7) == 0 ? "? " : rng.below(9) == 0 ? "! " : ". ";
  }
  if (rng.below(5) == 0) p += "\n  - an indented item\t(with a tab)   and  spaces";
  return p;
}

std::vector<std::string> code_documents() {
  std::vector<fs::path> files;
  for (const char* dir : {"src", "include", "cli", "tests"}) {
    std::error_code ec;
    if (!fs::is_directory(kRepo / dir, ec)) continue;
    for (const auto& e : fs::recursive_directory_iterator(kRepo / dir, ec)) {
      const auto ext = e.path().extension();
      if (e.is_regular_file() && (ext == ".cpp" || ext == ".hpp" || ext == ".py" || ext == ".txt")) files.push_back(e.path());
    }
  }
  std::sort(files.begin(), files.end());
  std::vector<std::string> docs;
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    // ~2 KB pieces cut at line ends.
    size_t i = 0;
    while (i < text.size()) {
      size_t end = std::min(text.size(), i + 2048);
      const size_t nl = text.find('\n', end);
      end = nl == std::string::npos ? text.size() : nl + 1;
      std::string doc = text.substr(i, end - i);
      doc.erase(std::remove(doc.begin(), doc.end(), '\f'), doc.end());
      docs.push_back(std::move(doc));
      i = end;
    }
  }
  return docs;
}

// Documents joined by "\f\n" (which neither prose nor code contains).
std::string generate_text(size_t bytes) {
  Rng rng{0x9E3779B97F4A7C15ull};
  const auto code = code_documents();
  std::string text;
  size_t code_i = 0;
  while (text.size() < bytes) {
    std::string doc;
    if (!code.empty() && rng.below(3) == 0) {
      doc = code[code_i++ % code.size()];
    } else {
      while (doc.size() < 1500) doc += prose_paragraph(rng) + "\n\n";
    }
    if (!text.empty()) text += "\f\n";
    text += doc;
  }
  return text;
}

std::vector<std::string> split_documents(const std::string& text) {
  std::vector<std::string> docs;
  size_t i = 0;
  while (true) {
    const size_t k = text.find("\f\n", i);
    docs.push_back(text.substr(i, k == std::string::npos ? std::string::npos : k - i));
    if (k == std::string::npos) break;
    i = k + 2;
  }
  return docs;
}

struct Stats {
  double best_s = 1e30;
  size_t tokens = 0;
  uint64_t checksum = 0;
};

uint64_t mix_ids(uint64_t h, const std::vector<int64_t>& ids) {
  for (int64_t id : ids) h = (h ^ static_cast<uint64_t>(id)) * 0x100000001B3ull;
  return h;
}

}  // namespace

int main(int argc, char** argv) {
  std::string text_file, write_file;
  double mb = 4.0;
  int repeat = 3;
  std::vector<fs::path> dirs;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::cerr << a << " needs a value\n";
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--text") text_file = next();
    else if (a == "--write-text") write_file = next();
    else if (a == "--mb") mb = std::stod(next());
    else if (a == "--repeat") repeat = std::stoi(next());
    else if (a == "-h" || a == "--help") {
      std::cout << "bench_tokenizer [--write-text FILE] [--text FILE] [--mb N] [--repeat R] [DIR ...]\n";
      return 0;
    } else dirs.emplace_back(a);
  }

  std::string text;
  if (!text_file.empty()) {
    std::ifstream in(text_file, std::ios::binary);
    if (!in) {
      std::cerr << "cannot read " << text_file << "\n";
      return 1;
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  } else {
    text = generate_text(static_cast<size_t>(mb * 1e6));
  }
  if (!write_file.empty()) {
    std::ofstream(write_file, std::ios::binary) << text;
    fmt::print("wrote {} bytes to {}\n", text.size(), write_file);
    if (dirs.empty()) return 0;
  }
  if (dirs.empty()) {
    dirs.push_back(kRepo / "tests/data/tokenizers/gpt2");
    dirs.push_back(kRepo / "../shared/fixtures/tokenizers/llama3");
    dirs.push_back(kRepo / "../shared/fixtures/tokenizers/gemma2");
  }
  const auto docs = split_documents(text);
  const double mbytes = static_cast<double>(text.size()) / 1e6;
  fmt::print("text: {:.2f} MB, {} documents\n", mbytes, docs.size());

  for (const auto& dir : dirs) {
    const std::string name = dir.filename().string();
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) {
      fmt::print("{:<14} skipped: {} not found\n", name, dir.string());
      continue;
    }
    try {
      const auto t0 = std::chrono::steady_clock::now();
      const nnterp::Tokenizer tok = nnterp::Tokenizer::from_folder(dir);
      const double load_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      Stats whole, docs_stats, batch;
      for (int r = 0; r < repeat; ++r) {
        auto a = std::chrono::steady_clock::now();
        const auto ids = tok.encode_ids(text, false);
        whole.best_s = std::min(whole.best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
        whole.tokens = ids.size();
        whole.checksum = mix_ids(0xCBF29CE484222325ull, ids);

        a = std::chrono::steady_clock::now();
        std::vector<std::vector<int64_t>> rows;
        rows.reserve(docs.size());
        for (const auto& d : docs) rows.push_back(tok.encode_ids(d, false));
        docs_stats.best_s = std::min(docs_stats.best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
        docs_stats.tokens = 0;
        docs_stats.checksum = 0xCBF29CE484222325ull;
        for (const auto& row : rows) {
          docs_stats.tokens += row.size();
          docs_stats.checksum = mix_ids(docs_stats.checksum, row);
        }

        nnterp::BatchOptions opt;
        opt.add_special_tokens = false;
        a = std::chrono::steady_clock::now();
        const auto b = tok.encode_batch(docs, opt);
        batch.best_s = std::min(batch.best_s, std::chrono::duration<double>(std::chrono::steady_clock::now() - a).count());
        batch.tokens = 0;
        batch.checksum = 0xCBF29CE484222325ull;
        for (size_t d = 0; d < b.input_ids.size(); ++d) {
          std::vector<int64_t> row;
          for (size_t k = 0; k < b.input_ids[d].size(); ++k) {
            if (b.attention_mask[d][k]) row.push_back(b.input_ids[d][k]);
          }
          batch.tokens += row.size();
          batch.checksum = mix_ids(batch.checksum, row);
        }
      }
      for (const auto& [mode, s] : {std::pair<const char*, const Stats&>{"whole", whole}, {"docs", docs_stats}, {"batch", batch}}) {
        fmt::print("{:<14} {:<6} {:>8.2f} MB/s  {:>9} tokens  {:.3f} s  (load {:.2f} s)  checksum {:016x}\n", name, mode,
                   mbytes / s.best_s, s.tokens, s.best_s, load_s, s.checksum);
        fmt::print("RESULT {{\"impl\":\"nnterp\",\"tokenizer\":\"{}\",\"mode\":\"{}\",\"mb_per_s\":{:.4f},\"tokens\":{},"
                   "\"seconds\":{:.5f},\"checksum\":\"{:016x}\"}}\n",
                   name, mode, mbytes / s.best_s, s.tokens, s.best_s, s.checksum);
      }
    } catch (const nnterp::Error& e) {
      fmt::print("{:<14} failed: {}\n", name, e.what());
    }
  }
  return 0;
}

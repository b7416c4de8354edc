// The toy model's corpus: generated facts (capitals, languages, colours, translations, sums), each
// in several phrasings, with a held-out split of (fact × phrasing) pairs, plus "repeat" documents
// ("cat cat\nParis Paris\n...") that teach the copying the patchscope repeat prompt relies on.
// Torch-free and deterministic: the same seed gives the same corpus on every platform.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace nnterp::toy {

// SplitMix64: a tiny portable generator (std:: distributions differ between standard libraries).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next();
  uint64_t below(uint64_t n);  // uniform in [0, n)
  double uniform();            // [0, 1)
  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[below(i)]);
  }

 private:
  uint64_t state_;
};

struct Example {
  std::string relation;  // "capital", "language", "colour", "translation", "sum"
  std::string subject;   // "France", "cat→French", "3+5"
  std::string prompt;    // "The capital of France is"
  std::string answer;    // "Paris" (the completion is " " + answer)
  int template_index = 0;
  bool heldout = false;  // this (fact, phrasing) pair never appears in the training text
  std::string text() const { return prompt + " " + answer; }
};

struct Corpus {
  std::vector<Example> examples;          // every fact in every phrasing
  std::vector<std::string> repeat_words;  // the words of the repeat documents
  std::vector<Example> train() const;
  std::vector<Example> heldout() const;
  // A repeat document: `lines` lines "w w" separated by "\n".
  std::string repeat_document(Rng& rng, int lines) const;
};

// Every example; for each fact one of its phrasings (chosen with `seed`, balanced over phrasings)
// is held out, so every fact is still seen in the others.
Corpus make_corpus(uint64_t seed);

}  // namespace nnterp::toy

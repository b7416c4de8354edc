#include "corpus.hpp"

#include <algorithm>
#include <map>
#include <set>
#include <stdexcept>

namespace nnterp::toy {

uint64_t Rng::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t Rng::below(uint64_t n) {
  if (n == 0) throw std::invalid_argument("Rng::below(0)");
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;  // rejection: no modulo bias
  uint64_t x;
  do x = next();
  while (x >= limit);
  return x % n;
}

double Rng::uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }

namespace {

struct Country {
  const char* name;
  const char* capital;
  const char* language;
};

// Single-token-friendly names only (one word each), ASCII.
const Country kCountries[] = {
    {"France", "Paris", "French"},         {"Spain", "Madrid", "Spanish"},
    {"Germany", "Berlin", "German"},       {"Italy", "Rome", "Italian"},
    {"Portugal", "Lisbon", "Portuguese"},  {"Japan", "Tokyo", "Japanese"},
    {"China", "Beijing", "Chinese"},       {"Russia", "Moscow", "Russian"},
    {"Greece", "Athens", "Greek"},         {"Egypt", "Cairo", "Arabic"},
    {"Poland", "Warsaw", "Polish"},        {"Austria", "Vienna", "German"},
    {"Sweden", "Stockholm", "Swedish"},    {"Norway", "Oslo", "Norwegian"},
    {"Denmark", "Copenhagen", "Danish"},   {"Finland", "Helsinki", "Finnish"},
    {"Ireland", "Dublin", "English"},      {"Canada", "Ottawa", "English"},
    {"Australia", "Canberra", "English"},  {"Brazil", "Brasilia", "Portuguese"},
    {"Peru", "Lima", "Spanish"},           {"Chile", "Santiago", "Spanish"},
    {"Colombia", "Bogota", "Spanish"},     {"Cuba", "Havana", "Spanish"},
    {"India", "Delhi", "Hindi"},           {"Turkey", "Ankara", "Turkish"},
    {"Iran", "Tehran", "Persian"},         {"Iraq", "Baghdad", "Arabic"},
    {"Kenya", "Nairobi", "Swahili"},       {"Hungary", "Budapest", "Hungarian"},
    {"Netherlands", "Amsterdam", "Dutch"}, {"Thailand", "Bangkok", "Thai"},
    {"Vietnam", "Hanoi", "Vietnamese"},    {"Indonesia", "Jakarta", "Indonesian"},
    {"Ukraine", "Kyiv", "Ukrainian"},      {"Romania", "Bucharest", "Romanian"},
    {"Czechia", "Prague", "Czech"},        {"Morocco", "Rabat", "Arabic"},
    {"Israel", "Jerusalem", "Hebrew"},     {"Iceland", "Reykjavik", "Icelandic"},
    {"Croatia", "Zagreb", "Croatian"},     {"Serbia", "Belgrade", "Serbian"},
    {"Bulgaria", "Sofia", "Bulgarian"},    {"Pakistan", "Islamabad", "Urdu"},
};

const std::pair<const char*, const char*> kColours[] = {
    {"banana", "yellow"},  {"lemon", "yellow"},     {"sun", "yellow"},      {"corn", "yellow"},
    {"sky", "blue"},       {"ocean", "blue"},       {"sapphire", "blue"},   {"blueberry", "blue"},
    {"grass", "green"},    {"leaf", "green"},       {"frog", "green"},      {"cucumber", "green"},
    {"snow", "white"},     {"milk", "white"},       {"salt", "white"},      {"cloud", "white"},
    {"coal", "black"},     {"crow", "black"},       {"tomato", "red"},      {"cherry", "red"},
    {"strawberry", "red"}, {"ruby", "red"},         {"carrot", "orange"},   {"pumpkin", "orange"},
    {"chocolate", "brown"}, {"coffee", "brown"},    {"plum", "purple"},     {"grape", "purple"},
    {"lavender", "purple"}, {"flamingo", "pink"},   {"elephant", "grey"},   {"mouse", "grey"},
};

struct Word {
  const char* english;
  const char* french;
  const char* spanish;
  const char* german;
};

const Word kWords[] = {
    {"cat", "chat", "gato", "Katze"},         {"dog", "chien", "perro", "Hund"},
    {"house", "maison", "casa", "Haus"},      {"water", "eau", "agua", "Wasser"},
    {"bread", "pain", "pan", "Brot"},         {"book", "livre", "libro", "Buch"},
    {"moon", "lune", "luna", "Mond"},         {"tree", "arbre", "arbol", "Baum"},
    {"car", "voiture", "coche", "Auto"},      {"friend", "ami", "amigo", "Freund"},
    {"city", "ville", "ciudad", "Stadt"},     {"day", "jour", "dia", "Tag"},
    {"night", "nuit", "noche", "Nacht"},      {"fire", "feu", "fuego", "Feuer"},
    {"sea", "mer", "mar", "Meer"},            {"king", "roi", "rey", "Konig"},
    {"apple", "pomme", "manzana", "Apfel"},   {"cheese", "fromage", "queso", "Kase"},
    {"horse", "cheval", "caballo", "Pferd"},  {"bird", "oiseau", "pajaro", "Vogel"},
    {"fish", "poisson", "pez", "Fisch"},      {"school", "ecole", "escuela", "Schule"},
    {"window", "fenetre", "ventana", "Fenster"}, {"door", "porte", "puerta", "Tur"},
    {"flower", "fleur", "flor", "Blume"},     {"mountain", "montagne", "montana", "Berg"},
    {"river", "riviere", "rio", "Fluss"},     {"wine", "vin", "vino", "Wein"},
    {"hand", "main", "mano", "Hand"},         {"love", "amour", "amor", "Liebe"},
};

// Phrasings per relation; "{s}" is the subject, "{l}" a language (translations), "{a}"/"{b}" the
// terms of a sum. Every phrasing puts the answer last. Subjects follow a space (" France"), so that
// they are the same token in every phrasing (a sentence-initial "France" is another token).
const std::vector<std::string> kCapitalTemplates = {
    "The capital of {s} is",
    "In {s}, the capital is",
    "The capital city of {s} is",
    "What is the capital of {s}? It is",
    "The government of {s} sits in",
};
const std::vector<std::string> kLanguageTemplates = {
    "The language of {s} is",
    "People in {s} speak",
    "The official language of {s} is",
    "What language is spoken in {s}? It is",
    "In {s}, the main language is",
};
const std::vector<std::string> kColourTemplates = {
    "The colour of the {s} is",
    "The {s} is coloured",
    "What colour is the {s}? It is",
    "The usual colour of the {s} is",
    "Everyone knows the {s} is",
};
const std::vector<std::string> kTranslationTemplates = {
    "The {l} word for {s} is",
    "In {l}, {s} is",
    "The word {s} in {l} is",
    "How do you say {s} in {l}? It is",
    "Translate {s} into {l}:",
};
const std::vector<std::string> kSumTemplates = {
    "{a} + {b} =",
    "{a} plus {b} is",
    "The sum of {a} and {b} is",
    "What is {a} plus {b}? It is",
    "Adding {a} and {b} gives",
};

std::string fill(std::string t, const std::map<std::string, std::string>& values) {
  for (const auto& [key, value] : values) {
    const std::string k = "{" + key + "}";
    for (size_t p; (p = t.find(k)) != std::string::npos;) t.replace(p, k.size(), value);
  }
  return t;
}

struct Fact {
  std::string relation, subject, answer;
  const std::vector<std::string>* templates;
  std::map<std::string, std::string> values;
};

}  // namespace

std::vector<Example> Corpus::train() const {
  std::vector<Example> out;
  for (const auto& e : examples)
    if (!e.heldout) out.push_back(e);
  return out;
}

std::vector<Example> Corpus::heldout() const {
  std::vector<Example> out;
  for (const auto& e : examples)
    if (e.heldout) out.push_back(e);
  return out;
}

std::string Corpus::repeat_document(Rng& rng, int lines) const {
  std::string doc;
  for (int i = 0; i < lines; ++i) {
    const auto& w = repeat_words[rng.below(repeat_words.size())];
    if (i) doc += "\n";
    doc += w + " " + w;
  }
  return doc;
}

Corpus make_corpus(uint64_t seed) {
  std::vector<Fact> facts;
  for (const auto& c : kCountries) {
    facts.push_back({"capital", c.name, c.capital, &kCapitalTemplates, {{"s", c.name}}});
    facts.push_back({"language", c.name, c.language, &kLanguageTemplates, {{"s", c.name}}});
  }
  for (const auto& [object, colour] : kColours)
    facts.push_back({"colour", object, colour, &kColourTemplates, {{"s", object}}});
  for (const auto& w : kWords) {
    facts.push_back({"translation", std::string(w.english) + "->French", w.french, &kTranslationTemplates,
                     {{"s", w.english}, {"l", "French"}}});
    facts.push_back({"translation", std::string(w.english) + "->Spanish", w.spanish, &kTranslationTemplates,
                     {{"s", w.english}, {"l", "Spanish"}}});
    facts.push_back({"translation", std::string(w.english) + "->German", w.german, &kTranslationTemplates,
                     {{"s", w.english}, {"l", "German"}}});
  }
  for (int a = 0; a < 10; ++a)
    for (int b = 0; b < 10; ++b)
      facts.push_back({"sum", std::to_string(a) + "+" + std::to_string(b), std::to_string(a + b), &kSumTemplates,
                       {{"a", std::to_string(a)}, {"b", std::to_string(b)}}});

  // The held-out phrasing of each fact: per relation, a shuffled round-robin over the phrasings,
  // so each phrasing is held out for about 1/5 of the facts (and seen with the others).
  Rng rng(seed);
  std::map<std::string, std::vector<size_t>> by_relation;
  for (size_t i = 0; i < facts.size(); ++i) by_relation[facts[i].relation].push_back(i);
  std::vector<int> heldout_template(facts.size(), 0);
  for (auto& [relation, idx] : by_relation) {
    rng.shuffle(idx);
    const size_t n_templates = facts[idx.front()].templates->size();
    for (size_t k = 0; k < idx.size(); ++k) heldout_template[idx[k]] = static_cast<int>(k % n_templates);
  }

  Corpus corpus;
  std::set<std::string> words;
  for (size_t i = 0; i < facts.size(); ++i) {
    const auto& f = facts[i];
    for (size_t t = 0; t < f.templates->size(); ++t) {
      Example e;
      e.relation = f.relation;
      e.subject = f.subject;
      e.prompt = fill((*f.templates)[t], f.values);
      e.answer = f.answer;
      e.template_index = static_cast<int>(t);
      e.heldout = static_cast<int>(t) == heldout_template[i];
      corpus.examples.push_back(std::move(e));
    }
    words.insert(f.answer);
    for (const auto& [key, value] : f.values) words.insert(value);
  }
  // The patchscope paper's default repeat prompt uses these.
  for (const char* w : {"king", "hello", "1135"}) words.insert(w);
  corpus.repeat_words.assign(words.begin(), words.end());
  return corpus;
}

}  // namespace nnterp::toy

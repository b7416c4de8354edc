// The default toy model (models/default, trained by tools/train_toy): it is a normal HuggingFace
// llama folder, it knows its facts in phrasings it never saw, and nnterp's methods show on it
// what they show on real models (logit lens, steering, patchscopes). Tests never train.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "nnterp/config.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/model.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::testing {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path toy_dir() { return fs::path(NNTERP_TEST_DATA).parent_path().parent_path() / "models" / "default"; }

json read_json(const fs::path& p) {
  std::ifstream f(p);
  EXPECT_TRUE(f.good()) << p;
  return json::parse(f);
}

class Toy : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model = new StandardizedTransformer(toy_dir().string()); }
  static void TearDownTestSuite() {
    delete model;
    model = nullptr;
  }
  static int64_t token(const std::string& text) {
    auto ids = model->tokenizer()->encode_ids(text, false);
    EXPECT_EQ(ids.size(), 1u) << "'" << text << "' is not one token";
    return ids.front();
  }
  static StandardizedTransformer* model;
};
StandardizedTransformer* Toy::model = nullptr;

// ---- the HuggingFace folder ------------------------------------------------------------------

TEST(ToyFolder, IsAStandardHuggingFaceLlamaFolder) {
  const auto dir = toy_dir();
  for (const char* f : {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"})
    EXPECT_TRUE(fs::is_regular_file(dir / f)) << f;
  uint64_t total = 0;
  for (const auto& e : fs::recursive_directory_iterator(dir))
    if (e.is_regular_file()) total += e.file_size();
  EXPECT_LE(total, 10u * 1024 * 1024) << "the toy model must stay small";

  // config.json as LlamaConfig writes it.
  const auto c = read_json(dir / "config.json");
  EXPECT_EQ(c.at("architectures"), json::array({"LlamaForCausalLM"}));
  EXPECT_EQ(c.at("model_type"), "llama");
  EXPECT_TRUE(c.contains("torch_dtype") || c.contains("dtype"));
  for (const char* key : {"hidden_size", "intermediate_size", "num_attention_heads", "num_hidden_layers", "num_key_value_heads",
                          "vocab_size", "rms_norm_eps", "rope_theta", "max_position_embeddings", "hidden_act",
                          "tie_word_embeddings", "bos_token_id", "eos_token_id", "transformers_version"})
    EXPECT_TRUE(c.contains(key)) << key;
  const int64_t L = c.at("num_hidden_layers"), H = c.at("hidden_size"), I = c.at("intermediate_size"), V = c.at("vocab_size");
  const int64_t hd = H / c.at("num_attention_heads").get<int64_t>();
  const int64_t kv = c.at("num_key_value_heads").get<int64_t>() * hd;

  // The checkpoint's tensor names and shapes, as LlamaForCausalLM.save_pretrained writes them.
  auto file = io::SafetensorsFile::open(dir / "model.safetensors");
  std::map<std::string, std::vector<int64_t>> expected{{"model.embed_tokens.weight", {V, H}}, {"model.norm.weight", {H}}};
  if (!c.at("tie_word_embeddings").get<bool>()) expected["lm_head.weight"] = {V, H};
  for (int64_t i = 0; i < L; ++i) {
    const std::string p = "model.layers." + std::to_string(i) + ".";
    expected[p + "self_attn.q_proj.weight"] = {H, H};
    expected[p + "self_attn.k_proj.weight"] = {kv, H};
    expected[p + "self_attn.v_proj.weight"] = {kv, H};
    expected[p + "self_attn.o_proj.weight"] = {H, H};
    expected[p + "mlp.gate_proj.weight"] = {I, H};
    expected[p + "mlp.up_proj.weight"] = {I, H};
    expected[p + "mlp.down_proj.weight"] = {H, I};
    expected[p + "input_layernorm.weight"] = {H};
    expected[p + "post_attention_layernorm.weight"] = {H};
  }
  std::map<std::string, std::vector<int64_t>> actual;
  for (const auto& t : file->tensors()) actual[t.name] = t.shape;
  EXPECT_EQ(actual, expected);
  EXPECT_EQ(file->metadata().count("format") ? file->metadata().at("format") : "", "pt");

  // tokenizer.json / tokenizer_config.json as `tokenizers` and transformers write them.
  const auto t = read_json(dir / "tokenizer.json");
  EXPECT_EQ(t.at("model").at("type"), "BPE");
  EXPECT_EQ(t.at("pre_tokenizer").at("type"), "ByteLevel");
  EXPECT_EQ(t.at("decoder").at("type"), "ByteLevel");
  EXPECT_EQ(t.at("model").at("vocab").size(), static_cast<size_t>(V));
  const auto tc = read_json(dir / "tokenizer_config.json");
  EXPECT_EQ(tc.at("tokenizer_class"), "PreTrainedTokenizerFast");
  EXPECT_EQ(tc.at("bos_token"), "<|endoftext|>");
}

TEST_F(Toy, LoadsWithItsTokenizer) {
  EXPECT_EQ(model->architecture(), "llama");
  EXPECT_EQ(model->hf_class(), "LlamaForCausalLM");
  ASSERT_NE(model->tokenizer(), nullptr);
  EXPECT_EQ(static_cast<int64_t>(model->tokenizer()->vocab_size()), model->vocab_size());
  EXPECT_EQ(model->tokenizer()->bos_token_id(), std::optional<int64_t>(0));
  // Answers and entities are single tokens.
  for (const char* w : {" Paris", " Madrid", " France", " Spain", " chat", " yellow", " 12"}) token(w);
  auto ids = model->tokenizer()->encode_ids("The capital of France is", true);
  EXPECT_EQ(ids.front(), 0) << "prompts start with <|endoftext|> as BOS";
}

// ---- it knows its facts ----------------------------------------------------------------------

struct HeldOut {
  std::string prompt, answer, relation;
};

std::vector<HeldOut> heldout_prompts() {
  std::ifstream f(toy_dir() / "corpus" / "heldout.jsonl");
  std::vector<HeldOut> out;
  for (std::string line; std::getline(f, line);) {
    if (line.empty()) continue;
    auto j = json::parse(line);
    out.push_back({j.at("prompt"), j.at("answer"), j.at("relation")});
  }
  return out;
}

TEST_F(Toy, CompletesHeldOutFactPromptsGreedily) {
  const auto heldout = heldout_prompts();
  ASSERT_GE(heldout.size(), 200u);
  // Held out means never in the training text (which has every fact in other phrasings).
  std::set<std::string> train_lines;
  {
    std::ifstream f(toy_dir() / "corpus" / "train.txt");
    for (std::string line; std::getline(f, line);) train_lines.insert(line);
  }
  for (const auto& h : heldout) ASSERT_EQ(train_lines.count(h.prompt + h.answer), 0u) << h.prompt;

  size_t correct = 0;
  std::map<std::string, std::pair<int, int>> by_relation;
  std::string wrong;
  const size_t batch = 64;
  for (size_t b = 0; b < heldout.size(); b += batch) {
    std::vector<std::string> prompts;
    for (size_t i = b; i < std::min(heldout.size(), b + batch); ++i) prompts.push_back(heldout[i].prompt);
    GenerateOptions g;
    g.max_new_tokens = 3;  // answers are one or two tokens, then <|endoftext|>
    auto r = model->generate(prompts, g);
    for (size_t i = 0; i < prompts.size(); ++i) {
      const auto& h = heldout[b + i];
      const std::string& text = r.texts[i];
      const bool ok = text.rfind(h.answer, 0) == 0 &&
                      (text.size() == h.answer.size() || !std::isalnum(static_cast<unsigned char>(text[h.answer.size()])));
      correct += ok;
      by_relation[h.relation].first += ok;
      ++by_relation[h.relation].second;
      if (!ok) wrong += "\n  " + json(h.prompt).dump() + " -> " + json(text).dump() + " (expected " + json(h.answer).dump() + ")";
    }
  }
  const double accuracy = static_cast<double>(correct) / static_cast<double>(heldout.size());
  std::string breakdown;
  for (const auto& [rel, c] : by_relation) breakdown += " " + rel + " " + std::to_string(c.first) + "/" + std::to_string(c.second);
  std::cout << "held-out greedy accuracy: " << accuracy << " (" << correct << "/" << heldout.size() << "):" << breakdown
            << std::endl;
  EXPECT_GE(accuracy, 0.95) << "wrong:" << wrong;
}

// ---- methods on the toy model ----------------------------------------------------------------

// The probability of the answer at each layer of the logit lens, averaged over prompts.
std::vector<double> mean_answer_probs(const StandardizedTransformer& model, const std::vector<std::string>& prompts,
                                      const std::vector<int64_t>& answers) {
  auto probs = logit_lens(model, prompts);  // [B, L, V]
  std::vector<double> out(static_cast<size_t>(probs.size(1)), 0.0);
  for (size_t b = 0; b < prompts.size(); ++b)
    for (int64_t l = 0; l < probs.size(1); ++l)
      out[static_cast<size_t>(l)] += probs[static_cast<int64_t>(b)][l][answers[b]].item<double>() / prompts.size();
  return out;
}

TEST_F(Toy, LogitLensAnswerProbabilityRisesOverTheLastLayers) {
  const std::vector<std::string> prompts = {"The capital of France is", "The capital of Spain is", "People in Japan speak",
                                            "The French word for cat is", "The colour of the banana is", "3 + 4 ="};
  const std::vector<int64_t> answers = {token(" Paris"), token(" Madrid"), token(" Japanese"), token(" chat"),
                                        token(" yellow"), token(" 7")};
  // France alone, as the README shows it.
  auto france = mean_answer_probs(*model, {prompts[0]}, {answers[0]});
  auto mean = mean_answer_probs(*model, prompts, answers);
  const size_t L = mean.size();
  std::string curve;
  for (size_t l = 0; l < L; ++l) curve += " " + std::to_string(mean[l]);
  std::cout << "mean answer probability per layer:" << curve << std::endl;
  EXPECT_GT(france[L - 1], 0.5);
  EXPECT_GT(mean[L - 1], 0.5);
  // Rises over the last layers: each layer of the second half beats the one before, and the last
  // layer is well above the first.
  for (size_t l = L / 2; l < L; ++l) EXPECT_GT(mean[l], mean[l - 1]) << "layer " << l << curve;
  EXPECT_GT(mean[L - 1], mean[0] + 0.2) << curve;
  EXPECT_GT(france[L - 1], france[L / 2 - 1]);
  // The answer is the model's top token at the last layer.
  auto probs = logit_lens(*model, prompts);
  for (size_t b = 0; b < prompts.size(); ++b)
    EXPECT_EQ(probs[static_cast<int64_t>(b)][static_cast<int64_t>(L - 1)].argmax().item<int64_t>(), answers[b]) << prompts[b];
}

std::vector<std::string> country_prompts(const std::string& country) {
  return {"The capital of " + country + " is", "The language of " + country + " is", "People in " + country + " speak",
          country + "'s capital is", "The official language of " + country + " is", "The capital city of " + country + " is",
          "What language is spoken in " + country + "? It is", "The government of " + country + " sits in"};
}

TEST_F(Toy, SteeringFranceMinusSpainTurnsParisIntoMadrid) {
  const int layer = static_cast<int>(model->num_layers() / 2);
  // The mean difference of the "France" and "Spain" prompts' activations at the middle layer.
  auto v = steering_vector(*model, country_prompts("France"), country_prompts("Spain"), layer);
  ASSERT_EQ(v.dim(), 1);
  auto top_with = [&](const std::string& prompt, double factor) {
    torch::Tensor logits;
    model->trace(prompt, [&](Trace& t) {
      if (factor != 0) t.steer({layer}, v, factor);
      logits = t.logits().clone();
    });
    return logits[0][-1].argmax().item<int64_t>();
  };
  EXPECT_EQ(top_with("The capital of France is", 0.0), token(" Paris"));
  EXPECT_EQ(top_with("The capital of Spain is", 0.0), token(" Madrid"));
  // Subtracting it from a France prompt makes it a Spain prompt, adding it to a Spain prompt a
  // France prompt.
  EXPECT_EQ(top_with("The capital of France is", -1.0), token(" Madrid")) << "steering at layer " << layer;
  EXPECT_EQ(top_with("The capital of Spain is", 1.0), token(" Paris")) << "steering at layer " << layer;
  EXPECT_EQ(top_with("People in France speak", -1.0), token(" Spanish")) << "steering at layer " << layer;
}

TEST_F(Toy, PatchscopeWithTheRepeatPromptDecodesTheSourceEntity) {
  const std::vector<std::string> sources = {"France", "Spain", "Paris", "Tokyo", "cat", "banana", "German", "Berlin"};
  auto probs = patchscope_lens(*model, sources);  // default target: repeat_prompt(), every layer
  ASSERT_EQ(probs.size(0), static_cast<int64_t>(sources.size()));
  const int64_t L = probs.size(1);
  std::string report;
  for (int64_t l = 1; l < L - 1; ++l) {  // the middle layers
    int hits = 0;
    for (size_t s = 0; s < sources.size(); ++s) {
      const int64_t top = probs[static_cast<int64_t>(s)][l].argmax().item<int64_t>();
      const bool ok = top == token(" " + sources[s]);
      hits += ok;
      report += "\n  layer " + std::to_string(l) + " " + sources[s] + " -> " +
                json(model->tokenizer()->decode({top})).dump();
    }
    EXPECT_EQ(hits, static_cast<int>(sources.size())) << "layer " << l << report;
  }
}

TEST_F(Toy, PatchscopeGenerateWritesOutTheSourceEntity) {
  const std::vector<std::string> sources = {"France", "Paris", "cat", "German"};
  auto result = patchscope_generate(*model, sources, /*layer=*/2, repeat_prompt(), /*max_new_tokens=*/3);
  ASSERT_EQ(result.texts.size(), sources.size());
  for (size_t s = 0; s < sources.size(); ++s)
    EXPECT_EQ(result.texts[s].rfind(" " + sources[s], 0), 0u) << sources[s] << " -> " << json(result.texts[s]).dump();
}

TEST_F(Toy, PatchscopeGenerateWithTheTargetsOwnStateIsPlainGeneration) {
  // Patching the target's own hidden state at its own position changes nothing.
  auto target = repeat_prompt();
  auto own = get_token_activations(*model, target.prompt, target.index_to_patch, {2}).select(0, 0);  // [1, hidden]
  auto patched = patchscope_generate(*model, own, 2, target, 4);
  GenerateOptions options;
  options.max_new_tokens = 4;
  auto plain = model->generate(target.prompt, options);
  EXPECT_TRUE(torch::equal(patched.ids, plain.ids));
}

}  // namespace
}  // namespace nnterp::testing

// Instruct-model methods: it_repeat_prompt, chat_inputs / chat_prompt_ids (the `chat` option of
// the methods), and the CLI's chat-template command and --chat flags, on the default model given
// real chat templates (tests/data/chat_templates: Llama 3's, which writes BOS and takes a system
// turn, and Gemma 2's, which refuses one).
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "common/fixtures.hpp"
#include "methods/methods_helpers.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::testing {
namespace {

namespace fs = std::filesystem;

// The default model with tests/data/chat_templates/<name>.jinja as its chat_template.jinja.
fs::path instruct_model_dir(const std::string& template_name) {
  static std::map<std::string, std::unique_ptr<TempDir>> dirs;
  auto& dir = dirs[template_name];
  if (!dir) {
    dir = std::make_unique<TempDir>("instruct_" + template_name);
    for (const auto& e : fs::directory_iterator(default_model_dir())) {
      if (e.is_regular_file()) fs::copy_file(e.path(), dir->path / e.path().filename());
    }
    fs::copy_file(fs::path(NNTERP_TEST_DATA) / "chat_templates" / (template_name + ".jinja"),
                  dir->path / "chat_template.jinja");
  }
  return dir->path;
}

const std::string kBos = "<|endoftext|>";  // the default model's BOS (id 0)
const std::string kRepeat = "king king\n1135 1135\nhello hello\n?";
const std::string kGuess =
    "I will provide you with a series of sentences. Your task is to guess the next word in the sentence. You must "
    "answer with the next word only.";

std::string llama3_turn(const std::string& role, const std::string& content) {
  return "<|start_header_id|>" + role + "<|end_header_id|>\n\n" + content + "<|eot_id|>";
}

std::vector<int64_t> row_ids(const TokenBatch& batch, int64_t row) {
  auto ids = batch.input_ids[row].masked_select(batch.attention_mask[row].ne(0)).contiguous();
  return std::vector<int64_t>(ids.data_ptr<int64_t>(), ids.data_ptr<int64_t>() + ids.numel());
}

class ChatMethods : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model = new StandardizedTransformer(instruct_model_dir("llama-3").string()); }
  static void TearDownTestSuite() {
    delete model;
    model = nullptr;
  }
  static const Tokenizer& tok() { return *model->tokenizer(); }
  static StandardizedTransformer* model;
};
StandardizedTransformer* ChatMethods::model = nullptr;

TEST_F(ChatMethods, ItRepeatPromptIsTheRepeatPromptLeftOpenInTheAssistantTurn) {
  const TargetPrompt t = it_repeat_prompt(tok());
  const std::string expected = kBos + llama3_turn("system", "You are a helpful assistant.") + llama3_turn("user", kGuess) +
                               llama3_turn("assistant", "Ok.") + llama3_turn("user", kRepeat) +
                               "<|start_header_id|>assistant<|end_header_id|>\n\n" + kRepeat;
  EXPECT_EQ(t.prompt, expected);
  EXPECT_EQ(t.index_to_patch, -1);
  EXPECT_EQ(t.token_ids, tok().encode_ids(expected, false));
  // The template wrote BOS once; the ids must not add a second one (nnterp's Python does).
  ASSERT_GE(t.token_ids.size(), 2u);
  EXPECT_EQ(t.token_ids[0], 0);
  EXPECT_NE(t.token_ids[1], 0);
  EXPECT_EQ(tok().decode({t.token_ids.back()}), "?");
}

TEST_F(ChatMethods, ItRepeatPromptVariantsFollowThePythonLibrary) {
  const auto instruction_in_system = it_repeat_prompt(tok(), {"a", "b"}, "=", ";", "_", true, false, true);
  EXPECT_EQ(instruction_in_system.prompt,
            kBos +
                llama3_turn("system",
                            "The user will provide you with a sentence. Your task is to guess the next word in the "
                            "sentence. You must answer with the next word only.") +
                llama3_turn("user", "a=a;b=b;_") + "<|start_header_id|>assistant<|end_header_id|>\n\na=a;b=b;_");
  const auto instruction_in_user = it_repeat_prompt(tok(), {"a"}, " ", "\n", "?", true, false, false);
  EXPECT_EQ(instruction_in_user.prompt,
            kBos + llama3_turn("user", "Guess the next word in the following sentence (answer only the next word): a a\n?") +
                "<|start_header_id|>assistant<|end_header_id|>\n\na a\n?");
  // An empty answer: continue_final_message finds "" at the very end and cuts nothing, so the
  // rendering ends with the empty turn's end-of-turn token, as transformers gives it.
  const auto empty_answer = it_repeat_prompt(tok(), {"a"}, " ", "\n", "?", false, false, false);
  EXPECT_EQ(empty_answer.prompt, kBos + llama3_turn("user", "Guess the next word in the following sentence (answer only the next word): a a\n?") +
                                     llama3_turn("assistant", ""));
}

TEST(ChatMethodsTemplates, ATemplateThatRefusesTheSystemTurnSaysSo) {
  const auto tok = Tokenizer::from_folder(instruct_model_dir("gemma-2"));
  try {
    it_repeat_prompt(tok);
    FAIL() << "Gemma 2's template accepted a system turn";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Template);
    EXPECT_EQ(e.message(), "System role not supported");
  }
  const auto t = it_repeat_prompt(tok, {"king", "1135", "hello"}, " ", "\n", "?", true, true, false);
  EXPECT_EQ(t.prompt, kBos + "<start_of_turn>user\n" + kGuess + "<end_of_turn>\n<start_of_turn>model\nOk.<end_of_turn>\n" +
                          "<start_of_turn>user\n" + kRepeat + "<end_of_turn>\n<start_of_turn>model\n" + kRepeat);
}

TEST_F(ChatMethods, ChatInputsAreEachPromptAsAUserTurnWithTheGenerationPrompt) {
  const std::vector<std::string> prompts{"Paris is", "The Eiffel Tower stands in"};
  ChatPromptOptions options;
  options.system = "Answer in one word.";
  const TokenBatch batch = chat_inputs(*model, prompts, options);
  ASSERT_EQ(batch.input_ids.size(0), 2);
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string text = kBos + llama3_turn("system", "Answer in one word.") + llama3_turn("user", prompts[i]) +
                             "<|start_header_id|>assistant<|end_header_id|>\n\n";
    EXPECT_EQ(row_ids(batch, static_cast<int64_t>(i)), tok().encode_ids(text, false)) << prompts[i];
  }
  EXPECT_EQ(chat_prompt_ids(tok(), prompts, options), (std::vector<std::vector<int64_t>>{row_ids(batch, 0), row_ids(batch, 1)}));
}

TEST_F(ChatMethods, TheChatOptionChangesWhatTheModelReadsAndNothingElse) {
  const std::vector<std::string> prompts{"Paris is", "The capital of France is"};
  LensOptions lo;
  lo.layers = {0, -1};
  const auto chat = logit_lens(*model, chat_inputs(*model, prompts), lo);
  // The same ids given by hand: the chat option is exactly the template's tokens.
  std::vector<std::vector<int64_t>> rows;
  for (const auto& p : prompts) rows.push_back(tok().encode_chat({{"user", p}}, [] {
    ChatTemplateOptions o;
    o.add_generation_prompt = true;
    return o;
  }()));
  EXPECT_TRUE(torch::equal(chat, logit_lens(*model, left_pad(rows, tok().padding_id()), lo)));
  EXPECT_FALSE(close(chat, logit_lens(*model, prompts, lo), 1e-3)) << "the chat wrapping had no effect";

  // run_prompts with chat ids in Prompt::token_ids reads the same distribution.
  auto target = Prompt::from_strings(prompts[0], {{"paris", {"Paris"}}}, *model);
  target.token_ids = chat_prompt_ids(tok(), {prompts[0]})[0];
  const auto mass = run_prompts(*model, {target}).at("paris");
  const auto probs = next_token_probs(*model, chat_inputs(*model, {prompts[0]}));
  const auto ids = torch::tensor(target.target_tokens.at("paris"));
  EXPECT_NEAR(mass.item<double>(), probs[0].index_select(0, ids).sum().item<double>(), 1e-6);
}

TEST_F(ChatMethods, PatchscopeTakesTheItRepeatPromptAsTokenIds) {
  const auto target = it_repeat_prompt(tok());
  PatchscopeOptions po;
  po.layers = {1};
  const auto sources = chat_inputs(*model, {"Paris"});
  const auto probs = patchscope_lens(*model, sources, {target}, po);
  const auto by_ids = patchscope_lens(*model, sources, {TargetPrompt{"", -1, target.token_ids}}, po);
  EXPECT_TRUE(torch::equal(probs, by_ids));
  // Re-tokenizing the text with special tokens would be a different (BOS-doubled) target.
  const auto doubled = tok().encode_ids(target.prompt, true);
  if (doubled != target.token_ids) {
    EXPECT_FALSE(torch::equal(probs, patchscope_lens(*model, sources, {TargetPrompt{"", -1, doubled}}, po)));
  }
}

TEST_F(ChatMethods, AModelWithoutATemplateRefusesTheChatOptionWithAHint) {
  StandardizedTransformer plain(default_model_dir().string());
  try {
    chat_inputs(plain, {"Paris"});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Template);
    EXPECT_NE(std::string(e.what()).find("chat_template.jinja"), std::string::npos) << e.what();
  }
}

// ---- the command line ------------------------------------------------------------------------

TEST_F(ChatMethods, ChatTemplateCommandPrintsTheRenderingAndItsIds) {
  const std::string dir = instruct_model_dir("llama-3").string();
  const std::string expected =
      kBos + llama3_turn("system", "Be brief.") + llama3_turn("user", "Hi") + "<|start_header_id|>assistant<|end_header_id|>\n\n";
  auto r = nnterp_cli("chat-template " + dir + " --system 'Be brief.' --user Hi --add-generation-prompt");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(r.out, expected);  // byte for byte when piped (no newline added)

  TempDir tmp("chat_cli");
  const auto messages = tmp.path / "chat.json";
  std::ofstream(messages) << R"([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])";
  r = nnterp_cli("chat-template " + dir + " --messages " + messages.string() + " --add-generation-prompt --ids");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_EQ(nlohmann::json::parse(r.out).get<std::vector<int64_t>>(), tok().encode_ids(expected, false));

  r = nnterp_cli("chat-template " + dir + " --user Hi --add-generation-prompt --continue-final-message");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("--continue-final-message"), std::string::npos) << r.out;
  r = nnterp_cli("chat-template " + default_model_dir().string() + " --user Hi");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("no chat template"), std::string::npos) << r.out;
  r = nnterp_cli("chat-template " + dir + " --user Hi --template nope");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("'nope' is neither a template of this model nor a file"), std::string::npos) << r.out;
}

TEST_F(ChatMethods, ChatFlagOfTheMethodsMatchesTheLibrary) {
  const std::string dir = instruct_model_dir("llama-3").string();
  auto r = nnterp_cli("logit-lens " + dir + " --prompt 'Paris is' --chat --layers -1 --top 3 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  const auto j = nlohmann::json::parse(r.out);
  LensOptions lo;
  lo.layers = {-1};
  const auto probs = logit_lens(*model, chat_inputs(*model, {"Paris is"}), lo);
  const auto top = probs[0][0].topk(3);
  const auto cli_top = j["prompts"][0]["layers"][0]["top"];
  for (int64_t k = 0; k < 3; ++k) EXPECT_EQ(cli_top[k]["id"].get<int64_t>(), std::get<1>(top)[k].item<int64_t>());

  r = nnterp_cli("patchscope " + dir + " --prompt Paris --chat --layers 1 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  // (stderr, merged in, may first warn that the long chat prompt passes the model's 256 positions)
  EXPECT_EQ(nlohmann::json::parse(r.out.substr(r.out.find("{\n")))["target"].get<std::string>(), it_repeat_prompt(tok()).prompt);

  r = nnterp_cli("generate " + dir + " 'Paris is' --chat --max-new-tokens 3 --json");
  ASSERT_EQ(r.code, 0) << r.out;
  GenerateOptions g;
  g.max_new_tokens = 3;
  const auto generated = model->generate(chat_inputs(*model, {"Paris is"}), g);
  EXPECT_EQ(nlohmann::json::parse(r.out)["texts"][0].get<std::string>(), generated.texts[0]);

  TempDir tmp("chat_cli_inputs");
  const auto inputs = (tmp.path / "in.safetensors").string();
  io::save_safetensors(inputs, {{"input_ids", torch::tensor({{5, 6, 7}})}});
  r = nnterp_cli("logit-lens " + dir + " --inputs " + inputs + " --chat");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("token ids"), std::string::npos) << r.out;
  r = nnterp_cli("logit-lens " + dir + " --prompt x --system 'Be brief.'");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("add --chat"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace nnterp::testing

// Instruct models: prompts wrapped in the tokenizer's chat template, and nnterp's it_repeat_prompt.
#include "methods/method_utils.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"

namespace nnterp {

TargetPrompt it_repeat_prompt(const Tokenizer& tokenizer, const std::vector<std::string>& words, const std::string& rel,
                              const std::string& sep, const std::string& placeholder, bool complete_prompt,
                              bool add_user_instr, bool use_system_prompt, const ChatTemplateOptions& chat) {
  const std::string prompt = repeat_prompt(words, rel, sep, placeholder).prompt;
  std::vector<ChatMessage> turns;
  if (add_user_instr) {
    if (use_system_prompt) turns.push_back({"system", "You are a helpful assistant."});
    turns.push_back({"user",
                     "I will provide you with a series of sentences. Your task is to guess the next word in the "
                     "sentence. You must answer with the next word only."});
    turns.push_back({"assistant", "Ok."});
    turns.push_back({"user", prompt});
  } else if (use_system_prompt) {
    turns.push_back({"system",
                     "The user will provide you with a sentence. Your task is to guess the next word in the sentence. "
                     "You must answer with the next word only."});
    turns.push_back({"user", prompt});
  } else {
    turns.push_back({"user", "Guess the next word in the following sentence (answer only the next word): " + prompt});
  }
  turns.push_back({"assistant", complete_prompt ? prompt : ""});
  ChatTemplateOptions options = chat;
  options.add_generation_prompt = false;
  options.continue_final_message = true;
  TargetPrompt target;
  target.prompt = tokenizer.apply_chat_template(turns, options);
  target.index_to_patch = -1;
  target.token_ids = tokenizer.encode_ids(target.prompt, false);
  return target;
}

std::vector<std::vector<int64_t>> chat_prompt_ids(const Tokenizer& tokenizer, const std::vector<std::string>& prompts,
                                                  const ChatPromptOptions& options) {
  ChatTemplateOptions chat = options.chat;
  chat.add_generation_prompt = true;
  chat.continue_final_message = false;
  std::vector<std::vector<int64_t>> rows;
  rows.reserve(prompts.size());
  for (const auto& prompt : prompts) {
    std::vector<ChatMessage> turns;
    if (!options.system.empty()) turns.push_back({"system", options.system});
    turns.push_back({"user", prompt});
    rows.push_back(tokenizer.encode_chat(turns, chat));
  }
  return rows;
}

TokenBatch chat_inputs(const StandardizedTransformer& model, const std::vector<std::string>& prompts,
                       const ChatPromptOptions& options) {
  const Tokenizer* tokenizer = model.tokenizer();
  if (!tokenizer) {
    throw Error(ErrorKind::InvalidArgument, "chat prompts",
                "the model has no tokenizer (no tokenizer.json in " + model.path().string() + ")");
  }
  if (prompts.empty()) throw Error(ErrorKind::InvalidArgument, "chat prompts", "no prompt given");
  return left_pad(chat_prompt_ids(*tokenizer, prompts, options), methods_detail::pad_id_of(model));
}

}  // namespace nnterp

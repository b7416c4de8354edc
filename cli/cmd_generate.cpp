// nnterp generate [MODEL] "prompt" | MODEL --inputs IN.safetensors --out OUT.safetensors
// Streams new tokens to stdout as they come; --steer LAYER:VECTOR_FILE:FACTOR steers every step.
#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/error.hpp"
#include "nnterp/generate.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::cli {

struct GenerateCommand {
  std::vector<std::string> positionals;  // [MODEL] PROMPT
  CommonOptions common;
  std::string inputs, out;
  GenerateOptions generation;
  uint64_t seed = 0;
  bool has_seed = false;
  std::vector<std::string> steer;
  ChatFlags chat;
};

struct Steering {
  int layer;
  torch::Tensor vector;
  double factor;
};

// A vector file: safetensors (the tensor named "vector", else the only tensor) or whitespace-separated numbers.
static torch::Tensor read_vector(const std::string& path) {
  std::ifstream probe(path, std::ios::binary);
  if (!probe) throw Error(ErrorKind::Io, path, "cannot open the steering vector file");
  if (path.size() > 12 && path.substr(path.size() - 12) == ".safetensors") {
    auto file = io::SafetensorsFile::open(path);
    std::string name = file->contains("vector") ? "vector" : "";
    if (name.empty() && file->tensors().size() == 1) name = file->tensors()[0].name;
    if (name.empty()) throw Error(ErrorKind::Format, path, "expected a tensor named 'vector' or exactly one tensor");
    return file->tensor(name).to(torch::kFloat32).reshape({-1}).clone();
  }
  std::vector<float> values;
  double v;
  while (probe >> v) values.push_back(static_cast<float>(v));
  if (!probe.eof() || values.empty())
    throw Error(ErrorKind::Format, path, "expected whitespace-separated numbers (or a .safetensors file)");
  return torch::tensor(values);
}

static std::vector<Steering> parse_steering(const std::vector<std::string>& specs, const StandardizedTransformer& model) {
  std::vector<Steering> out;
  for (const auto& spec : specs) {
    auto first = spec.find(':'), last = spec.rfind(':');
    if (first == std::string::npos || first == last)
      throw Error(ErrorKind::InvalidArgument, "--steer " + spec, "expected LAYER:VECTOR_FILE:FACTOR");
    Steering s;
    try {
      s.layer = std::stoi(spec.substr(0, first));
      s.factor = std::stod(spec.substr(last + 1));
    } catch (const std::exception&) {
      throw Error(ErrorKind::InvalidArgument, "--steer " + spec, "LAYER must be an integer and FACTOR a number");
    }
    if (s.layer < 0) s.layer += static_cast<int>(model.num_layers());
    if (s.layer < 0 || s.layer >= model.num_layers())
      throw Error(ErrorKind::InvalidArgument, "--steer " + spec, "layer out of range (the model has " + std::to_string(model.num_layers()) + ")");
    s.vector = read_vector(spec.substr(first + 1, last - first - 1));
    if (s.vector.numel() != model.hidden_size())
      throw Error(ErrorKind::Shape, spec.substr(first + 1, last - first - 1),
                  "the steering vector has " + std::to_string(s.vector.numel()) + " values, the model's hidden size is " +
                      std::to_string(model.hidden_size()));
    out.push_back(s);
  }
  return out;
}

static void run_generate(GenerateCommand& cmd) {
  std::string prompt;
  if (cmd.positionals.size() == 2) cmd.common.model = cmd.positionals[0], prompt = cmd.positionals[1];
  else if (cmd.positionals.size() == 1 && !cmd.inputs.empty()) cmd.common.model = cmd.positionals[0];
  else if (cmd.positionals.size() == 1) prompt = cmd.positionals[0];
  // A lone positional that names a model folder is the model with its prompt forgotten, not a prompt
  // for the default model.
  if (cmd.positionals.size() == 1 && cmd.inputs.empty() && std::filesystem::exists(std::filesystem::path(prompt) / "config.json"))
    throw Error(ErrorKind::InvalidArgument, "generate", "'" + prompt + "' is a model folder, and no prompt was given",
                "nnterp generate " + prompt + " \"your prompt\"");
  if (prompt.empty() == cmd.inputs.empty())
    throw Error(ErrorKind::InvalidArgument, "generate", "give either a prompt or --inputs IN.safetensors",
                "nnterp generate [MODEL] \"prompt\"  or  nnterp generate MODEL --inputs IN.safetensors --out OUT.safetensors");
  StandardizedTransformer model = load_model(cmd.common);
  auto steering = parse_steering(cmd.steer, model);
  if (cmd.has_seed) cmd.generation.seed = cmd.seed;
  StepBody body;
  if (!steering.empty())
    body = at_all_steps([&](Trace& t) {
      for (const auto& s : steering) t.steer({s.layer}, s.vector, s.factor);
    });

  TraceInput input = prompt.empty() ? TraceInput(io::read_token_inputs(cmd.inputs)) : TraceInput(prompt);
  input = apply_chat(input, cmd.chat, model, "prompt");
  const Tokenizer* tok = model.tokenizer();
  const bool stream = !prompt.empty() && tok && !cmd.common.json;
  // With --chat the stream starts with what the model reads: the prompt inside its chat template.
  if (stream && cmd.chat.chat) {
    const auto row = input.tokens->input_ids[0];
    prompt = tok->decode(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel()));
  }
  std::optional<Tokenizer::DecodeStream> decoder;
  if (stream) {
    decoder.emplace(*tok, /*skip_special_tokens=*/true);
    fmt::print("{}", prompt);
    std::fflush(stdout);
    cmd.generation.on_step = [&](int, const torch::Tensor& tokens) {
      if (auto text = decoder->step(tokens[0].item<int64_t>())) {
        fmt::print("{}", *text);
        std::fflush(stdout);
      }
    };
  }
  auto result = model.generate(input, cmd.generation, body);
  if (stream) fmt::print("\n");
  if (!cmd.out.empty())
    io::save_safetensors(cmd.out, {{"generated_ids", result.ids}, {"attention_mask", result.attention_mask}},
                         {{"model", model.path().string()}, {"command", "generate"}});
  if (cmd.common.json) {
    nlohmann::json out = {{"prompt_length", result.prompt_length}, {"texts", result.texts}};
    std::vector<std::vector<int64_t>> ids;
    for (int64_t b = 0; b < result.ids.size(0); ++b) {
      auto row = result.ids[b].contiguous();
      ids.emplace_back(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
    }
    out["ids"] = ids;
    fmt::print("{}\n", out.dump());
  } else if (!stream) {
    for (size_t b = 0; b < result.texts.size(); ++b) fmt::print("{}\n", result.texts[b]);
    if (result.texts.empty()) fmt::print(stderr, "generated {} new tokens per row{}\n", result.ids.size(1) - result.prompt_length,
                                         cmd.out.empty() ? "" : " (written to " + cmd.out + ")");
  }
}

static CommandRegistration generate_command(35, [](CLI::App& app) {
  auto cmd = std::make_shared<GenerateCommand>();
  auto* sub = app.add_subcommand("generate", "generate text (greedy or sampled), optionally steered, streaming to stdout");
  sub->add_option("model_and_prompt", cmd->positionals, "[MODEL] PROMPT (MODEL defaults to the embedded model)")->expected(0, 2);
  add_load_options(*sub, cmd->common);
  sub->add_option("--inputs", cmd->inputs, "pre-tokenized prompts: safetensors with int64 input_ids + attention_mask")->check(CLI::ExistingFile);
  sub->add_option("--out", cmd->out, "write generated_ids [B, T+N] and attention_mask to this safetensors file");
  sub->add_option("--max-new-tokens", cmd->generation.max_new_tokens, "tokens to generate, at least 1 (default 20)")->check(CLI::PositiveNumber);
  sub->add_option("--temperature", cmd->generation.temperature, "0 = greedy (default)")->check(CLI::NonNegativeNumber);
  sub->add_option("--top-k", cmd->generation.top_k, "sample among the k most likely tokens (0 = off)");
  sub->add_option("--top-p", cmd->generation.top_p, "nucleus sampling mass (1 = off)");
  sub->add_option("--repetition-penalty", cmd->generation.repetition_penalty, "HF repetition penalty (1 = off)");
  sub->add_option("--seed", cmd->seed, "sampling seed")->each([cmd](const std::string&) { cmd->has_seed = true; });
  sub->add_flag("--recompute", cmd->generation.recompute, "no KV cache: re-run the full sequence at each step");
  sub->add_option("--steer", cmd->steer, "LAYER:VECTOR_FILE:FACTOR, added to that layer's output at every step (repeatable)");
  sub->add_flag("--json", cmd->common.json, "machine-readable output");
  add_chat_options(*sub, cmd->chat, "prompt");
  sub->footer(
      "Examples:\n"
      "  nnterp generate \"The capital of France is\" --max-new-tokens 5\n"
      "  nnterp generate path/to/model \"Once upon a time\" --temperature 0.8 --top-p 0.9 --seed 1\n"
      "  nnterp generate path/to/model \"I think\" --steer 3:love.safetensors:4.0\n"
      "  nnterp generate path/to/model --inputs in.safetensors --max-new-tokens 8 --out out.safetensors");
  sub->callback([cmd] { run_generate(*cmd); });
});

}  // namespace nnterp::cli

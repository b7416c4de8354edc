// nnterp generate [MODEL] --prompt "prompt" | [MODEL] --inputs IN.safetensors [--out OUT.safetensors]
// Streams new tokens to stdout as they come; --steer LAYER:VECTOR_FILE:FACTOR steers every step, and
// --sae DIR with --clamp-feature F=V / --add-feature F=V edits an SAE's features at every step.
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
#include "nnterp/sae.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp::cli {

struct GenerateCommand {
  std::vector<std::string> positionals;  // [MODEL] [PROMPT]
  CommonOptions common;
  PromptSource source;  // --prompt, --prompts, --inputs
  std::string out;
  GenerateOptions generation;
  uint64_t seed = 0;
  bool has_seed = false;
  std::vector<std::string> steer;
  std::string sae, sae_point;
  std::vector<std::string> clamp_features, add_features;
  ChatFlags chat;
};

struct Steering {
  int layer;
  torch::Tensor vector;
  double factor;
};

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
    s.vector = read_steering_vector(spec.substr(first + 1, last - first - 1), model, "--steer");
    out.push_back(s);
  }
  return out;
}

// "F=V" of --clamp-feature / --add-feature: a feature of the SAE and a value.
struct FeatureEdit {
  int64_t feature;
  double value;
  bool add;
};

static std::vector<FeatureEdit> parse_feature_edits(const GenerateCommand& cmd, const Sae& sae) {
  std::vector<FeatureEdit> edits;
  auto parse = [&](const std::string& spec, const char* flag, bool add) {
    const auto eq = spec.find('=');
    FeatureEdit e{0, 0.0, add};
    try {
      if (eq == std::string::npos) throw std::invalid_argument("no =");
      size_t used_f = 0, used_v = 0;
      e.feature = std::stoll(spec.substr(0, eq), &used_f);
      e.value = std::stod(spec.substr(eq + 1), &used_v);
      if (used_f != eq || used_v != spec.size() - eq - 1) throw std::invalid_argument("trailing text");
    } catch (const std::exception&) {
      throw Error(ErrorKind::InvalidArgument, std::string(flag) + " " + spec, "expected FEATURE=VALUE, e.g. 1234=0 or 1234=8.5");
    }
    if (e.feature < 0 || e.feature >= sae.d_sae())
      throw Error(ErrorKind::InvalidArgument, std::string(flag) + " " + spec,
                  "feature " + std::to_string(e.feature) + " is outside the SAE's " + std::to_string(sae.d_sae()) + " features");
    edits.push_back(e);
  };
  for (const auto& spec : cmd.clamp_features) parse(spec, "--clamp-feature", false);
  for (const auto& spec : cmd.add_features) parse(spec, "--add-feature", true);
  return edits;
}

// The SAE of --sae (fitted to the model), or nullopt; feature edits without it are an error.
static std::optional<Sae> load_generation_sae(const GenerateCommand& cmd, const StandardizedTransformer& model) {
  if (cmd.sae.empty()) {
    if (!cmd.clamp_features.empty() || !cmd.add_features.empty())
      throw Error(ErrorKind::InvalidArgument, cmd.clamp_features.empty() ? "--add-feature" : "--clamp-feature",
                  "edits an SAE's features, but no SAE was given", "give --sae DIR");
    if (!cmd.sae_point.empty()) throw Error(ErrorKind::InvalidArgument, "--sae-point", "moves an SAE, but no --sae was given");
    return std::nullopt;
  }
  SaeLoadOptions options;
  if (!cmd.sae_point.empty()) options.point = parse_point(cmd.sae_point);
  options.device = model.device();
  auto sae = Sae::load(cmd.sae, options);
  sae.check_fits(model);
  return sae;
}

// One JSON line per row: the row's tokens (padding dropped), its new tokens, and their text.
static void print_ids_jsonl(const GenerateResult& result) {
  for (int64_t b = 0; b < result.ids.size(0); ++b) {
    auto real = result.ids[b].masked_select(result.attention_mask[b].ne(0)).contiguous();
    auto fresh = result.ids[b].narrow(0, result.prompt_length, result.ids.size(1) - result.prompt_length);
    fresh = fresh.masked_select(result.attention_mask[b].narrow(0, result.prompt_length, fresh.size(0)).ne(0)).contiguous();
    nlohmann::json line{{"row", b},
                        {"ids", std::vector<int64_t>(real.data_ptr<int64_t>(), real.data_ptr<int64_t>() + real.numel())},
                        {"new_ids", std::vector<int64_t>(fresh.data_ptr<int64_t>(), fresh.data_ptr<int64_t>() + fresh.numel())}};
    if (static_cast<size_t>(b) < result.texts.size()) line["text"] = result.texts[static_cast<size_t>(b)];
    fmt::print("{}\n", line.dump());
  }
}

static void run_generate(GenerateCommand& cmd) {
  // [MODEL] [PROMPT]: MODEL is the positional of every command; a positional prompt is still taken
  // (nnterp generate "Once upon a time") when no --prompt / --prompts / --inputs is given.
  std::string positional_prompt;
  if (cmd.positionals.size() == 2) {
    cmd.common.model = cmd.positionals[0], positional_prompt = cmd.positionals[1];
  } else if (cmd.positionals.size() == 1) {
    const std::string& word = cmd.positionals[0];
    if (cmd.source.given()) {
      cmd.common.model = word;
    } else if (std::filesystem::exists(std::filesystem::path(word) / "config.json")) {
      // A lone positional that names a model folder is the model with its prompt forgotten, not a
      // prompt for the default model.
      throw Error(ErrorKind::InvalidArgument, "generate", "'" + word + "' is a model folder, and no prompt was given",
                  "nnterp generate " + word + " --prompt \"your prompt\"");
    } else {
      positional_prompt = word;
    }
  }
  if (!positional_prompt.empty()) {
    if (cmd.source.given())
      throw Error(ErrorKind::InvalidArgument, "generate", "a prompt given both as an argument and by --prompt/--prompts/--inputs",
                  "give it once: nnterp generate [MODEL] --prompt \"your prompt\"");
    cmd.source.prompts.push_back(positional_prompt);
  }
  if (!cmd.source.given())
    throw Error(ErrorKind::InvalidArgument, "generate", "no prompt given",
                "nnterp generate [MODEL] --prompt \"your prompt\"  (or --prompts FILE, or --inputs IN.safetensors)");
  // Every option is checked before anything is printed: the library's own checks, run here first.
  if (cmd.has_seed) cmd.generation.seed = cmd.seed;
  TraceInput input = resolve_prompts(cmd.source, "prompts");
  StandardizedTransformer model = load_model(cmd.common);
  auto steering = parse_steering(cmd.steer, model);
  const auto sae = load_generation_sae(cmd, model);
  const auto feature_edits = sae ? parse_feature_edits(cmd, *sae) : std::vector<FeatureEdit>{};
  const std::optional<PointId> sae_point = cmd.sae_point.empty() ? std::nullopt : std::optional<PointId>(parse_point(cmd.sae_point));
  StepBody body;
  if (!steering.empty() || sae)
    body = at_all_steps([&](Trace& t) {
      // In forward order: an SAE before a later layer's steering, or after an earlier one's.
      const int sae_layer = sae ? (sae_point ? *sae_point : *sae->config().input_point).layer : -1;
      auto apply_sae = [&] {
        auto& f = sae_point ? t.sae(*sae_point, *sae) : t.sae(*sae);
        for (const auto& e : feature_edits) {
          auto column = f.index({"...", e.feature});
          e.add ? column.add_(e.value) : column.fill_(e.value);
        }
      };
      bool sae_done = !sae;
      for (const auto& s : steering) {
        if (!sae_done && sae_layer <= s.layer) apply_sae(), sae_done = true;
        t.steer({s.layer}, s.vector, s.factor);
      }
      if (!sae_done) apply_sae();
    });
  input = apply_chat(input, cmd.chat, model, "prompt");
  const Tokenizer* tok = model.tokenizer();
  const bool text_prompt = !cmd.source.prompts.empty() || !cmd.source.prompts_file.empty();
  const bool stream = text_prompt && (input.tokens ? input.tokens->input_ids.size(0) : static_cast<int64_t>(input.prompts.size())) == 1 && tok && !cmd.common.json;
  std::string shown_prompt = stream && !input.tokens ? input.prompts[0] : "";
  // With --chat the stream starts with what the model reads: the prompt inside its chat template.
  if (stream && input.tokens) {
    const auto row = input.tokens->input_ids[0];
    shown_prompt = tok->decode(std::vector<int64_t>(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel()));
  }
  std::optional<Tokenizer::DecodeStream> decoder;
  bool started = false;
  if (stream) {
    decoder.emplace(*tok, /*skip_special_tokens=*/true);
    // The prompt is printed with the first new token: any error of the options comes before it.
    cmd.generation.on_step = [&](int, const torch::Tensor& tokens) {
      if (!started) fmt::print("{}", shown_prompt), started = true;
      if (auto text = decoder->step(tokens[0].item<int64_t>())) fmt::print("{}", *text);
      std::fflush(stdout);
    };
  }
  auto result = model.generate(input, cmd.generation, body);
  if (stream) fmt::print("{}\n", started ? "" : shown_prompt);
  const int64_t new_tokens = result.ids.size(1) - result.prompt_length;
  if (new_tokens == 1 && cmd.generation.max_new_tokens > 1)
    fmt::print(stderr,
               "nnterp: note: the model ended the text at once (EOS): its first new token was its end-of-text token, "
               "so nothing was generated; try another prompt, --chat for an instruct model, or sampling (--temperature)\n");
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
    if (!text_prompt && cmd.out.empty()) {
      print_ids_jsonl(result);  // token ids in, token ids out (no --out to hold them)
    } else {
      for (size_t b = 0; b < result.texts.size(); ++b) fmt::print("{}\n", result.texts[b]);
    }
    if (!cmd.out.empty())
      fmt::print(stderr, "generated {} new tokens per row (written to {})\n", new_tokens, cmd.out);
  }
}

static CommandRegistration generate_command(35, [](CLI::App& app) {
  auto cmd = std::make_shared<GenerateCommand>();
  auto* sub = app.add_subcommand("generate", "generate text (greedy or sampled), optionally steered, streaming to stdout");
  sub->add_option("model_and_prompt", cmd->positionals,
                  "[MODEL] (default: the embedded model); a second positional, or a lone one that is not a model, is "
                  "taken as the prompt")
      ->expected(0, 2);
  add_load_options(*sub, cmd->common);
  add_prompt_options(*sub, cmd->source, "", "prompts");
  sub->add_option("--out", cmd->out, "write generated_ids [B, T+N] and attention_mask to this safetensors file");
  positive_integer(sub->add_option("--max-new-tokens", cmd->generation.max_new_tokens, "tokens to generate, at least 1 (default 20)"));
  non_negative_number(sub->add_option("--temperature", cmd->generation.temperature, "0 = greedy (default)"));
  non_negative_integer(sub->add_option("--top-k", cmd->generation.top_k, "sample among the k most likely tokens (0 = off)"));
  number_where(sub->add_option("--top-p", cmd->generation.top_p, "nucleus sampling mass, in (0, 1] (1 = off)"),
               [](double v) { return v > 0 && v <= 1; }, "a number in (0, 1]");
  positive_number(sub->add_option("--repetition-penalty", cmd->generation.repetition_penalty, "HF repetition penalty, > 0 (1 = off)"));
  non_negative_integer(sub->add_option("--seed", cmd->seed, "sampling seed"))->each([cmd](const std::string&) { cmd->has_seed = true; });
  sub->add_flag("--recompute", cmd->generation.recompute, "no KV cache: re-run the full sequence at each step");
  sub->add_option("--steer", cmd->steer, "LAYER:VECTOR_FILE:FACTOR, added to that layer's output at every step (repeatable)");
  sub->add_option("--sae", cmd->sae, "an SAE (SAELens, Gemma Scope or sparsify folder) spliced at every step, for the feature edits below");
  sub->add_option("--sae-point", cmd->sae_point, "the point the SAE reads and writes (default: from its config), e.g. layers.2.output");
  sub->add_option("--clamp-feature", cmd->clamp_features, "FEATURE=VALUE: set that SAE feature at every token of every step (=0 ablates; repeatable)");
  sub->add_option("--add-feature", cmd->add_features, "FEATURE=VALUE: add VALUE to that SAE feature at every token of every step (steering; repeatable)");
  sub->add_flag("--json", cmd->common.json, "machine-readable output");
  add_chat_options(*sub, cmd->chat, "prompt");
  sub->footer(
      "Output: one text prompt streams to stdout as it is generated; several print one text per line. With\n"
      "--inputs (token ids) and no --out, each row's ids are printed as a JSON line\n"
      "({\"row\", \"ids\", \"new_ids\", \"text\"}); --out writes them to a safetensors file instead.\n"
      "Examples:\n"
      "  nnterp generate --prompt \"The capital of France is\" --max-new-tokens 5\n"
      "  nnterp generate path/to/model --prompt \"Once upon a time\" --temperature 0.8 --top-p 0.9 --seed 1\n"
      "  nnterp generate path/to/model --prompt \"I think\" --steer 3:love.safetensors:4.0\n"
      "  nnterp generate --prompt \"I think\" --sae models/default/sae/layers.2.output --add-feature 17=6 --clamp-feature 3=0\n"
      "  nnterp generate path/to/model --inputs in.safetensors --max-new-tokens 8 --out out.safetensors");
  sub->callback([cmd] { run_generate(*cmd); });
});

}  // namespace nnterp::cli

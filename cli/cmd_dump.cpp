// nnterp dump [MODEL] --inputs IN.safetensors | --prompt TEXT... | --prompts FILE --out OUT.safetensors:
// every standardized point of one forward pass, float32 (integer points, the routing's
// expert_indices, as they are), named as in the HF fixtures (logits, embed.output, layers.{i}.output,
// ...). --inputs also reads `generate --out`'s generated_ids.
#include <fmt/format.h>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "nnterp/error.hpp"
#include "nnterp/inputs.hpp"
#include "nnterp/model.hpp"
#include "nnterp/recorder.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::cli {

struct DumpOptions : CommonOptions {
  PromptSource source;
  std::string out;
  std::vector<std::string> points;
};

// Every requested point must exist in this model (at its layer, or at some layer for a
// "layers.{i}.…" pattern): a point the forward never produces would otherwise be silently missing
// from the file.
static void check_points_exist(const StandardizedTransformer& model, const std::vector<PointId>& wanted) {
  for (const auto& w : wanted) {
    std::string why;
    if (!point_info(w.point).per_layer() || w.layer >= 0) {
      if (w.layer >= model.num_layers())
        throw Error(ErrorKind::InvalidArgument, "--points " + w.name(),
                    "layer index out of range: the model has " + std::to_string(model.num_layers()) + " layers (0.." +
                        std::to_string(model.num_layers() - 1) + ")");
      if (!model.has_point(w, &why)) throw Error(ErrorKind::InvalidArgument, "--points " + w.name(), why);
      continue;
    }
    bool anywhere = false;
    for (int64_t i = 0; i < model.num_layers() && !anywhere; ++i) anywhere = model.has_point({w.point, static_cast<int>(i)}, &why);
    if (!anywhere) throw Error(ErrorKind::InvalidArgument, std::string("--points ") + point_info(w.point).pattern, why);
  }
}

static void run_dump(const DumpOptions& options) {
  const TraceInput prompts = resolve_prompts(options.source);
  StandardizedTransformer model = load_model(options, /*validate=*/false);
  // Prompts are tokenized as every method tokenizes them (left-padded, special tokens added).
  const TokenBatch inputs = model.tokenize(prompts);
  ForwardInput in;
  in.input_ids = inputs.input_ids;
  in.attention_mask = inputs.attention_mask;
  std::vector<PointId> wanted;
  for (const auto& p : options.points) wanted.push_back(parse_point(p));
  check_points_exist(model, wanted);
  PointRecorder recorder([&](const PointId& id) {
    if (wanted.empty()) return true;
    for (const auto& w : wanted)
      if (w.point == id.point && (w.layer < 0 || w.layer == id.layer)) return true;
    return false;
  });
  torch::NoGradGuard no_grad;
  model.forward(in, &recorder);
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& [name, t] : recorder.records()) out.emplace_back(name, t.is_floating_point() ? t.to(torch::kFloat32) : t);
  io::save_safetensors(options.out, out, {{"model", model.path().string()}, {"architecture", model.architecture()}});
  fmt::print(stderr, "wrote {} tensors to {}\n", out.size(), options.out);
}

static CommandRegistration dump_command(20, [](CLI::App& app) {
  auto options = std::make_shared<DumpOptions>();
  auto* cmd = app.add_subcommand("dump", "run one forward pass and save every standardized point");
  add_model_options(*cmd, *options);
  add_prompt_options(*cmd, options->source);
  cmd->add_option("--out", options->out, "output safetensors file")->required();
  cmd->add_option("--points", options->points,
                  "only these points (e.g. logits layers.{i}.output layers.3.attn_probs); `nnterp points` lists them");
  cmd->footer("Examples:\n  nnterp dump path/to/model --inputs in.safetensors --out acts.safetensors\n"
              "  nnterp dump --prompt 'The capital of France is' --points logits layers.{i}.output --out acts.safetensors\n"
              "  nnterp generate --inputs in.safetensors --max-new-tokens 5 --out gen.safetensors\n"
              "  nnterp dump --inputs gen.safetensors --out acts.safetensors   # reads generated_ids");
  cmd->callback([options] { run_dump(*options); });
});

}  // namespace nnterp::cli

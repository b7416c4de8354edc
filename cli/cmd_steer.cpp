// nnterp steer compute [MODEL] --positive-prompt ... --negative-prompt ... --layer L --out VEC.safetensors:
// a steering vector, mean(positive activations) − mean(negative activations) at one layer
// (steering_vector in methods.hpp), saved as the tensor "vector" that `generate --steer
// LAYER:VEC.safetensors:FACTOR` and `steer apply` read.
// nnterp steer apply [MODEL] --vector VEC.safetensors --layer L --factor F --prompt ...: the
// next-token top-k without and with factor·vector added to layer L's output (every position).
#include <fmt/format.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "common.hpp"
#include "progress.hpp"
#include "nnterp/error.hpp"
#include "nnterp/inputs.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp::cli {

namespace {

struct SteerCompute : CommonOptions {
  PromptSource positive, negative;
  std::string layer, point = "output", out;
  int64_t idx = -1, batch_size = 32;
};

struct SteerApply : CommonOptions {
  PromptSource source;
  std::string vector, layer, out, html;
  int width = 0, height = 0;
  double factor = 1.0;
  int64_t top = 5;
};

// One layer, by --layer (negative from the end).
int one_layer(const std::string& spec, const StandardizedTransformer& model) {
  const auto layers = io::parse_layers(spec, model.num_layers(), "--layer");
  if (layers.size() != 1)
    throw Error(ErrorKind::InvalidArgument, "--layer", "'" + spec + "' names " + std::to_string(layers.size()) + " layers",
                "give one layer, e.g. --layer 2 or --layer -1");
  return layers[0];
}

// The prompts of one side (--positive-… or --negative-…), each error naming that side's flags.
TraceInput side_prompts(const PromptSource& source, const std::string& side) {
  const int given = !source.prompts.empty() + !source.prompts_file.empty() + !source.inputs.empty();
  const std::string flags = "--" + side + "-prompt TEXT (repeatable), --" + side + "-prompts FILE or --" + side + "-inputs IN.safetensors";
  if (given == 0) throw Error(ErrorKind::InvalidArgument, "--" + side + "-prompt", "no " + side + " prompt given", "give " + flags);
  if (given > 1) throw Error(ErrorKind::InvalidArgument, "--" + side + "-prompt", side + " prompts given several ways at once", "use one of " + flags);
  return resolve_prompts(source, side + " prompts");
}

void run_compute(const SteerCompute& o) {
  const TraceInput positive = side_prompts(o.positive, "positive");
  const TraceInput negative = side_prompts(o.negative, "negative");
  const Point point = parse_point_kind(o.point);
  auto model = load_model(o);
  const int layer = one_layer(o.layer, model);
  SteeringVectorOptions so;
  so.idx = o.idx;
  so.batch_size = o.batch_size;
  so.point = point;
  const torch::Tensor v = steering_vector(model, positive, negative, layer, so).to(torch::kFloat32).contiguous();
  const std::string pattern = point_info(point).pattern;
  io::save_safetensors(o.out, {{"vector", v}},
                       {{"model", model.path().string()}, {"command", "steer compute"}, {"layer", std::to_string(layer)},
                        {"point", pattern}, {"idx", std::to_string(o.idx)}});
  const double norm = v.norm().item<double>();
  const int64_t np = input_size(positive), nn = input_size(negative);
  if (o.json) {
    nlohmann::json j = {{"model", model.path().string()}, {"layer", layer}, {"point", pattern}, {"idx", o.idx},
                        {"hidden_size", v.numel()}, {"norm", norm}, {"positive", np}, {"negative", nn}, {"out", o.out}};
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("steering vector: layer {} ({}), token {}, {} positive and {} negative prompts, norm {:.4g}\n", layer, pattern,
             o.idx, np, nn, norm);
  fmt::print("wrote {} (use: nnterp generate --steer {}:{}:FACTOR, or nnterp steer apply --vector {} --layer {})\n", o.out,
             layer, o.out, o.out, layer);
}

void run_apply(const SteerApply& o) {
  const TraceInput prompts = resolve_prompts(o.source);
  if (!std::isfinite(o.factor)) throw Error(ErrorKind::InvalidArgument, "--factor", "must be a finite number");
  auto model = load_model(o);
  std::string layer_spec = o.layer;
  if (layer_spec.empty()) {  // the layer `steer compute` recorded in the vector's file
    std::string recorded;
    if (o.vector.size() > 12 && o.vector.substr(o.vector.size() - 12) == ".safetensors") {
      const auto& metadata = io::SafetensorsFile::open(o.vector)->metadata();
      if (auto it = metadata.find("layer"); it != metadata.end()) recorded = it->second;
    }
    if (recorded.empty())
      throw Error(ErrorKind::InvalidArgument, "--layer", "missing, and " + o.vector + " records no layer",
                  "give the layer the vector was computed at, e.g. --layer 2");
    layer_spec = recorded;
  }
  const int layer = one_layer(layer_spec, model);
  const torch::Tensor v = read_steering_vector(o.vector, model, "--vector");
  const torch::Tensor before = next_token_probs(model, prompts).to(torch::kFloat32);
  torch::Tensor after;
  model.trace(prompts, [&](Trace& t) {
    t.steer({layer}, v, o.factor);
    after = t.next_token_probs().to(torch::kFloat32).cpu();
  });
  if (!o.out.empty())
    write_results(o.out, {{"probs_before", before}, {"probs_after", after}}, model, "steer apply");
  if (!o.html.empty())
    save_comparison_html(o.html, before, after, {"without steering", fmt::format("layer {} + {} x vector", layer, o.factor)},
                         "Steering: top next tokens without and with the vector", model, prompts, o.top, o.width, o.height);
  const int64_t N = before.size(0);
  if (o.json) {
    nlohmann::json j = {{"model", model.path().string()}, {"layer", layer}, {"factor", o.factor}, {"vector", o.vector}};
    j["prompts"] = nlohmann::json::array();
    for (int64_t n = 0; n < N; ++n)
      j["prompts"].push_back({{"prompt", prompt_json(prompts, n)},
                              {"before", top_json(model, before[n], o.top)},
                              {"after", top_json(model, after[n], o.top)}});
    fmt::print("{}\n", j.dump(2));
    return;
  }
  fmt::print("steering layer {} by {} x {}\n", layer, o.factor, o.vector);
  for (int64_t n = 0; n < N; ++n) {
    fmt::print("prompt {}{}\n", n, prompts.tokens ? "" : ": " + prompt_json(prompts, n).dump());
    fmt::print("  before:{}\n", top_text(model, before[n], o.top));
    fmt::print("  after: {}\n", top_text(model, after[n], o.top));
  }
}

}  // namespace

static CommandRegistration steer_command(47, [](CLI::App& app) {
  auto* steer = app.add_subcommand("steer", "steering vectors: compute one from contrasting prompts, apply one to prompts");
  steer->require_subcommand(1);
  steer->footer(
      "Examples:\n"
      "  nnterp steer compute --positive-prompt 'The colour of the sky is' --negative-prompt 'The colour of the grass is' \\\n"
      "      --layer 2 --out blue.safetensors\n"
      "  nnterp steer apply --vector blue.safetensors --layer 2 --factor 4 --prompt 'The colour of the banana is'\n"
      "  nnterp generate --prompt 'The colour of the banana is' --steer 2:blue.safetensors:4");

  auto c = std::make_shared<SteerCompute>();
  auto* compute = steer->add_subcommand("compute", "a steering vector: mean activation of positive prompts minus negative ones");
  add_model_options(*compute, *c);
  add_prompt_options(*compute, c->positive, "positive", "positive prompts");
  add_prompt_options(*compute, c->negative, "negative", "negative prompts");
  compute->add_option("--layer", c->layer, "the layer (negative from the end, -1 the last)")->required();
  compute->add_option("--point", c->point,
                      "where the activations are read: output (default: the layer's output, where steering adds), input, "
                      "attn_output, mlp_output, ...");
  compute->add_option("--idx", c->idx, "the token read in each prompt (default -1, the last)");
  compute->add_option("--batch-size", c->batch_size, "prompts per forward pass (default 32)")->check(CLI::PositiveNumber);
  compute->add_option("--out", c->out, "the vector's safetensors file (tensor \"vector\" [hidden], float32)")->required();
  compute->add_flag("--json", c->json, "print what was computed as JSON");
  compute->footer(
      "Examples:\n"
      "  nnterp steer compute --positive-prompt 'The colour of the sky is' --positive-prompt 'The colour of the ocean is' \\\n"
      "      --negative-prompt 'The colour of the grass is' --negative-prompt 'The colour of the banana is' \\\n"
      "      --layer 2 --out blue.safetensors\n"
      "  nnterp steer compute path/to/model --positive-prompts love.txt --negative-prompts hate.txt --layer -4 --out love.safetensors");
  compute->callback([c] { run_compute(*c); });

  auto a = std::make_shared<SteerApply>();
  auto* apply = steer->add_subcommand("apply", "next-token top-k of prompts without and with a steering vector");
  add_model_options(*apply, *a);
  add_prompt_options(*apply, a->source);
  apply->add_option("--vector", a->vector, "the steering vector: safetensors (tensor \"vector\") or whitespace-separated numbers")
      ->required()->check(CLI::ExistingFile);
  apply->add_option("--layer", a->layer,
                    "the layer whose output gets factor x vector (negative from the end); default: the layer `steer compute` "
                    "recorded in the vector's file");
  apply->add_option("--factor", a->factor, "the vector's multiplier (default 1)");
  apply->add_option("--top", a->top, "top tokens shown (default 5)")->check(CLI::PositiveNumber);
  add_json_out_options(*apply, *a, a->out, "print JSON",
                       "save probs_before and probs_after [prompts, vocab] to this safetensors file");
  apply->add_option("--html", a->html, "also write a heatmap of the top tokens without and with steering to this HTML file");
  add_plot_size_options(*apply, a->width, a->height);
  apply->footer(
      "Examples:\n"
      "  nnterp steer apply --vector blue.safetensors --layer 2 --factor 4 --prompt 'The colour of the banana is'\n"
      "  nnterp steer apply path/to/model --vector love.safetensors --layer -4 --factor 8 --prompts prompts.txt --json");
  apply->callback([a] { run_apply(*a); });
});

}  // namespace nnterp::cli

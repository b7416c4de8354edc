#include "common.hpp"

#include <fmt/format.h>

#include <cstdlib>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "nnterp/hub.hpp"
#include "nnterp/threading.hpp"

namespace nnterp::cli {

std::string default_model() { return default_model_dir().string(); }

void add_model_options(CLI::App& cmd, CommonOptions& options, bool model_required) {
  auto* opt = cmd.add_option("model", options.model,
                             "model folder or HuggingFace hub id (resolved offline in the HF cache); "
                             "default: the embedded toy model");
  if (model_required) opt->required();
  add_load_options(cmd, options);
}

void add_load_options(CLI::App& cmd, CommonOptions& options) {
  cmd.add_option("--threads", options.threads, "threads for the matmuls (default: every core)")->check(CLI::NonNegativeNumber);
  // Checked as they are parsed, so that a bad value is the first error, whatever else is missing.
  cmd.add_option("--dtype", options.dtype,
                 "weights and activations: float32 (default, as HF), bfloat16, float16, or auto (the checkpoint's own: "
                 "its weights are used in place from the file)")
      ->each([](const std::string& v) { parse_dtype_option(v, "--dtype"); });
  cmd.add_option("--device", options.device, "cpu (default), cuda or cuda:N (needs a CUDA build of libtorch)")
      ->each([](const std::string& v) { parse_device_option(v, "--device"); });
}

LoadOptions load_options(const CommonOptions& options, bool validate) {
  LoadOptions load;
  load.dtype = parse_dtype_option(options.dtype, "--dtype");
  load.device = parse_device_option(options.device, "--device");
  load.validate = validate;
  return load;
}

StandardizedTransformer load_model(const CommonOptions& options, bool validate) {
  const std::string name = prepare(options);
  return StandardizedTransformer(name, load_options(options, validate));
}

void add_json_out_options(CLI::App& cmd, CommonOptions& options, std::string& out, const std::string& json_help,
                          const std::string& out_help) {
  cmd.add_flag("--json", options.json, json_help);
  cmd.add_option("--out", out, out_help);
}

nlohmann::json prompt_json(const TraceInput& prompts, int64_t i) {
  return prompts.tokens ? nlohmann::json(nullptr) : nlohmann::json(prompts.prompts[static_cast<size_t>(i)]);
}

nlohmann::json top_json(const StandardizedTransformer& model, const torch::Tensor& probs, int64_t k) {
  nlohmann::json out = nlohmann::json::array();
  for (auto [id, p] : top_k(probs, k)) out.push_back({{"id", id}, {"token", token_display(model, id)}, {"prob", p}});
  return out;
}

std::string top_text(const StandardizedTransformer& model, const torch::Tensor& probs, int64_t k) {
  std::string s;
  for (auto [id, p] : top_k(probs, k)) s += fmt::format("  {:>14} {:.3f}", nlohmann::json(token_display(model, id)).dump(), p);
  return s;
}

std::string prepare(const CommonOptions& options) {
  configure_threads(options.threads);
  warn_if_reference_blas();
  return options.model.empty() ? default_model() : options.model;
}

}  // namespace nnterp::cli

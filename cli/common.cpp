#include "common.hpp"

#include <cstdlib>

#include "commands.hpp"
#include "nnterp/threading.hpp"

namespace nnterp::cli {

std::string default_model() {
  if (const char* env = std::getenv("NNTERP_DEFAULT_MODEL"); env && *env) return env;
  return NNTERP_DEFAULT_MODEL_DIR;
}

void add_model_options(CLI::App& cmd, CommonOptions& options, bool model_required) {
  auto* opt = cmd.add_option("model", options.model,
                             "model folder or HuggingFace hub id (resolved offline in the HF cache); "
                             "default: the embedded toy model");
  if (model_required) opt->required();
  cmd.add_option("--threads", options.threads, "threads for the matmuls (default: every core)")->check(CLI::NonNegativeNumber);
}

std::string prepare(const CommonOptions& options) {
  configure_threads(options.threads);
  warn_if_reference_blas();
  return options.model.empty() ? default_model() : options.model;
}

}  // namespace nnterp::cli

// Options shared by the subcommands, so flags are spelled the same everywhere.
#pragma once

#include <CLI/CLI.hpp>
#include <string>

namespace nnterp::cli {

struct CommonOptions {
  std::string model;  // empty: the default model
  int threads = 0;    // 0: every core
  bool json = false;
};

// Adds the positional MODEL (optional: the default model when omitted) and --threads.
void add_model_options(CLI::App& cmd, CommonOptions& options, bool model_required = false);
// Applies --threads (see threading.hpp) and returns the model name to load.
std::string prepare(const CommonOptions& options);

}  // namespace nnterp::cli

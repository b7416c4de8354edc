// Subcommands register themselves: each cli/cmd_*.cpp adds its CLI11 subcommand through a
// static CommandRegistration, so adding a command never touches main.cpp.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <vector>

namespace nnterp::cli {

using CommandSetup = std::function<void(CLI::App& app)>;

struct CommandRegistration {
  CommandRegistration(int order, CommandSetup setup);
};

std::vector<std::pair<int, CommandSetup>>& command_setups();

// Exit codes shared by every command.
enum ExitCode : int {
  kOk = 0,
  kFailure = 1,       // an nnterp::Error (bad input file, unsupported model, ...)
  kUsage = 2,         // bad command-line usage
  kInternal = 3,      // an unexpected exception
};

// The model used when a command is given none (the embedded default model).
std::string default_model();

}  // namespace nnterp::cli

// nnterp command-line tool: a thin layer over the library. Each subcommand lives in cmd_*.cpp.
#include <algorithm>
#include <iostream>

#include "commands.hpp"
#include "nnterp/error.hpp"

namespace nnterp::cli {

std::vector<std::pair<int, CommandSetup>>& command_setups() {
  static std::vector<std::pair<int, CommandSetup>> setups;
  return setups;
}

CommandRegistration::CommandRegistration(int order, CommandSetup setup) {
  command_setups().emplace_back(order, std::move(setup));
}

namespace {

// CLI11 reports an unknown first word as "A subcommand is required"; say which word was not
// understood, suggest the nearest command and list them all.
bool reject_unknown_command(CLI::App& app, int argc, char** argv) {
  if (argc < 2 || argv[1][0] == '-') return false;
  std::vector<std::string> names;
  for (const auto* sub : app.get_subcommands({})) names.push_back(sub->get_name());
  const std::string word = argv[1];
  if (std::find(names.begin(), names.end(), word) != names.end()) return false;
  std::string list;
  for (const auto& n : names) list += (list.empty() ? "" : ", ") + n;
  std::cerr << "nnterp: unknown command '" << word << "'; did you mean '" << nnterp::nearest_name(word, names)
            << "'?\n  commands: " << list << "\n  run `nnterp --help` or `nnterp COMMAND --help` for more\n";
  return true;
}

}  // namespace

}  // namespace nnterp::cli

int main(int argc, char** argv) {
  using namespace nnterp::cli;
  CLI::App app{"nnterp: one standardized interface over HuggingFace causal language models"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "nnterp 0.1.0");
  auto setups = command_setups();
  std::stable_sort(setups.begin(), setups.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, setup] : setups) setup(app);
  if (reject_unknown_command(app, argc, argv)) return kUsage;
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kOk : kUsage;
  } catch (const nnterp::Error& e) {
    std::cerr << "nnterp: " << e.what() << "\n";
    return kFailure;
  } catch (const std::exception& e) {
    std::cerr << "nnterp: internal error: " << e.what() << "\n";
    return kInternal;
  }
  return kOk;
}

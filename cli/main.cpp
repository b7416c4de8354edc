// nnterp command-line tool: a thin layer over the library. Each subcommand lives in cmd_*.cpp.
#include <algorithm>
#include <iostream>

#include "commands.hpp"
#include "common.hpp"
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

// Levenshtein distance, to tell a typo (--layer for --layers) from a flag of another tool.
size_t distance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// An option the command does not know: the nearest of its options ("did you mean --layers?"); a
// positional word too many (a prompt after MODEL): --prompt.
bool explain_extras(CLI::App& app, int argc, char** argv) {
  if (argc < 2) return false;
  CLI::App* sub = nullptr;
  try {
    sub = app.get_subcommand(argv[1]);
  } catch (const CLI::Error&) {
    return false;
  }
  // A command with subcommands of its own (steer compute): the one that was parsed.
  std::string path = sub->get_name();
  while (!sub->get_subcommands().empty()) {
    sub = sub->get_subcommands().front();
    path += " " + sub->get_name();
  }
  std::vector<std::string> flags;
  for (const CLI::Option* opt : sub->get_options())
    for (const auto& l : opt->get_lnames()) flags.push_back("--" + l);
  const bool takes_prompt = std::find(flags.begin(), flags.end(), "--prompt") != flags.end();
  bool explained = false;
  for (const auto& word : sub->remaining(false)) {
    if (word.size() > 1 && word[0] == '-') {
      std::string name = word.substr(0, word.find('='));
      std::cerr << "nnterp " << path << ": unknown option " << name;
      const std::string nearest = nnterp::nearest_name(name, flags);
      if (!nearest.empty() && distance(name, nearest) <= std::max<size_t>(2, (name.size() - 2) / 3))
        std::cerr << "; did you mean " << nearest << "?";
      std::cerr << "\n";
    } else {
      std::cerr << "nnterp " << path << ": unexpected argument " << nlohmann::json(word).dump();
      if (takes_prompt) std::cerr << "; did you mean --prompt " << nlohmann::json(word).dump() << "?";
      std::cerr << " (MODEL is the only positional argument)\n";
    }
    explained = true;
  }
  if (explained) std::cerr << "  run `nnterp " << path << " --help` for its options\n";
  return explained;
}

// CLI11's range checks (CLI::PositiveNumber, NonNegativeNumber) say "Value 0 not in range 0.000000 to
// 179769313486231570814527..."; say which flag takes what, as nnterp's own checks do.
bool explain_range_error(CLI::App& app, int argc, char** argv, const CLI::ValidationError& e) {
  const std::string message = e.what();
  const auto colon = message.find(": Value ");
  const auto range = message.find(" not in range ");
  if (colon == std::string::npos || range == std::string::npos || range < colon) return false;
  const std::string flag = message.substr(0, colon), value = message.substr(colon + 8, range - colon - 8);
  std::string what = "a number >= 0";
  try {
    for (const CLI::Option* opt : app.get_subcommand(argv[1])->get_options()) {
      if (!opt->check_name(flag)) continue;
      // CLI::PositiveNumber is the Range described "POSITIVE".
      auto* option = const_cast<CLI::Option*>(opt);
      try {
        for (int i = 0;; ++i)
          if (option->get_validator(i)->get_description() == "POSITIVE") what = "a positive number";
      } catch (const CLI::Error&) {  // past the last validator
      }
    }
  } catch (const CLI::Error&) {
  }
  std::cerr << "nnterp " << (argc >= 2 ? argv[1] : "") << ": " << flag << " must be " << what << ", got '" << value
            << "'\n  run `nnterp " << (argc >= 2 ? argv[1] : "") << " --help` for its options\n";
  return true;
}

// The command the user ran (argv[1] once reject_unknown_command has passed).
std::string command_name(int argc, char** argv) { return argc >= 2 ? argv[1] : ""; }

}  // namespace

}  // namespace nnterp::cli

int main(int argc, char** argv) {
  using namespace nnterp::cli;
  CLI::App app{"nnterp: one standardized interface over HuggingFace causal language models", "nnterp"};
  app.require_subcommand(1);
  app.footer(
      "Conventions (every command):\n"
      "  MODEL      the only positional argument, optional: a model folder or a hub id (name, org/name,\n"
      "             org/name@revision) resolved offline in the HuggingFace cache; omitted, the embedded\n"
      "             default model ($NNTERP_DEFAULT_MODEL overrides)\n"
      "  prompts    --prompt TEXT (repeatable), --prompts FILE (one per line or JSONL) or\n"
      "             --inputs IN.safetensors (pre-tokenized input_ids + attention_mask)\n"
      "  loading    --threads N, --dtype float32|bfloat16|float16|auto, --device cpu|cuda|cuda:N\n"
      "  output     --json (machine-readable) and --out FILE.safetensors (tensors)\n"
      "  exit codes 0 ok, 1 an nnterp error (the message says what and where), 2 bad usage, 3 internal error\n"
      "Examples:\n"
      "  nnterp info\n"
      "  nnterp logit-lens --prompt \"The capital of France is\"\n"
      "  nnterp generate gpt2 --prompt \"Once upon a time\" --max-new-tokens 20\n"
      "Run `nnterp COMMAND --help` for a command's options.");
  app.set_version_flag("--version", "nnterp 0.1.0");
  auto setups = command_setups();
  std::stable_sort(setups.begin(), setups.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (auto& [order, setup] : setups) setup(app);
  if (argc < 2) {  // a bare `nnterp`: what it does and its commands
    std::cout << app.help();
    return kOk;
  }
  if (reject_unknown_command(app, argc, argv)) return kUsage;
  try {
    app.parse(argc, argv);
  } catch (const UsageError& e) {
    std::cerr << "nnterp " << command_name(argc, argv) << ": " << e.what() << "\n  run `nnterp " << command_name(argc, argv)
              << " --help` for its options\n";
    return kUsage;
  } catch (const CLI::ExtrasError& e) {
    if (explain_extras(app, argc, argv)) return kUsage;
    return app.exit(e) == 0 ? kOk : kUsage;
  } catch (const CLI::ValidationError& e) {
    if (explain_range_error(app, argc, argv, e)) return kUsage;
    return app.exit(e) == 0 ? kOk : kUsage;
  } catch (const CLI::RequiredError& e) {  // "--out is required": say where to look
    if (argc >= 2 && argv[1][0] != '-') {
      std::cerr << "nnterp " << argv[1] << ": " << e.what() << "\n  run `nnterp " << argv[1] << " --help` for its options\n";
      return kUsage;
    }
    return app.exit(e) == 0 ? kOk : kUsage;
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? kOk : kUsage;
  } catch (const nnterp::Error& e) {
    // The library names its API fields (idx, batch_size, ...); say the flag the user typed.
    const std::string flag = flag_for_field(command_name(argc, argv), e.subject());
    if (!flag.empty()) {
      std::cerr << "nnterp: " << nnterp::Error(e.kind(), flag, e.message(), e.hint()).what() << "\n";
      return kFailure;
    }
    std::cerr << "nnterp: " << e.what() << "\n";
    return kFailure;
  } catch (const std::exception& e) {
    std::cerr << "nnterp: internal error: " << e.what() << "\n";
    return kInternal;
  }
  return kOk;
}

#include "common.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <filesystem>

#include "cli_inputs.hpp"
#include "commands.hpp"
#include "nnterp/error.hpp"
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
  non_negative_integer(cmd.add_option("--threads", options.threads, "threads for the matmuls (default: every core)"));
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

namespace {

// The flag as the user types it: the option's long name.
std::string flag_name(const CLI::Option* opt) {
  const auto& l = opt->get_lnames();
  return l.empty() ? opt->get_name() : "--" + l.front();
}

bool parse_integer(const std::string& s, long long& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  v = std::strtoll(s.c_str(), &end, 10);
  return errno == 0 && end && *end == '\0';
}

bool parse_number(const std::string& s, double& v) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  v = std::strtod(s.c_str(), &end);
  return errno == 0 && end && *end == '\0';
}

CLI::Option* integer_check(CLI::Option* opt, std::function<bool(long long)> ok, const std::string& what) {
  const std::string flag = flag_name(opt);
  return opt->check(CLI::Validator(
      [flag, ok, what](std::string& s) -> std::string {
        long long v;
        if (!parse_integer(s, v) || !ok(v)) throw UsageError(flag + " must be " + what + ", got '" + s + "'");
        return "";
      },
      "", ""));
}

}  // namespace

CLI::Option* positive_integer(CLI::Option* opt) {
  return integer_check(opt, [](long long v) { return v >= 1; }, "a positive integer (1, 2, ...)");
}
CLI::Option* non_negative_integer(CLI::Option* opt) {
  return integer_check(opt, [](long long v) { return v >= 0; }, "a non-negative integer (0, 1, ...)");
}
CLI::Option* any_integer(CLI::Option* opt) {
  return integer_check(opt, [](long long) { return true; }, "an integer (-1 is the last token, 0 the first)");
}

CLI::Option* number_where(CLI::Option* opt, std::function<bool(double)> ok, const std::string& what) {
  const std::string flag = flag_name(opt);
  return opt->check(CLI::Validator(
      [flag, ok, what](std::string& s) -> std::string {
        double v;
        if (!parse_number(s, v) || !ok(v)) throw UsageError(flag + " must be " + what + ", got '" + s + "'");
        return "";
      },
      "", ""));
}
CLI::Option* non_negative_number(CLI::Option* opt) {
  return number_where(opt, [](double v) { return v >= 0; }, "a number >= 0");
}
CLI::Option* positive_number(CLI::Option* opt) {
  return number_where(opt, [](double v) { return v > 0; }, "a number > 0");
}

bool hub_id_shaped(const std::string& word) {
  if (word.empty()) return false;
  std::string id = word;
  const auto at = id.find('@');
  if (at != std::string::npos) {
    if (at + 1 == id.size()) return false;
    for (char c : id.substr(at + 1))
      if (std::isspace(static_cast<unsigned char>(c))) return false;
    id = id.substr(0, at);
  }
  int slashes = 0;
  std::string part;
  auto part_ok = [](const std::string& p) {
    if (p.empty()) return false;
    for (char c : p)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') return false;
    return true;
  };
  for (char c : id) {
    if (c == '/') {
      if (!part_ok(part) || ++slashes > 1) return false;
      part.clear();
    } else {
      part += c;
    }
  }
  return part_ok(part);
}

void reject_prompt_as_model(const std::string& model) {
  if (model.empty() || hub_id_shaped(model)) return;
  std::error_code ec;
  if (std::filesystem::exists(model, ec)) return;
  throw Error(ErrorKind::InvalidArgument, "MODEL",
              "'" + model + "' is neither a model folder nor a hub id (name, org/name or org/name@revision)",
              "did you mean --prompt " + nlohmann::json(model).dump() +
                  "? Prompts are given by --prompt TEXT (repeatable), --prompts FILE or --inputs FILE; MODEL is optional");
}

std::string flag_for_field(const std::string& command, const std::string& subject) {
  // "LensOptions::idx" and "idx" alike.
  const auto colons = subject.rfind("::");
  const std::string field = colons == std::string::npos ? subject : subject.substr(colons + 2);
  static const std::map<std::string, std::map<std::string, std::string>> per_command = {
      {"patchscope", {{"idx", "--source-idx"}, {"source_idx", "--source-idx"}, {"index_to_patch", "--index"},
                      {"patchscope index_to_patch", "--index"}}},
      {"patch", {{"point", "--point"}, {"positions", "--positions"}, {"metric", "--correct / --incorrect"}}},
      {"collect", {{"point", "--point"}, {"dtype", "--save-dtype"}, {"max_shard_bytes", "--max-shard-mb"}}},
      {"steer", {{"layers", "--layer"}}},
      {"train-sae", {{"d_sae", "--features"}, {"k", "--k"}, {"steps", "--steps"}, {"epochs", "--epochs"}, {"lr", "--lr"},
                     {"dead_after_tokens", "--dead-after"}, {"aux_k", "--aux-k"}, {"aux_coefficient", "--aux-coefficient"},
                     {"holdout_fraction", "--holdout"}, {"checkpoint_every", "--checkpoint-every"}, {"resume", "--resume"},
                     {"checkpoint", "--checkpoint"}}},
      {"sae", {{"k", "--top"}, {"top", "--top"}, {"targets", "--attribute"}}},
      {"train-lens", {{"lr", "--lr"}, {"weight_decay", "--weight-decay"}, {"warmup_steps", "--warmup"},
                      {"checkpoint_every", "--checkpoint-every"}, {"resume", "--resume"}, {"optimizer", "--optimizer"}}},
  };
  static const std::map<std::string, std::string> common = {
      {"idx", "--idx"},
      {"batch_size", "--batch-size"},
      {"layers", "--layers"},
      {"shard_size", "--shard-size"},
      {"max_new_tokens", "--max-new-tokens"},
      {"temperature", "--temperature"},
      {"top_k", "--top-k"},
      {"top_p", "--top-p"},
      {"repetition_penalty", "--repetition-penalty"},
  };
  if (auto c = per_command.find(command); c != per_command.end()) {
    if (auto f = c->second.find(subject); f != c->second.end()) return f->second;
    if (auto f = c->second.find(field); f != c->second.end()) return f->second;
  }
  if (auto f = common.find(field); f != common.end()) return f->second;
  return "";
}

std::string prepare(const CommonOptions& options) {
  reject_prompt_as_model(options.model);
  configure_threads(options.threads);
  warn_if_reference_blas();
  return options.model.empty() ? default_model() : options.model;
}

}  // namespace nnterp::cli

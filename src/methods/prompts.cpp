// Prompts with target tokens: get_first_tokens, Prompt, run_prompts, prompts_to_table.
#include <algorithm>
#include <optional>
#include <set>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/tensor_text.hpp"
#include "io/json_reader.hpp"
#include "io/jsonl.hpp"
#include "methods/method_utils.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp {


std::vector<int64_t> get_first_tokens(const std::vector<std::string>& words, const Tokenizer& tokenizer) {
  auto first = [&](const std::string& s) -> std::optional<int64_t> {
    auto ids = tokenizer.encode_ids(s, false);
    if (ids.empty()) return std::nullopt;
    return ids[0];
  };
  const auto space = first(" ");
  std::vector<int64_t> out;
  auto add = [&](int64_t id) {
    if (std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  };
  for (const auto& word : words) {
    if (word.empty()) throw Error(ErrorKind::InvalidArgument, "target words", "an empty word has no first token");
    auto bare = first(word);
    if (!bare) throw Error(ErrorKind::Tokenizer, "target word '" + word + "'", "tokenizes to nothing");
    auto spaced = first(" " + word);
    if (spaced && *spaced == *bare) {
      // The tokenizer adds a prefix space, so "word" and " word" start alike: the word's token
      // without a space is the one after a "🍐" prefix (nnterp's trick).
      const std::string pear = "\xF0\x9F\x8D\x90";
      auto p = tokenizer.encode_ids(pear, false);
      auto both = tokenizer.encode_ids(pear + word, false);
      add(*bare);
      if (both.size() > p.size() && std::equal(p.begin(), p.end(), both.begin())) add(both[p.size()]);
      continue;
    }
    add(*bare);
    if (spaced && !(space && *spaced == *space)) add(*spaced);
  }
  return out;
}

Prompt Prompt::from_strings(const std::string& prompt, const std::map<std::string, std::vector<std::string>>& targets,
                            const Tokenizer& tokenizer, bool allow_collisions) {
  Prompt p;
  p.prompt = prompt;
  p.target_strings = targets;
  for (const auto& [category, words] : targets) {
    if (words.empty()) throw Error(ErrorKind::InvalidArgument, "target category '" + category + "'", "has no word");
    p.target_tokens[category] = get_first_tokens(words, tokenizer);
  }
  if (!allow_collisions) {
    auto c = p.collisions();
    if (!c.empty()) {
      std::string cats;
      for (const auto& name : c[0].categories) cats += (cats.empty() ? "'" : ", '") + name + "'";
      throw Error(ErrorKind::InvalidArgument, "targets of prompt \"" + prompt + "\"",
                  "token " + std::to_string(c[0].token) + " ('" + tokenizer.id_to_token(c[0].token) + "') belongs to categories " +
                      cats + (c.size() > 1 ? " (and " + std::to_string(c.size() - 1) + " more collisions)" : ""),
                  "make the target words distinct, or pass allow_collisions = true");
    }
  }
  return p;
}

Prompt Prompt::from_strings(const std::string& prompt, const std::map<std::string, std::vector<std::string>>& targets,
                            const StandardizedTransformer& model, bool allow_collisions) {
  if (!model.tokenizer())
    throw Error(ErrorKind::InvalidArgument, model.path().string(), "has no tokenizer, so target words cannot be tokenized",
                "give Prompt::target_tokens as token ids instead");
  return from_strings(prompt, targets, *model.tokenizer(), allow_collisions);
}

std::vector<TokenCollision> Prompt::collisions(const std::vector<std::string>& ignore) const {
  std::map<int64_t, std::vector<std::string>> owners;
  for (const auto& [category, ids] : target_tokens) {
    if (std::find(ignore.begin(), ignore.end(), category) != ignore.end()) continue;
    for (int64_t id : std::set<int64_t>(ids.begin(), ids.end())) owners[id].push_back(category);
  }
  std::vector<TokenCollision> out;
  for (auto& [id, cats] : owners)
    if (cats.size() > 1) out.push_back({id, cats});
  return out;
}

std::map<std::string, torch::Tensor> Prompt::get_target_probs(const torch::Tensor& probs) const {
  std::map<std::string, torch::Tensor> out;
  const int64_t V = probs.size(-1);
  for (const auto& [category, ids] : target_tokens) {
    for (int64_t id : ids)
      if (id < 0 || id >= V)
        throw Error(ErrorKind::InvalidArgument, "target '" + category + "'",
                    "token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(V));
    auto index = torch::tensor(ids, torch::kInt64).to(probs.device());
    out[category] = probs.index_select(-1, index).sum(-1);
  }
  return out;
}

ProbsFunction next_token_probs_fn() {
  return [](const StandardizedTransformer& model, const TraceInput& in) {
    return next_token_probs(model, in, std::max<int64_t>(1, input_size(in))).unsqueeze(1);
  };
}

ProbsFunction logit_lens_fn(const LensOptions& options) {
  return [options](const StandardizedTransformer& model, const TraceInput& in) {
    LensOptions o = options;
    o.batch_size = std::max<int64_t>(1, input_size(in));
    return logit_lens(model, in, o);
  };
}

std::map<std::string, torch::Tensor> run_prompts(const StandardizedTransformer& model, const std::vector<Prompt>& prompts,
                                                 const RunPromptsOptions& options) {
  methods_detail::check_batch_size(options.batch_size);
  torch::NoGradGuard no_grad;
  if (prompts.empty()) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given", "give at least one Prompt");
  std::vector<std::string> categories;
  for (const auto& [c, ids] : prompts[0].target_tokens) categories.push_back(c);
  if (categories.empty()) throw Error(ErrorKind::InvalidArgument, "prompt 0", "has no target category");
  const bool ids_mode = !prompts[0].token_ids.empty();
  for (size_t i = 0; i < prompts.size(); ++i) {
    std::vector<std::string> cats;
    for (const auto& [c, ids] : prompts[i].target_tokens) cats.push_back(c);
    if (cats != categories)
      throw Error(ErrorKind::InvalidArgument, "prompt " + std::to_string(i),
                  "has other target categories than prompt 0", "every prompt of run_prompts must have the same categories");
    if (prompts[i].token_ids.empty() == ids_mode)
      throw Error(ErrorKind::InvalidArgument, "prompt " + std::to_string(i),
                  ids_mode ? "has no token_ids while prompt 0 has" : "has token_ids while prompt 0 is text",
                  "give all prompts as text or all as token ids");
  }
  const auto probs_fn = options.probs ? options.probs : next_token_probs_fn();
  const int64_t N = static_cast<int64_t>(prompts.size());
  std::map<std::string, std::vector<torch::Tensor>> rows;
  methods_detail::ProgressBar bar(N, "prompts", options.progress);
  for (int64_t b = 0; b < N; b += options.batch_size) {
    const int64_t e = std::min(N, b + options.batch_size);
    TraceInput input = std::vector<std::string>{};
    if (ids_mode) {
      std::vector<std::vector<int64_t>> ids;
      for (int64_t i = b; i < e; ++i) ids.push_back(prompts[static_cast<size_t>(i)].token_ids);
      input = TraceInput(left_pad(ids, methods_detail::pad_id_of(model)));
    } else {
      std::vector<std::string> texts;
      for (int64_t i = b; i < e; ++i) texts.push_back(prompts[static_cast<size_t>(i)].prompt);
      input = TraceInput(texts);
    }
    auto probs = probs_fn(model, input).to(torch::kCPU);
    if (probs.dim() != 3 || probs.size(0) != e - b)
      throw Error(ErrorKind::Shape, "run_prompts probability function",
                  "expected [batch = " + std::to_string(e - b) + ", layers, vocab], got " + tensor_text(probs));
    for (int64_t i = b; i < e; ++i)
      for (auto& [category, p] : prompts[static_cast<size_t>(i)].get_target_probs(probs[i - b]))
        rows[category].push_back(p);
    bar.update(e);
  }
  std::map<std::string, torch::Tensor> out;
  for (auto& [category, r] : rows) out[category] = torch::stack(r);
  return out;
}

// ---- prompts from a file ---------------------------------------------------------------------

namespace {

// One JSONL record → a Prompt. Target values: a word, a list of words and/or token ids.
Prompt prompt_from_record(const io::JsonValue& j, const std::string& where, const Tokenizer* tokenizer, bool prompt_optional) {
  const auto targets = j.is_object() ? j.find("targets") : std::nullopt;
  if (!targets || !targets->is_object() || targets->size() == 0)
    throw Error(ErrorKind::Format, where, "expected {\"prompt\": \"...\", \"targets\": {\"category\": [\"word\", ...]}}",
                "target values are words (strings) or token ids (integers)");
  Prompt p;
  if (const auto prompt = j.find("prompt")) {
    if (!prompt->is_string()) throw Error(ErrorKind::Format, where, "\"prompt\" is not a string");
    p.prompt = prompt->string();
  } else if (!prompt_optional) {
    throw Error(ErrorKind::Format, where, "has no \"prompt\"", "give prompts in the file, or token ids with --inputs");
  }
  for (const auto& [category, value] : targets->items()) {
    const auto list = value.is_array() ? value.elements() : std::vector<io::JsonValue>{value};
    std::vector<std::string> words;
    std::vector<int64_t> ids;
    for (const auto& v : list) {
      if (v.is_string()) words.push_back(v.string());
      else if (v.is_integer()) ids.push_back(v.integer());
      else throw Error(ErrorKind::Format, where + " (target '" + category + "')", "values must be words (strings) or token ids (integers)");
    }
    if (!words.empty()) {
      if (!tokenizer)
        throw Error(ErrorKind::InvalidArgument, where + " (target '" + category + "')", "has words but the model has no tokenizer",
                    "give the target as token ids (integers)");
      p.target_strings[category] = words;
      auto first = get_first_tokens(words, *tokenizer);
      ids.insert(ids.begin(), first.begin(), first.end());
    }
    std::vector<int64_t> unique;
    for (int64_t id : ids)
      if (std::find(unique.begin(), unique.end(), id) == unique.end()) unique.push_back(id);
    if (unique.empty()) throw Error(ErrorKind::Format, where + " (target '" + category + "')", "has no word or token id");
    p.target_tokens[category] = unique;
  }
  return p;
}

}  // namespace

std::vector<Prompt> read_target_prompts(const std::string& path, const Tokenizer* tokenizer, bool prompt_optional) {
  std::vector<Prompt> out;
  const auto records = io::read_jsonl(path);
  for (size_t i = 0; i < records.size(); ++i)
    out.push_back(prompt_from_record(io::JsonValue(records[i], path + ":" + std::to_string(i + 1)),
                                     path + ":" + std::to_string(i + 1), tokenizer, prompt_optional));
  return out;
}

// ---- tables ---------------------------------------------------------------------------------

namespace {

std::string csv_text(const nlohmann::json& cell) {
  if (cell.is_null()) return "";
  if (cell.is_string()) return cell.get<std::string>();  // json: built here (cell_json)
  if (cell.is_array()) {
    std::string s;
    for (const auto& e : cell) s += (s.empty() ? "" : " ") + csv_text(e);
    return s;
  }
  return cell.dump();
}

nlohmann::json cell_json(const TableCell& cell) {
  return std::visit(
      [](const auto& v) -> nlohmann::json {
        if constexpr (std::is_same_v<std::decay_t<decltype(v)>, std::monostate>) return nullptr;
        else return v;
      },
      cell);
}

std::string csv_quote(const std::string& s) {
  const bool quote = s.find_first_of(",\"\n\r") != std::string::npos || (!s.empty() && (s.front() == ' ' || s.back() == ' '));
  if (!quote) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string Table::to_csv() const {
  std::ostringstream out;
  for (size_t c = 0; c < columns.size(); ++c) out << (c ? "," : "") << csv_quote(columns[c]);
  out << "\n";
  for (const auto& row : rows) {
    for (size_t c = 0; c < row.size(); ++c) out << (c ? "," : "") << csv_quote(csv_text(cell_json(row[c])));
    out << "\n";
  }
  return out.str();
}

std::string Table::to_json(int indent) const {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& row : rows) {
    nlohmann::json o = nlohmann::json::object();
    for (size_t c = 0; c < columns.size() && c < row.size(); ++c) o[columns[c]] = cell_json(row[c]);
    out.push_back(o);
  }
  return out.dump(indent);
}

Table prompts_to_table(const std::vector<Prompt>& prompts, const std::map<std::string, torch::Tensor>& results,
                       const Tokenizer* tokenizer, const std::vector<int>& layers) {
  Table t;
  std::set<std::string> category_set;
  bool any_ids = false;
  for (const auto& p : prompts) {
    for (const auto& [c, ids] : p.target_tokens) category_set.insert(c);
    any_ids = any_ids || !p.token_ids.empty();
  }
  const std::vector<std::string> categories(category_set.begin(), category_set.end());
  for (const auto& [c, r] : results)
    if (r.dim() < 1 || r.size(0) != static_cast<int64_t>(prompts.size()))
      throw Error(ErrorKind::Shape, "results['" + c + "']", "expected [N = " + std::to_string(prompts.size()) + ", ...], got " + tensor_text(r));
  t.columns.push_back("prompt");
  if (any_ids) t.columns.push_back("prompt_ids");
  for (const auto& c : categories) {
    t.columns.push_back(c + "_words");
    if (tokenizer) t.columns.push_back(c + "_tokens");
    t.columns.push_back(c + "_ids");
    auto it = results.find(c);
    if (it == results.end()) continue;
    const int64_t L = it->second.dim() == 1 ? 1 : it->second.size(1);
    if (L == 1) {
      t.columns.push_back(c + "_prob");
    } else {
      for (int64_t l = 0; l < L; ++l)
        t.columns.push_back(c + "_prob." + std::to_string(static_cast<size_t>(l) < layers.size() ? layers[static_cast<size_t>(l)] : l));
    }
  }
  for (size_t i = 0; i < prompts.size(); ++i) {
    const auto& p = prompts[i];
    std::vector<TableCell> row;
    row.emplace_back(p.prompt);
    if (any_ids) row.emplace_back(p.token_ids);
    for (const auto& c : categories) {
      auto words = p.target_strings.find(c);
      row.emplace_back(words == p.target_strings.end() ? std::vector<std::string>{} : words->second);
      auto ids_it = p.target_tokens.find(c);
      const std::vector<int64_t> ids = ids_it == p.target_tokens.end() ? std::vector<int64_t>{} : ids_it->second;
      if (tokenizer) {
        std::vector<std::string> toks;
        for (int64_t id : ids) toks.push_back(tokenizer->id_to_token(id));
        row.emplace_back(toks);
      }
      row.emplace_back(ids);
      auto it = results.find(c);
      if (it == results.end()) continue;
      auto r = it->second[static_cast<int64_t>(i)].to(torch::kFloat64).reshape({-1});
      for (int64_t l = 0; l < r.size(0); ++l) row.emplace_back(r[l].item<double>());
    }
    t.rows.push_back(std::move(row));
  }
  return t;
}

}  // namespace nnterp

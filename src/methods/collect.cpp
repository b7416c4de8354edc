// collect_token_activations: batches of get_token_activations (or every real token of each prompt)
// gathered in memory, or streamed to safetensors shards with a manifest (resumable, memory bounded
// by one shard).
#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>
#include <tuple>

#include "io/json_reader.hpp"
#include "methods/method_utils.hpp"
#include "nnterp/collect.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"
#include "nnterp/model.hpp"
#include "nnterp/safetensors.hpp"

namespace nnterp {

namespace fs = std::filesystem;

namespace {

constexpr const char* kManifest = "manifest.json";
constexpr const char* kFormat = "nnterp.activations";

const char* stored_dtype_name(torch::ScalarType t) {
  switch (t) {
    case torch::kFloat32: return "F32";
    case torch::kFloat16: return "F16";
    case torch::kBFloat16: return "BF16";
    case torch::kFloat64: return "F64";
    default: return nullptr;
  }
}

torch::ScalarType stored_dtype_from_name(const std::string& s, const std::string& subject) {
  if (s == "F32") return torch::kFloat32;
  if (s == "F16") return torch::kFloat16;
  if (s == "BF16") return torch::kBFloat16;
  if (s == "F64") return torch::kFloat64;
  throw Error(ErrorKind::Format, subject, "unknown dtype '" + s + "'", "expected F32, F16, BF16 or F64");
}

// FNV-1a, 64 bits: the manifest's fingerprint of the inputs (a resumed run must see the same prompts).
struct Fnv {
  uint64_t h = 1469598103934665603ull;
  void add(const void* data, size_t n) {
    auto p = static_cast<const unsigned char*>(data);
    for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  }
  void add_u64(uint64_t v) { add(&v, sizeof v); }
  std::string hex() const {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
    return buf;
  }
};

std::string inputs_fingerprint(const TraceInput& in) {
  Fnv f;
  if (in.tokens) {
    // Row by row without padding, so that the same prompts padded differently hash alike.
    auto ids = in.tokens->input_ids.to(torch::kInt64).contiguous();
    auto mask = in.tokens->attention_mask.defined() ? in.tokens->attention_mask.ne(0).contiguous()
                                                     : torch::ones_like(ids, torch::kBool);
    auto ia = ids.accessor<int64_t, 2>();
    auto ma = mask.accessor<bool, 2>();
    for (int64_t b = 0; b < ids.size(0); ++b) {
      f.add_u64(0xffffffffffffffffull);
      for (int64_t t = 0; t < ids.size(1); ++t)
        if (ma[b][t]) f.add_u64(static_cast<uint64_t>(ia[b][t]));
    }
  } else {
    for (const auto& p : in.prompts) {
      f.add_u64(p.size());
      f.add(p.data(), p.size());
    }
  }
  return f.hex();
}

std::string shard_name(int64_t i) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "shard-%05lld.safetensors", static_cast<long long>(i));
  return buf;
}

void write_text_atomic(const fs::path& path, const std::string& text) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(ErrorKind::Io, tmp.string(), "cannot open for writing");
    out << text;
    if (!out.flush()) throw Error(ErrorKind::Io, tmp.string(), "write failed (disk full?)");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw Error(ErrorKind::Io, path.string(), "cannot rename the temporary file into place: " + ec.message());
}

// What a valid shard holds: `rows` rows of prompts [begin, end); the exact prompt indices and
// positions when the collector knows them (else, reading a collection, only their bounds are checked).
struct ShardSpec {
  int64_t begin = 0, end = 0, rows = 0;
  bool all_tokens = false;
  torch::Tensor prompt_index, position;  // exact expectations (undefined: unknown)
};

std::string index_tensor_problem(const io::SafetensorsFile& file, const std::string& name, int64_t rows) {
  const auto* t = file.find(name);
  if (!t || t->dtype != io::DType::I64 || t->shape != std::vector<int64_t>{rows})
    return "no " + name + " int64 [" + std::to_string(rows) + "]";
  return "";
}

// Why the prompt indices / positions of an all-token shard are wrong ("" when right).
std::string all_token_rows_problem(const io::SafetensorsFile& file, const ShardSpec& spec) {
  if (auto p = index_tensor_problem(file, "position", spec.rows); !p.empty()) return p;
  auto prompt_index = file.tensor("prompt_index");
  auto position = file.tensor("position");
  if (spec.prompt_index.defined()) {
    if (!torch::equal(prompt_index, spec.prompt_index)) return "prompt_index is not the tokens of prompts " + std::to_string(spec.begin) + ".." + std::to_string(spec.end - 1);
    if (!torch::equal(position, spec.position)) return "position is not the positions of the prompts' tokens";
    return "";
  }
  if (spec.rows > 0 && (prompt_index.min().item<int64_t>() < spec.begin || prompt_index.max().item<int64_t>() >= spec.end))
    return "prompt_index is outside " + std::to_string(spec.begin) + ".." + std::to_string(spec.end - 1);
  if (spec.rows > 0 && position.min().item<int64_t>() < 0) return "position holds a negative position";
  return "";
}

// Why a shard is not usable ("" when it is): present, readable, the right tensors, shapes, dtype and prompts.
std::string shard_problem(const fs::path& path, const ShardSpec& spec, const std::vector<int>& layers, int64_t hidden,
                          torch::ScalarType dtype) {
  if (!fs::exists(path)) return "missing";
  std::shared_ptr<io::SafetensorsFile> file;
  try {
    file = io::SafetensorsFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  const int64_t n = spec.rows;
  if (auto p = index_tensor_problem(*file, "prompt_index", n); !p.empty()) return p;
  if (spec.all_tokens) {
    if (auto p = all_token_rows_problem(*file, spec); !p.empty()) return p;
  } else if (!torch::equal(file->tensor("prompt_index"), torch::arange(spec.begin, spec.end, torch::kInt64))) {
    return "prompt_index is not " + std::to_string(spec.begin) + ".." + std::to_string(spec.end - 1);
  }
  for (int l : layers) {
    const std::string name = "layers." + std::to_string(l);
    const auto* t = file->find(name);
    if (!t) return "no tensor '" + name + "'";
    if (t->shape != std::vector<int64_t>{n, hidden} || io::to_scalar_type(t->dtype) != dtype)
      return "tensor '" + name + "' is not " + stored_dtype_name(dtype) + " [" + std::to_string(n) + ", " + std::to_string(hidden) + "]";
  }
  return "";
}

// The shards of a collection: prompt ranges, and how many rows each stores.
struct ShardPlan {
  int64_t begin = 0, end = 0, rows = 0;
};

// One token per prompt: `shard_size` prompts a shard.
std::vector<ShardPlan> plan_prompt_shards(int64_t N, int64_t shard_size) {
  std::vector<ShardPlan> plan;
  for (int64_t b = 0; b < N; b += shard_size) plan.push_back({b, std::min(N, b + shard_size), std::min(N, b + shard_size) - b});
  return plan;
}

// Every token: whole prompts, at most `max_tokens` tokens a shard (a longer prompt alone) and at
// most `max_prompts` prompts (0: no limit).
std::vector<ShardPlan> plan_token_shards(const std::vector<int64_t>& tokens_per_prompt, int64_t max_tokens, int64_t max_prompts) {
  std::vector<ShardPlan> plan;
  ShardPlan cur;
  for (int64_t p = 0; p < static_cast<int64_t>(tokens_per_prompt.size()); ++p) {
    const int64_t n = tokens_per_prompt[static_cast<size_t>(p)];
    const bool full = cur.end > cur.begin && (cur.rows + n > max_tokens || (max_prompts > 0 && cur.end - cur.begin >= max_prompts));
    if (full) {
      plan.push_back(cur);
      cur = ShardPlan{p, p, 0};
    }
    cur.end = p + 1;
    cur.rows += n;
  }
  if (cur.end > cur.begin) plan.push_back(cur);
  return plan;
}

// ---- collecting SAE features (CollectOptions::sae) ----

// The width of a stored row: the model's hidden size, or the SAE's features.
int64_t collected_width(const StandardizedTransformer& model, const CollectOptions& o) {
  return o.sae ? o.sae->d_sae() : model.hidden_size();
}

// Whether the options already read the SAE's input point (and only its layer), after checking that
// the SAE fits the model (an Error naming the SAE, the point and both widths otherwise).
bool fitting_sae_at_its_point(const StandardizedTransformer& model, const CollectOptions& o) {
  o.sae->check_fits(model);
  const auto& in = o.sae->config().input_point;
  return in && o.point == in->point && o.layers == std::vector<int>{in->layer};
}

// The options moved to the SAE's input point; an Error when they name another point or layers.
CollectOptions at_sae_point(const StandardizedTransformer& model, const CollectOptions& o) {
  const auto& c = o.sae->config();
  const std::string name = c.source.empty() ? std::string("CollectOptions::sae") : c.source.string();
  if (!c.input_point)
    throw Error(ErrorKind::InvalidArgument, name, "the SAE names no point to read", "give it one: SaeLoadOptions::point");
  const PointId in = *c.input_point;
  if (o.point != Point::LayerOutput && o.point != in.point)
    throw Error(ErrorKind::InvalidArgument, "CollectOptions::point",
                std::string("is ") + point_info(o.point).pattern + " but the SAE reads " + in.name(), "leave the point to the SAE");
  if (!o.layers.empty() && resolve_layers(model, o.layers) != std::vector<int>{in.layer})
    throw Error(ErrorKind::InvalidArgument, "CollectOptions::layers", "the SAE reads layer " + std::to_string(in.layer) + " only",
                "leave the layers to the SAE");
  CollectOptions moved = o;
  moved.point = in.point;
  moved.layers = {in.layer};
  return moved;
}

// acts [layers, n, hidden] → [layers, n, d_sae] with an SAE; unchanged without.
torch::Tensor sae_features_of(const CollectOptions& o, const torch::Tensor& acts) {
  return o.sae ? o.sae->encode(acts).to(torch::kCPU) : acts;
}

nlohmann::json sae_manifest_entry(const Sae& sae) {
  const auto& c = sae.config();
  return {{"path", c.source.string()}, {"point", c.input_point ? c.input_point->name() : ""}, {"architecture", c.architecture},
          {"d_in", c.d_in}, {"d_sae", c.d_sae}, {"values", "features"}};
}

nlohmann::json make_manifest(const StandardizedTransformer& model, const CollectOptions& o, const std::vector<int>& layers,
                             int64_t N, int64_t shard_size, torch::ScalarType dtype, const std::string& fingerprint,
                             const std::vector<ShardPlan>& plan) {
  nlohmann::json m;
  m["format"] = kFormat;
  m["version"] = 1;
  m["model"] = model.path().string();
  m["architecture"] = model.architecture();
  m["point"] = point_info(o.point).pattern;
  if (o.all_tokens) {  // one-token collections keep exactly the manifest they always had
    m["all_tokens"] = true;
    m["skip_first_token"] = o.skip_first_token;
  } else {
    m["idx"] = o.idx;
  }
  m["layers"] = layers;
  m["hidden_size"] = collected_width(model, o);
  if (o.sae) m["sae"] = sae_manifest_entry(*o.sae);
  m["dtype"] = stored_dtype_name(dtype);
  m["num_prompts"] = N;
  if (o.all_tokens) {
    int64_t rows = 0;
    for (const auto& s : plan) rows += s.rows;
    m["num_tokens"] = rows;
  }
  m["shard_size"] = shard_size;
  m["inputs_fingerprint"] = fingerprint;
  nlohmann::json shards = nlohmann::json::array();
  for (size_t i = 0; i < plan.size(); ++i) {
    nlohmann::json entry{{"file", shard_name(static_cast<int64_t>(i))}, {"begin", plan[i].begin}, {"end", plan[i].end}};
    if (o.all_tokens) entry["tokens"] = plan[i].rows;
    shards.push_back(entry);
  }
  m["shards"] = shards;
  return m;
}

// The rows one batch of prompts contributes: [L, n, H] activations, their prompts, their positions.
struct Rows {
  torch::Tensor acts;          // [layers, n, hidden] on the CPU
  torch::Tensor prompt_index;  // [n] int64
  torch::Tensor position;      // [n] int64 (all_tokens), else undefined
};

// The real (unpadded) tokens of a left-padded batch that are kept: [B, T] bool, and the position of
// every column in its prompt ([B, T] int64, negative on padding).
std::pair<torch::Tensor, torch::Tensor> kept_tokens(const TokenBatch& batch, bool skip_first_token) {
  auto real = batch.attention_mask.defined() ? batch.attention_mask.ne(0) : torch::ones_like(batch.input_ids, torch::kBool);
  auto position = real.to(torch::kInt64).cumsum(1) - 1;
  auto keep = skip_first_token ? real.logical_and(position.gt(0)) : real;
  return {keep, position};
}

// Every kept token of a batch whose first prompt is prompt `first_prompt`, in prompt then position
// order; the forward stops after the last layer needed.
Rows all_token_rows(const StandardizedTransformer& model, const TokenBatch& batch, const std::vector<int>& layers, Point point,
                    bool skip_first_token, int64_t first_prompt) {
  auto [keep, position] = kept_tokens(batch, skip_first_token);
  const std::vector<int> order = methods_detail::forward_order(layers);
  std::vector<torch::Tensor> got(order.size());
  model.trace(batch, [&](Trace& t) {
    for (size_t i = 0; i < order.size(); ++i) {
      auto& v = t.at(PointId{point, order[i]});
      got[i] = v.index({keep.to(v.device())}).to(torch::kCPU);  // boolean indexing copies, row-major: prompt, then position
    }
    t.stop();
  });
  std::vector<torch::Tensor> acts;
  for (int l : layers) acts.push_back(got[static_cast<size_t>(std::lower_bound(order.begin(), order.end(), l) - order.begin())]);
  const int64_t B = batch.input_ids.size(0), T = batch.input_ids.size(1);
  auto prompt = (torch::arange(B, torch::kInt64) + first_prompt).unsqueeze(1).expand({B, T});
  return {torch::stack(acts), prompt.index({keep}), position.index({keep})};
}

// How many tokens each prompt contributes (all_tokens): its real tokens, less the first when skipped.
std::vector<int64_t> kept_token_counts(const StandardizedTransformer& model, const TraceInput& prompts, int64_t batch_size,
                                       bool skip_first_token) {
  std::vector<int64_t> counts;
  const int64_t N = input_size(prompts);
  for (int64_t b = 0; b < N; b += batch_size) {
    auto batch = tokenize_left_padded(model, input_slice(prompts, b, std::min(N, b + batch_size)));
    auto per_row = kept_tokens(batch, skip_first_token).first.sum(1).to(torch::kInt64).contiguous();
    counts.insert(counts.end(), per_row.data_ptr<int64_t>(), per_row.data_ptr<int64_t>() + per_row.numel());
  }
  return counts;
}

// The prompt index and position of every row of prompts [begin, end) (all_tokens), from the counts.
std::pair<torch::Tensor, torch::Tensor> expected_rows(const std::vector<int64_t>& counts, int64_t begin, int64_t end,
                                                      bool skip_first_token) {
  std::vector<torch::Tensor> prompt, position;
  for (int64_t p = begin; p < end; ++p) {
    const int64_t n = counts[static_cast<size_t>(p)];
    prompt.push_back(torch::full({n}, p, torch::kInt64));
    position.push_back(torch::arange(n, torch::kInt64) + (skip_first_token ? 1 : 0));
  }
  if (prompt.empty()) return {torch::empty({0}, torch::kInt64), torch::empty({0}, torch::kInt64)};
  return {torch::cat(prompt), torch::cat(position)};
}

bool same_entry(const nlohmann::json& a, const nlohmann::json& b, const char* key) {
  if (a.contains(key) != b.contains(key)) return false;
  return !a.contains(key) || a[key] == b[key];  // compares, converts nothing
}

// Writes the manifest into `dir`, after checking that a manifest already there describes the same
// collection (else an error, or with `overwrite` its shards removed).
void prepare_output_dir(const fs::path& dir, const nlohmann::json& manifest, bool overwrite) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::Io, dir.string(), "cannot create the output folder: " + ec.message());
  const fs::path manifest_path = dir / kManifest;
  if (fs::exists(manifest_path)) {
    auto old = io::read_json_file(manifest_path);
    if (!old.is_object()) old = nlohmann::json::object();
    std::string differs;
    for (const char* key : {"format", "model", "point", "idx", "all_tokens", "skip_first_token", "layers", "hidden_size", "dtype",
                            "num_prompts", "shard_size", "inputs_fingerprint", "sae"})
      if (!same_entry(old, manifest, key)) {
        auto shown = [&](const nlohmann::json& m) { return m.contains(key) ? m[key].dump() : std::string("absent"); };
        differs = std::string(key) + " was " + shown(old) + ", now " + shown(manifest);
        break;
      }
    if (!differs.empty()) {
      if (!overwrite)
        throw Error(ErrorKind::InvalidArgument, dir.string(), "holds a different activation collection (" + differs + ")",
                    "use another folder, or overwrite it (CollectOptions::overwrite, `nnterp collect --overwrite`)");
      for (const auto& entry : fs::directory_iterator(dir)) {
        const auto name = entry.path().filename().string();
        if (name.rfind("shard-", 0) == 0 && entry.path().extension() == ".safetensors") fs::remove(entry.path());
      }
    }
  }
  write_text_atomic(manifest_path, manifest.dump(1) + "\n");
}

// The point a manifest names by its pattern ("layers.{i}.output").
Point point_from_pattern(const io::JsonValue& pattern) {
  const std::string text = pattern.string();
  for (const auto& info : point_table())
    if (info.per_layer() && text == info.pattern) return info.point;
  pattern.fail("a per-layer point pattern such as \"layers.{i}.output\"");
}

}  // namespace

CollectResult collect_token_activations(const StandardizedTransformer& model, const TraceInput& prompts,
                                        const CollectOptions& options) {
  if (options.sae && !fitting_sae_at_its_point(model, options)) return collect_token_activations(model, prompts, at_sae_point(model, options));
  methods_detail::check_residual_point(options.point, "CollectOptions::point");
  methods_detail::check_batch_size(options.batch_size);
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  CollectResult result;
  result.layers = resolve_layers(model, options.layers);
  const int64_t N = input_size(prompts);
  if (N == 0) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given");
  result.num_prompts = N;
  const int64_t L = static_cast<int64_t>(result.layers.size()), H = collected_width(model, options);
  const bool all = options.all_tokens;
  // all_tokens: how many rows each prompt gives (the shards are planned in tokens).
  const std::vector<int64_t> counts = all ? kept_token_counts(model, prompts, options.batch_size, options.skip_first_token)
                                          : std::vector<int64_t>(static_cast<size_t>(N), 1);
  int64_t total_rows = 0;
  for (int64_t c : counts) total_rows += c;
  result.num_rows = total_rows;
  auto run_model_batch = [&](int64_t b, int64_t e) -> Rows {
    auto batch = tokenize_left_padded(model, input_slice(prompts, b, e));
    if (all) return all_token_rows(model, batch, result.layers, options.point, options.skip_first_token, b);
    return {methods_detail::batch_activations(model, batch, options.idx, result.layers, options.point),
            torch::arange(b, e, torch::kInt64), {}};
  };
  auto run_batch = [&](int64_t b, int64_t e) {  // with an SAE, its features instead
    Rows rows = run_model_batch(b, e);
    rows.acts = sae_features_of(options, rows.acts);
    return rows;
  };
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  methods_detail::ProgressBar bar(N, "prompts", options.progress);

  if (options.out_dir.empty()) {  // in memory
    int64_t row = 0;
    std::vector<torch::Tensor> prompt_index, position;
    for (int64_t b = 0; b < N; b += options.batch_size) {
      const int64_t e = std::min(N, b + options.batch_size);
      auto rows = run_batch(b, e);
      auto acts = rows.acts;
      if (options.dtype != torch::ScalarType::Undefined) acts = acts.to(options.dtype);
      if (!result.activations.defined()) result.activations = torch::empty({L, total_rows, H}, acts.options());
      result.activations.narrow(1, row, acts.size(1)).copy_(acts);
      row += acts.size(1);
      prompt_index.push_back(rows.prompt_index);
      if (all) position.push_back(rows.position);
      bar.update(e);
    }
    if (all) {
      result.prompt_index = torch::cat(prompt_index);
      result.position = torch::cat(position);
    }
    result.shard_size = all ? total_rows : N;
    result.peak_buffer_bytes = result.activations.numel() * static_cast<int64_t>(result.activations.element_size());
    result.seconds = elapsed();
    return result;
  }

  // ---- streamed to disk ----
  const torch::ScalarType dtype = options.dtype == torch::ScalarType::Undefined ? torch::kFloat32 : options.dtype;
  if (!stored_dtype_name(dtype))
    throw Error(ErrorKind::InvalidArgument, "CollectOptions::dtype", "activations are stored as F32, F16, BF16 or F64");
  const int64_t bytes_per_row = L * H * static_cast<int64_t>(c10::elementSize(dtype));
  const int64_t rows_that_fit = std::max<int64_t>(1, options.max_shard_bytes / bytes_per_row);
  int64_t shard_size;  // prompts a shard (all_tokens: tokens a shard, at most)
  std::vector<ShardPlan> plan;
  if (all) {
    shard_size = rows_that_fit;
    plan = plan_token_shards(counts, rows_that_fit, options.shard_size);
  } else {
    shard_size = std::min(options.shard_size > 0 ? options.shard_size : rows_that_fit, N);
    plan = plan_prompt_shards(N, shard_size);
  }
  result.shard_size = shard_size;

  const fs::path dir = options.out_dir;
  const auto manifest = make_manifest(model, options, result.layers, N, shard_size, dtype, inputs_fingerprint(prompts), plan);
  prepare_output_dir(dir, manifest, options.overwrite);

  int64_t done = 0;
  for (size_t s = 0; s < plan.size(); ++s) {
    ShardInfo info;
    info.index = static_cast<int64_t>(s);
    info.begin = plan[s].begin;
    info.end = plan[s].end;
    info.rows = plan[s].rows;
    info.path = dir / shard_name(info.index);
    result.shards.push_back(info.path);
    ShardSpec spec{info.begin, info.end, info.rows, all, {}, {}};
    if (all) std::tie(spec.prompt_index, spec.position) = expected_rows(counts, info.begin, info.end, options.skip_first_token);
    if (shard_problem(info.path, spec, result.layers, H, dtype).empty()) {
      info.skipped = true;
      ++result.shards_skipped;
    } else {
      std::vector<torch::Tensor> buffers;
      for (int64_t l = 0; l < L; ++l) buffers.push_back(torch::empty({info.rows, H}, dtype));
      result.peak_buffer_bytes = std::max(result.peak_buffer_bytes, info.rows * bytes_per_row);
      std::vector<torch::Tensor> prompt_index, position;
      int64_t row = 0;
      for (int64_t b = info.begin; b < info.end; b += options.batch_size) {
        const int64_t e = std::min(info.end, b + options.batch_size);
        auto rows = run_batch(b, e);
        const int64_t n = rows.acts.size(1);
        for (int64_t l = 0; l < L; ++l) buffers[static_cast<size_t>(l)].narrow(0, row, n).copy_(rows.acts[l]);
        row += n;
        prompt_index.push_back(rows.prompt_index);
        if (all) position.push_back(rows.position);
        bar.update(done + (e - info.begin));
      }
      if (row != info.rows)  // the tokenizer gave this prompt range another length than when it was counted
        throw Error(ErrorKind::Tokenizer, info.path.string(), "collected " + std::to_string(row) + " tokens, planned " + std::to_string(info.rows));
      std::vector<std::pair<std::string, torch::Tensor>> tensors;
      for (int64_t l = 0; l < L; ++l)
        tensors.emplace_back("layers." + std::to_string(result.layers[static_cast<size_t>(l)]), buffers[static_cast<size_t>(l)]);
      tensors.emplace_back("prompt_index", torch::cat(prompt_index));
      if (all) tensors.emplace_back("position", torch::cat(position));
      std::map<std::string, std::string> metadata{{"format", kFormat}, {"point", point_info(options.point).pattern}};
      if (all) metadata["all_tokens"] = options.skip_first_token ? "skip_first_token" : "true";
      else metadata["idx"] = std::to_string(options.idx);
      io::save_safetensors(info.path, tensors, metadata);
      ++result.shards_written;
    }
    done = info.end;
    bar.update(done);
    if (options.on_shard) options.on_shard(info);
  }
  result.seconds = elapsed();
  return result;
}

// ---- reading -------------------------------------------------------------------------------

ActivationShards ActivationShards::open(const fs::path& dir) {
  const fs::path mpath = dir / kManifest;
  if (!fs::exists(mpath))
    throw Error(ErrorKind::NotFound, dir.string(), "is not an activation collection (no " + std::string(kManifest) + ")",
                "write one with collect_token_activations (out_dir) or `nnterp collect --out-dir`");
  ActivationShards s;
  s.dir_ = dir;
  const auto json = io::read_json_file(mpath);
  s.manifest_json_ = json.dump(1);
  const io::JsonValue m(json, mpath.string());
  if (m.at("format").string() != kFormat) throw Error(ErrorKind::Format, mpath.string(), "format is not " + std::string(kFormat));
  for (const auto& layer : m.at("layers").elements()) {
    const int64_t l = layer.integer();
    if (l < 0 || l > INT32_MAX) layer.fail("a layer index");
    s.layers_.push_back(static_cast<int>(l));
  }
  s.num_prompts_ = m.at("num_prompts").integer();
  s.hidden_ = m.at("hidden_size").integer();
  s.all_tokens_ = m.boolean_or("all_tokens", false);
  s.model_ = m.string_or("model", "");
  s.point_ = point_from_pattern(m.at("point"));
  const auto dtype = stored_dtype_from_name(m.at("dtype").string(), mpath.string());
  for (const auto& sh : m.at("shards").elements()) {
    fs::path p = dir / sh.at("file").string();
    ShardSpec spec;
    spec.begin = sh.at("begin").integer();
    spec.end = sh.at("end").integer();
    spec.all_tokens = s.all_tokens_;
    spec.rows = s.all_tokens_ ? sh.at("tokens").integer() : spec.end - spec.begin;
    if (spec.begin < 0 || spec.end < spec.begin || spec.rows < 0) sh.fail("a shard with 0 <= begin <= end and tokens >= 0");
    auto problem = shard_problem(p, spec, s.layers_, s.hidden_, dtype);
    if (!problem.empty())
      throw Error(ErrorKind::Format, p.string(), "shard not usable: " + problem,
                  "the collection is incomplete: rerun the same collect command to resume it");
    s.shards_.push_back(p);
    s.shard_rows_.push_back(spec.rows);
    s.num_rows_ += spec.rows;
  }
  return s;
}

void ActivationShards::check_layer(int layer) const {
  if (std::find(layers_.begin(), layers_.end(), layer) == layers_.end()) {
    std::string have;
    for (int l : layers_) have += (have.empty() ? "" : ", ") + std::to_string(l);
    throw Error(ErrorKind::InvalidArgument, dir_.string(), "layer " + std::to_string(layer) + " was not collected (layers: " + have + ")");
  }
}

torch::Tensor ActivationShards::shard_layer(int64_t shard, int layer) const {
  check_layer(layer);
  return io::SafetensorsFile::open(shard_path(shard))->tensor("layers." + std::to_string(layer)).clone();
}

torch::Tensor ActivationShards::layer(int layer) const {
  check_layer(layer);
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < num_shards(); ++i) parts.push_back(shard_layer(i, layer));
  return torch::cat(parts, 0);
}

torch::Tensor ActivationShards::load(const std::vector<int>& layers) const {
  const auto& which = layers.empty() ? layers_ : layers;
  std::vector<torch::Tensor> out;
  for (int l : which) out.push_back(layer(l));
  return torch::stack(out);
}

torch::Tensor ActivationShards::prompt_index() const {
  std::vector<torch::Tensor> parts;
  for (const auto& p : shards_) parts.push_back(io::SafetensorsFile::open(p)->tensor("prompt_index").clone());
  return torch::cat(parts, 0);
}

torch::Tensor ActivationShards::position() const {
  if (!all_tokens_)
    throw Error(ErrorKind::InvalidArgument, dir_.string(), "stores one token per prompt, with no positions",
                "collect every token (CollectOptions::all_tokens, `nnterp collect --all-tokens`)");
  std::vector<torch::Tensor> parts;
  for (const auto& p : shards_) parts.push_back(io::SafetensorsFile::open(p)->tensor("position").clone());
  return torch::cat(parts, 0);
}

torch::Tensor load_activations(const fs::path& dir, const std::vector<int>& layers) {
  return ActivationShards::open(dir).load(layers);
}

}  // namespace nnterp

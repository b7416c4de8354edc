// collect_token_activations: batches of get_token_activations gathered in memory, or streamed
// to safetensors shards with a manifest (resumable, memory bounded by one shard).
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "io/json_limits.hpp"
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

// Why a shard is not usable ("" when it is): present, readable, the right tensors, shapes, dtype and prompts.
std::string shard_problem(const fs::path& path, int64_t begin, int64_t end, const std::vector<int>& layers, int64_t hidden,
                          torch::ScalarType dtype) {
  if (!fs::exists(path)) return "missing";
  std::shared_ptr<io::SafetensorsFile> file;
  try {
    file = io::SafetensorsFile::open(path);
  } catch (const Error& e) {
    return e.what();
  }
  const int64_t n = end - begin;
  const auto* pi = file->find("prompt_index");
  if (!pi || pi->dtype != io::DType::I64 || pi->shape != std::vector<int64_t>{n}) return "no prompt_index int64 [" + std::to_string(n) + "]";
  if (!torch::equal(file->tensor("prompt_index"), torch::arange(begin, end, torch::kInt64)))
    return "prompt_index is not " + std::to_string(begin) + ".." + std::to_string(end - 1);
  for (int l : layers) {
    const std::string name = "layers." + std::to_string(l);
    const auto* t = file->find(name);
    if (!t) return "no tensor '" + name + "'";
    if (t->shape != std::vector<int64_t>{n, hidden} || io::to_scalar_type(t->dtype) != dtype)
      return "tensor '" + name + "' is not " + stored_dtype_name(dtype) + " [" + std::to_string(n) + ", " + std::to_string(hidden) + "]";
  }
  return "";
}

nlohmann::json make_manifest(const StandardizedTransformer& model, const CollectOptions& o, const std::vector<int>& layers,
                             int64_t N, int64_t shard_size, torch::ScalarType dtype, const std::string& fingerprint) {
  nlohmann::json m;
  m["format"] = kFormat;
  m["version"] = 1;
  m["model"] = model.path().string();
  m["architecture"] = model.architecture();
  m["point"] = point_info(o.point).pattern;
  m["idx"] = o.idx;
  m["layers"] = layers;
  m["hidden_size"] = model.hidden_size();
  m["dtype"] = stored_dtype_name(dtype);
  m["num_prompts"] = N;
  m["shard_size"] = shard_size;
  m["inputs_fingerprint"] = fingerprint;
  nlohmann::json shards = nlohmann::json::array();
  for (int64_t b = 0, i = 0; b < N; b += shard_size, ++i)
    shards.push_back({{"file", shard_name(i)}, {"begin", b}, {"end", std::min(N, b + shard_size)}});
  m["shards"] = shards;
  return m;
}

nlohmann::json read_manifest(const fs::path& path) {
  std::ifstream in(path);
  if (!in) throw Error(ErrorKind::Io, path.string(), "cannot open");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  io::check_json_depth(io::json_text_depth(text), path.string());
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::Format, path.string(), std::string("invalid JSON: ") + e.what());
  }
}

}  // namespace

CollectResult collect_token_activations(const StandardizedTransformer& model, const TraceInput& prompts,
                                        const CollectOptions& options) {
  methods_detail::check_residual_point(options.point, "CollectOptions::point");
  methods_detail::check_batch_size(options.batch_size);
  torch::NoGradGuard no_grad;
  const auto start = std::chrono::steady_clock::now();
  CollectResult result;
  result.layers = resolve_layers(model, options.layers);
  const int64_t N = input_size(prompts);
  if (N == 0) throw Error(ErrorKind::InvalidArgument, "prompts", "no prompt given");
  result.num_prompts = N;
  const int64_t L = static_cast<int64_t>(result.layers.size()), H = model.hidden_size();
  auto run_batch = [&](int64_t b, int64_t e) {
    return methods_detail::batch_activations(model, tokenize_left_padded(model, input_slice(prompts, b, e)), options.idx, result.layers,
                             options.point);
  };
  auto elapsed = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count(); };
  methods_detail::ProgressBar bar(N, "prompts", options.progress);

  if (options.out_dir.empty()) {  // in memory
    for (int64_t b = 0; b < N; b += options.batch_size) {
      const int64_t e = std::min(N, b + options.batch_size);
      auto acts = run_batch(b, e);
      if (options.dtype != torch::ScalarType::Undefined) acts = acts.to(options.dtype);
      if (!result.activations.defined()) result.activations = torch::empty({L, N, H}, acts.options());
      result.activations.narrow(1, b, e - b).copy_(acts);
      bar.update(e);
    }
    result.shard_size = N;
    result.peak_buffer_bytes = result.activations.numel() * static_cast<int64_t>(result.activations.element_size());
    result.seconds = elapsed();
    return result;
  }

  // ---- streamed to disk ----
  const torch::ScalarType dtype = options.dtype == torch::ScalarType::Undefined ? torch::kFloat32 : options.dtype;
  if (!stored_dtype_name(dtype))
    throw Error(ErrorKind::InvalidArgument, "CollectOptions::dtype", "activations are stored as F32, F16, BF16 or F64");
  const int64_t bytes_per_prompt = L * H * static_cast<int64_t>(c10::elementSize(dtype));
  int64_t shard_size = options.shard_size > 0 ? options.shard_size : std::max<int64_t>(1, options.max_shard_bytes / bytes_per_prompt);
  shard_size = std::min(shard_size, N);
  result.shard_size = shard_size;

  const fs::path dir = options.out_dir;
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(ErrorKind::Io, dir.string(), "cannot create the output folder: " + ec.message());
  const fs::path manifest_path = dir / kManifest;
  auto manifest = make_manifest(model, options, result.layers, N, shard_size, dtype, inputs_fingerprint(prompts));
  if (fs::exists(manifest_path)) {
    auto old = read_manifest(manifest_path);
    std::string differs;
    for (const char* key : {"format", "model", "point", "idx", "layers", "hidden_size", "dtype", "num_prompts",
                            "shard_size", "inputs_fingerprint"})
      if (!old.contains(key) || old[key] != manifest[key]) {
        differs = std::string(key) + " was " + (old.contains(key) ? old[key].dump() : "absent") + ", now " + manifest[key].dump();
        break;
      }
    if (!differs.empty()) {
      if (!options.overwrite)
        throw Error(ErrorKind::InvalidArgument, dir.string(),
                    "holds a different activation collection (" + differs + ")",
                    "use another folder, or overwrite it (CollectOptions::overwrite, `nnterp collect --overwrite`)");
      for (const auto& entry : fs::directory_iterator(dir)) {
        const auto name = entry.path().filename().string();
        if (name.rfind("shard-", 0) == 0 && entry.path().extension() == ".safetensors") fs::remove(entry.path());
      }
    }
  }
  write_text_atomic(manifest_path, manifest.dump(1) + "\n");

  const auto& shard_list = manifest["shards"];  // json: built here (make_manifest)
  int64_t done = 0;
  for (size_t s = 0; s < shard_list.size(); ++s) {
    ShardInfo info;
    info.index = static_cast<int64_t>(s);
    info.begin = shard_list[s]["begin"].get<int64_t>();           // json: built here
    info.end = shard_list[s]["end"].get<int64_t>();               // json: built here
    info.path = dir / shard_list[s]["file"].get<std::string>();  // json: built here
    result.shards.push_back(info.path);
    if (shard_problem(info.path, info.begin, info.end, result.layers, H, dtype).empty()) {
      info.skipped = true;
      ++result.shards_skipped;
    } else {
      const int64_t n = info.end - info.begin;
      std::vector<torch::Tensor> buffers;
      for (int64_t l = 0; l < L; ++l) buffers.push_back(torch::empty({n, H}, dtype));
      result.peak_buffer_bytes = std::max(result.peak_buffer_bytes, n * bytes_per_prompt);
      for (int64_t b = info.begin; b < info.end; b += options.batch_size) {
        const int64_t e = std::min(info.end, b + options.batch_size);
        auto acts = run_batch(b, e);
        for (int64_t l = 0; l < L; ++l) buffers[static_cast<size_t>(l)].narrow(0, b - info.begin, e - b).copy_(acts[l]);
        bar.update(done + (e - info.begin));
      }
      std::vector<std::pair<std::string, torch::Tensor>> tensors;
      for (int64_t l = 0; l < L; ++l)
        tensors.emplace_back("layers." + std::to_string(result.layers[static_cast<size_t>(l)]), buffers[static_cast<size_t>(l)]);
      tensors.emplace_back("prompt_index", torch::arange(info.begin, info.end, torch::kInt64));
      io::save_safetensors(info.path, tensors,
                           {{"format", kFormat}, {"point", point_info(options.point).pattern}, {"idx", std::to_string(options.idx)}});
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
  const auto json = read_manifest(mpath);
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
  const auto dtype = stored_dtype_from_name(m.at("dtype").string(), mpath.string());
  for (const auto& sh : m.at("shards").elements()) {
    fs::path p = dir / sh.at("file").string();
    auto problem = shard_problem(p, sh.at("begin").integer(), sh.at("end").integer(), s.layers_, s.hidden_, dtype);
    if (!problem.empty())
      throw Error(ErrorKind::Format, p.string(), "shard not usable: " + problem,
                  "the collection is incomplete: rerun the same collect command to resume it");
    s.shards_.push_back(p);
  }
  return s;
}

torch::Tensor ActivationShards::layer(int layer) const {
  if (std::find(layers_.begin(), layers_.end(), layer) == layers_.end()) {
    std::string have;
    for (int l : layers_) have += (have.empty() ? "" : ", ") + std::to_string(l);
    throw Error(ErrorKind::InvalidArgument, dir_.string(), "layer " + std::to_string(layer) + " was not collected (layers: " + have + ")");
  }
  std::vector<torch::Tensor> parts;
  for (const auto& p : shards_) parts.push_back(io::SafetensorsFile::open(p)->tensor("layers." + std::to_string(layer)).clone());
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

torch::Tensor load_activations(const fs::path& dir, const std::vector<int>& layers) {
  return ActivationShards::open(dir).load(layers);
}

}  // namespace nnterp

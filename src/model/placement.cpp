#include "model/placement.hpp"

#include <fmt/format.h>
#include <torch/cuda.h>

#include <algorithm>
#include <map>

#include "core/proc_files.hpp"
#include "io/config_json.hpp"
#include "nnterp/error.hpp"
#include "nnterp/language_model.hpp"

namespace nnterp {

namespace {

struct DTypeName {
  const char* name;
  torch::ScalarType dtype;
};
// HF's names first (what dtype_name prints), then the CLI's short spellings.
const DTypeName kModelDTypes[] = {{"float32", torch::kFloat32}, {"bfloat16", torch::kBFloat16}, {"float16", torch::kFloat16},
                                  {"fp32", torch::kFloat32},    {"f32", torch::kFloat32},       {"bf16", torch::kBFloat16},
                                  {"fp16", torch::kFloat16},    {"f16", torch::kFloat16},       {"half", torch::kFloat16}};

std::string gb(double bytes) { return fmt::format("{:.1f} GB", bytes / 1e9); }

}  // namespace

std::string dtype_name(torch::ScalarType dtype) {
  for (const auto& d : kModelDTypes)
    if (d.dtype == dtype) return d.name;
  return c10::toString(dtype);
}

std::optional<torch::ScalarType> parse_dtype_option(const std::string& text, const std::string& option) {
  if (text == "auto") return kAutoDType;
  for (const auto& d : kModelDTypes)
    if (text == d.name) return d.dtype;
  throw Error(ErrorKind::InvalidArgument, option, "unknown dtype '" + text + "'",
              "use auto (the checkpoint's own), float32, bfloat16 or float16 (also fp32/f32, bf16, fp16/f16/half)");
}

torch::Device parse_device_option(const std::string& text, const std::string& option) {
  std::optional<torch::Device> device;
  try {
    device = torch::Device(text);
  } catch (const std::exception&) {
  }
  if (!device || (!device->is_cpu() && !device->is_cuda()))
    throw Error(ErrorKind::InvalidArgument, option, "unknown device '" + text + "'", "use cpu, cuda or cuda:N");
  model::check_device(*device, option);
  return *device;
}

namespace model {

void check_device(const torch::Device& device, const std::string& option) {
  if (device.is_cpu()) return;
  const std::string name = device.str();
  if (!device.is_cuda())
    throw Error(ErrorKind::InvalidArgument, option, "device '" + name + "' is not supported", "use cpu, cuda or cuda:N");
  if (!torch::cuda::is_available())
    throw Error(ErrorKind::Unsupported, option,
                "'" + name + "' was asked for, but this nnterp is built against a libtorch without CUDA (Debian's "
                "libtorch is CPU-only) or the machine has no usable GPU",
                "build nnterp against a CUDA libtorch: cmake -S . -B build -DCMAKE_PREFIX_PATH=/path/to/libtorch "
                "(README, \"GPUs\"); or use --device cpu");
  const int64_t count = static_cast<int64_t>(torch::cuda::device_count());
  if (device.has_index() && device.index() >= count)
    throw Error(ErrorKind::InvalidArgument, option,
                "'" + name + "' does not exist: this machine has " + std::to_string(count) + " CUDA device(s)",
                "use cuda:0 .. cuda:" + std::to_string(count - 1));
}

// config.json's dtype ("dtype" since transformers 4.56, "torch_dtype" before; inside text_config
// for multimodal configs), or nullopt.
static std::optional<std::pair<std::string, std::string>> config_dtype(const Config& config) {
  const auto root = config_root(config);
  for (const char* section : {"", "text_config"}) {
    std::optional<io::JsonValue> where = *section ? root.find(section) : std::optional<io::JsonValue>(root);
    if (!where || !where->is_object()) continue;
    for (const char* key : {"dtype", "torch_dtype"})
      if (auto v = where->find(key); v && v->is_string())
        return std::make_pair(std::string(*section ? std::string(section) + "." : "") + key, v->string());
  }
  return std::nullopt;
}

static bool floating(io::DType d) { return d == io::DType::F32 || d == io::DType::BF16 || d == io::DType::F16 || d == io::DType::F64; }

// Each file's floating dtype (the one holding most of its floating bytes) and one tensor of it.
static torch::ScalarType checkpoint_dtype(const io::WeightStore& store) {
  struct Seen {
    io::DType dtype;
    std::string tensor, file;
  };
  std::vector<Seen> per_file;
  for (const auto& file : store.files()) {
    std::map<io::DType, uint64_t> bytes;
    std::map<io::DType, std::string> example;
    for (const auto& t : file->tensors())
      if (floating(t.dtype)) bytes[t.dtype] += t.end - t.begin, example.emplace(t.dtype, t.name);
    if (bytes.empty()) continue;
    auto most = std::max_element(bytes.begin(), bytes.end(), [](auto& a, auto& b) { return a.second < b.second; });
    per_file.push_back({most->first, example[most->first], file->path().filename().string()});
  }
  if (per_file.empty())
    throw Error(ErrorKind::Format, store.describe(), "dtype auto: the checkpoint has no floating-point tensor",
                "give the dtype explicitly");
  for (const auto& s : per_file)
    if (s.dtype != per_file[0].dtype)
      throw Error(ErrorKind::Format, store.describe(),
                  std::string("the shards disagree in dtype: ") + per_file[0].file + " holds " + io::dtype_name(per_file[0].dtype) +
                      " tensors (e.g. '" + per_file[0].tensor + "') but " + s.file + " holds " + io::dtype_name(s.dtype) +
                      " tensors (e.g. '" + s.tensor + "'), so dtype auto has no one answer",
                  "give the dtype explicitly (--dtype bfloat16 / LoadOptions::dtype): every tensor is then converted to "
                  "it; or re-save the checkpoint in one dtype");
  if (per_file[0].dtype == io::DType::F64)
    throw Error(ErrorKind::Unsupported, store.describe(), "dtype auto: the checkpoint is float64, which nnterp does not run",
                "give --dtype float32 (the weights are converted)");
  return io::to_scalar_type(per_file[0].dtype);
}

torch::ScalarType resolve_dtype(const std::optional<torch::ScalarType>& requested, const Config& config,
                                const io::WeightStore& store) {
  auto supported = [](torch::ScalarType d) { return d == torch::kFloat32 || d == torch::kBFloat16 || d == torch::kFloat16; };
  if (requested) {
    if (!supported(*requested))
      throw Error(ErrorKind::InvalidArgument, "LoadOptions::dtype",
                  std::string("dtype ") + c10::toString(*requested) + " cannot run a model",
                  "use float32, bfloat16, float16 or kAutoDType");
    return *requested;
  }
  const auto stored = checkpoint_dtype(store);  // also checks that the shards agree
  const auto declared = config_dtype(config);
  if (!declared || declared->second == "auto") return stored;
  for (const auto& d : {torch::kFloat32, torch::kBFloat16, torch::kFloat16})
    if (declared->second == dtype_name(d)) return d;
  throw Error(ErrorKind::Config, config.source() + " (" + declared->first + ")",
              "dtype auto: the config's dtype '" + declared->second + "' is not one nnterp runs a model in",
              "give the dtype explicitly: float32, bfloat16 or float16");
}

void check_memory_for(const io::WeightStore& store, const WeightPlacement& placement) {
  if (!placement.device.is_cpu()) return;  // a GPU's own allocator reports an out-of-memory itself
  const int64_t target = c10::elementSize(placement.dtype);
  double stored = 0, converted = 0;
  for (const auto& file : store.files())
    for (const auto& t : file->tensors()) {
      stored += static_cast<double>(t.end - t.begin);
      if (floating(t.dtype) && io::to_scalar_type(t.dtype) != placement.dtype) converted += static_cast<double>(t.numel() * target);
    }
  const int64_t available_bytes = proc_bytes("/proc/meminfo", "MemAvailable");
  if (available_bytes < 0 || converted == 0) return;
  // Converted weights are anonymous memory that must fit beside what the system needs: 90% of
  // MemAvailable is the most a load may take (the page cache of the file itself is reclaimable).
  const double available = 0.9 * static_cast<double>(available_bytes);
  if (converted <= available) return;
  throw Error(ErrorKind::Unsupported, store.describe(),
              "converting the weights to " + dtype_name(placement.dtype) + " needs " + gb(converted) +
                  " of memory (the checkpoint is " + gb(stored) + "), but only " + gb(available / 0.9) + " is available",
              "load it in its own dtype (--dtype auto / LoadOptions::dtype = kAutoDType): its weights are then used in "
              "place from the file");
}

int64_t peak_rss_bytes() { return std::max<int64_t>(0, proc_bytes("/proc/self/status", "VmHWM")); }

}  // namespace model
}  // namespace nnterp

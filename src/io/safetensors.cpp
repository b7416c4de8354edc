#include "nnterp/safetensors.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "io/json_limits.hpp"
#include "io/json_reader.hpp"
#include "nnterp/error.hpp"

namespace nnterp::io {

using nlohmann::json;
namespace fs = std::filesystem;

namespace {

struct DTypeEntry {
  DType dtype;
  const char* name;
  size_t size;
  torch::ScalarType scalar;
};

const DTypeEntry kDTypes[] = {
    {DType::F64, "F64", 8, torch::kFloat64},  {DType::F32, "F32", 4, torch::kFloat32},
    {DType::F16, "F16", 2, torch::kFloat16},  {DType::BF16, "BF16", 2, torch::kBFloat16},
    {DType::I64, "I64", 8, torch::kInt64},    {DType::I32, "I32", 4, torch::kInt32},
    {DType::I16, "I16", 2, torch::kInt16},    {DType::I8, "I8", 1, torch::kInt8},
    {DType::U8, "U8", 1, torch::kUInt8},      {DType::BOOL, "BOOL", 1, torch::kBool},
};

const DTypeEntry& entry(DType dtype) {
  for (const auto& e : kDTypes)
    if (e.dtype == dtype) return e;
  throw std::logic_error("unknown DType");
}

std::optional<DType> parse_dtype(const std::string& name) {
  for (const auto& e : kDTypes)
    if (name == e.name) return e.dtype;
  return std::nullopt;
}

std::optional<DType> from_scalar_type(torch::ScalarType scalar) {
  for (const auto& e : kDTypes)
    if (e.scalar == scalar) return e.dtype;
  return std::nullopt;
}

constexpr uint64_t kMaxHeaderBytes = 100ull << 20;  // the reference implementation's limit
constexpr uint64_t kMaxDim = 1ull << 60;  // bound on each dimension and on numel: numel x 8 fits 64 bits

// Valid safetensors dtypes that libtorch 1.13 cannot represent.
const char* const kUnsupportedDTypes[] = {"F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2",
                                          "F4",      "U16",     "U32",     "U64",     "C64"};

std::string list_dtypes() {
  std::string out;
  for (const auto& e : kDTypes) out += std::string(out.empty() ? "" : ", ") + e.name;
  return out;
}

}  // namespace

const char* dtype_name(DType dtype) { return entry(dtype).name; }
size_t dtype_size(DType dtype) { return entry(dtype).size; }
torch::ScalarType to_scalar_type(DType dtype) { return entry(dtype).scalar; }

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

// Validates the header and fills a SafetensorsFile. Every error names the file and, where there
// is one, the tensor.
struct SafetensorsParser {
  SafetensorsFile& file;
  std::string where;

  [[noreturn]] void fail(const std::string& tensor, const std::string& what, const std::string& hint = "",
                         ErrorKind kind = ErrorKind::Format) const {
    throw Error(kind, tensor.empty() ? where : where + " (tensor '" + tensor + "')", what, hint);
  }

  json parse_header(const char* text, size_t size) {
    // nlohmann's parser keeps the last of duplicate keys silently: detect them with the callback.
    std::set<std::string> top_keys;
    std::string duplicate;
    json::parser_callback_t detect_duplicates = [&](int depth, json::parse_event_t event, json& parsed) {
      if (event == json::parse_event_t::key && depth == 1 && parsed.is_string()) {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!top_keys.insert(key).second && duplicate.empty()) duplicate = key;
      }
      return true;
    };
    // nlohmann's lexer takes a NUL byte for the end of input: allow NULs only as trailing padding.
    if (const char* nul = static_cast<const char*>(std::memchr(text, '\0', size))) {
      for (const char* p = nul; p < text + size; ++p)
        if (*p != '\0' && *p != ' ')
          fail("", "the header holds a NUL byte at offset " + std::to_string(8 + (nul - text)) + " followed by more text",
               "the file is corrupt or not a safetensors file");
      size = static_cast<size_t>(nul - text);
    }
    check_json_depth(json_text_depth(std::string_view(text, size)), where);
    json header;
    try {
      header = json::parse(text, text + size, detect_duplicates);
    } catch (const json::exception& e) {
      fail("", std::string("the header is not valid JSON: ") + e.what(),
           "the file is corrupt or not a safetensors file");
    }
    if (!header.is_object())
      fail("", std::string("the header is a JSON ") + header.type_name() + ", not an object",
           "the file is corrupt or not a safetensors file");
    if (duplicate == "__metadata__") fail("", "'__metadata__' appears twice in the header");
    if (!duplicate.empty()) fail(duplicate, "the tensor name appears twice in the header");
    return header;
  }

  static bool to_u64(const json& v, uint64_t& out) {
    if (v.is_number_unsigned()) { out = v.get<uint64_t>(); return true; }
    if (v.is_number_integer() && v.get<int64_t>() >= 0) { out = static_cast<uint64_t>(v.get<int64_t>()); return true; }
    return false;
  }

  TensorInfo parse_entry(const std::string& name, const json& value, uint64_t data_size) {
    if (!value.is_object()) fail(name, std::string("the header entry is a JSON ") + value.type_name() + ", not an object");
    TensorInfo info;
    info.name = name;
    auto dt = value.find("dtype");
    if (dt == value.end() || !dt->is_string()) fail(name, "missing or non-string 'dtype'");
    const auto& dtype_text = dt->get_ref<const std::string&>();
    auto dtype = parse_dtype(dtype_text);
    if (!dtype) {
      for (const char* unsupported : kUnsupportedDTypes)
        if (dtype_text == unsupported)
          fail(name, "dtype '" + dtype_text + "' is valid safetensors but not supported by nnterp",
               "supported: " + list_dtypes(), ErrorKind::Unsupported);
      fail(name, "unknown dtype " + dt->dump(), "supported: " + list_dtypes());
    }
    info.dtype = *dtype;
    auto shape = value.find("shape");
    if (shape == value.end() || !shape->is_array()) fail(name, "missing or non-array 'shape'");
    uint64_t numel = 1;
    for (const auto& d : *shape) {
      uint64_t dim;
      if (!to_u64(d, dim)) fail(name, "shape entries must be non-negative integers, got " + d.dump() + " in " + shape->dump());
      // Bound every dimension (a zero elsewhere must not hide a huge one) and the running product.
      if (dim > kMaxDim || (dim > 0 && numel > kMaxDim / dim))
        fail(name, "shape " + shape->dump() + " is too large");
      numel *= dim;
      info.shape.push_back(static_cast<int64_t>(dim));
    }
    auto offsets = value.find("data_offsets");
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2)
      fail(name, "'data_offsets' must be an array [begin, end]");
    if (!to_u64((*offsets)[0], info.begin) || !to_u64((*offsets)[1], info.end))
      fail(name, "data_offsets must be non-negative integers, got " + offsets->dump());
    if (info.begin > info.end) fail(name, "data_offsets " + offsets->dump() + " end before they begin");
    if (info.end > data_size)
      fail(name, "data_offsets " + offsets->dump() + " run past the end of the data section (" +
                     std::to_string(data_size) + " bytes)", "the file is truncated or corrupt");
    uint64_t expected = numel * dtype_size(info.dtype);  // numel <= 2^60: no overflow
    if (info.end - info.begin != expected)
      fail(name, "data_offsets " + offsets->dump() + " hold " + std::to_string(info.end - info.begin) +
                     " bytes but shape " + shape->dump() + " x " + dtype_name(info.dtype) + " needs " +
                     std::to_string(expected));
    return info;
  }

  void parse_metadata(const json& value) {
    if (value.is_null()) return;
    if (!value.is_object()) fail("", std::string("'__metadata__' is a JSON ") + value.type_name() + ", not an object of strings");
    for (auto m = value.begin(); m != value.end(); ++m) {
      if (!m->is_string())
        fail("", "'__metadata__' value for '" + m.key() + "' is a JSON " + m->type_name() + ", not a string");
      file.metadata_[m.key()] = m->get<std::string>();
    }
  }

  void check_no_overlap() {
    std::vector<const TensorInfo*> sorted;
    for (const auto& t : file.tensors_)
      if (t.end > t.begin) sorted.push_back(&t);  // empty tensors occupy no bytes
    std::sort(sorted.begin(), sorted.end(),
              [](auto* a, auto* b) { return a->begin != b->begin ? a->begin < b->begin : a->end < b->end; });
    for (size_t i = 1; i < sorted.size(); ++i)  // sorted by begin: any overlap shows between neighbours
      if (sorted[i]->begin < sorted[i - 1]->end)
        fail(sorted[i]->name, "its data [" + std::to_string(sorted[i]->begin) + ", " + std::to_string(sorted[i]->end) +
                                  ") overlaps that of '" + sorted[i - 1]->name + "' [" +
                                  std::to_string(sorted[i - 1]->begin) + ", " + std::to_string(sorted[i - 1]->end) + ")");
  }

  void parse(uint64_t file_size, const uint8_t* bytes) {
    if (file_size < 8)
      fail("", "the file is " + std::to_string(file_size) + " bytes, too short for the 8-byte header length",
           "the file is truncated");
    uint64_t header_size = 0;
    for (int i = 7; i >= 0; --i) header_size = (header_size << 8) | bytes[i];
    if (header_size > kMaxHeaderBytes)
      fail("", "the header length " + std::to_string(header_size) + " exceeds the 100 MiB limit",
           "the file is corrupt or not a safetensors file");
    if (header_size > file_size - 8)
      fail("", "the header length " + std::to_string(header_size) + " runs past the end of the file (" +
                   std::to_string(file_size) + " bytes)", "the file is truncated");
    if (header_size == 0) fail("", "the header is empty (length 0)", "the file is corrupt or not a safetensors file");
    json header = parse_header(reinterpret_cast<const char*>(bytes + 8), header_size);
    file.data_size_ = file_size - 8 - header_size;  // trailing bytes after the last tensor are allowed
    file.data_ = bytes + 8 + header_size;
    for (auto it = header.begin(); it != header.end(); ++it) {
      if (it.key() == "__metadata__") {
        parse_metadata(*it);
        continue;
      }
      file.index_[it.key()] = file.tensors_.size();
      file.tensors_.push_back(parse_entry(it.key(), *it, file.data_size_));
    }
    check_no_overlap();
  }
};

std::shared_ptr<SafetensorsFile> SafetensorsFile::open(const fs::path& path) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = path;
  file->self_ = file;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error(ErrorKind::Io, path.string(), std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error(ErrorKind::Io, path.string(), "not a regular file");
  }
  file->map_size_ = static_cast<size_t>(st.st_size);
  if (file->map_size_ > 0) {
    // Private writable mapping: pages are shared with the page cache until someone writes,
    // so weights can be edited in place without touching the file.
    void* map = mmap(nullptr, file->map_size_, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      throw Error(ErrorKind::Io, path.string(), std::string("cannot mmap: ") + std::strerror(err));
    }
    file->map_ = map;
  }
  ::close(fd);
  SafetensorsParser parser{*file, path.string()};
  parser.parse(file->map_size_, static_cast<const uint8_t*>(file->map_));
  return file;
}

std::shared_ptr<SafetensorsFile> SafetensorsFile::parse_buffer(std::vector<uint8_t> bytes, std::string name) {
  std::shared_ptr<SafetensorsFile> file(new SafetensorsFile());
  file->path_ = name;
  file->self_ = file;
  file->owned_ = std::move(bytes);  // operator new memory: aligned for every dtype
  SafetensorsParser parser{*file, std::move(name)};
  parser.parse(file->owned_.size(), file->owned_.data());
  return file;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) munmap(map_, map_size_);
}

const TensorInfo* SafetensorsFile::find(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

torch::Tensor SafetensorsFile::tensor(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (!info) throw Error(ErrorKind::MissingWeight, path_.string(), "no tensor named '" + name + "'");
  auto options = torch::TensorOptions().dtype(to_scalar_type(info->dtype));
  uint8_t* ptr = const_cast<uint8_t*>(data_ + info->begin);
  if (info->numel() == 0) return torch::empty(info->shape, options);
  if (reinterpret_cast<uintptr_t>(ptr) % dtype_size(info->dtype) != 0) {
    // Misaligned data (a header length that is not a multiple of 8): copy.
    auto out = torch::empty(info->shape, options);
    std::memcpy(out.data_ptr(), ptr, info->end - info->begin);
    return out;
  }
  auto keep_alive = self_.lock();
  return torch::from_blob(ptr, info->shape, [keep_alive](void*) {}, options);
}

void SafetensorsFile::release(const std::string& name) const {
  const TensorInfo* info = find(name);
  if (!info || !map_) return;
  static const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const auto begin = reinterpret_cast<uintptr_t>(data_ + info->begin), end = reinterpret_cast<uintptr_t>(data_ + info->end);
  const uintptr_t first = (begin + page - 1) / page * page, last = end / page * page;  // whole pages only:
  if (last > first) madvise(reinterpret_cast<void*>(first), last - first, MADV_DONTNEED);  // neighbours keep theirs
}

// ---- WeightStore ---------------------------------------------------------------------------

static std::vector<fs::path> single_safetensors_in(const fs::path& dir) {
  std::vector<fs::path> found;
  for (const auto& entry : fs::directory_iterator(dir))
    if (entry.is_regular_file() && entry.path().extension() == ".safetensors") found.push_back(entry.path());
  return found;
}

WeightStore WeightStore::open(const fs::path& folder_or_file) {
  WeightStore store;
  store.origin_ = folder_or_file;
  auto add_file = [&](const fs::path& p) {
    store.files_.push_back(SafetensorsFile::open(p));
    for (const auto& t : store.files_.back()->tensors()) {
      if (store.owner_.count(t.name))
        throw Error(ErrorKind::Format, p.string() + " (tensor '" + t.name + "')",
                    "the tensor also appears in " + store.files_[store.owner_[t.name]]->path().string());
      store.owner_[t.name] = store.files_.size() - 1;
    }
  };
  std::error_code ec;
  if (fs::is_regular_file(folder_or_file, ec)) {
    add_file(folder_or_file);
    return store;
  }
  if (!fs::is_directory(folder_or_file, ec))
    throw Error(ErrorKind::NotFound, folder_or_file.string(), "no such file or folder");
  fs::path index_path = folder_or_file / "model.safetensors.index.json";
  if (fs::exists(index_path, ec)) {
    const std::string where = index_path.string();
    json index = read_json_file(index_path);
    if (!index.is_object() || !index.contains("weight_map") || !index["weight_map"].is_object())
      throw Error(ErrorKind::Format, where, "no 'weight_map' object");
    const json& weight_map = index["weight_map"];
    if (weight_map.empty()) throw Error(ErrorKind::Format, where, "the 'weight_map' is empty");
    std::vector<std::string> shards;
    for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
      if (!it->is_string())
        throw Error(ErrorKind::Format, where, "the shard of '" + it.key() + "' is " + it->dump() + ", not a file name");
      const auto& s = it->get_ref<const std::string&>();
      if (s.empty() || s == "." || s.find('/') != std::string::npos || s.find('\\') != std::string::npos ||
          s.find("..") != std::string::npos)
        throw Error(ErrorKind::Format, where, "the shard of '" + it.key() + "' is \"" + s + "\", not a plain file name");
      if (std::find(shards.begin(), shards.end(), s) == shards.end()) {
        if (!fs::is_regular_file(folder_or_file / s, ec))
          throw Error(ErrorKind::Io, where,
                      "weight_map places '" + it.key() + "' in " + s + ", which is not in " + folder_or_file.string(),
                      "the download is incomplete: fetch the missing shard again");
        shards.push_back(s);
      }
    }
    std::sort(shards.begin(), shards.end());
    for (const auto& s : shards) add_file(folder_or_file / s);
    for (auto it = weight_map.begin(); it != weight_map.end(); ++it) {
      auto owner = store.owner_.find(it.key());
      const auto& shard = it->get_ref<const std::string&>();
      if (owner == store.owner_.end() || store.files_[owner->second]->path().filename() != shard)
        throw Error(ErrorKind::Format, where,
                    "weight_map places '" + it.key() + "' in " + shard + ", which does not hold it" +
                        (owner == store.owner_.end() ? std::string()
                                                     : " (it is in " + store.files_[owner->second]->path().filename().string() + ")"));
    }
    return store;
  }
  if (fs::exists(folder_or_file / "model.safetensors", ec)) {
    add_file(folder_or_file / "model.safetensors");
    return store;
  }
  auto candidates = single_safetensors_in(folder_or_file);
  if (candidates.size() == 1) {
    add_file(candidates[0]);
    return store;
  }
  std::string hint = "expected model.safetensors or model.safetensors.index.json";
  if (candidates.size() > 1) hint += " (found " + std::to_string(candidates.size()) + " other .safetensors files and no index)";
  if (fs::exists(folder_or_file / "pytorch_model.bin", ec))
    hint += "; pytorch_model.bin is never read (pickle can run code): convert it to safetensors first";
  throw Error(ErrorKind::NotFound, folder_or_file.string(), "no safetensors weights in this folder", hint);
}

std::vector<std::string> WeightStore::names() const {
  std::vector<std::string> out;
  for (const auto& [name, file] : owner_) out.push_back(name);
  return out;
}

bool WeightStore::contains(const std::string& name) const { return owner_.count(name) > 0; }

const TensorInfo& WeightStore::info(const std::string& name) const {
  auto it = owner_.find(name);
  if (it == owner_.end())
    throw Error(ErrorKind::MissingWeight, origin_.string(), "no tensor named '" + name + "'");
  return *files_[it->second]->find(name);
}

torch::Tensor WeightStore::stored(const std::string& name) const {
  info(name);  // the error for an unknown name
  return files_[owner_.at(name)]->tensor(name);
}

torch::Tensor WeightStore::get(const std::string& name, torch::ScalarType dtype) const {
  auto t = stored(name);
  return t.scalar_type() == dtype ? t : t.to(dtype);
}

void WeightStore::release(const std::string& name) const {
  auto it = owner_.find(name);
  if (it != owner_.end()) files_[it->second]->release(name);
}

std::map<std::string, int64_t> WeightStore::bytes_by_dtype() const {
  std::map<std::string, int64_t> out;
  for (const auto& file : files_)
    for (const auto& t : file->tensors()) out[dtype_name(t.dtype)] += static_cast<int64_t>(t.end - t.begin);
  return out;
}

std::string WeightStore::describe() const {
  if (files_.size() == 1) return files_[0]->path().string();
  return std::to_string(files_.size()) + " shards in " + origin_.string();
}

// ---- writing -------------------------------------------------------------------------------

void save_safetensors(const fs::path& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  json header = json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> contiguous;
  uint64_t offset = 0;
  std::set<std::string> seen;
  for (const auto& entry : tensors) {
    const std::string& name = entry.first;  // not a structured binding: clang 14 cannot capture one
    const torch::Tensor& tensor = entry.second;
    auto fail = [&](const std::string& what) {
      throw Error(ErrorKind::InvalidArgument, path.string() + " (tensor '" + name + "')", what);
    };
    if (name == "__metadata__") fail("'__metadata__' is reserved for the metadata");
    if (!seen.insert(name).second) fail("the name is given twice");
    if (!tensor.defined()) fail("the tensor is undefined");
    auto dtype = from_scalar_type(tensor.scalar_type());
    if (!dtype) fail(std::string("safetensors cannot store dtype ") + c10::toString(tensor.scalar_type()));
    auto t = tensor.detach().to(torch::kCPU).contiguous();
    uint64_t bytes = static_cast<uint64_t>(t.numel()) * dtype_size(*dtype);
    header[name] = {{"dtype", dtype_name(*dtype)}, {"shape", t.sizes().vec()}, {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
    contiguous.push_back(t);
  }
  std::string text;
  try {
    text = header.dump();
  } catch (const json::exception& e) {  // a name or metadata string that is not UTF-8
    throw Error(ErrorKind::InvalidArgument, path.string(), std::string("cannot write the header: ") + e.what());
  }
  while ((8 + text.size()) % 8 != 0) text.push_back(' ');  // keep the data 8-byte aligned
  fs::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(ErrorKind::Io, tmp.string(), "cannot open for writing");
    uint64_t n = text.size();
    char len[8];
    for (int i = 0; i < 8; ++i) len[i] = static_cast<char>((n >> (8 * i)) & 0xff);
    out.write(len, 8);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    for (const auto& t : contiguous)
      if (t.nbytes() > 0) out.write(static_cast<const char*>(t.data_ptr()), static_cast<std::streamsize>(t.nbytes()));
    out.flush();
    if (!out) {
      out.close();
      std::error_code ec;
      fs::remove(tmp, ec);
      throw Error(ErrorKind::Io, tmp.string(), "write failed (disk full?)");
    }
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);  // atomic: a reader never sees a half-written file
  if (ec) {
    std::string why = ec.message();
    fs::remove(tmp, ec);
    throw Error(ErrorKind::Io, path.string(), "cannot rename " + tmp.string() + " into place: " + why);
  }
}

}  // namespace nnterp::io

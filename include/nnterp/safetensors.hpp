// safetensors reading (memory-mapped, validated) and writing. The format: 8-byte little-endian
// header length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}},
// then the data buffer. Offsets are relative to the start of the data buffer.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace nnterp::io {

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, BOOL };

const char* dtype_name(DType dtype);
size_t dtype_size(DType dtype);
torch::ScalarType to_scalar_type(DType dtype);

struct TensorInfo {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0, end = 0;  // byte range inside the data buffer
  int64_t numel() const;
};

// One .safetensors file, memory-mapped (copy-on-write, so an in-place edit of a returned tensor
// never reaches the file). The whole header is validated on open; every error names the file and
// the tensor.
class SafetensorsFile {
 public:
  static std::shared_ptr<SafetensorsFile> open(const std::filesystem::path& path);
  // The same validation on bytes already in memory (a fuzzing entry point, or data received
  // from elsewhere). `name` stands for the path in error messages. The returned file owns `bytes`.
  static std::shared_ptr<SafetensorsFile> parse_buffer(std::vector<uint8_t> bytes, std::string name);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::filesystem::path& path() const { return path_; }
  uint64_t data_size() const { return data_size_; }  // bytes after the header (may exceed the tensors)
  const std::vector<TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const TensorInfo* find(const std::string& name) const;
  bool contains(const std::string& name) const { return find(name) != nullptr; }

  // The tensor in its stored dtype. Zero-copy (a view of the mapping that keeps the file alive)
  // when the data is suitably aligned, otherwise a copy.
  torch::Tensor tensor(const std::string& name) const;
  // Drops this process's resident pages of the tensor's data (the whole pages inside it), for a
  // tensor that was copied into memory (converted, fused) and will not be read from the file
  // again: without this a loaded model would count both the file's pages and the copy. Reading
  // the tensor afterwards still works (the pages are read from the file again). No-op for a
  // parse_buffer file.
  void release(const std::string& name) const;

 private:
  SafetensorsFile() = default;
  std::filesystem::path path_;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  std::vector<uint8_t> owned_;     // the bytes of a parse_buffer file (map_ is null then)
  const uint8_t* data_ = nullptr;  // start of the data buffer
  uint64_t data_size_ = 0;
  std::vector<TensorInfo> tensors_;
  std::map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  std::weak_ptr<SafetensorsFile> self_;
  friend struct SafetensorsParser;
};

// The weights of a model folder: `model.safetensors`, or the shards listed by
// `model.safetensors.index.json`, or a single file given directly.
class WeightStore {
 public:
  static WeightStore open(const std::filesystem::path& folder_or_file);

  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;
  // The tensor converted to `dtype` (F16/BF16/F64 → compute dtype); zero-copy if the stored
  // dtype is already `dtype`.
  torch::Tensor get(const std::string& name, torch::ScalarType dtype = torch::kFloat32) const;
  // The tensor in its stored dtype (zero-copy when aligned).
  torch::Tensor stored(const std::string& name) const;
  void release(const std::string& name) const;  // see SafetensorsFile::release
  // Bytes of every tensor, by stored dtype name ("BF16").
  std::map<std::string, int64_t> bytes_by_dtype() const;
  const std::vector<std::shared_ptr<SafetensorsFile>>& files() const { return files_; }
  std::string describe() const;  // the file's path, or "3 shards in <folder>"

 private:
  std::vector<std::shared_ptr<SafetensorsFile>> files_;
  std::map<std::string, size_t> owner_;  // tensor name → file index
  std::filesystem::path origin_;
};

// Writes tensors (contiguous CPU copies are made as needed) with optional string metadata.
// F32, F16, BF16, F64, I64, I32, I16, I8, U8 and BOOL are supported.
void save_safetensors(const std::filesystem::path& path,
                      const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace nnterp::io

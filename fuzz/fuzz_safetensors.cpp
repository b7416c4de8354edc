// Fuzz target: the safetensors header parser and the loader.
//
// Input: the bytes of a .safetensors file, parsed by SafetensorsFile::parse_buffer (the same
// validation SafetensorsFile::open runs on a mapped file); every tensor it accepts is then read
// (SafetensorsFile::tensor) and its bytes touched, so that ASan sees any read outside the buffer.
// An input starting with '{' is instead a model.safetensors.index.json, opened by
// WeightStore::open over a folder with two fixed shards, whose tensors are then loaded.
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <unistd.h>

#include "fuzz_common.hpp"
#include "nnterp/safetensors.hpp"

namespace fs = std::filesystem;
using namespace nnterp;
using namespace nnterp::fuzz;

namespace {

uint64_t touch(const torch::Tensor& t) {
  auto c = t.contiguous();
  const auto* p = static_cast<const uint8_t*>(c.data_ptr());
  uint64_t sum = 0;
  for (size_t i = 0; i < c.nbytes(); ++i) sum += p[i];
  return sum;
}

void check_file(const io::SafetensorsFile& file) {
  for (const auto& info : file.tensors()) {
    require(info.begin <= info.end && info.end <= file.data_size(), "a tensor's range lies inside the data section");
    require(static_cast<uint64_t>(info.numel()) * io::dtype_size(info.dtype) == info.end - info.begin,
            "a tensor's byte size matches its shape and dtype");
    auto t = file.tensor(info.name);
    require(t.scalar_type() == io::to_scalar_type(info.dtype), "tensor dtype");
    require(t.sizes().vec() == info.shape, "tensor shape");
    touch(t);
  }
}

const fs::path& shard_folder() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("nnterp_fuzz_index_" + std::to_string(::getpid()));
    fs::create_directories(d);
    io::save_safetensors(d / "model-00001-of-00002.safetensors",
                         {{"a", torch::arange(6, torch::kFloat32).reshape({2, 3})}, {"b", torch::ones({4}, torch::kFloat16)}});
    io::save_safetensors(d / "model-00002-of-00002.safetensors", {{"c", torch::zeros({1, 2}, torch::kBFloat16)}});
    std::atexit([] {
      std::error_code ec;
      fs::remove_all(shard_folder(), ec);
    });
    return d;
  }();
  return dir;
}

void fuzz_index(std::string_view text) {
  const fs::path& dir = shard_folder();
  {
    std::ofstream out(dir / "model.safetensors.index.json", std::ios::binary | std::ios::trunc);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
  }
  accepts([&] {
    auto store = io::WeightStore::open(dir);
    for (const auto& name : store.names()) {
      require(store.contains(name), "WeightStore::contains of a listed name");
      touch(store.get(name));
    }
    store.describe();
  });
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 0 && data[0] == '{') {
    fuzz_index(std::string_view(reinterpret_cast<const char*>(data), size));
    return 0;
  }
  std::vector<uint8_t> bytes(data, data + size);
  accepts([&] {
    auto file = io::SafetensorsFile::parse_buffer(std::move(bytes), "fuzz.safetensors");
    check_file(*file);
    for (const auto& [key, value] : file->metadata()) (void)key.size(), (void)value.size();
    require(!file->contains("__metadata__"), "'__metadata__' is not a tensor");
  });
  return 0;
}

// Collecting token activations over many prompts, in memory or streamed to disk.
//
// On disk, a collection is a folder:
//   manifest.json                 what was collected (layers, point, idx, hidden size, dtype, prompt
//                                 count, shard size, a fingerprint of the inputs) and the shard list
//   shard-00000.safetensors ...   one tensor per layer, "layers.{i}" [n, hidden], plus
//                                 "prompt_index" int64 [n] (the prompts' positions in the input)
// Plain safetensors: numpy/torch read them with safetensors.numpy.load_file / torch.load_file.
// Memory is bounded by one shard whatever the number of prompts; shards are written atomically
// (tmp + rename), and a rerun into the same folder skips the shards already there and valid, so
// an interrupted collection resumes where it stopped.
#pragma once

#include <torch/types.h>

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "nnterp/points.hpp"
#include "nnterp/trace.hpp"

namespace nnterp {

class StandardizedTransformer;

namespace io { class SafetensorsFile; }

struct ShardInfo {
  int64_t index = 0;
  int64_t begin = 0, end = 0;  // prompt range [begin, end)
  std::filesystem::path path;
  bool skipped = false;        // already on disk and valid (resumed)
};

struct CollectOptions {
  std::vector<int> layers;          // empty: every layer
  int64_t idx = -1;                 // the token of each prompt (see methods.hpp)
  Point point = Point::LayerOutput; // any per-layer [B, T, H] point
  int64_t batch_size = 32;
  std::filesystem::path out_dir;    // empty: collect in memory
  int64_t shard_size = 0;           // prompts per shard; 0: as many as fit in max_shard_bytes
  int64_t max_shard_bytes = int64_t{256} << 20;
  torch::ScalarType dtype = torch::kFloat32;  // stored dtype (F32, F16, BF16)
  bool progress = true;             // a progress bar on stderr when it is a terminal
  bool overwrite = false;           // out_dir holds another collection: replace it (else an error)
  std::function<void(const ShardInfo&)> on_shard;  // after each shard (written or skipped); may throw to stop
};

struct CollectResult {
  torch::Tensor activations;       // [layers, N, hidden] in memory; undefined when streamed to disk
  std::vector<int> layers;         // resolved
  int64_t num_prompts = 0;
  int64_t shard_size = 0;
  std::vector<std::filesystem::path> shards;
  int64_t shards_written = 0, shards_skipped = 0;
  int64_t peak_buffer_bytes = 0;   // the most activation bytes held at once (one shard's buffer)
  double seconds = 0;
};

// Collects the activations of token `idx` of every prompt at `layers`; streams shards to
// options.out_dir when it is set (see above). Same values as one big get_token_activations.
CollectResult collect_token_activations(const StandardizedTransformer& model, const TraceInput& prompts,
                                        const CollectOptions& options = {});

// A collection on disk.
class ActivationShards {
 public:
  // Reads the manifest and checks that every shard is present and valid.
  static ActivationShards open(const std::filesystem::path& dir);

  const std::filesystem::path& dir() const { return dir_; }
  const std::string& manifest_json() const { return manifest_json_; }  // manifest.json as read
  const std::vector<int>& layers() const { return layers_; }
  int64_t num_prompts() const { return num_prompts_; }
  int64_t hidden_size() const { return hidden_; }
  int64_t num_shards() const { return static_cast<int64_t>(shards_.size()); }
  const std::filesystem::path& shard_path(int64_t i) const { return shards_.at(static_cast<size_t>(i)); }

  // Every shard concatenated: [layers, N, hidden] (a subset of the stored layers when given), in the stored dtype.
  torch::Tensor load(const std::vector<int>& layers = {}) const;
  // One stored layer: [N, hidden].
  torch::Tensor layer(int layer) const;
  // The prompt indices, concatenated: [N] int64.
  torch::Tensor prompt_index() const;

 private:
  std::filesystem::path dir_;
  std::string manifest_json_;
  std::vector<int> layers_;
  int64_t num_prompts_ = 0, hidden_ = 0;
  std::vector<std::filesystem::path> shards_;
};

// ActivationShards::open(dir).load(layers).
torch::Tensor load_activations(const std::filesystem::path& dir, const std::vector<int>& layers = {});

}  // namespace nnterp

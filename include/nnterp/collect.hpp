// Collecting token activations over many prompts, in memory or streamed to disk.
//
// On disk, a collection is a folder:
//   manifest.json                 what was collected (layers, point, idx, hidden size, dtype, prompt
//                                 count, shard size, a fingerprint of the inputs) and the shard list
//   shard-00000.safetensors ...   one tensor per layer, "layers.{i}" [n, hidden], plus
//                                 "prompt_index" int64 [n] (the prompts' positions in the input)
// With all_tokens (what SAE training reads), a row is every real (unpadded) token of every prompt,
// in prompt order then position order, and each shard also has "position" int64 [n] (the token's
// position in its prompt, 0 the first real token); a shard holds whole prompts and at most
// max_shard_bytes of activations (a longer prompt alone), and the manifest lists its token count.
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
  int64_t rows = 0;            // activations stored: end - begin, or its tokens (all_tokens)
  std::filesystem::path path;
  bool skipped = false;        // already on disk and valid (resumed)
};

struct CollectOptions {
  std::vector<int> layers;          // empty: every layer
  int64_t idx = -1;                 // the token of each prompt (see methods.hpp)
  bool all_tokens = false;          // every real token of every prompt instead (idx unused)
  bool skip_first_token = false;    // all_tokens: not each prompt's first token (a BOS, whose
                                    // activations are outliers that SAE training should not see)
  Point point = Point::LayerOutput; // any per-layer [B, T, H] point
  int64_t batch_size = 32;
  std::filesystem::path out_dir;    // empty: collect in memory
  int64_t shard_size = 0;           // prompts per shard (all_tokens: at most); 0: as many as fit in max_shard_bytes
  int64_t max_shard_bytes = int64_t{256} << 20;
  torch::ScalarType dtype = torch::kFloat32;  // stored dtype (F32, F16, BF16)
  bool progress = true;             // a progress bar on stderr when it is a terminal
  bool overwrite = false;           // out_dir holds another collection: replace it (else an error)
  std::function<void(const ShardInfo&)> on_shard;  // after each shard (written or skipped); may throw to stop
  // An SAE (sae.hpp): each activation is replaced by its features, sae->encode(activation), stored
  // under the same names ("layers.{i}" [n, d_sae]; hidden_size is d_sae). The point and layer are the
  // SAE's input point (`layers` empty or that layer; `point` left at its default or that point), and
  // the manifest's "sae" entry names the SAE.
  std::shared_ptr<const Sae> sae;
};

struct CollectResult {
  torch::Tensor activations;       // [layers, N, hidden] in memory (N: prompts, or tokens with all_tokens);
                                   // undefined when streamed to disk
  torch::Tensor prompt_index, position;  // all_tokens in memory: [N] int64 each (the prompt and position of each row)
  std::vector<int> layers;         // resolved
  int64_t num_prompts = 0;
  int64_t num_rows = 0;            // N: num_prompts, or the tokens collected (all_tokens)
  int64_t shard_size = 0;          // prompts per shard (all_tokens: the most tokens a shard holds)
  std::vector<std::filesystem::path> shards;
  int64_t shards_written = 0, shards_skipped = 0;
  int64_t peak_buffer_bytes = 0;   // the most activation bytes held at once (one shard's buffer)
  double seconds = 0;
};

// Collects the activations of token `idx` (or every real token, all_tokens) of every prompt at
// `layers`; streams shards to options.out_dir when it is set (see above). Same values as one big
// get_token_activations (or a trace's point at the unpadded positions).
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
  bool all_tokens() const { return all_tokens_; }          // every real token (else one per prompt)
  int64_t num_rows() const { return num_rows_; }           // N: prompts, or tokens when all_tokens
  const std::string& model() const { return model_; }      // the model as the collection names it
  Point point() const { return point_; }                   // the per-layer point collected
  int64_t num_shards() const { return static_cast<int64_t>(shards_.size()); }
  const std::filesystem::path& shard_path(int64_t i) const { return shards_.at(static_cast<size_t>(i)); }
  int64_t shard_rows(int64_t i) const { return shard_rows_.at(static_cast<size_t>(i)); }

  // Every shard concatenated: [layers, N, hidden] (a subset of the stored layers when given), in the stored dtype.
  torch::Tensor load(const std::vector<int>& layers = {}) const;
  // One stored layer: [N, hidden].
  torch::Tensor layer(int layer) const;
  // One stored layer of one shard: [shard_rows(shard), hidden] (for reading a collection shard by shard).
  torch::Tensor shard_layer(int64_t shard, int layer) const;
  // The prompt indices, concatenated: [N] int64.
  torch::Tensor prompt_index() const;
  // The positions of the tokens in their prompts, concatenated: [N] int64 (all_tokens collections only).
  torch::Tensor position() const;

 private:
  void check_layer(int layer) const;  // an Error naming the collection when `layer` is not stored

  std::filesystem::path dir_;
  std::string manifest_json_;
  std::vector<int> layers_;
  int64_t num_prompts_ = 0, hidden_ = 0, num_rows_ = 0;
  bool all_tokens_ = false;
  std::string model_;
  Point point_ = Point::LayerOutput;
  std::vector<std::filesystem::path> shards_;
  std::vector<int64_t> shard_rows_;
};

// ActivationShards::open(dir).load(layers).
torch::Tensor load_activations(const std::filesystem::path& dir, const std::vector<int>& layers = {});

}  // namespace nnterp

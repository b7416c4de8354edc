#include "model/weights.hpp"

#include <algorithm>
#include <limits>
#include <cstdio>
#include <regex>
#include <set>

#include "core/name_patterns.hpp"
#include "core/tensor_text.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

const torch::Tensor* Weights::find(const WeightId& id) const {
  auto it = tensors.find(id);
  return it == tensors.end() ? nullptr : &it->second;
}

const torch::Tensor& Weights::get(const WeightId& id) const {
  if (const auto* t = find(id)) return *t;
  throw Error(ErrorKind::MissingWeight, id.name(), "the standardized weight was not loaded");
}

torch::Tensor Weights::get_or_undefined(const WeightId& id) const {
  const auto* t = find(id);
  return t ? *t : torch::Tensor();
}

RowBlocks Weights::rows_or_empty(const WeightId& id) const {
  if (const auto* t = find(id)) return {*t};
  auto it = row_blocks.find(id);
  return it == row_blocks.end() ? RowBlocks{} : it->second;
}

RowBlocks Weights::rows(const WeightId& id) const {
  auto blocks = rows_or_empty(id);
  if (blocks.empty()) throw Error(ErrorKind::MissingWeight, id.name(), "the standardized weight was not loaded");
  return blocks;
}

namespace {

// Re-orders fused QKV rows into the canonical [q (heads·hd) | k (kv·hd) | v (kv·hd)].
torch::Tensor canonical_qkv(const torch::Tensor& t, WeightTransform transform, const AttentionSpec& a) {
  if (transform == WeightTransform::None || t.dim() == 0) return t;
  const int64_t H = a.num_heads, KV = a.num_kv_heads, hd = a.head_dim;
  auto rest = t.sizes().slice(1).vec();  // [in] for weights, [] for biases
  auto shaped = [&](std::vector<int64_t> lead) {
    lead.insert(lead.end(), rest.begin(), rest.end());
    return lead;
  };
  auto flat = [&](const torch::Tensor& x) {
    return x.reshape(shaped({-1}));
  };
  switch (transform) {
    case WeightTransform::QkvPerHeadInterleaved: {
      // rows [h0: q,k,v | h1: q,k,v | ...]
      auto v = t.reshape(shaped({H, 3, hd})).transpose(0, 1);
      return flat(v.contiguous());
    }
    case WeightTransform::QkvFalconGroups: {
      // rows per kv group: [q × (H/KV), k, v]
      const int64_t g = H / KV;
      auto v = t.reshape(shaped({KV, g + 2, hd}));
      auto q = v.narrow(1, 0, g), k = v.narrow(1, g, 1), val = v.narrow(1, g + 1, 1);
      return torch::cat({flat(q.contiguous()), flat(k.contiguous()), flat(val.contiguous())}, 0);
    }
    case WeightTransform::QkvCodegenMp4: {
      // 4 chunks, each [q | v | k] of (H/4)·hd rows; heads are numbered chunk-major.
      const int64_t mp = 4, local = H * hd / mp;
      auto v = t.reshape(shaped({mp, 3, local}));
      auto q = v.select(1, 0), val = v.select(1, 1), k = v.select(1, 2);
      return torch::cat({flat(q.contiguous()), flat(k.contiguous()), flat(val.contiguous())}, 0);
    }
    default:
      return t;
  }
}

// Expert `id.expert`'s slice of a tensor stored for every expert, [experts, ...]: a view.
torch::Tensor select_expert(const torch::Tensor& all, const std::string& name, const WeightId& id) {
  if (all.dim() < 2 || id.expert < 0 || id.expert >= all.size(0))
    throw Error(ErrorKind::Shape, name,
                "expected [experts, ...] with at least " + std::to_string(id.expert + 1) + " experts, got " +
                    shape_text(all.sizes()),
                "config.json's expert count and the checkpoint disagree");
  return all.select(0, id.expert);
}

// The token mixer a layer weight belongs to; Attention for the rest (norms, MLP), which every
// mixer's layer has.
Mixer mixer_of(Weight weight) {
  switch (weight) {
    case Weight::ConvIn:
    case Weight::ConvInBias:
    case Weight::ConvKernel:
    case Weight::ConvKernelBias:
    case Weight::ConvOut:
    case Weight::ConvOutBias:
      return Mixer::ShortConv;
    case Weight::DeltaQkvz:
    case Weight::DeltaBa:
    case Weight::DeltaConv:
    case Weight::DeltaALog:
    case Weight::DeltaDtBias:
    case Weight::DeltaNorm:
    case Weight::DeltaOut:
      return Mixer::GatedDeltaNet;
    default:
      return Mixer::Attention;
  }
}

// The attention weights (layers.{i}.attn.*), which a layer without attention does not have.
bool attention_only(Weight weight) { return std::string(weight_info(weight).pattern).rfind("layers.{i}.attn.", 0) == 0; }

// Whether layer i has a use for `weight`: a short-convolution layer has no attention weights and an
// attention layer no convolution; an MoE model's dense layers have no router or shared expert, and
// its MoE layers no dense MLP.
bool layer_uses(const ArchSpec& spec, Weight weight, int layer) {
  const Mixer mixer = spec.layers[static_cast<size_t>(layer)].mixer;
  if (mixer_of(weight) != Mixer::Attention && mixer_of(weight) != mixer) return false;
  if (attention_only(weight) && mixer != Mixer::Attention) return false;
  if (spec.mlp.kind != MlpKind::MoE) return true;
  const bool moe = layer_mlp_kind(spec, layer) == MlpKind::MoE;
  switch (weight) {
    case Weight::Router:
    case Weight::RouterBias:
    case Weight::RouterScoreBias:
    case Weight::SharedGateUp:
    case Weight::SharedDown:
    case Weight::SharedGate:
      return moe;
    case Weight::GateUp:
    case Weight::GateUpBias:
    case Weight::Up:
    case Weight::UpBias:
    case Weight::Down:
    case Weight::DownBias:
      return !moe;
    default:
      return true;
  }
}

// How many whole dot-separated components `a` and `b` share from the start.
size_t shared_components(const std::string& a, const std::string& b) {
  size_t n = 0;
  for (size_t k = 0; k < a.size() && k < b.size() && a[k] == b[k]; ++k) n += a[k] == '.';
  return n;
}

// " (nearest mapped: <hf> → <standardized>)" for the used tensor closest to the unused `name`:
// among those sharing the most leading components with it (the same module, ideally), the
// nearest by edit distance. Empty unless that one differs only in its last two components
// (model.layers.0.mlp.gate_proj.bias ~ model.layers.0.mlp.gate_proj.weight), so that a foreign
// tensor (vision_tower.*) gets no misleading suggestion. O(used) per call.
std::string nearest_mapped(const std::string& name, const std::map<std::string, WeightId>& used) {
  size_t best = 0;
  std::vector<std::string> candidates;
  for (const auto& [hf, id] : used) {
    const size_t shared = shared_components(name, hf);
    if (shared < best || shared == 0) continue;
    if (shared > best) candidates.clear(), best = shared;
    candidates.push_back(hf);
  }
  const size_t components = static_cast<size_t>(std::count(name.begin(), name.end(), '.')) + 1;
  if (candidates.empty() || best + 2 < components) return "";
  const std::string nearest = nearest_name(name, candidates);
  return " (nearest mapped: " + nearest + " → " + used.at(nearest).name() + ")";
}

// float16 holds magnitudes up to 65504 only: a wider weight beyond it would become inf.
void check_float16_range(const torch::Tensor& converted, const std::vector<std::string>& names, const io::WeightStore& store) {
  if (torch::isfinite(converted).all().item<bool>()) return;
  for (const auto& name : names) {
  const auto stored = store.stored(name);
  if (!torch::isfinite(stored).all().item<bool>()) continue;  // already inf/NaN: validation reports it
  const double largest = stored.to(torch::kFloat64).abs().max().item<double>();
  if (largest <= static_cast<double>(std::numeric_limits<c10::Half>::max())) continue;
  throw Error(ErrorKind::Unsupported, name,
              "the weight does not fit float16: its largest magnitude is " + std::to_string(largest) +
                  " (float16's is 65504), so it would become inf",
              "load the model in bfloat16 or float32 (--dtype bfloat16)");
  }
}

}  // namespace

Weights load_weights(const ArchSpec& spec, const io::WeightStore& store, const WeightPlacement& placement,
                     WeightLoadStats* stats) {
  Weights out;
  WeightLoadStats counted;
  std::map<std::string, WeightId> used;                  // HF name → the weight built from it
  std::vector<std::pair<WeightId, std::string>> missing;  // (weight, absent HF name)
  const int experts = spec.mlp.kind == MlpKind::MoE ? static_cast<int>(spec.mlp.moe.num_experts) : 0;

  auto load_one = [&](const WeightId& id, const WeightSource& source) {
    std::vector<std::string> names;
    std::vector<std::string> absent;
    for (const auto& part : source.parts) {
      names.push_back(expand_name_pattern(part, id.layer, id.expert));
      for (const auto& [prefix, alias] : spec.prefix_aliases)
        if (!store.contains(names.back()) && names.back().rfind(prefix, 0) == 0 &&
            store.contains(alias + names.back().substr(prefix.size())))
          names.back() = alias + names.back().substr(prefix.size());
      if (!store.contains(names.back())) absent.push_back(names.back());
    }
    if (!absent.empty()) {
      if (source.optional && absent.size() == names.size()) return;
      for (auto& n : absent) missing.emplace_back(id, n);
      return;
    }
    std::vector<torch::Tensor> parts;  // as stored: views of the memory-mapped files
    for (const auto& n : names) {
      parts.push_back(store.stored(n));
      if (source.transform == WeightTransform::Transpose && parts.back().dim() == 2) parts.back() = parts.back().t();
      if (source.transform == WeightTransform::SelectExpert) parts.back() = select_expert(parts.back(), n, id);
      if (source.transform == WeightTransform::SelectExpertTransposed) parts.back() = select_expert(parts.back(), n, id).t();
      used.emplace(n, id);
    }
    for (size_t k = 1; k < parts.size(); ++k)  // parts stack along their rows: the rest must agree
      if (parts[k].dim() != parts[0].dim() || parts[k].sizes().slice(parts[k].dim() ? 1 : 0) != parts[0].sizes().slice(parts[0].dim() ? 1 : 0))
        throw Error(ErrorKind::Shape, id.name(),
                    "its parts cannot be stacked: " + names[0] + " is " + shape_text(parts[0].sizes()) + " but " + names[k] +
                        " is " + shape_text(parts[k].sizes()),
                    "config.json and the checkpoint disagree, or the checkpoint is corrupt");
    bool stored_as_needed = placement.device.is_cpu() && (source.transform == WeightTransform::None ||
                                                          source.transform == WeightTransform::Transpose ||
                                                          source.transform == WeightTransform::SelectExpert ||
                                                          source.transform == WeightTransform::SelectExpertTransposed);
    for (const auto& p : parts) stored_as_needed = stored_as_needed && p.scalar_type() == placement.dtype;
    // Several 2-D parts: kept as row blocks (a fused copy of q|k|v or gate|up would double them).
    const bool blocks = stored_as_needed && parts.size() > 1 && parts[0].dim() == 2 && source.transform == WeightTransform::None;
    const bool in_place = blocks || (stored_as_needed && parts.size() == 1);
    torch::Tensor tensor = parts[0];
    if (!in_place) {
      // One allocation in the model's dtype that each part is converted (and transposed) into:
      // no per-part temporaries, which would stay in the heap after the load.
      auto shape = parts[0].sizes().vec();  // empty for a scalar (xIELU's beta), which has no rows
      if (!shape.empty()) {
        shape[0] = 0;
        for (const auto& p : parts) shape[0] += p.dim() ? p.size(0) : 1;
      }
      tensor = torch::empty(shape, torch::TensorOptions().dtype(placement.dtype));
      int64_t row = 0;
      for (const auto& p : parts) {
        const int64_t n = p.dim() ? p.size(0) : 1;
        (p.dim() ? tensor.narrow(0, row, n) : tensor).copy_(p);
        row += n;
      }
      if (placement.dtype == torch::kFloat16 && parts[0].scalar_type() != torch::kFloat16)
        check_float16_range(tensor, names, store);
      tensor = canonical_qkv(tensor, source.transform, spec.attn);
    }
    if (!placement.device.is_cpu()) tensor = tensor.to(placement.device);
    int64_t bytes = 0;
    for (const auto& p : blocks ? parts : std::vector<torch::Tensor>{tensor}) bytes += static_cast<int64_t>(p.nbytes());
    (in_place ? counted.bytes_in_place : counted.bytes_copied) += bytes;
    // A copied source's file pages are dropped at once, so that the peak stays near the model's
    // size (a later in-place use of the same tensor would read its pages back from the file).
    if (!in_place)
      for (const auto& n : names) store.release(n);
    if (blocks) out.row_blocks[id] = parts;
    else out.tensors[id] = tensor;
    out.sources[id] = names;
  };

  const int layers = static_cast<int>(spec.num_layers);
  for (const auto& [weight, source] : spec.weights) {
    switch (weight_info(weight).scope) {
      case WeightScope::Model:
        load_one(WeightId{weight}, source);
        break;
      case WeightScope::Layer:
        for (int i = 0; i < layers; ++i)
          if (layer_uses(spec, weight, i)) load_one(WeightId{weight, i}, source);
        break;
      case WeightScope::Expert:
        for (int i = 0; i < layers; ++i)
          if (layer_mlp_kind(spec, i) == MlpKind::MoE)
            for (int e = 0; e < experts; ++e) load_one(WeightId{weight, i, e}, source);
        break;
    }
  }

  // Tied embeddings: lm_head reuses the embedding matrix when the checkpoint has no lm_head.
  const WeightId embed{Weight::Embed}, head{Weight::LmHead};
  if (spec.tie_embeddings && !out.find(head) && out.find(embed)) {
    missing.erase(std::remove_if(missing.begin(), missing.end(), [&](const auto& m) { return m.first == head; }),
                  missing.end());
    out.tensors[head] = out.get(embed);
    out.sources[head] = out.sources[embed];
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& [id, hf] : missing) list += "\n    " + hf + " (for " + id.name() + ")";
    throw Error(ErrorKind::MissingWeight, store.describe(),
                std::to_string(missing.size()) + " tensor(s) that " + spec.name + " needs are absent:" + list,
                "is this checkpoint really a '" + spec.name + "' model, complete and unconverted?");
  }
  if (stats) *stats = counted;

  // Every checkpoint tensor should be used: an unused one means a computation nnterp would skip.
  std::vector<std::regex> ignored;
  for (const auto& pattern : spec.ignored_weights) {
    std::string re;
    for (char ch : pattern) re += (ch == '.') ? std::string("\\.") : std::string(1, ch);
    for (auto key : {"{i}", "{e}"})
      for (size_t at = re.find(key); at != std::string::npos; at = re.find(key)) re.replace(at, 3, "[0-9]+");
    ignored.emplace_back(re);
  }
  if (spec.tie_embeddings) ignored.emplace_back("lm_head\\.weight");
  std::vector<std::string> unexpected;
  for (const auto& name : store.names()) {
    if (used.count(name)) continue;
    bool skip = false;
    for (const auto& re : ignored) skip = skip || std::regex_match(name, re);
    if (!skip) unexpected.push_back(name);
  }
  if (!unexpected.empty()) {
    constexpr size_t kListed = 20;  // only these get a nearest-mapped suggestion
    std::string list;
    for (size_t k = 0; k < unexpected.size() && k < kListed; ++k)
      list += "\n    " + unexpected[k] + nearest_mapped(unexpected[k], used);
    if (unexpected.size() > kListed) list += "\n    ... and " + std::to_string(unexpected.size() - kListed) + " more";
    const std::string what = std::to_string(unexpected.size()) + " checkpoint tensor(s) are not used by nnterp's '" +
                             spec.name + "' description";
    if (spec.unused_tensors == UnusedTensors::Warn) {
      std::fprintf(stderr, "nnterp: warning: %s: %s (loaded anyway):%s\n", store.describe().c_str(), what.c_str(),
                   list.c_str());
      return out;
    }
    throw Error(ErrorKind::UnexpectedWeight, store.describe(), what + ":" + list,
                "the checkpoint has a component nnterp does not implement; results would be wrong");
  }
  return out;
}

}  // namespace nnterp::model

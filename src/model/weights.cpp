#include "model/weights.hpp"

#include <algorithm>
#include <regex>
#include <set>

#include "nnterp/error.hpp"

namespace nnterp::model {

const torch::Tensor* Weights::find(const std::string& name) const {
  auto it = tensors.find(name);
  return it == tensors.end() ? nullptr : &it->second;
}

const torch::Tensor& Weights::get(const std::string& name) const {
  if (const auto* t = find(name)) return *t;
  throw Error(ErrorKind::MissingWeight, name, "the standardized weight was not loaded");
}

torch::Tensor Weights::get_or_undefined(const std::string& name) const {
  const auto* t = find(name);
  return t ? *t : torch::Tensor();
}

std::string expand_name(const std::string& pattern, int64_t layer, int64_t expert) {
  std::string out = pattern;
  for (auto [key, value] : {std::pair<const char*, int64_t>{"{i}", layer}, {"{e}", expert}}) {
    for (size_t at = out.find(key); at != std::string::npos; at = out.find(key))
      out.replace(at, 3, std::to_string(value));
  }
  return out;
}

namespace {

// Re-orders fused QKV rows into the canonical [q (heads·hd) | k (kv·hd) | v (kv·hd)].
torch::Tensor canonical_qkv(const torch::Tensor& t, WeightTransform transform, const AttentionSpec& a) {
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

}  // namespace

Weights load_weights(const ArchSpec& spec, const io::WeightStore& store, torch::ScalarType dtype) {
  Weights out;
  std::set<std::string> used;
  std::vector<std::string> missing;
  const int64_t experts = spec.mlp.kind == MlpKind::MoE ? spec.mlp.moe.num_experts : 0;

  auto load_one = [&](const std::string& std_name, const WeightSource& source, int64_t layer, int64_t expert) {
    std::vector<std::string> names;
    std::vector<std::string> absent;
    for (const auto& part : source.parts) {
      names.push_back(expand_name(part, layer, expert));
      for (const auto& [prefix, alias] : spec.prefix_aliases)
        if (!store.contains(names.back()) && names.back().rfind(prefix, 0) == 0 &&
            store.contains(alias + names.back().substr(prefix.size())))
          names.back() = alias + names.back().substr(prefix.size());
      if (!store.contains(names.back())) absent.push_back(names.back());
    }
    if (!absent.empty()) {
      if (source.optional && absent.size() == names.size()) return;
      for (auto& n : absent) missing.push_back(n + " (for " + std_name + ")");
      return;
    }
    std::vector<torch::Tensor> parts;
    for (const auto& n : names) {
      auto t = store.get(n, dtype);
      if (source.transform == WeightTransform::Transpose && t.dim() == 2) t = t.t().contiguous();
      parts.push_back(t);
      used.insert(n);
    }
    auto tensor = parts.size() == 1 ? parts[0] : torch::cat(parts, 0);
    out.tensors[std_name] = canonical_qkv(tensor, source.transform, spec.attn);
    out.sources[std_name] = names;
  };

  for (const auto& [pattern, source] : spec.weights) {
    const bool per_layer = pattern.find("{i}") != std::string::npos;
    const bool per_expert = pattern.find("{e}") != std::string::npos;
    for (int64_t i = 0; i < (per_layer ? spec.num_layers : 1); ++i)
      for (int64_t e = 0; e < (per_expert ? experts : 1); ++e)
        load_one(expand_name(pattern, per_layer ? i : -1, per_expert ? e : -1), source, i, e);
  }

  // Tied embeddings: lm_head reuses the embedding matrix when the checkpoint has no lm_head.
  if (spec.tie_embeddings && !out.find("lm_head.weight") && out.find("embed.weight")) {
    missing.erase(std::remove_if(missing.begin(), missing.end(),
                                 [](const std::string& m) { return m.find("(for lm_head.weight)") != std::string::npos; }),
                  missing.end());
    out.tensors["lm_head.weight"] = out.get("embed.weight");
    out.sources["lm_head.weight"] = out.sources["embed.weight"];
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& m : missing) list += "\n    " + m;
    throw Error(ErrorKind::MissingWeight, store.describe(),
                std::to_string(missing.size()) + " tensor(s) that " + spec.name + " needs are absent:" + list,
                "is this checkpoint really a '" + spec.name + "' model, complete and unconverted?");
  }

  // Every checkpoint tensor must be used: an unused one means a computation nnterp would skip.
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
    std::string list;
    for (size_t k = 0; k < unexpected.size() && k < 20; ++k) list += "\n    " + unexpected[k];
    if (unexpected.size() > 20) list += "\n    ... and " + std::to_string(unexpected.size() - 20) + " more";
    throw Error(ErrorKind::UnexpectedWeight, store.describe(),
                std::to_string(unexpected.size()) + " checkpoint tensor(s) are not used by nnterp's '" + spec.name +
                    "' description:" + list,
                "the checkpoint has a component nnterp does not implement; results would be wrong");
  }
  return out;
}

}  // namespace nnterp::model

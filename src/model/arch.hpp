// ArchSpec: the declarative description of one HuggingFace architecture that drives the single
// generic decoder (decoder.cpp). An architecture file (archs/<name>.cpp) turns a config.json into
// an ArchSpec: sizes, one enum per structural axis, and the map from HF weight names to the
// standardized weights. No torch here: architecture files compile fast and are fuzzable.
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "nnterp/config.hpp"
#include "nnterp/weight_names.hpp"

namespace nnterp::model {

enum class NormKind {
  LayerNorm,               // (x - mean) / sqrt(var + eps) * w + b (bias optional)
  RMSNorm,                 // w * x / sqrt(mean(x²) + eps)
  RMSNormPlusOne,          // Gemma: (1 + w) * x / sqrt(mean(x²) + eps)
  NonParametricLayerNorm,  // OLMo: LayerNorm without weight or bias
  NonParametricRMSNorm,    // Llama-4's L2 QK-norm: x / sqrt(mean(x²) + eps) in float32, no weight
};

struct NormSpec {
  NormKind kind = NormKind::RMSNorm;
  double eps = 1e-5;
  // In bfloat16/float16 (no effect in float32): the weight (and bias) applied in float32 with one
  // rounding at the end (OLMo2's RMSNorm, Cohere's LayerNorm), instead of Llama's
  // `weight * normed.to(dtype)`. Gemma's (1 + w) norm always works so.
  bool weight_in_float32 = false;
};

enum class Activation {
  GeluTanh,  // the tanh approximation, one kernel (gelu_pytorch_tanh)
  GeluNew,   // the same formula as HF's gelu_new spells it, op by op: in bf16/f16 each op rounds
  GeluExact,
  Silu,
  Relu,
  Relu2,  // relu(x)²: Arcee's MLP (HF "relu2")
  Xielu,  // xIELU (Apertus) with per-layer parameters (Weight::XieluAlphaP ...): see xielu() in blocks.hpp
};

// How a block combines its branches with the residual stream.
enum class Residual {
  Sequential,  // h = x + attn(norm1(x)); out = h + mlp(norm2(h))
  Parallel,    // out = x + attn(norm1(x)) + mlp(norm2(x) or norm1(x) when no norm2)
};

enum class PositionKind { None, Learned, Rotary, Alibi };
enum class RotaryLayout {
  Half,        // rotate_half: dims [0:d/2] pair with [d/2:d] (LLaMA, NeoX)
  Interleaved  // rotate_every_two: pairs (0,1), (2,3), ... (GPT-J, CodeGen, Cohere)
};
enum class RopeScaling {
  None,
  Linear,
  Llama3,
  Yarn,
  LongRope,  // per-dim factors, short or long by the sequence's length (PhiMoE): see RotarySpec
};
enum class AlibiKind { Bloom, Mpt };

struct RotarySpec {
  int64_t dim = 0;  // rotated dims per head (partial rotary: < head_dim)
  RotaryLayout layout = RotaryLayout::Half;
  double theta = 10000.0;
  RopeScaling scaling = RopeScaling::None;
  double factor = 1.0;  // linear / llama3 / yarn
  double low_freq_factor = 1.0, high_freq_factor = 4.0;  // llama3
  int64_t original_max_position = 8192;                  // llama3 / yarn
  double beta_fast = 32, beta_slow = 1;                  // yarn: the ramp's bounds, in rotations
  bool truncate = true;                                  // yarn: floor/ceil the ramp's bounds
  double attention_factor = 1.0;                         // multiplies cos and sin (yarn; longrope's short regime)
  // longrope: inv_freq_i = 1 / (factor_i · θ^(2i/d)) with the long factors (and cos/sin ×
  // long_attention_factor) once the sequence — cached and new positions, pads counted, as HF's
  // PhiMoE measures it — is longer than original_max_position, else the short ones.
  std::vector<double> short_factors, long_factors;
  double long_attention_factor = 1.0;

  bool operator==(const RotarySpec& o) const {
    return dim == o.dim && layout == o.layout && theta == o.theta && scaling == o.scaling && factor == o.factor &&
           low_freq_factor == o.low_freq_factor && high_freq_factor == o.high_freq_factor &&
           original_max_position == o.original_max_position && beta_fast == o.beta_fast &&
           beta_slow == o.beta_slow && truncate == o.truncate && attention_factor == o.attention_factor &&
           short_factors == o.short_factors && long_factors == o.long_factors &&
           long_attention_factor == o.long_attention_factor;
  }
};

// What mixes a layer's tokens (the branch whose output is the standardized attn_output).
enum class Mixer {
  Attention,
  // LFM2's gated short convolution: [b | c | x] = in(h); y = c · causal_depthwise_conv(b · x);
  // out(y). Its state (the cache) is the last kernel − 1 conv inputs; no q / k / v / probabilities.
  ShortConv,
  // Qwen3-Next's Gated DeltaNet (DeltaNetSpec): a linear-attention recurrence whose state is a
  // [key_dim × value_dim] matrix per value head, after a short causal convolution of q, k, v.
  GatedDeltaNet,
};

struct DeltaNetSpec {
  int64_t key_heads = 0, value_heads = 0, key_dim = 0, value_dim = 0;
  int64_t conv_kernel = 4;
  double norm_eps = 1e-6;  // the gated output norm
};

// Per-layer attention geometry: which positions a query sees and how positions are encoded.
struct LayerSpec {
  Mixer mixer = Mixer::Attention;
  int64_t sliding_window = 0;            // 0: full causal; W: key j visible to query i iff i-W < j <= i
  PositionKind positions = PositionKind::None;  // Rotary here; Learned/Alibi are model-level
  RotarySpec rotary;
  bool dense_mlp = false;  // in an MoE model, a layer with a dense SwiGLU (Qwen3-MoE's mlp_only_layers)
  // Chunked attention (Llama-4): the real tokens of a row form chunks of this many from its first
  // real token, and a query sees the keys of its own chunk only (causally). 0: off.
  int64_t attention_chunk = 0;
  bool qk_norm = true;              // false: this layer skips the model's QK-norm (Llama-4's NoPE layers)
  bool temperature_tuning = false;  // q × AttentionSpec's temperature at each position (Llama-4's NoPE layers)
};

enum class QkNorm {
  None,
  PerHead,          // one norm over head_dim shared by all heads (Qwen3, Gemma3)
  PerHeadSeparate,  // a separate norm per head (StableLM qk_layernorm)
  WholeProjection,  // over the whole q / k projection before the head split (OLMo2, OLMoE)
};

// Where rotary embeddings round in a bfloat16/float16 model.
enum class RotaryPrecision {
  InDtype,            // Llama: cos/sin rounded to the dtype, q·cos + rotate(q)·sin in the dtype
  Float32Math,        // Cohere: cos/sin rounded to the dtype, the rotation in float32, one rounding
  Float32,            // OLMo, OLMo2: float32 cos/sin and rotation, one rounding
};

// Where attention scores round in a bfloat16/float16 model.
enum class ScoreRounding {
  AfterMatmul,  // Llama: q·k in the dtype, then scale, softcap, masks
  Never,        // GPT-J, CodeGen, GPT-Neo: q and k upcast, scores in float32 up to the softmax
  AfterAlibi,   // Bloom: baddbmm(alibi, q, k, alpha = scale), one rounding of scale·q·k + alibi
};

// Multi-head latent attention (DeepSeek-V2/V3): q = q_b(rms(q_a(x))) (or a lone q projection when
// q_lora_rank is 0); kv_a(x) = [c (kv_lora_rank) | k_rope (qk_rope_dim, one head shared by all)];
// kv_b(rms(c)) = per head [k_nope | v]; q = [q_nope | rope(q_rope)], k = [k_nope | rope(k_rope)].
// Computed unabsorbed, as HF does: per-head keys and values are materialised and cached.
struct MlaSpec {
  int64_t kv_lora_rank = 0;  // 0: not MLA
  int64_t q_lora_rank = 0;   // 0: q from one projection of x
  int64_t qk_nope_dim = 0, qk_rope_dim = 0;
  // DeepSeek-V3's rope_interleave: q_rope / k_rope are de-interleaved ([x0, x2, ..., x1, x3, ...])
  // before a rotate_half rotary, and stay so (q·k is the same as interleaved-pair rotary's).
  bool rope_deinterleave = false;
  double norm_eps = 1e-6;    // q_a_layernorm / kv_a_layernorm
};

struct AttentionSpec {
  int64_t num_heads = 0, num_kv_heads = 0, head_dim = 0;
  int64_t v_head_dim = 0;  // the value heads' size when it differs from head_dim (MLA); 0: head_dim
  MlaSpec mla;
  double scale = 0;      // multiplies q·k; 0 means 1/sqrt(head_dim)
  double softcap = 0;    // Gemma-2: tanh(s / c) * c on the scaled scores, 0 = off
  double clip_qkv = 0;   // OLMo: clamp q, k, v to [-c, c], 0 = off
  QkNorm qk_norm = QkNorm::None;
  NormSpec qk_norm_spec;
  bool qk_norm_after_rotary = false;
  // Llama-4's attention temperature tuning (LayerSpec::temperature_tuning): q at index c of the
  // padded sequence (pads counted, as HF's cache_position) is × 1 + scale·log1p(floor((c + 1) / floor)).
  double temperature_scale = 0, temperature_floor = 1;
  // Qwen3-Next: q's projection gives per head [q_h | gate_h] and the heads' output (before the
  // output projection) is × sigmoid(gate).
  bool output_gate = false;
  // With Weight::AttnSinks mapped (gpt-oss), each head's sink logit joins every query row's softmax
  // as one more key that no value belongs to: the probabilities sum to less than 1.  // HunYuan: the per-head QK-norm on the rotated q / k (others: before)
  // Rounding in bfloat16/float16 (no effect in float32), from each HF modeling file:
  RotaryPrecision rotary_precision = RotaryPrecision::InDtype;
  ScoreRounding score_rounding = ScoreRounding::AfterMatmul;
  bool scale_query = false;  // OPT: q is scaled (and rounded) before q·k, not the scores after

  int64_t value_dim() const { return v_head_dim > 0 ? v_head_dim : head_dim; }
  bool latent() const { return mla.kv_lora_rank > 0; }
};

enum class MlpKind {
  Plain,  // down(act(up(x)))
  Gated,  // down(act(gate(x)) * up(x))
  MoE,    // router → top-k of gated experts (+ optional shared expert)
};

// How a router turns its logits into per-expert scores.
enum class RouterScoring {
  Softmax,  // softmax over all experts, in float32 (Mixtral, Qwen-MoE, DeepSeek-V2, ERNIE)
  Sigmoid,  // sigmoid of each logit (DeepSeek-V3, GLM-4.5, dots1, Llama-4)
  // PhiMoE's sparsemixer (top-2, eval): expert 1 is the best logit, weighted by a softmax over the
  // experts within 2·jitter (relative) of it; expert 2 the best of the others, weighted likewise
  // among the experts left.
  Sparsemixer,
};
// Group-limited routing (DeepSeek): the experts form `groups` equal groups and only the experts
// of the `top_groups` best groups may be chosen (the others' scores are set to 0.0, as in HF).
enum class GroupScore {
  Max,      // a group's best score (DeepSeek-V2's group_limited_greedy)
  SumTop2,  // the sum of its two best scores (DeepSeek-V3's noaux_tc)
};

struct MoeSpec {
  int64_t num_experts = 0, top_k = 0;
  RouterScoring scoring = RouterScoring::Softmax;
  bool router_in_float32 = false;  // the router's product in float32 (DeepSeek-V3, ERNIE), not the model's dtype
  // The experts are chosen by score + Weight::RouterScoreBias when that is mapped (DeepSeek-V3's
  // correction bias) and weighted by the unbiased score.
  int64_t groups = 1, top_groups = 1;
  GroupScore group_score = GroupScore::Max;
  bool normalize_top_k = false;    // divide the k routing weights by their sum ...
  double normalize_epsilon = 0;    // ... plus this (DeepSeek-V3: 1e-20)
  double normalize_floor = 0;      // ... or by at least this (ERNIE: moe_norm_min)
  double routed_scaling = 1.0;     // × the routing weights (DeepSeek routed_scaling_factor)
  double jitter = 0;               // Sparsemixer: router_jitter_noise
  bool sum_in_float32 = false;     // weighted expert outputs summed in float32, rounded once (DeepSeek-V3)
  bool weight_on_input = false;    // the routing weight multiplies the expert's input, not its output (Llama-4)
  bool shared_expert = false;      // + shared_mlp(x), times sigmoid(gate(x)) when Weight::SharedGate is mapped (Qwen2-MoE)
};

struct MlpSpec {
  MlpKind kind = MlpKind::Gated;
  Activation activation = Activation::Silu;
  int64_t intermediate = 0;
  // Gated MLPs: gate and up alternate in gate_up's outputs (gate = 0::2, up = 1::2; gpt-oss) instead
  // of [gate | up].
  bool gate_up_interleaved = false;
  // gpt-oss's clamped SwiGLU when > 0: gate ≤ limit, up in [-limit, limit],
  // hidden = (up + 1) · gate · sigmoid(1.702 · gate). The activation is then unused.
  double swiglu_limit = 0;
  MoeSpec moe;
};

// HF modules whose output (the standardized point) already includes the residual.
struct BranchQuirks {
  bool attn_output_includes_residual = false;  // Bloom
  bool mlp_output_includes_residual = false;   // Bloom, MPT
  // Parallel blocks: (attn + mlp) + x (NeoX, Falcon, Phi, GPT-J, CodeGen) instead of
  // (x + attn) + mlp (Cohere, StableLM). Additions round, so the order shows in bf16.
  bool parallel_branches_summed_first = false;
};

// How a standardized weight is assembled from checkpoint tensors. HF names may contain "{i}"
// (layer) and "{e}" (expert). Parts are concatenated along dim 0 (output rows) after the transform.
enum class WeightTransform {
  None,
  Transpose,           // GPT-2 Conv1D stores [in, out]
  QkvPerHeadInterleaved,  // NeoX/Bloom fused rows per head [h0: q,k,v | h1: q,k,v | ...]
  QkvFalconGroups,     // Falcon new arch: per kv group [q ... q, k, v]
  QkvCodegenMp4,       // CodeGen: 4 chunks, each [q | v | k] for heads/4 heads
  SelectExpert,        // an Expert weight stored for all experts at once, [experts, ...]: expert e's slice (GraniteMoE)
  SelectExpertTransposed,  // the same for [experts, in, out] used as x @ W (gpt-oss, Llama-4): the slice transposed
};

struct WeightSource {
  std::vector<std::string> parts;  // HF names, concatenated along dim 0
  WeightTransform transform = WeightTransform::None;
  bool optional = false;           // absent from the checkpoint: the weight is simply not used (e.g. a bias)
};

// Standardized weight → how to build it. The keys are the typed vocabulary of
// include/nnterp/weight_names.hpp (a misspelled key does not compile); a Layer-scoped weight is
// loaded once per layer, an Expert-scoped one once per layer and expert, with "{i}" / "{e}" in
// its HF source names expanded.
using WeightMap = std::map<Weight, WeightSource>;

// What load_weights does with a checkpoint tensor that no WeightSource reads (and that
// `ignored_weights` does not list). Error is the default and what every architecture uses: an
// unused tensor means nnterp would silently run a different model than the checkpoint's (a bias,
// a gate, a norm that HF applies and nnterp skips). `ignored_weights` is the place for tensors
// known not to be parameters (causal-mask and rotary buffers saved by old exports); those are
// skipped silently under either policy. Warn prints the unused tensors on stderr and loads the
// model anyway: only for an architecture whose checkpoints are known to carry dead parameters.
enum class UnusedTensors { Error, Warn };

struct ArchSpec {
  std::string name;        // registry name ("llama")
  std::string hf_class;    // "LlamaForCausalLM"
  int64_t num_layers = 0, hidden = 0, vocab = 0;
  int64_t max_positions = 0;  // 0: no hard limit (rotary / ALiBi extrapolate)

  NormSpec norm;             // every block / final norm (qk norms have their own)
  Residual residual = Residual::Sequential;
  bool pre_attn_norm = true;    // OLMo2 has none
  bool pre_mlp_norm = true;     // false in parallel blocks that reuse the attention's norm
  bool post_attn_norm = false;  // Gemma-2/3, OLMo2: norm on the attention output before the add
  bool post_mlp_norm = false;
  bool embed_norm = false;      // Bloom: LayerNorm right after the embedding
  double residual_multiplier = 1.0;  // Granite
  int64_t short_conv_kernel = 0;     // Mixer::ShortConv's kernel size (LFM2's conv_L_cache)
  DeltaNetSpec deltanet;             // Mixer::GatedDeltaNet's sizes

  PositionKind positions = PositionKind::Rotary;  // model-level kind: Learned / Alibi / Rotary / None
  int64_t learned_position_offset = 0;            // OPT: 2
  AlibiKind alibi = AlibiKind::Bloom;

  double embed_multiplier = 1.0;       // applied after the embedding module (Gemma sqrt(H), Granite)
  bool embed_multiplier_rounded = false;  // Gemma: the multiplier is a tensor of the model's dtype (rounded)
  double embed_multiplier_inside = 1.0;  // applied inside it, so visible in embed.output (Gemma-3)

  AttentionSpec attn;
  std::vector<LayerSpec> layers;  // one per layer
  MlpSpec mlp;
  BranchQuirks quirks;

  double final_softcap = 0;   // Gemma-2: tanh(logits / c) * c
  double logit_scale = 1.0;   // Cohere: × scale; Granite: × 1/logits_scaling
  bool tie_embeddings = false;

  // Non-empty when HF's own outputs for a row depend on its left padding (so a row run alone or
  // in another batch differs beyond rounding), saying how: nnterp computes what HF computes.
  std::string padding_dependence;

  WeightMap weights;
  std::vector<std::string> ignored_weights;  // HF names (with {i} / {e}) that exist but are not parameters
  UnusedTensors unused_tensors = UnusedTensors::Error;  // see UnusedTensors
  // Checkpoints saved from the base model lack the task prefix: {"transformer.", ""} lets
  // "transformer.h.0.ln_1.weight" be found as "h.0.ln_1.weight" (the hub's own gpt2 is saved so).
  std::vector<std::pair<std::string, std::string>> prefix_aliases;
};

// Building an ArchSpec from a config. Throws Error(Unsupported) for options it cannot honour.
using ArchBuilder = std::function<ArchSpec(const Config&)>;

// The registry: model_type → builder. An architecture file registers itself with NNTERP_ARCH.
void register_arch(const std::string& model_type, ArchBuilder builder);
std::vector<std::string> supported_model_types();
// Throws Error(Unsupported) naming the model_type and listing the supported ones.
ArchSpec arch_from_config(const Config& config);

struct ArchRegistration {
  ArchRegistration(const char* model_type, ArchBuilder builder) { register_arch(model_type, std::move(builder)); }
};
#define NNTERP_ARCH_CAT2(a, b) a##b
#define NNTERP_ARCH_CAT(a, b) NNTERP_ARCH_CAT2(a, b)
#define NNTERP_ARCH(model_type, builder) \
  static const ::nnterp::model::ArchRegistration NNTERP_ARCH_CAT(nnterp_arch_, __LINE__)(model_type, builder);

// ---- helpers shared by the architecture files ----------------------------------------------

// Uniform per-layer specs (same window/positions everywhere).
std::vector<LayerSpec> uniform_layers(int64_t n, const LayerSpec& spec);
// rope_scaling / rope_theta from the config (llama3, linear; anything else throws Unsupported).
RotarySpec rotary_from_config(const Config& c, int64_t rotary_dim, RotaryLayout layout,
                              double default_theta = 10000.0);
// Activation from HF names ("gelu_new", "gelu_pytorch_tanh", "silu", "gelu", "relu", ...).
Activation activation_from_name(const std::string& hf_name, const std::string& source);
// Per-layer sliding flags from `layer_types` ("sliding_attention"/"full_attention"), else from a
// legacy pattern P (layer i sliding iff (i+1) % P != 0), else from `fallback`.
std::vector<bool> sliding_layers_from_config(const Config& c, int64_t num_layers,
                                             std::function<bool(int64_t)> fallback);
// Layer i gets `window` where sliding[i], full causal attention elsewhere; with `full_layers_nope`
// the full layers also lose their positional encoding (Cohere2, EXAONE 4).
void set_sliding_layers(ArchSpec& a, const std::vector<bool>& sliding, int64_t window, bool full_layers_nope = false);
// Config keys naming one value, the first present winning (HF renamed many: "n_embd" → "hidden_size").
struct ConfigKeys {
  const char* first = nullptr;  // null: no key
  const char* second = nullptr;
};
// Where read_sizes finds the sizes of a model whose blocks use LayerNorm (gpt2 and its relatives).
struct SizeKeys {
  ConfigKeys hidden, layers, heads;
  ConfigKeys eps;            // LayerNorm epsilon, default 1e-5; no key: always 1e-5
  ConfigKeys max_positions = {};  // no key: no hard limit
};
// Reads, in this order: hidden, num_layers, vocab ("vocab_size"), max_positions, num_heads (also
// num_kv_heads: no GQA) and the LayerNorm eps; head_dim = hidden / heads. Missing keys throw as
// Config::integer does, naming every alternative.
void read_sizes(ArchSpec& a, const Config& c, const SizeKeys& keys);
// torch_dtype/dtype etc. are ignored; this checks the common keys every llama-like model has.
ArchSpec llama_like(const Config& c, const std::string& name, const std::string& hf_class);

// The MLP of layer i: MoE, or the dense SwiGLU of an MoE model's dense layer, or the model's kind.
MlpKind layer_mlp_kind(const ArchSpec& a, int64_t layer);

// Weight-map helpers for the common "model.layers.{i}...." layout.
WeightSource src(std::string name, bool optional = false);
WeightSource cat(std::vector<std::string> names, bool optional = false);
// w[weight] ← <hf_prefix>.weight, and when `with_bias` w[bias_of(weight)] ← the optional
// <hf_prefix>.bias. `weight` must have a bias twin when `with_bias` (Weight::O, Weight::Up, ...).
void map_linear(WeightMap& w, Weight weight, const std::string& hf_prefix, bool with_bias);
// The same for a norm (Weight::AttnNorm ← "model.layers.{i}.input_layernorm").
void map_norm(WeightMap& w, Weight weight, const std::string& hf_prefix, bool with_bias);
// A QK-norm of `kind` shaped like the block norm (a.norm), weights (and biases when `with_bias`)
// from the HF norms `hf_q` / `hf_k` (names with "{i}").
void use_qk_norm(ArchSpec& a, QkNorm kind, const std::string& hf_q, const std::string& hf_k, bool with_bias = false);

}  // namespace nnterp::model

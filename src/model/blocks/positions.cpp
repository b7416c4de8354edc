// Positional encodings and masks: rotary (both layouts, partial, llama3/linear scaling), ALiBi
// (Bloom and MPT slopes), causal + padding + sliding-window masks.
#include <cmath>
#include <limits>

#include "model/blocks/blocks.hpp"

namespace nnterp::model {

namespace {

bool long_regime(const RotarySpec& spec, int64_t sequence_length) {
  return spec.scaling == RopeScaling::LongRope && sequence_length > spec.original_max_position;
}

torch::Tensor inverse_frequencies(const RotarySpec& spec, int64_t sequence_length) {
  auto exponents = torch::arange(0, spec.dim, 2, torch::kInt64).to(torch::kFloat32) / static_cast<double>(spec.dim);
  auto pos_freqs = torch::pow(spec.theta, exponents);
  auto inv_freq = 1.0 / pos_freqs;
  switch (spec.scaling) {
    case RopeScaling::None: return inv_freq;
    case RopeScaling::Linear: return inv_freq / spec.factor;
    case RopeScaling::LongRope: {
      const auto& factors = long_regime(spec, sequence_length) ? spec.long_factors : spec.short_factors;
      return 1.0 / (torch::tensor(factors, torch::kFloat64).to(torch::kFloat32) * pos_freqs);
    }
    case RopeScaling::Llama3: {
      // Long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
      const double low_wavelen = spec.original_max_position / spec.low_freq_factor;
      const double high_wavelen = spec.original_max_position / spec.high_freq_factor;
      auto wavelen = 2 * M_PI / inv_freq;
      auto scaled = torch::where(wavelen > low_wavelen, inv_freq / spec.factor, inv_freq);
      auto smooth = (spec.original_max_position / wavelen - spec.low_freq_factor) /
                    (spec.high_freq_factor - spec.low_freq_factor);
      auto smoothed = (1 - smooth) * scaled / spec.factor + smooth * scaled;
      auto medium = (wavelen >= high_wavelen) & (wavelen <= low_wavelen);
      return torch::where(medium, smoothed, scaled);
    }
    case RopeScaling::Yarn: {
      // High frequencies kept (extrapolated), low ones divided by `factor` (interpolated), a linear
      // ramp over the dims between the bounds where beta_fast and beta_slow rotations fit in the
      // original context.
      auto correction_dim = [&](double rotations) {
        return spec.dim * std::log(spec.original_max_position / (rotations * 2 * M_PI)) / (2 * std::log(spec.theta));
      };
      double low = correction_dim(spec.beta_fast), high = correction_dim(spec.beta_slow);
      if (spec.truncate) low = std::floor(low), high = std::ceil(high);
      low = std::max(low, 0.0), high = std::min(high, static_cast<double>(spec.dim - 1));
      if (low == high) high += 0.001;
      auto ramp = ((torch::arange(spec.dim / 2, torch::kFloat32) - low) / (high - low)).clamp(0, 1);
      auto extrapolated = 1 - ramp;
      return 1.0 / (spec.factor * pos_freqs) * (1 - extrapolated) + inv_freq * extrapolated;
    }
  }
  return inv_freq;
}

torch::Tensor rotate(const torch::Tensor& x, RotaryLayout layout) {
  if (layout == RotaryLayout::Half) {
    const int64_t half = x.size(-1) / 2;
    return torch::cat({-x.narrow(-1, half, half), x.narrow(-1, 0, half)}, -1);
  }
  using torch::indexing::Slice;
  auto even = x.index({"...", Slice(0, torch::indexing::None, 2)});
  auto odd = x.index({"...", Slice(1, torch::indexing::None, 2)});
  return torch::stack({-odd, even}, -1).flatten(-2);
}

}  // namespace

RotaryTables rotary_tables(const RotarySpec& spec, const torch::Tensor& position_ids, torch::ScalarType dtype,
                           RotaryPrecision precision, int64_t sequence_length) {
  auto inv_freq = inverse_frequencies(spec, sequence_length).to(position_ids.device());
  auto freqs = position_ids.to(torch::kFloat32).unsqueeze(-1) * inv_freq;  // [B, T, dim/2]
  auto angles = spec.layout == RotaryLayout::Half ? torch::cat({freqs, freqs}, -1)
                                                  : torch::repeat_interleave(freqs, 2, -1);
  // Computed in float32 and rounded to the model's dtype, as HF's rotary modules return them.
  const auto table_dtype = precision == RotaryPrecision::Float32 ? torch::kFloat32 : dtype;
  auto cos = angles.cos(), sin = angles.sin();
  const double factor = long_regime(spec, sequence_length) ? spec.long_attention_factor : spec.attention_factor;
  if (factor != 1.0) cos = cos * factor, sin = sin * factor;
  return RotaryTables{cos.unsqueeze(1).to(table_dtype), sin.unsqueeze(1).to(table_dtype), spec.dim, spec.layout,
                      precision != RotaryPrecision::InDtype};
}

torch::Tensor apply_rotary(const torch::Tensor& x, const RotaryTables& t) {
  const int64_t hd = x.size(-1);
  auto rot = t.dim == hd ? x : x.narrow(-1, 0, t.dim);
  auto rotate_in = [&](const torch::Tensor& r) { return r * t.cos + rotate(r, t.layout) * t.sin; };
  auto rotated = t.float32_math ? rotate_in(rot.to(torch::kFloat32)).to(x.scalar_type()) : rotate_in(rot);
  return t.dim == hd ? rotated : torch::cat({rotated, x.narrow(-1, t.dim, hd - t.dim)}, -1);
}

torch::Tensor mask_bias(const torch::Tensor& key_mask, int64_t past, int64_t T, int64_t window, int64_t chunk) {
  const int64_t S = key_mask.size(1);
  auto opts = torch::TensorOptions().dtype(torch::kInt64).device(key_mask.device());
  auto q = (torch::arange(T, opts) + past).unsqueeze(1);  // [T, 1]
  auto k = torch::arange(S, opts).unsqueeze(0);           // [1, S]
  auto allowed = (k <= q);
  if (window > 0) allowed = allowed & ((q - k) < window);
  allowed = allowed.unsqueeze(0) & key_mask.to(torch::kBool).unsqueeze(1);  // [B, T, S]
  if (chunk > 0) {  // chunks counted from each row's first real token (Llama-4)
    auto chunk_of = torch::div(key_mask.to(torch::kInt64).cumsum(-1) - 1, chunk, "floor");  // [B, S]
    allowed = allowed & (chunk_of.narrow(1, past, T).unsqueeze(2) == chunk_of.unsqueeze(1));
  }
  auto bias = torch::zeros({key_mask.size(0), 1, T, S}, torch::TensorOptions().dtype(torch::kFloat32).device(key_mask.device()));
  return bias.masked_fill_(allowed.logical_not().unsqueeze(1), std::numeric_limits<float>::lowest());
}

static torch::Tensor bloom_slopes(int64_t heads) {
  const int64_t p = int64_t(1) << static_cast<int64_t>(std::floor(std::log2(static_cast<double>(heads))));
  auto base = torch::tensor(std::pow(2.0, -std::pow(2.0, -(std::log2(static_cast<double>(p)) - 3))), torch::kFloat32);
  auto slopes = torch::pow(base, torch::arange(1, 1 + p, torch::kInt32));
  if (p != heads) {
    auto extra_base = torch::tensor(std::pow(2.0, -std::pow(2.0, -(std::log2(2.0 * p) - 3))), torch::kFloat32);
    const int64_t remaining = std::min(p, heads - p);
    slopes = torch::cat({slopes, torch::pow(extra_base, torch::arange(1, 1 + 2 * remaining, 2, torch::kInt32))});
  }
  return slopes;
}

static torch::Tensor mpt_slopes(int64_t heads, double alibi_bias_max = 8.0) {
  const int64_t p = int64_t(1) << static_cast<int64_t>(std::ceil(std::log2(static_cast<double>(heads))));
  auto base = torch::arange(1, p + 1, torch::kInt64).to(torch::kFloat32) * (alibi_bias_max / static_cast<double>(p));
  auto slopes = 1.0 / torch::pow(2, base);
  if (p != heads) {
    using torch::indexing::Slice;
    slopes = torch::cat({slopes.index({Slice(1, torch::indexing::None, 2)}), slopes.index({Slice(0, torch::indexing::None, 2)})})
                 .narrow(0, 0, heads);
  }
  return slopes;
}

torch::Tensor alibi_bias(AlibiKind kind, int64_t heads, const torch::Tensor& key_mask) {
  torch::Tensor slopes, key_positions;
  const int64_t S = key_mask.size(1);
  if (kind == AlibiKind::Bloom) {
    slopes = bloom_slopes(heads);
    auto m = key_mask.to(torch::kInt64);
    key_positions = ((m.cumsum(-1) - 1) * m).to(torch::kFloat32);  // [B, S]
  } else {
    slopes = mpt_slopes(heads);
    key_positions = (torch::arange(S, torch::kInt64) - (S - 1)).to(torch::kFloat32).unsqueeze(0).expand({key_mask.size(0), S});
  }
  slopes = slopes.to(key_mask.device());
  key_positions = key_positions.to(key_mask.device());
  return slopes.view({1, heads, 1, 1}) * key_positions.view({key_mask.size(0), 1, 1, S});
}

}  // namespace nnterp::model

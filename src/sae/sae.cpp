// The dictionary math: encode, decode and the linear part of decode, for every SaeActivation and
// SaeNormalization (the formulas are in sae.hpp and docs/sae.md).
#include "nnterp/sae.hpp"

#include <cmath>

#include "core/tensor_text.hpp"
#include "nnterp/error.hpp"
#include "nnterp/language_model.hpp"

namespace nnterp {

namespace {

constexpr double kLayerNormEps = 1e-5;  // SAELens's run_time_activation_ln_in

std::string sae_name(const SaeConfig& c) { return c.source.empty() ? std::string("SAE") : c.source.string(); }

void expect_vector(const SaeConfig& c, const torch::Tensor& t, const char* name, int64_t size) {
  if (!t.defined())
    throw Error(ErrorKind::MissingWeight, sae_name(c) + " (" + name + ")",
                std::string("the ") + c.architecture + " architecture needs " + name + " [" + std::to_string(size) + "]");
  if (t.dim() != 1 || t.size(0) != size)
    throw Error(ErrorKind::Shape, sae_name(c) + " (" + name + ")",
                "expected [" + std::to_string(size) + "], got " + tensor_text(t));
}

void expect_matrix(const SaeConfig& c, const torch::Tensor& t, const char* name, int64_t rows, int64_t cols) {
  if (!t.defined())
    throw Error(ErrorKind::MissingWeight, sae_name(c) + " (" + name + ")", std::string("the SAE has no ") + name);
  if (t.dim() != 2 || t.size(0) != rows || t.size(1) != cols)
    throw Error(ErrorKind::Shape, sae_name(c) + " (" + name + ")",
                "expected [" + std::to_string(rows) + ", " + std::to_string(cols) + "] (d_in " + std::to_string(c.d_in) +
                    ", d_sae " + std::to_string(c.d_sae) + ", d_out " + std::to_string(c.d_out) + "), got " + tensor_text(t));
}

void expect_unused(const SaeConfig& c, const torch::Tensor& t, const char* name) {
  if (t.defined())
    throw Error(ErrorKind::UnexpectedWeight, sae_name(c) + " (" + name + ")",
                std::string("the ") + c.architecture + " architecture has no " + name,
                "check the config's architecture against the weights");
}

void check_weights(const SaeConfig& c, const SaeWeights& w) {
  if (c.d_in <= 0 || c.d_sae <= 0 || c.d_out <= 0)
    throw Error(ErrorKind::Config, sae_name(c), "d_in, d_sae and d_out must be positive, got " + std::to_string(c.d_in) +
                                                    ", " + std::to_string(c.d_sae) + ", " + std::to_string(c.d_out));
  if (!c.transcoder && c.d_out != c.d_in)
    throw Error(ErrorKind::Config, sae_name(c), "an SAE writes what it reads: d_out must equal d_in");
  if (c.activation == SaeActivation::TopK && (c.k <= 0 || c.k > c.d_sae))
    throw Error(ErrorKind::Config, sae_name(c) + " (k)",
                "a TopK SAE needs 1 <= k <= d_sae (" + std::to_string(c.d_sae) + "), got " + std::to_string(c.k));
  if (c.transcoder && c.apply_b_dec_to_input)
    throw Error(ErrorKind::Config, sae_name(c) + " (apply_b_dec_to_input)",
                "a transcoder's b_dec lives at its output point and cannot be subtracted from its input");
  if (c.normalization == SaeNormalization::Scale && !(std::isfinite(c.norm_scaling_factor) && c.norm_scaling_factor > 0))
    throw Error(ErrorKind::Config, sae_name(c) + " (norm_scaling_factor)", "must be a positive number");
  expect_matrix(c, w.W_enc, "W_enc", c.d_in, c.d_sae);
  expect_matrix(c, w.W_dec, "W_dec", c.d_sae, c.d_out);
  expect_vector(c, w.b_dec, "b_dec", c.d_out);
  if (c.activation == SaeActivation::Gated) {
    expect_vector(c, w.b_gate, "b_gate", c.d_sae);
    expect_vector(c, w.b_mag, "b_mag", c.d_sae);
    expect_vector(c, w.r_mag, "r_mag", c.d_sae);
    expect_unused(c, w.b_enc, "b_enc");
  } else {
    expect_vector(c, w.b_enc, "b_enc", c.d_sae);
  }
  if (c.activation == SaeActivation::JumpReLU) expect_vector(c, w.threshold, "threshold", c.d_sae);
  else expect_unused(c, w.threshold, "threshold");
  if (w.W_skip.defined()) expect_matrix(c, w.W_skip, "W_skip", c.d_out, c.d_in);
  const auto dtype = w.W_enc.scalar_type();
  for (const auto* t : {&w.W_enc, &w.b_enc, &w.W_dec, &w.b_dec, &w.threshold, &w.b_gate, &w.b_mag, &w.r_mag, &w.W_skip})
    if (t->defined() && (!t->is_floating_point() || t->scalar_type() != dtype || t->device() != w.W_enc.device()))
      throw Error(ErrorKind::Shape, sae_name(c),
                  "every weight must share W_enc's floating dtype and device, got " + tensor_text(*t));
}

torch::Tensor topk_activation(const torch::Tensor& pre, int64_t k) {
  auto [values, indices] = pre.topk(k, -1, /*largest=*/true, /*sorted=*/false);
  return torch::zeros_like(pre).scatter(-1, indices, values.relu());
}

}  // namespace

Sae::Sae(SaeConfig config, SaeWeights weights) : config_(std::move(config)), weights_(std::move(weights)) {
  check_weights(config_, weights_);
}

torch::Tensor Sae::encode(const torch::Tensor& x) const { return encode_full(x).features; }

// Normalizes x as the config says, remembering how to map a decoded output back.
static torch::Tensor normalize_input(const SaeConfig& c, torch::Tensor x, SaeEncoding* enc) {
  switch (c.normalization) {
    case SaeNormalization::None:
      return x;
    case SaeNormalization::Scale:
      if (enc && !c.transcoder) enc->out_scale = torch::full({1}, 1.0 / c.norm_scaling_factor, x.options());
      return x * c.norm_scaling_factor;
    case SaeNormalization::ConstantNormRescale: {
      const auto coeff = std::sqrt(static_cast<double>(c.d_in)) / x.norm(2, -1, /*keepdim=*/true);
      if (enc && !c.transcoder) enc->out_scale = coeff.reciprocal();
      return x * coeff;
    }
    case SaeNormalization::LayerNorm: {
      const auto mu = x.mean(-1, /*keepdim=*/true);
      const auto centred = x - mu;
      const auto std = centred.std(-1, /*unbiased=*/true, /*keepdim=*/true);
      if (enc && !c.transcoder) {
        enc->out_scale = std;
        enc->out_shift = mu;
      }
      return centred / (std + kLayerNormEps);
    }
  }
  return x;
}

static torch::Tensor input_in_sae_dtype(const SaeConfig& c, const SaeWeights& w, const torch::Tensor& x) {
  if (!x.defined() || x.dim() == 0 || x.size(-1) != c.d_in)
    throw Error(ErrorKind::Shape, sae_name(c), "expected an input [..., d_in = " + std::to_string(c.d_in) + "], got " + tensor_text(x));
  return x.to(w.W_enc.device(), w.W_enc.scalar_type());
}

static torch::Tensor sae_input(const SaeConfig& c, const SaeWeights& w, const torch::Tensor& x, SaeEncoding* enc) {
  auto normalized = normalize_input(c, input_in_sae_dtype(c, w, x), enc);
  return c.apply_b_dec_to_input ? normalized - w.b_dec : normalized;
}

// x·W + b as one addmm over the tokens (no separate pass over [tokens, d_sae] for the bias).
static torch::Tensor affine(const torch::Tensor& x, const torch::Tensor& W, const torch::Tensor& b) {
  auto sizes = x.sizes().vec();
  sizes.back() = W.size(1);
  return torch::addmm(b, x.reshape({-1, x.size(-1)}), W).view(sizes);
}

torch::Tensor Sae::encode_pre(const torch::Tensor& x) const {
  const auto in = sae_input(config_, weights_, x, nullptr);
  if (config_.activation == SaeActivation::Gated) return affine(in, weights_.W_enc * weights_.r_mag.exp(), weights_.b_mag);
  return affine(in, weights_.W_enc, weights_.b_enc);
}

SaeEncoding Sae::encode_full(const torch::Tensor& x) const {
  SaeEncoding enc;
  const auto in = sae_input(config_, weights_, x, &enc);
  const auto& w = weights_;
  switch (config_.activation) {
    case SaeActivation::ReLU:
      enc.features = affine(in, w.W_enc, w.b_enc).relu_();
      break;
    case SaeActivation::TopK: {
      auto pre = affine(in, w.W_enc, w.b_enc);
      if (config_.rescale_acts_by_decoder_norm) pre = pre * w.W_dec.norm(2, -1);
      enc.features = topk_activation(pre, config_.k);
      break;
    }
    case SaeActivation::JumpReLU: {
      // relu(pre)·(pre > relu(θ)) is pre where pre > relu(θ) ≥ 0, else 0.
      const auto pre = affine(in, w.W_enc, w.b_enc);
      enc.features = torch::where(pre > w.threshold.relu(), pre, torch::zeros({}, pre.options()));
      break;
    }
    case SaeActivation::Gated: {
      const auto gate = affine(in, w.W_enc, w.b_gate) > 0;
      const auto magnitude = affine(in, w.W_enc * w.r_mag.exp(), w.b_mag).relu_();
      enc.features = gate.to(magnitude.scalar_type()) * magnitude;
      break;
    }
  }
  return enc;
}

// Features as decode multiplies them into W_dec (TopK trained with rescaled activations divides
// them by the decoder norms first).
static torch::Tensor decoder_activations(const SaeConfig& c, const SaeWeights& w, const torch::Tensor& features) {
  if (!features.defined() || features.dim() == 0 || features.size(-1) != c.d_sae)
    throw Error(ErrorKind::Shape, sae_name(c), "expected features [..., d_sae = " + std::to_string(c.d_sae) + "], got " + tensor_text(features));
  auto f = features.to(w.W_dec.device(), w.W_dec.scalar_type());
  return c.rescale_acts_by_decoder_norm ? f / w.W_dec.norm(2, -1) : f;
}

static bool needs_input_to_decode(const SaeConfig& c, const SaeWeights& w) {
  return w.W_skip.defined() ||
         (!c.transcoder && (c.normalization == SaeNormalization::ConstantNormRescale || c.normalization == SaeNormalization::LayerNorm));
}

// f·W_dec + b_dec. A sparse code (a few percent of features active, as trained SAEs have) is
// multiplied as a sparse matrix: the work is the active features' rows, not all d_sae of them.
static torch::Tensor decode_linear(const torch::Tensor& f, const torch::Tensor& W_dec, const torch::Tensor& b_dec) {
  auto sizes = f.sizes().vec();
  sizes.back() = W_dec.size(1);
  const auto rows = f.reshape({-1, f.size(-1)});
  if (!f.requires_grad() && rows.size(0) > 1 && f.scalar_type() == torch::kFloat32) {
    if (torch::count_nonzero(rows).item<int64_t>() * 20 < rows.numel()) {
      const auto where = rows.nonzero().t();
      const auto values = rows.index({where[0], where[1]});
      const auto sparse = torch::sparse_coo_tensor(where, values, rows.sizes())._coalesced_(true);  // nonzero() is sorted
      return torch::addmm(b_dec, sparse, W_dec).view(sizes);
    }
  }
  return torch::addmm(b_dec, rows, W_dec).view(sizes);
}

torch::Tensor Sae::decode(const SaeEncoding& encoding, const torch::Tensor& input) const {
  const auto& w = weights_;
  auto out = decode_linear(decoder_activations(config_, w, encoding.features), w.W_dec, w.b_dec);
  if (encoding.out_scale.defined()) out = out * encoding.out_scale;
  if (encoding.out_shift.defined()) out = out + encoding.out_shift;
  if (w.W_skip.defined()) out = out + torch::matmul(input_in_sae_dtype(config_, w, input), w.W_skip.t());
  return out;
}

torch::Tensor Sae::decode(const torch::Tensor& features, const torch::Tensor& input) const {
  if (!needs_input_to_decode(config_, weights_)) return decode(SaeEncoding{features, {}, {}}, input);
  if (!input.defined())
    throw Error(ErrorKind::InvalidArgument, sae_name(config_),
                "decoding this SAE needs the input it encoded (its normalization is per token, or it has a skip connection)",
                "call decode(features, input)");
  auto enc = encode_full(input);
  enc.features = features;
  return decode(enc, input);
}

torch::Tensor Sae::reconstruct(const torch::Tensor& x) const { return decode(encode_full(x), x); }

torch::Tensor Sae::decode_delta(const torch::Tensor& delta, const SaeEncoding& encoding) const {
  const auto f = decoder_activations(config_, weights_, delta);
  const auto& W_dec = weights_.W_dec;
  // An ablation or a steer touches a few features: multiply only their rows of W_dec (unless a
  // gradient must reach every feature).
  torch::Tensor out;
  if (!f.requires_grad()) {
    const auto touched = f.reshape({-1, config_.d_sae}).ne(0).any(0).nonzero().squeeze(-1);
    if (touched.numel() * 4 < config_.d_sae) out = torch::matmul(f.index_select(-1, touched), W_dec.index_select(0, touched));
  }
  if (!out.defined()) out = torch::matmul(f, W_dec);
  return encoding.out_scale.defined() ? out * encoding.out_scale : out;
}

Sae Sae::to(torch::Device device, torch::ScalarType dtype) const {
  SaeWeights w = weights_;
  for (auto* t : {&w.W_enc, &w.b_enc, &w.W_dec, &w.b_dec, &w.threshold, &w.b_gate, &w.b_mag, &w.r_mag, &w.W_skip})
    if (t->defined()) *t = t->to(device, dtype);
  return Sae(config_, std::move(w));
}

// The width a point has per token, as an SAE sees it: the last dimension, or heads × d_head for z.
static int64_t point_width(const LanguageModel& model, const PointId& point) {
  const auto shape = model.point_shape(point, 1, 1);
  if (point.point == Point::Z) return shape[shape.size() - 1] * shape[shape.size() - 2];
  return shape.back();
}

static void check_point(const LanguageModel& model, const SaeConfig& c, const PointId& point, int64_t width, const char* side) {
  const auto& info = point_info(point.point);
  const bool token_shaped = point.point != Point::Query && point.point != Point::Key && point.point != Point::Value &&
                            point.point != Point::AttnScores && point.point != Point::AttnProbs &&
                            point.point != Point::ConvState && point.point != Point::RecurrentState &&
                            point.point != Point::RouterLogits && point.point != Point::ExpertIndices &&
                            point.point != Point::ExpertWeights;
  if (!token_shaped)
    throw Error(ErrorKind::Unsupported, sae_name(c) + " (" + side + " " + point.name() + ")",
                std::string("an SAE reads points shaped [B, T, width]; ") + info.trace_name + " is " + info.shape);
  if (info.per_layer() && (point.layer < 0 || point.layer >= model.num_layers()))
    throw Error(ErrorKind::InvalidArgument, sae_name(c) + " (" + side + " " + point.name() + ")",
                "the model has " + std::to_string(model.num_layers()) + " layers");
  std::string why_not;
  if (!model.has_point(point, &why_not))
    throw Error(ErrorKind::InvalidArgument, sae_name(c) + " (" + side + " " + point.name() + ")", why_not);
  const int64_t have = point_width(model, point);
  if (have != width)
    throw Error(ErrorKind::Shape, sae_name(c),
                std::string("its ") + side + " width is " + std::to_string(width) + " but " + point.name() + " of " +
                    model.path().filename().string() + " is " + std::to_string(have) + " wide",
                "this SAE was trained on another model" + (c.model_name.empty() ? std::string() : " (" + c.model_name + ")") +
                    " or for another point");
}

void Sae::check_fits(const LanguageModel& model) const {
  if (config_.input_point) check_point(model, config_, *config_.input_point, config_.d_in, "input");
  if (config_.output_point) check_point(model, config_, *config_.output_point, config_.d_out, "output");
}

}  // namespace nnterp

#include <cmath>

#include "model/blocks/blocks.hpp"
#include "core/tensor_text.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

void Tap::call(Point point, int layer, torch::Tensor& value) const {
  const auto sizes = value.sizes().vec();
  const auto dtype = value.scalar_type();
  const auto device = value.device();
  hooks_->at(PointId{point, point_info(point).per_layer() ? layer : -1}, value);
  if (value.defined() && value.device() != device) value = value.to(device);  // a CPU tensor written into a GPU model
  if (!value.defined() || value.sizes().vec() != sizes || value.scalar_type() != dtype) {
    throw Error(ErrorKind::Shape, PointId{point, point_info(point).per_layer() ? layer : -1}.name(),
                "a write must keep shape " + shape_text(sizes) + " and dtype " + c10::toString(dtype) +
                    ", got " + tensor_text(value));
  }
}

torch::Tensor Norm::operator()(const torch::Tensor& x) const {
  switch (kind) {
    case NormKind::LayerNorm:
      if (lacks_kernels(x) || (weight_in_float32 && x.scalar_type() != torch::kFloat32))
        return at::layer_norm(x.to(torch::kFloat32), {x.size(-1)}, weight.to(torch::kFloat32),
                              bias.defined() ? bias.to(torch::kFloat32) : bias, eps)
            .to(x.scalar_type());
      return at::layer_norm(x, {x.size(-1)}, weight, bias, eps);
    case NormKind::NonParametricLayerNorm:  // OLMo: F.layer_norm(x.float()).to(dtype)
      return at::layer_norm(x.to(torch::kFloat32), {x.size(-1)}, {}, {}, eps).to(x.scalar_type());
    case NormKind::NonParametricRMSNorm: {
      auto xf = x.to(torch::kFloat32);
      return (xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps)).to(x.scalar_type());
    }
    case NormKind::RMSNorm:
    case NormKind::RMSNormPlusOne: {
      auto xf = x.to(torch::kFloat32);
      auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
      if (kind == NormKind::RMSNormPlusOne) return (normed * (1.0 + weight.to(torch::kFloat32))).to(x.scalar_type());
      if (weight_in_float32) return (weight.to(torch::kFloat32) * normed).to(x.scalar_type());
      return weight * normed.to(x.scalar_type());
    }
  }
  return x;
}

torch::Tensor Norm::linear_part(const torch::Tensor& at, const torch::Tensor& parts) const {
  auto a = at.to(torch::kFloat64).unsqueeze(-2), x = parts.to(torch::kFloat64);
  const bool layer_norm = kind == NormKind::LayerNorm || kind == NormKind::NonParametricLayerNorm;
  if (layer_norm) {
    x = x - x.mean(-1, true);
    a = a - a.mean(-1, true);
  }
  auto out = x * torch::rsqrt(a.pow(2).mean(-1, true) + eps);
  if (kind == NormKind::RMSNormPlusOne) return out * (1.0 + weight.to(torch::kFloat64));
  return weight.defined() ? out * weight.to(torch::kFloat64) : out;
}

Norm make_norm(const Weights& w, Weight weight, int layer, const NormSpec& spec) {
  Norm n;
  n.kind = spec.kind;
  n.eps = spec.eps;
  n.weight_in_float32 = spec.weight_in_float32;
  if (spec.kind == NormKind::NonParametricLayerNorm || spec.kind == NormKind::NonParametricRMSNorm) return n;
  n.weight = w.get(WeightId{weight, layer});
  if (has_bias(weight)) n.bias = w.get_or_undefined(WeightId{bias_of(weight), layer});
  return n;
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  return elementwise(x, [activation](const torch::Tensor& v) {
    switch (activation) {
      case Activation::GeluTanh: return at::gelu(v, "tanh");
      case Activation::GeluNew:
        // In float32 the fused kernel equals HF's op-by-op formula to an ulp; in bf16/f16 each op
        // of 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) rounds, as it does in HF.
        if (v.scalar_type() == torch::kFloat32) return at::gelu(v, "tanh");
        return 0.5 * v * (1.0 + torch::tanh(std::sqrt(2.0 / M_PI) * (v + 0.044715 * torch::pow(v, 3.0))));
      case Activation::GeluExact: return at::gelu(v);
      case Activation::Silu: return at::silu(v);
      case Activation::Relu: return at::relu(v);
      case Activation::Relu2: return at::relu(v).square();
      case Activation::Xielu: throw std::logic_error("xIELU needs its parameters: call xielu()");
    }
    return v;
  });
}

torch::Tensor xielu(const torch::Tensor& x, const XieluParams& p) {
  // HF keeps the parameters in bfloat16 whatever the model's dtype, and computes the softplus
  // there: in float32 the activation would move by up to 1.2e-2 (Apertus' tiny fixture).
  auto bf16 = [](const torch::Tensor& t) { return t.to(torch::kBFloat16); };
  const auto dtype = lacks_kernels(x) ? torch::kFloat32 : x.scalar_type();
  auto alpha_p = torch::softplus(bf16(p.alpha_p)).to(dtype);
  auto alpha_n = (bf16(p.beta) + torch::softplus(bf16(p.alpha_n))).to(dtype);
  auto beta = bf16(p.beta).to(dtype), eps = bf16(p.eps).to(dtype);
  auto v = x.to(dtype);
  auto y = torch::where(v > 0, alpha_p * v * v + beta * v, (torch::expm1(torch::min(v, eps)) - v) * alpha_n + beta * v);
  return y.to(x.scalar_type());
}

}  // namespace nnterp::model

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

Norm make_norm(const Weights& w, Weight weight, int layer, const NormSpec& spec) {
  Norm n;
  n.kind = spec.kind;
  n.eps = spec.eps;
  n.weight_in_float32 = spec.weight_in_float32;
  if (spec.kind != NormKind::NonParametricLayerNorm) n.weight = w.get(WeightId{weight, layer});
  n.bias = w.get_or_undefined(WeightId{bias_of(weight), layer});
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
    }
    return v;
  });
}

}  // namespace nnterp::model

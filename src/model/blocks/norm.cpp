#include "model/blocks/blocks.hpp"
#include "core/tensor_text.hpp"
#include "nnterp/error.hpp"

namespace nnterp::model {

void Tap::call(Point point, int layer, torch::Tensor& value) const {
  const auto sizes = value.sizes().vec();
  const auto dtype = value.scalar_type();
  hooks_->at(PointId{point, point_info(point).per_layer() ? layer : -1}, value);
  if (!value.defined() || value.sizes().vec() != sizes || value.scalar_type() != dtype) {
    throw Error(ErrorKind::Shape, PointId{point, point_info(point).per_layer() ? layer : -1}.name(),
                "a write must keep shape " + shape_text(sizes) + " and dtype " + c10::toString(dtype) +
                    ", got " + tensor_text(value));
  }
}

torch::Tensor Norm::operator()(const torch::Tensor& x) const {
  switch (kind) {
    case NormKind::LayerNorm:
      return at::layer_norm(x, {x.size(-1)}, weight, bias, eps);
    case NormKind::NonParametricLayerNorm:
      return at::layer_norm(x, {x.size(-1)}, {}, {}, eps);
    case NormKind::RMSNorm:
    case NormKind::RMSNormPlusOne: {
      auto xf = x.to(torch::kFloat32);
      auto normed = xf * torch::rsqrt(xf.pow(2).mean(-1, true) + eps);
      if (kind == NormKind::RMSNormPlusOne) return (normed * (1.0 + weight.to(torch::kFloat32))).to(x.scalar_type());
      return weight * normed.to(x.scalar_type());
    }
  }
  return x;
}

Norm make_norm(const Weights& w, Weight weight, int layer, const NormSpec& spec) {
  Norm n;
  n.kind = spec.kind;
  n.eps = spec.eps;
  if (spec.kind != NormKind::NonParametricLayerNorm) n.weight = w.get(WeightId{weight, layer});
  n.bias = w.get_or_undefined(WeightId{bias_of(weight), layer});
  return n;
}

torch::Tensor activate(const torch::Tensor& x, Activation activation) {
  switch (activation) {
    case Activation::GeluTanh: return at::gelu(x, "tanh");
    case Activation::GeluExact: return at::gelu(x);
    case Activation::Silu: return at::silu(x);
    case Activation::Relu: return at::relu(x);
  }
  return x;
}

}  // namespace nnterp::model

// LFM2's gated short convolution (Mixer::ShortConv): a token mixer without attention whose whole
// memory of the past is its last kernel − 1 conv inputs, which the KV cache keeps as the layer's state.
#include "model/blocks/blocks.hpp"

namespace nnterp::model {

torch::Tensor short_conv(const ShortConvWeights& w, const torch::Tensor& x, torch::Tensor* state) {
  const int64_t B = x.size(0), H = x.size(2), kernel = w.kernel_w.size(-1);
  auto bcx = dense(x, w.in_w, w.in_b).transpose(1, 2);  // [B, 3H, T]
  auto gated = bcx.narrow(1, 0, H) * bcx.narrow(1, 2 * H, H);  // b · x, [B, H, T]
  // The kernel − 1 inputs before x: the state, or zeros at a sequence's start (HF's zero padding;
  // HF does not mask left pads here, so pad tokens' inputs flow into the first real ones too).
  auto before = state && state->defined() ? state->to(gated.scalar_type())
                                          : torch::zeros({B, H, kernel - 1}, gated.options());
  auto inputs = torch::cat({before, gated}, -1);  // [B, H, kernel − 1 + T]
  auto conv = elementwise(inputs, [&](const torch::Tensor& in) {  // float32 where libtorch has no f16 conv
    const torch::Tensor kernel_b = w.kernel_b.defined() ? w.kernel_b.to(in.scalar_type()) : torch::Tensor();
    return torch::conv1d(in, w.kernel_w.to(in.scalar_type()), kernel_b, torch::IntArrayRef{1}, torch::IntArrayRef{0},
                         torch::IntArrayRef{1}, H);
  });
  if (state) *state = inputs.narrow(-1, inputs.size(-1) - (kernel - 1), kernel - 1).clone();
  auto y = (bcx.narrow(1, H, H) * conv).transpose(1, 2);  // c · conv, [B, T, H]
  return dense(y.contiguous(), w.out_w, w.out_b);
}

}  // namespace nnterp::model

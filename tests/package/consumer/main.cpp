// consumer MODEL_DIR: loads a HuggingFace fixture through an installed nnterp, runs the fixture's
// left-padded batch, prints the logits and their largest difference from HuggingFace's own
// (expected.safetensors, real tokens only), reads a layer in a trace, and fails when they disagree.
#include <nnterp/model.hpp>
#include <nnterp/safetensors.hpp>

#include <cstdio>
#include <string>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: consumer MODEL_DIR\n");
    return 2;
  }
  try {
    const std::string dir = argv[1];
    nnterp::StandardizedTransformer model(dir);
    auto expected = nnterp::io::SafetensorsFile::open(dir + "/expected.safetensors");
    const auto ids = expected->tensor("input_ids").to(torch::kInt64);
    const auto mask = expected->tensor("attention_mask").to(torch::kInt64);
    torch::NoGradGuard no_grad;
    torch::Tensor layer0;
    const auto logits = model.trace(nnterp::TokenBatch{ids, mask}, [&](nnterp::Trace& t) {
      layer0 = t.layers_output[0].clone();
    });
    const auto real = mask.ne(0).unsqueeze(-1);
    const double diff = (logits - expected->tensor("logits").to(torch::kFloat32)).abs().masked_select(real).max().item<double>();
    std::printf("architecture %s, logits [%lld, %lld, %lld], logits[0, -1, :3] = %.5f %.5f %.5f\n",
                model.architecture().c_str(), static_cast<long long>(logits.size(0)),
                static_cast<long long>(logits.size(1)), static_cast<long long>(logits.size(2)),
                logits[0][-1][0].item<double>(), logits[0][-1][1].item<double>(), logits[0][-1][2].item<double>());
    std::printf("max |logits - HF| on real tokens = %.3g; layers_output[0] %lld x %lld x %lld\n", diff,
                static_cast<long long>(layer0.size(0)), static_cast<long long>(layer0.size(1)),
                static_cast<long long>(layer0.size(2)));
    return diff <= 1e-4 ? 0 : 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "consumer: %s\n", e.what());
    return 1;
  }
}

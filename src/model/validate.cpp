#include "nnterp/validate.hpp"

#include <fmt/format.h>

#include <limits>

#include "core/tensor_text.hpp"
#include "model/decoder.hpp"
#include "nnterp/error.hpp"
#include "model/access.hpp"
#include "nnterp/language_model.hpp"
#include "nnterp/recorder.hpp"

namespace nnterp {

bool ValidationReport::passed() const {
  for (const auto& c : checks)
    if (!c.passed) return false;
  return true;
}

std::string ValidationReport::failures() const {
  std::string out;
  for (const auto& c : checks)
    if (!c.passed) out += "\n    " + c.name + ": " + c.detail;
  return out;
}

namespace {

// Zeroes the attention every query pays to key 0 in every layer.
struct ZeroFirstKey : PointHooks {
  void at(const PointId& p, torch::Tensor& value) override {
    if (p.point != Point::AttnProbs) return;
    value = value.clone();
    value.index_put_({"...", 0}, 0.0);
  }
};

// The rounding unit of a dtype (2^-23 float32, 2^-7 bfloat16, 2^-10 float16): attention rows,
// rounded to it element by element, sum to 1 within about half of it.
double precision_of(torch::ScalarType dtype) {
  switch (dtype) {
    case torch::kBFloat16: return std::numeric_limits<c10::BFloat16>::epsilon();
    case torch::kFloat16: return std::numeric_limits<c10::Half>::epsilon();
    default: return std::numeric_limits<float>::epsilon();
  }
}

}  // namespace

ValidationReport validate_model(const LanguageModel& model) {
  const auto& spec = LanguageModelAccess::spec(model);
  const int64_t B = 2, T = 5;
  // Row 1 is left-padded by two positions, as nnterp's batches are.
  const int64_t low = std::min<int64_t>(3, spec.vocab - 1), high = std::min<int64_t>(spec.vocab, 100);
  auto ids = torch::arange(0, B * T, torch::kInt64).remainder(std::max<int64_t>(1, high - low)).add(low).view({B, T});
  auto mask = torch::ones({B, T}, torch::kInt64);
  mask.index_put_({1, torch::indexing::Slice(0, 2)}, 0);
  torch::NoGradGuard no_grad;
  ValidationReport report;
  auto check = [&](std::string name, bool ok, std::string detail) { report.checks.push_back({std::move(name), ok, std::move(detail)}); };

  PointRecorder recorder;
  torch::Tensor logits;
  try {
    logits = model.forward(ids, mask, &recorder);
  } catch (const std::exception& e) {
    check("forward pass", false, e.what());
    return report;
  }
  check("forward pass", true, "logits " + shape_text(logits.sizes()));

  // Every activation is finite; the first that is not names where the numbers broke (a float16
  // overflow past 65504 is the usual cause, as for Gemma in float16).
  std::string first_bad;
  for (const auto& [name, value] : recorder.records())
    if (value.is_floating_point() && !torch::isfinite(value).all().item<bool>()) {
      const bool inf = torch::isinf(value).any().item<bool>();
      first_bad = name + " holds " + (inf ? "inf" : "NaN");
      if (model.dtype() == torch::kFloat16 && inf) first_bad += " (a float16 overflow: its largest value is 65504; load in bfloat16 or float32)";
      else if (model.dtype() == torch::kFloat16) first_bad += " (likely a float16 overflow upstream: load in bfloat16 or float32)";
      break;
    }
  check("every activation is finite", first_bad.empty(), first_bad.empty() ? "yes" : "first non-finite point: " + first_bad);

  // Every point, with its documented shape.
  int points = 0;
  std::string shape_problems;
  auto expect = [&](const PointId& p) {
    const auto* t = recorder.find(p.name());
    if (!t) return shape_problems += " " + p.name() + " missing;", void();
    auto want = model.point_shape(p, B, T);
    if (t->sizes().vec() != want) shape_problems += " " + p.name() + " is " + shape_text(t->sizes()) + " not " + shape_text(want) + ";";
    ++points;
  };
  expect({Point::Embed, -1});
  for (int i = 0; i < spec.num_layers; ++i)
    for (const auto& info : point_table())
      if (info.per_layer() && model.has_point({info.point, i})) expect({info.point, i});
  expect({Point::FinalNorm, -1});
  expect({Point::Logits, -1});
  check("every point has its documented shape", shape_problems.empty(),
        shape_problems.empty() ? fmt::format("{} points", points) : shape_problems);

  // Attention rows of real (unpadded) query positions sum to 1, or with attention sinks (which
  // take the rest of each row) to at most 1.
  const bool sinks = spec.weights.count(Weight::AttnSinks) > 0;
  double worst_row = 0;
  auto valid = mask.to(torch::kBool);
  for (int i = 0; i < spec.num_layers; ++i)
    if (const auto* probs = recorder.find(PointId{Point::AttnProbs, i}.name())) {
      auto excess = probs->transpose(1, 2).index({valid}).to(torch::kFloat64).sum(-1) - 1;
      worst_row = std::max(worst_row, (sinks ? excess.clamp_min(0) : excess.abs()).max().item<double>());
    }
  // 1e-4 in float32; the dtype's rounding unit in bfloat16 (7.8e-3) and float16 (9.8e-4).
  const double row_tolerance = std::max(1e-4, precision_of(model.dtype()));
  check(sinks ? "attention rows sum to at most 1 (sinks take the rest)" : "attention rows sum to 1",
        worst_row < row_tolerance,
        fmt::format("max |sum - 1| = {:.1e} (tolerance {:.1e} in {})", worst_row, row_tolerance, dtype_name(model.dtype())));

  // The residual stream chains from layer to layer.
  bool chained = true;
  for (int i = 0; i + 1 < spec.num_layers; ++i) {
    const auto* out = recorder.find(PointId{Point::LayerOutput, i}.name());
    const auto* in = recorder.find(PointId{Point::LayerInput, i + 1}.name());
    chained = chained && out && in && torch::equal(*out, *in);
  }
  check("layers.{i}.output is layers.{i+1}.input", chained, chained ? "identical" : "they differ");

  bool finite = torch::isfinite(logits.index({valid})).all().item<bool>();
  check("logits are finite", finite, finite ? "yes" : "NaN or Inf in the logits");

  ZeroFirstKey zero;
  auto edited = model.forward(ids, mask, &zero);
  double change = (edited - logits).index({valid}).abs().max().item<double>();
  check("zeroing attention to the first token changes the logits", change > 0, fmt::format("max |Δ logit| = {:.2e}", change));
  return report;
}

}  // namespace nnterp

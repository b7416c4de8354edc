// The trace on every fixture architecture: reads and writes at every point, layer skipping,
// steering, attention edits, errors, gradients.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <stdexcept>
#include <thread>

#include "common/fixtures.hpp"
#include "core/proc_files.hpp"
#include "nnterp/error.hpp"
#include "nnterp/trace.hpp"

namespace nnterp::testing {
namespace {

class TraceTest : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    fx = std::make_unique<Fixture>(GetParam());
    model = std::make_unique<StandardizedTransformer>(fx->dir.string());
    torch::NoGradGuard no_grad;
    clean = model->forward(fx->input_ids, fx->attention_mask);
  }
  TokenBatch batch() const { return TokenBatch{fx->input_ids, fx->attention_mask}; }
  // Every point of the model in forward order.
  std::vector<PointId> all_points() const {
    std::vector<PointId> out{{Point::Embed, -1}};
    for (int i = 0; i < model->num_layers(); ++i)
      for (const auto& info : point_table())
        if (info.per_layer() && model->has_point({info.point, i}))
          out.push_back({info.point, i});
    out.push_back({Point::FinalNorm, -1});
    out.push_back({Point::Logits, -1});
    return out;
  }
  torch::Tensor valid(const torch::Tensor& logits) const { return logits.index({fx->attention_mask.to(torch::kBool)}); }

  std::unique_ptr<Fixture> fx;
  std::unique_ptr<StandardizedTransformer> model;
  torch::Tensor clean;
};

TEST_P(TraceTest, ReadingEveryPointLeavesLogitsBitIdentical) {
  int visited = 0;
  auto logits = model->trace(batch(), [&](Trace& t) {
    for (const auto& p : all_points()) {
      EXPECT_TRUE(t.at(p).defined()) << p.name();
      ++visited;
    }
  });
  EXPECT_EQ(visited, static_cast<int>(all_points().size()));
  EXPECT_TRUE(torch::equal(logits, clean));
}

TEST_P(TraceTest, WritingEveryPointBackUnchangedLeavesLogitsBitIdentical) {
  ::testing::internal::CaptureStderr();
  auto logits = model->trace(batch(), [&](Trace& t) {
    for (const auto& p : all_points()) {
      auto& v = t.at(p);
      v = v.clone();
    }
  });
  // Every point after the first write was checked for NaN/Inf, pads included: none may be flagged.
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_TRUE(torch::equal(logits, clean));
}

TEST_P(TraceTest, TraceLogitsEqualTheReturnedLogits) {
  torch::Tensor seen;
  auto logits = model->trace(batch(), [&](Trace& t) { seen = t.logits().clone(); });
  EXPECT_TRUE(torch::equal(seen, clean));
  EXPECT_TRUE(torch::equal(logits, clean));
}

TEST_P(TraceTest, SkipLayersWithCleanOutputReproducesCleanLogits) {
  const int k = static_cast<int>(model->num_layers()) - 2;
  torch::Tensor saved;
  model->trace(batch(), [&](Trace& t) { saved = t.layers_output[k].clone(); });
  auto skipped = model->trace(batch(), [&](Trace& t) { t.skip_layers(0, k, saved); });
  EXPECT_TRUE(torch::equal(skipped, clean));
  auto one_skipped = model->trace(batch(), [&](Trace& t) { t.skip_layer(1); });
  EXPECT_FALSE(torch::allclose(valid(one_skipped), valid(clean), 1e-4, 1e-5));
}

TEST_P(TraceTest, SkipLayerOutputsItsInput) {
  torch::Tensor input, output;
  model->trace(batch(), [&](Trace& t) {
    t.skip_layer(1);
    input = t.layers_input[1].clone();
    output = t.layers_output[1].clone();
  });
  EXPECT_TRUE(torch::equal(input, output));
}

TEST_P(TraceTest, SteeringWithZeroVectorIsTheIdentity) {
  auto zero = torch::zeros({model->hidden_size()});
  auto logits = model->trace(batch(), [&](Trace& t) { t.steer({0, 1}, zero, 3.0); });
  EXPECT_TRUE(torch::equal(logits, clean));
}

TEST_P(TraceTest, SteeringOneRowChangesOnlyThatRow) {
  torch::manual_seed(0);
  auto vec = torch::randn({model->hidden_size()});
  auto logits = model->trace(batch(), [&](Trace& t) { t.steer({0}, vec, 2.0, {}, 1); });
  if (model->has_router()) {
    // Experts run over the whole batch (mlp.cpp): row 0 shares its expert GEMMs with row 1's
    // re-routed tokens, so it may move by float32 rounding, never more.
    const double range = clean[0].abs().max().item<double>();
    EXPECT_LE((logits[0] - clean[0]).abs().max().item<double>(), 1e-5 * range);
  } else {
    EXPECT_TRUE(torch::equal(logits[0], clean[0]));
  }
  EXPECT_FALSE(torch::allclose(logits[1], clean[1]));
}

TEST_P(TraceTest, SteeringPositionsChangesOnlyThosePositions) {
  torch::manual_seed(0);
  auto vec = torch::randn({model->hidden_size()});
  torch::Tensor before, after;
  const int64_t T = fx->input_ids.size(1);
  model->trace(batch(), [&](Trace& t) {
    t.steer({1}, vec, 2.0, {T - 1});
    after = t.layers_output[1].clone();
  });
  model->trace(batch(), [&](Trace& t) { before = t.layers_output[1].clone(); });
  auto diff = (after - before).abs().sum(-1);  // [B, T]
  EXPECT_TRUE(torch::equal(diff.narrow(1, 0, T - 1), torch::zeros({diff.size(0), T - 1})));
  EXPECT_GT(diff.select(1, T - 1).min().item<double>(), 0.0);
}

TEST_P(TraceTest, AttentionRowsSumToOneAndZeroingKeyZeroChangesLogits) {
  auto mask = fx->attention_mask.to(torch::kBool);
  int first = 0;  // the first attention layer (LFM2's layer 0 is a convolution)
  while (!model->has_attention(first)) ++first;
  model->trace(batch(), [&](Trace& t) {
    for (int i = 0; i < t.num_layers(); ++i) {
      if (!model->has_attention(i)) continue;
      auto sums = t.attention_probabilities[i].transpose(1, 2).index({mask}).sum(-1);  // [valid, heads]
      if (model->has_attention_sinks()) {  // the sinks take the rest of each row
        EXPECT_LE(sums.max().item<double>(), 1 + 1e-5) << "layer " << i;
        EXPECT_LT(sums.min().item<double>(), 0.99) << "layer " << i;
      } else {
        EXPECT_TRUE(torch::allclose(sums, torch::ones_like(sums), 1e-5, 1e-5)) << "layer " << i;
      }
    }
  });
  auto edited = model->trace(batch(), [&](Trace& t) { t.attention_probabilities[first].index_put_({"...", 0}, 0.0); });
  EXPECT_FALSE(torch::allclose(valid(edited), valid(clean), 1e-5, 1e-6));
}

TEST_P(TraceTest, ProjectOnVocabInsideTheTraceMatchesLogits) {
  model->trace(batch(), [&](Trace& t) {
    auto last = t.layers_output[t.num_layers() - 1].clone();
    EXPECT_TRUE(torch::equal(t.project_on_vocab(last), t.logits()));
  });
}

TEST_P(TraceTest, StopEndsTheForward) {
  torch::Tensor h0;
  auto logits = model->trace(batch(), [&](Trace& t) {
    h0 = t.layers_output[0].clone();
    t.stop();
  });
  EXPECT_FALSE(logits.defined());
  EXPECT_TRUE(h0.defined());
}

INSTANTIATE_TEST_SUITE_P(HF, TraceTest, ::testing::ValuesIn(hf_fixture_names()), [](const auto& info) { return info.param; });

// ---- errors and robustness (on one model) ------------------------------------------------

class TraceErrors : public ::testing::Test {
 protected:
  void SetUp() override {
    fx = std::make_unique<Fixture>("llama");
    model = std::make_unique<StandardizedTransformer>(fx->dir.string());
    torch::NoGradGuard no_grad;
    clean = model->forward(fx->input_ids, fx->attention_mask);
  }
  TokenBatch batch() const { return TokenBatch{fx->input_ids, fx->attention_mask}; }
  void expect_model_still_works() {
    auto logits = model->trace(batch(), [&](Trace& t) { t.layers_output[0]; });
    EXPECT_TRUE(torch::equal(logits, clean));
  }
  static int thread_count() { return static_cast<int>(proc_field("/proc/self/status", "Threads")); }
  std::unique_ptr<Fixture> fx;
  std::unique_ptr<StandardizedTransformer> model;
  torch::Tensor clean;
};

TEST_F(TraceErrors, AnOpenTraceLeftUnfinishedIsAbandonedCleanly) {
  // OpenTrace (the Python `with` block's engine): destroyed while its forward is paused mid-way.
  const int threads = thread_count();
  for (int i = 0; i < 3; ++i) {
    OpenTrace open(*model, ForwardInput{fx->input_ids, fx->attention_mask});
    open.trace().layers_output[1].mul_(2.0);
  }
  {
    OpenTrace open(*model, ForwardInput{fx->input_ids, fx->attention_mask});
    open.trace().layers_output[0];
    open.abandon();
    EXPECT_THROW(open.finish(), Error);  // nothing left to finish: a clear error, no crash
  }
  EXPECT_EQ(thread_count(), threads);
  expect_model_still_works();
  OpenTrace open(*model, ForwardInput{fx->input_ids, fx->attention_mask});
  auto h = open.trace().layers_output[0].clone();
  EXPECT_TRUE(torch::equal(open.finish(), clean));
  EXPECT_TRUE(torch::equal(model->unembed(model->final_norm(h)), model->project_on_vocab(h)));
}

TEST_F(TraceErrors, OutOfOrderAccessNamesBothPoints) {
  try {
    model->trace(batch(), [&](Trace& t) {
      t.layers_output[1];
      t.layers_output[0];
    });
    FAIL() << "no error";
  } catch (const OutOfOrderError& e) {
    EXPECT_NE(std::string(e.what()).find("layers.0.output"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("layers.1.output"), std::string::npos) << e.what();
  }
  expect_model_still_works();
}

TEST_F(TraceErrors, WrongShapeWriteNamesThePoint) {
  try {
    model->trace(batch(), [&](Trace& t) {
      t.layers_output[0] = torch::zeros({1, 2, 3});
      t.logits();
    });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::Shape);
    EXPECT_EQ(e.subject(), "layers.0.output");
    EXPECT_NE(std::string(e.what()).find("[1, 2, 3]"), std::string::npos) << e.what();
  }
  expect_model_still_works();
}

TEST_F(TraceErrors, WrongShapeWriteAtTheLastAccessIsStillReported) {
  EXPECT_THROW(model->trace(batch(), [&](Trace& t) { t.layers_output[2] = torch::zeros({5}); }), Error);
  expect_model_still_works();
}

TEST_F(TraceErrors, BadLayerIndexNamesThePointAndTheRange) {
  try {
    model->trace(batch(), [&](Trace& t) { t.layers_output[99]; });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "layers.99.output");
    EXPECT_NE(e.message().find("0..2"), std::string::npos) << e.what();
  }
  expect_model_still_works();
}

TEST_F(TraceErrors, NegativeLayerIndicesCountFromTheEnd) {
  // llama's fixture has 3 layers: -1 is layer 2, -3 layer 0; -4 is out of range.
  model->trace(batch(), [&](Trace& t) {
    EXPECT_TRUE(t.layers_input[-3].is_same(t.layers_input[0]));
    EXPECT_TRUE(t.layers_output[-1].is_same(t.layers_output[2]));
  });
  // Steering and skipping take them too: layer -1 skipped outputs its input.
  torch::Tensor input_of_last, output_of_last;
  model->trace(batch(), [&](Trace& t) {
    t.skip_layer(-1);
    input_of_last = t.layers_input[2].clone();
    output_of_last = t.layers_output[2].clone();
  });
  EXPECT_TRUE(torch::equal(input_of_last, output_of_last));
  try {
    model->trace(batch(), [&](Trace& t) { t.layers_output[-4]; });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "layers.-4.output");
    EXPECT_NE(e.message().find("or -1..-3 from the end"), std::string::npos) << e.what();
  }
}

TEST_F(TraceErrors, RouterLogitsOnADenseModelIsAClearError) {
  try {
    model->trace(batch(), [&](Trace& t) { t.router_logits[0]; });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(e.message().find("not a mixture of experts"), std::string::npos) << e.what();
  }
}

TEST(TraceMixedMoe, RouterLogitsOfADenseLayerIsAClearErrorAndMoeLayersHaveThem) {
  // qwen3_moe's fixture: layer 1 is in mlp_only_layers (a dense SwiGLU), layers 0 and 2 are MoE.
  Fixture fx("qwen3_moe");
  StandardizedTransformer model(fx.dir.string());
  EXPECT_TRUE(model.has_router() && model.has_router(0) && !model.has_router(1) && model.has_router(2));
  try {
    model.trace(TokenBatch{fx.input_ids, fx.attention_mask}, [&](Trace& t) { t.router_logits[1]; });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "layers.1.router_logits");
    EXPECT_NE(e.message().find("layer 1 of this qwen3_moe model has a dense MLP"), std::string::npos) << e.what();
  }
  model.trace(TokenBatch{fx.input_ids, fx.attention_mask}, [&](Trace& t) {
    EXPECT_EQ(t.router_logits[2].size(-1), 8);
  });
}

TEST(TraceRouting, TheRoutingDecisionIsReadableAndWritable) {
  // mixtral's fixture: softmax over the experts, top-k renormalised, no shared expert.
  Fixture fx("mixtral");
  StandardizedTransformer model(fx.dir.string());
  const TokenBatch batch{fx.input_ids, fx.attention_mask};
  model.trace(batch, [&](Trace& t) {
    auto logits = t.router_logits[0].clone();
    auto indices = t.expert_indices[0].clone(), weights = t.expert_weights[0].clone();
    auto [top, expected] = torch::softmax(logits, -1).topk(indices.size(1), -1);
    EXPECT_TRUE(torch::equal(indices, expected));
    EXPECT_TRUE(torch::allclose(weights, top / top.sum(-1, true), 1e-6, 1e-7));
  });
  // Every routing weight of layer 1 set to 0: its MoE adds nothing.
  model.trace(batch, [&](Trace& t) {
    t.expert_weights[1].zero_();
    EXPECT_EQ(t.mlps_output[1].abs().max().item<double>(), 0.0);
  });
  // An index of no expert is a clear error, not a token routed nowhere.
  try {
    model.trace(batch, [&](Trace& t) { t.expert_indices[0].fill_(99); });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "layers.0.expert_indices");
    EXPECT_NE(e.message().find("must lie in [0, "), std::string::npos) << e.what();
  }
}

TEST(TraceShortConv, AttentionPointsOfAConvolutionLayerAreAClearErrorAndItsOutputIsThere) {
  // lfm2's fixture: layers 0 and 2 are short convolutions, layer 1 attention.
  Fixture fx("lfm2");
  StandardizedTransformer model(fx.dir.string());
  EXPECT_TRUE(!model.has_attention(0) && model.has_attention(1) && !model.has_attention(2));
  std::string why;
  EXPECT_FALSE(model.has_point({Point::AttnProbs, 0}, &why));
  EXPECT_NE(why.find("short-convolution layer"), std::string::npos) << why;
  for (Point p : {Point::Query, Point::Key, Point::Value, Point::AttnProbs}) {
    try {
      model.trace(TokenBatch{fx.input_ids, fx.attention_mask}, [&](Trace& t) { t.at({p, 2}); });
      FAIL() << "no error for " << PointId{p, 2}.name();
    } catch (const Error& e) {
      EXPECT_EQ(e.subject(), (PointId{p, 2}.name()));
      EXPECT_NE(e.message().find("layer 2 of this lfm2 model is a short-convolution layer"), std::string::npos) << e.what();
    }
  }
  model.trace(TokenBatch{fx.input_ids, fx.attention_mask}, [&](Trace& t) {
    EXPECT_EQ(t.attentions_output[0].sizes(), t.layers_input[0].sizes());  // the convolution's output
    EXPECT_EQ(t.attention_probabilities[1].size(1), model.num_heads());
  });
}

// A layer without attention remembers the past only through its state, now points: read without a
// cache they are what a cache keeps, and a write becomes the layer's memory for the next step.
class TraceStates : public ::testing::TestWithParam<std::string> {};

TEST_P(TraceStates, ReadWithoutACacheTheyAreTheCachesAndAWriteBecomesTheLayersMemory) {
  Fixture fx(GetParam());  // layer 0 is a short convolution (lfm2) or a Gated DeltaNet (qwen3_next)
  StandardizedTransformer model(fx.dir.string());
  const bool deltanet = GetParam() == "qwen3_next";
  const auto a = torch::arange(3, 9, torch::kInt64).view({1, 6}), b = torch::arange(20, 26, torch::kInt64).view({1, 6});
  const auto next_token = torch::full({1, 1}, 7, torch::kInt64);

  torch::Tensor conv_a, recurrent_a;
  model.trace(TokenBatch{a, torch::ones_like(a)}, [&](Trace& t) {
    conv_a = t.conv_states[0].clone();
    if (deltanet) recurrent_a = t.recurrent_states[0].clone();
  });
  EXPECT_EQ(conv_a.dim(), 3);
  EXPECT_EQ(conv_a.scalar_type(), model.dtype());
  if (deltanet) EXPECT_EQ(recurrent_a.scalar_type(), torch::kFloat32);

  // The prompt with a cache (its state points read there, or replaced by `patch`), then one more
  // token: what layer 0's mixer outputs for it, and the prompt's logits.
  struct Run { torch::Tensor conv, recurrent, prompt_logits, next_mixer_output; };
  auto run = [&](const torch::Tensor& prompt, bool patch) {
    Run r;
    KVCache cache;
    r.prompt_logits = run_trace(model, ForwardInput{prompt, torch::ones_like(prompt), {}, &cache}, [&](Trace& t) {
      if (patch) t.conv_states[0] = conv_a.clone();
      r.conv = t.conv_states[0].clone();
      if (deltanet && patch) t.recurrent_states[0] = recurrent_a.clone();
      if (deltanet) r.recurrent = t.recurrent_states[0].clone();
    });
    run_trace(model, ForwardInput{next_token, torch::ones({1, prompt.size(1) + 1}, torch::kInt64), {}, &cache},
              [&](Trace& t) { r.next_mixer_output = t.attentions_output[0].clone(); });
    return r;
  };
  const Run with_a = run(a, false), with_b = run(b, false), b_given_a = run(b, true);
  // Read without a cache = what the cache keeps.
  EXPECT_TRUE(torch::allclose(conv_a, with_a.conv, 0, 1e-6));
  if (deltanet) EXPECT_TRUE(torch::allclose(recurrent_a, with_a.recurrent, 0, 1e-6));
  // A's state written into B's cache: layer 0 continues from A's past (its input, the new token's
  // embedding, is the same), unlike B's own; B's prompt pass itself is unchanged by the write.
  EXPECT_TRUE(torch::allclose(b_given_a.next_mixer_output, with_a.next_mixer_output, 1e-5, 1e-6));
  EXPECT_FALSE(torch::allclose(with_b.next_mixer_output, with_a.next_mixer_output, 1e-3, 1e-4));
  EXPECT_TRUE(torch::equal(b_given_a.prompt_logits, with_b.prompt_logits));

  // The state points exist only where the mixer has that state, said before the forward runs.
  std::vector<std::pair<PointId, std::string>> absent = {
      {{Point::ConvState, deltanet ? 2 : 1}, "its memory is the KV cache"}};  // lfm2's layer 1, qwen3_next's 2
  if (!deltanet) absent.push_back({{Point::RecurrentState, 0}, "its only state is the convolution's"});
  for (const auto& [point, reason] : absent) {
    EXPECT_FALSE(model.has_point(point));
    try {
      model.trace(TokenBatch{a, torch::ones_like(a)}, [&](Trace& t) { t.at(point); });
      FAIL() << "no error for " << point.name();
    } catch (const Error& e) {
      EXPECT_EQ(e.subject(), point.name());
      EXPECT_NE(e.message().find(reason), std::string::npos) << e.what();
    }
  }
}

INSTANTIATE_TEST_SUITE_P(HF, TraceStates, ::testing::Values("lfm2", "qwen3_next"), [](const auto& info) { return info.param; });

TEST_F(TraceErrors, ExceptionInBodyPropagatesAndLeavesNoThread) {
  const int threads_before = thread_count();
  for (int round = 0; round < 50; ++round) {
    EXPECT_THROW(model->trace(batch(), [&](Trace& t) {
      t.layers_output[round % 3];
      throw std::runtime_error("boom");
    }), std::runtime_error);
  }
  EXPECT_LE(thread_count(), threads_before);
  expect_model_still_works();
}

TEST_F(TraceErrors, UnknownPointNameSuggestsTheNearest) {
  try {
    model->trace(batch(), [&](Trace& t) { t.at("layers.0.attn_outptu"); });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layers.{i}.attn_output"), std::string::npos) << e.what();
  }
}

TEST_F(TraceErrors, ReadingAfterStopIsAnError) {
  EXPECT_THROW(model->trace(batch(), [&](Trace& t) {
    t.layers_output[0];
    t.stop();
    t.layers_output[1];
  }), Error);
  expect_model_still_works();
}

TEST_F(TraceErrors, TwoThreadsTracingOneModelAtOnceBothGetCorrectResults) {
  // Weights are shared read-only; each trace has its own engine and worker.
  torch::Tensor h1_clean;
  model->trace(batch(), [&](Trace& t) { h1_clean = t.layers_output[1].clone(); });
  std::atomic<int> wrong{0};
  auto worker = [&](int seed) {
    for (int round = 0; round < 20; ++round) {
      torch::Tensor h1;
      auto logits = model->trace(batch(), [&](Trace& t) {
        h1 = t.layers_output[1].clone();
        if ((round + seed) % 2) t.layers_output[2] = t.layers_output[2].clone();
      });
      if (!torch::equal(logits, clean) || !torch::equal(h1, h1_clean)) ++wrong;
    }
  };
  std::thread a(worker, 0), b(worker, 1);
  a.join();
  b.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST_F(TraceErrors, PointInsideASkippedLayerIsNeverReached) {
  try {
    model->trace(batch(), [&](Trace& t) {
      t.skip_layers(0, 1);
      t.attentions_output[1];
    });
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.subject(), "layers.1.attn_output");
    EXPECT_EQ(e.message(), "the forward pass went past this point without producing it (it is at layers.1.output)");
  }
  expect_model_still_works();
}

TEST_F(TraceErrors, UsingATraceFromAnotherThreadIsAClearError) {
  std::string error;
  auto logits = model->trace(batch(), [&](Trace& t) {
    std::thread other([&] {
      try {
        t.layers_output[1];
      } catch (const Error& e) {
        error = e.what();
      }
    });
    other.join();
  });
  EXPECT_NE(error.find("layers.1.output"), std::string::npos) << error;
  EXPECT_NE(error.find("only be used on the thread that runs the trace body"), std::string::npos) << error;
  EXPECT_TRUE(torch::equal(logits, clean));
  expect_model_still_works();
}

TEST_F(TraceErrors, ATraceInsideATraceBodyWorks) {
  torch::Tensor inner_h1, outer_h1;
  auto logits = model->trace(batch(), [&](Trace& t) {
    outer_h1 = t.layers_output[1].clone();
    auto inner_logits = model->trace(batch(), [&](Trace& u) { inner_h1 = u.layers_output[1].clone(); });
    EXPECT_TRUE(torch::equal(inner_logits, clean));
    t.layers_output[2];
  });
  EXPECT_TRUE(torch::equal(inner_h1, outer_h1));
  EXPECT_TRUE(torch::equal(logits, clean));
}

TEST_F(TraceErrors, NoGradGuardInTheBodyDoesNotCutTheForwardGraph) {
  TraceOptions with_grad;
  with_grad.grad = true;
  bool logits_require_grad = false, body_grad_mode = true;
  model->trace(batch(), [&](Trace& t) {
    torch::NoGradGuard body_only;
    t.layers_output[1].requires_grad_(true);
    logits_require_grad = t.logits().requires_grad();
    body_grad_mode = c10::GradMode::is_enabled();
  }, with_grad);
  EXPECT_TRUE(logits_require_grad);  // the forward from layer 1 on still ran with autograd
  EXPECT_FALSE(body_grad_mode);      // and the body kept its own mode
}

TEST_F(TraceErrors, NonFiniteWarningNamesTheFirstPointAfterAnEdit) {
  // Finite edits whose sum overflows: layer 1's residual (input + attention output, resid_mid)
  // becomes Inf, the first non-finite point after the edit.
  ::testing::internal::CaptureStderr();
  model->trace(batch(), [&](Trace& t) {
    t.layers_output[0].fill_(3e38);
    t.attentions_output[1] = torch::full_like(t.attentions_output[1], 3e38);
  });
  const auto err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("NaN/Inf first appears at layers.1.resid_mid (first at index [0, 0, 0]), after the trace body "
                     "edited layers.1.attn_output"), std::string::npos) << err;
  expect_model_still_works();
}

TEST_F(TraceErrors, NonFiniteWarningNamesTheEditedPointItselfAndIsGivenOnce) {
  const int64_t T = fx->input_ids.size(1);
  ::testing::internal::CaptureStderr();
  model->trace(batch(), [&](Trace& t) { t.mlps_output[0].index_put_({1, T - 1, 2}, INFINITY); });
  const auto err = ::testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("NaN/Inf first appears at layers.0.mlp_output (first at index [1, " + std::to_string(T - 1) +
                     ", 2]), after the trace body edited layers.0.mlp_output"), std::string::npos) << err;
  EXPECT_EQ(err.find("NaN/Inf", err.find("NaN/Inf") + 1), std::string::npos) << "warned more than once: " << err;
}

TEST_F(TraceErrors, NonFiniteCheckCanBeTurnedOffAndIsSilentForFiniteEdits) {
  TraceOptions quiet;
  quiet.check_non_finite = false;
  ::testing::internal::CaptureStderr();
  auto nan_logits = model->trace(batch(), [&](Trace& t) { t.layers_output[0].fill_(NAN); }, quiet);
  model->trace(batch(), [&](Trace& t) { t.steer({0, 1}, torch::ones({model->hidden_size()}), 2.0); });
  EXPECT_EQ(::testing::internal::GetCapturedStderr(), "");
  EXPECT_TRUE(torch::isnan(nan_logits).any().item<bool>());
}

TEST_F(TraceErrors, EveryPointReadWithGradGetsItsGradient) {
  // Layers 0 and 2 both read with requires_grad_(): layer 2 depends on layer 0, so it is no leaf,
  // yet its .grad is there, equal to the one it gets when it is read alone.
  const int64_t T = fx->input_ids.size(1), token = 7;
  TraceOptions with_grad;
  with_grad.grad = true;
  auto metric = [&](Trace& t) { return t.logits().select(1, T - 1).select(1, token).sum(); };
  torch::Tensor grad0, grad2, grad2_alone;
  model->trace(batch(), [&](Trace& t) {
    auto& h0 = t.layers_output[0];
    h0.requires_grad_(true);
    auto& h2 = t.layers_output[2];
    h2.requires_grad_(true);
    metric(t).backward();
    grad0 = h0.grad();
    grad2 = h2.grad();
  }, with_grad);
  model->trace(batch(), [&](Trace& t) {
    auto& h2 = t.layers_output[2];
    h2.requires_grad_(true);
    metric(t).backward();
    grad2_alone = h2.grad();
  }, with_grad);
  ASSERT_TRUE(grad0.defined() && grad2.defined());
  EXPECT_TRUE(torch::allclose(grad2, grad2_alone, 1e-6, 1e-8));
  EXPECT_GT(grad0.abs().max().item<double>(), 0.0);
}

TEST_F(TraceErrors, GradientMatchesFiniteDifference) {
  const int layer = 1;
  const int64_t T = fx->input_ids.size(1), token = 7;
  torch::Tensor h0, grad;
  TraceOptions with_grad;
  with_grad.grad = true;
  model->trace(batch(), [&](Trace& t) {
    auto& h = t.layers_output[layer];
    h.requires_grad_(true);
    h0 = h.detach().clone();
    auto loss = t.logits().select(1, T - 1).select(1, token).sum();
    loss.backward();
    grad = h.grad().clone();
  }, with_grad);
  ASSERT_TRUE(grad.defined());
  torch::manual_seed(1);
  auto direction = torch::randn_like(h0);
  direction = direction / direction.norm();
  auto logit_at = [&](double eps) {
    torch::Tensor value;
    model->trace(batch(), [&](Trace& t) {
      t.layers_output[layer] = h0 + eps * direction;
      value = t.logits().select(1, T - 1).select(1, token).sum().to(torch::kFloat64);
    });
    return value.item<double>();
  };
  const double eps = 1e-2;
  double numeric = (logit_at(eps) - logit_at(-eps)) / (2 * eps);
  double analytic = (grad * direction).sum().item<double>();
  EXPECT_NEAR(numeric, analytic, 1e-3 * std::max(1.0, std::abs(analytic))) << "numeric " << numeric << " analytic " << analytic;
}

}  // namespace
}  // namespace nnterp::testing

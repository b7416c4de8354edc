// The trace: straight-line code that reads and edits a model's standardized points while the
// forward pass runs (NNsight's `with model.trace(...)`, in C++).
//
//   torch::Tensor h5, logits;
//   model.trace(batch, [&](nnterp::Trace& t) {
//     h5 = t.layers_output[5].clone();   // waits until layer 5 has run
//     t.layers_output[8] = h5;           // replaces what flows on from layer 8
//     t.attention_probabilities[3].index_put_({"...", 0}, 0.0);  // edits in place
//     logits = t.logits();
//   });
//
// The body and the forward pass take turns on the calling thread (the forward runs on a stack of
// its own, so no second thread is involved and a switch costs well under a microsecond): reading
// a point runs the forward until it reaches that point, and the forward waits while the body works
// on it. Points must be visited in forward order (see Point in points.hpp); use a Trace only on the
// thread that runs its body. Autograd state (grad mode, inference mode) is kept separately for the
// body and the forward: a NoGradGuard in the body does not change how the forward runs.
// `t.layers_output[i]` is a reference to the live value: in-place ops edit the forward, assignment
// replaces the value (same shape and dtype, checked), and the forward continues with it once the
// body asks for a later point or returns. A reference stays valid for the whole trace, but a write
// to a point the forward has already left changes nothing.
// Tensors read from a point share storage with the forward's value: clone() what you keep if a
// later in-place edit must not change it.
#pragma once

#include <torch/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nnterp/forward.hpp"
#include "nnterp/points.hpp"
#include "nnterp/sae.hpp"

namespace nnterp {

class LanguageModel;
class Trace;

// How Trace::sae writes the point back.
struct SaeSpliceOptions {
  // true: the point becomes decode(features) + error, where error = value − decode(features as
  // encoded): with no edit exactly the value the forward had (bit for bit), and an edit changes it
  // by exactly decode's linear part of the change. false: the point becomes decode(features) alone
  // (the reconstruction; "loss recovered" splices this way).
  bool keep_error = true;
};

struct TraceOptions {
  bool grad = false;  // run with autograd: points may be requires_grad_()'d and backward() called
  // Once the body has edited a point (assignment, in-place op, steer, skip), every later point is
  // checked for NaN/Inf, and the first one to hold any is named in a warning on stderr (once per
  // trace). Costs one pass over each later activation, and nothing in traces that only read.
  bool check_non_finite = true;
};

// `t.layers_output[i]` and friends.
class PointAccessor {
 public:
  PointAccessor(Trace* trace, Point point) : trace_(trace), point_(point) {}
  torch::Tensor& operator[](int layer) const;  // layer -1 is the last (as in Python), -L the first
  int size() const;  // the number of layers

 private:
  Trace* trace_;
  Point point_;
};

class Trace {
 public:
  PointAccessor layers_input{this, Point::LayerInput};
  PointAccessor layers_output{this, Point::LayerOutput};
  PointAccessor attentions_input{this, Point::AttnInput};
  PointAccessor attentions_output{this, Point::AttnOutput};
  PointAccessor mlps_input{this, Point::MlpInput};
  PointAccessor mlps_output{this, Point::MlpOutput};
  PointAccessor attention_scores{this, Point::AttnScores};
  PointAccessor attention_probabilities{this, Point::AttnProbs};
  PointAccessor z{this, Point::Z};
  PointAccessor resid_mid{this, Point::ResidMid};
  PointAccessor mlp_hidden{this, Point::MlpHidden};
  PointAccessor queries{this, Point::Query};
  PointAccessor keys{this, Point::Key};
  PointAccessor values{this, Point::Value};
  PointAccessor conv_states{this, Point::ConvState};
  PointAccessor recurrent_states{this, Point::RecurrentState};
  PointAccessor router_logits{this, Point::RouterLogits};
  PointAccessor expert_indices{this, Point::ExpertIndices};
  PointAccessor expert_weights{this, Point::ExpertWeights};

  torch::Tensor& token_embeddings();
  torch::Tensor& ln_final();
  torch::Tensor& logits();
  torch::Tensor next_token_probs();  // softmax of the last position's logits, [B, V]
  const torch::Tensor& input_ids() const;
  const torch::Tensor& attention_mask() const;

  // Any point by id or name ("layers.3.attn_output").
  torch::Tensor& at(const PointId& point);
  torch::Tensor& at(const std::string& name);

  // nnterp's methods.
  // Adds factor·vector to the output of each layer in `layers` (at `token_positions` only when
  // given, and in row `batch_index` only when given). vector: [H] (or broadcastable to [B, T, H]).
  void steer(const std::vector<int>& layers, const torch::Tensor& vector, double factor = 1.0,
             const std::vector<int64_t>& token_positions = {}, std::optional<int64_t> batch_index = std::nullopt);
  // Bypasses layer i: its output becomes `with` (default: its input).
  void skip_layer(int layer, const torch::Tensor& with = {});
  // Bypasses layers a..b inclusive: the output of b becomes `with` (default: the input of a).
  void skip_layers(int first, int last, const torch::Tensor& with = {});
  // Sparse dictionaries (sae.hpp): the feature activations [B, T, d_sae] of the SAE at its input
  // point, a live reference like a point's: edit it in place or assign it (same shape), and when
  // the forward moves on, the SAE's output point (the same point for an SAE, a later one for a
  // transcoder) is spliced as SaeSpliceOptions says. Grad traces: the features are leaves (encoded
  // without the point's graph): requires_grad_() them (before editing them) and their .grad after
  // backward() is the gradient through the splice; earlier points get their gradient through the
  // point as if no SAE were there (plus nothing through the encoder).
  // The point comes from the SAE's config, or is given (`point` names where an SAE reads and writes).
  torch::Tensor& sae(const Sae& sae, const SaeSpliceOptions& options = {});
  torch::Tensor& sae(const PointId& point, const Sae& sae, const SaeSpliceOptions& options = {});
  torch::Tensor& sae(const std::string& point, const Sae& sae, const SaeSpliceOptions& options = {});
  // Ends the forward pass now; nothing after the current point is computed.
  void stop();
  // The model's final norm + lm_head (+ scaling / soft-cap) on a residual-stream tensor.
  torch::Tensor project_on_vocab(const torch::Tensor& hidden) const;

  int num_layers() const;
  const LanguageModel& model() const;

  struct Engine;
  explicit Trace(Engine& engine) : engine_(engine) {}
  // Every layer index a Trace takes may count from the end: -1 is the last layer.
  int from_end(int layer) const;
  Trace(const Trace&) = delete;
  Trace& operator=(const Trace&) = delete;

 private:
  torch::Tensor& sae(const std::optional<PointId>& point, const Sae& sae, const SaeSpliceOptions& options);
  Engine& engine_;
};

using TraceBody = std::function<void(Trace&)>;

// A trace whose body is whatever the caller runs between opening it and finish(), for callers
// whose body cannot be one C++ callable (the Python module's `with model.trace(...):` block).
// trace() is the Trace a body gets, with the same rules (one thread, forward order). Destroying an
// OpenTrace that was not finished abandons the forward, as an exception in a body does.
class OpenTrace {
 public:
  OpenTrace(const LanguageModel& model, const ForwardInput& input, const TraceOptions& options = {});
  ~OpenTrace();
  OpenTrace(const OpenTrace&) = delete;
  OpenTrace& operator=(const OpenTrace&) = delete;

  Trace& trace() { return *trace_; }
  // Runs the forward to its end (or to where stop() ended it); returns the logits (undefined if
  // stopped). After abandon(), an Error.
  torch::Tensor finish();
  // Unwinds a paused forward without computing anything more.
  void abandon();

 private:
  bool abandoned_ = false;
  std::unique_ptr<Trace::Engine> engine_;
  std::unique_ptr<Trace> trace_;
};

// Runs `body` interleaved with one forward pass over `inputs`; returns the logits (undefined if the
// body called stop()). An exception in the body abandons the forward cleanly and propagates.
torch::Tensor run_trace(const LanguageModel& model, const TokenBatch& inputs, const TraceBody& body,
                        const TraceOptions& options = {});
// The same over a full ForwardInput (KV cache, explicit positions, last-position logits).
torch::Tensor run_trace(const LanguageModel& model, const ForwardInput& input, const TraceBody& body,
                        const TraceOptions& options = {});

}  // namespace nnterp

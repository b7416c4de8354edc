// The trace engine: the body on the caller's stack, the forward pass on a Fiber (its own stack,
// same thread), taking turns. The forward only pauses at the one point the body is waiting for;
// every other point costs one comparison.
#include "nnterp/trace.hpp"

#include <c10/core/AutogradState.h>

#include <deque>
#include <iostream>
#include <map>
#include <thread>

#include "core/tensor_text.hpp"
#include "nnterp/error.hpp"
#include "nnterp/forward.hpp"
#include "nnterp/language_model.hpp"
#include "trace/fiber.hpp"

namespace nnterp {

namespace {

struct Aborted {};  // unwinds the forward when the body failed or finished early

std::pair<int, int> key(const PointId& p) { return {static_cast<int>(p.point), p.layer}; }

// Sets autograd on or off for the current thread for the scope.
struct GradModeScope {
  explicit GradModeScope(bool enabled) : previous(c10::GradMode::is_enabled()) { c10::GradMode::set_enabled(enabled); }
  ~GradModeScope() { c10::GradMode::set_enabled(previous); }
  bool previous;
};

// The features as encoded, kept for when the body edits them: the nonzero entries (trained SAEs
// fire a few percent of their features), or a dense copy of a dense code. Cheaper than encoding
// again (a pass over the features instead of a matmul).
class FeatureSnapshot {
 public:
  FeatureSnapshot() = default;
  explicit FeatureSnapshot(const torch::Tensor& features) {
    torch::NoGradGuard no_grad;
    const auto flat = features.reshape({-1});
    const int64_t active = torch::count_nonzero(flat).item<int64_t>();
    if (active * 3 < flat.numel()) {  // an int64 index + a value per entry beat the dense copy
      index_ = flat.nonzero().squeeze(1);
      values_ = flat.index_select(0, index_);
    } else {
      values_ = features.clone();
    }
  }
  // features − the snapshot (features as edited by the body, same shape).
  torch::Tensor subtracted_from(const torch::Tensor& features) const {
    if (!index_.defined()) return features - values_;
    auto flat = features.reshape({-1});
    auto diff = flat.clone();
    diff.index_put_({index_}, flat.index_select(0, index_) - values_);
    return diff.view(features.sizes());
  }

 private:
  torch::Tensor index_, values_;
};

// A dictionary spliced into the forward by Trace::sae: the features handed to the body, and what
// the splice needs to write its output point when the forward reaches it.
struct SaeSplice {
  Sae sae;
  SaeSpliceOptions options;
  PointId output;
  torch::Tensor input;       // what was encoded, [..., d_in] (a copy: later edits of the point do not change it)
  SaeEncoding encoding;      // as encoded (its features are the body's until the splice)
  torch::Tensor* features;   // the body's live reference
  const c10::TensorImpl* handed_out;
  uint32_t version;
  FeatureSnapshot original;  // the features as encoded, for the error term of an edit
};

// A point as an SAE reads it: [B, T, width] (z's heads × d_v flattened, as SAELens's hook_z reshaping).
torch::Tensor token_rows(const PointId& point, const torch::Tensor& value) {
  return point.point == Point::Z ? value.flatten(-2) : value;
}

}  // namespace

struct Trace::Engine : PointHooks {
  const LanguageModel& model;
  ForwardInput input;
  TraceOptions options;
  const std::thread::id owner = std::this_thread::get_id();

  std::optional<PointId> requested;  // what the body waits for; nullopt: run to the end
  std::optional<PointId> position;   // where the forward is paused (or last was)
  bool missed = false;               // the forward passed `requested` without meeting it
  bool abort = false, stop_requested = false, done = false;
  std::map<std::pair<int, int>, torch::Tensor> slots;  // values handed to the body, by point
  std::map<int, torch::Tensor> skips;                  // layer → replacement output
  std::deque<torch::Tensor> sae_features;              // handed to the body by Trace::sae (stable addresses)
  std::vector<SaeSplice> splices;                      // waiting for their output point
  std::exception_ptr forward_error;
  torch::Tensor logits;
  std::optional<std::string> last_edit;  // the latest point (or method) the body edited
  bool non_finite_reported = false;
  trace_detail::Fiber fiber{[this] { run_forward(); }};
  // Autograd state is thread-local and the body and the forward share a thread: each side keeps
  // its own, so a NoGradGuard in the body cannot silently cut the forward's graph (or vice versa).
  // (Copied from the caller's state, which also keeps this building on libtorch 2.x, whose
  // AutogradState has more fields.)
  c10::AutogradState forward_autograd = c10::AutogradState::get_tls_state();

  Engine(const LanguageModel& m, const ForwardInput& in, const TraceOptions& o) : model(m), input(in), options(o) {
    forward_autograd.set_grad_mode(o.grad);
  }
  ~Engine() { abandon(); }

  // ---- forward side (on the fiber) ----
  void at(const PointId& point, torch::Tensor& value) override {
    if (stop_requested) throw StopForward{};
    if (!splices.empty()) apply_splices(point, value);
    if (last_edit) check_finite(point, value);
    if (!requested) return;  // stable while the forward runs: the body only changes it while we are paused
    if (point == *requested) return pause(point, value, false);
    if (requested->before(point)) return pause(point, value, true);
  }

  bool wants_attention_probs(int layer) override {
    return requested && requested->point == Point::AttnProbs && requested->layer == layer;
  }

  torch::Tensor skip_layer(int layer, const torch::Tensor& input) override {
    auto it = skips.find(layer);
    if (it == skips.end()) return {};
    return it->second.defined() ? it->second : input;
  }

  void pause(const PointId& point, torch::Tensor& value, bool passed) {
    auto& slot = slots[key(point)];
    slot = value;
    position = point;
    missed = passed;
    const c10::TensorImpl* handed_out = value.unsafeGetTensorImpl();
    const auto version = value._version();
    // With autograd, a point the body reads that depends on an earlier requires_grad_()'d point is
    // not a leaf: it keeps its .grad after backward() as the first one does, not silently none.
    if (!passed && value.requires_grad() && !value.is_leaf()) value.retain_grad();
    fiber.suspend();
    if (abort) throw Aborted{};
    if (options.check_non_finite && (slot.unsafeGetTensorImpl() != handed_out || slot._version() != version)) {
      note_edit(point.name());
      check_finite(point, slot);
    }
    value = slot;  // the body may have assigned a new tensor (the decoder checks its shape)
    if (stop_requested) throw StopForward{};
    if (!splices.empty()) apply_splices(point, value);  // an SAE the body put at this very point
  }

  // ---- dictionaries (Trace::sae) ----
  void apply_splices(const PointId& point, torch::Tensor& value) {
    for (auto it = splices.begin(); it != splices.end();) {
      if (it->output != point) {
        ++it;
        continue;
      }
      SaeSplice splice = std::move(*it);
      it = splices.erase(it);
      splice_into(splice, value);
    }
  }

  void splice_into(const SaeSplice& s, torch::Tensor& value) {
    const torch::Tensor& features = *s.features;
    const std::string where = "t.sae(...) at " + s.output.name();
    if (!features.defined() || features.sizes() != s.encoding.features.sizes())
      throw Error(ErrorKind::Shape, where, "the features must keep their shape " + tensor_text(s.encoding.features) +
                                               ", got " + tensor_text(features));
    const bool edited = features.unsafeGetTensorImpl() != s.handed_out || features._version() != s.version;
    const auto rows = token_rows(s.output, value);
    torch::Tensor spliced;
    if (s.options.keep_error) {
      if (!edited && !features.requires_grad()) return;  // decode(f) + (x − decode(f)) is x: leave it bit for bit
      // decode(f') + error = x + decode's linear part of (f' − f): exact, and zero for an unedited f.
      const auto change = edited ? s.original.subtracted_from(features) : features - features.detach();
      spliced = rows + s.sae.decode_delta(change, s.encoding).to(rows.scalar_type());
    } else {
      SaeEncoding encoding = s.encoding;
      encoding.features = features;
      spliced = s.sae.decode(encoding, s.input).to(rows.scalar_type());
      if (spliced.sizes() != rows.sizes())
        throw Error(ErrorKind::Shape, where, "the reconstruction is " + tensor_text(spliced) + " but the point is " + tensor_text(rows));
    }
    value = spliced.view(value.sizes());
    note_edit(where);
  }

  void note_edit(const std::string& what) {
    if (options.check_non_finite) last_edit = what;
  }

  // Warns, once per trace, at the first point holding NaN/Inf after an edit: a silently
  // non-finite activation would otherwise surface only as NaN logits, far from its cause.
  void check_finite(const PointId& point, const torch::Tensor& value) {
    if (non_finite_reported || !value.defined() || !value.is_floating_point()) return;
    torch::NoGradGuard no_grad;
    const auto finite = torch::isfinite(value);
    if (finite.all().item<bool>()) return;
    non_finite_reported = true;
    const auto where = finite.logical_not().nonzero()[0];
    std::string index;
    for (int64_t d = 0; d < where.size(0); ++d) index += (d ? ", " : "") + std::to_string(where[d].item<int64_t>());
    std::cerr << "nnterp: warning: NaN/Inf first appears at " << point.name() << " (first at index [" << index
              << "]), after the trace body edited " << *last_edit
              << "; set TraceOptions::check_non_finite = false to turn this check off\n";
  }

  void run_forward() {
    try {
      logits = model.forward(input, this);
    } catch (const Aborted&) {
    } catch (...) {
      forward_error = std::current_exception();
    }
    done = true;
  }

  // ---- body side ----
  // Lets the forward run until it reaches `target` (nullopt: the end).
  void advance(std::optional<PointId> target) {
    requested = target;
    switch_to_forward();
    if (forward_error) {
      auto error = forward_error;
      forward_error = nullptr;
      std::rethrow_exception(error);
    }
  }

  void switch_to_forward() {
    const c10::AutogradState body_autograd = c10::AutogradState::get_tls_state();
    c10::AutogradState::set_tls_state(forward_autograd);
    fiber.resume();
    forward_autograd = c10::AutogradState::get_tls_state();
    c10::AutogradState::set_tls_state(body_autograd);
  }

  static const char* where_to_read(Point p) {
    if (p == Point::ConvState || p == Point::RecurrentState)
      return "read the state points at the model's short-convolution / Gated DeltaNet layers";
    if (p == Point::RouterLogits || p == Point::ExpertIndices || p == Point::ExpertWeights)
      return "read the routing points at its mixture-of-experts layers";
    if (p == Point::MlpHidden) return "read mlp_hidden at the model's dense-MLP layers";
    if (p == Point::ResidMid) return "read layers.{i}.input, attn_output and mlp_output instead";
    return "read this point at the model's attention layers";
  }

  void validate(const PointId& p) const {
    const int64_t layers = model.num_layers();
    if (point_info(p.point).per_layer() && (p.layer < 0 || p.layer >= layers))
      throw Error(ErrorKind::InvalidArgument, p.name(),
                  "layer index out of range: the model has " + std::to_string(layers) + " layers (0.." +
                      std::to_string(layers - 1) + ", or -1..-" + std::to_string(layers) + " from the end)");
    std::string why_not;
    if (!model.has_point(p, &why_not))
      throw Error(ErrorKind::InvalidArgument, p.name(), why_not, where_to_read(p.point));
  }

  void check_thread(const std::string& what) const {
    if (std::this_thread::get_id() != owner)
      throw Error(ErrorKind::InvalidArgument, what,
                  "a trace's points can only be used on the thread that runs the trace body",
                  "copy what other threads need out of the body (e.g. clone() the tensor)");
  }

  bool paused() const { return fiber.started() && !done; }

  torch::Tensor& request(const PointId& p) {
    check_thread(p.name());
    validate(p);
    if (stop_requested) throw Error(ErrorKind::InvalidArgument, p.name(), "the trace was stopped before this point");
    if (paused() && position && *position == p) {
      missed = false;
      return slots[key(p)];
    }
    if (position && (p.before(*position) || *position == p)) throw OutOfOrderError(p.name(), position->name());
    if (done) throw Error(ErrorKind::InvalidArgument, p.name(), "the forward pass has already finished");
    advance(p);
    if (done) throw Error(ErrorKind::InvalidArgument, p.name(), "the forward pass ended without reaching this point");
    if (missed)
      throw Error(ErrorKind::InvalidArgument, p.name(),
                  "the forward pass went past this point without producing it (it is at " + position->name() + ")");
    return slots[key(p)];
  }

  void set_skip(int layer, const torch::Tensor& with) {  // read when the forward resumes
    skips[layer] = with;
    note_edit("layers." + std::to_string(layer) + " (skipped)");
  }

  torch::Tensor finish() {
    if (!done) advance(std::nullopt);
    return logits;
  }

  // Unwinds a paused forward (its stack holds live tensors) without computing anything more.
  void abandon() {
    if (!paused()) return;
    abort = true;
    switch_to_forward();
  }
};

torch::Tensor& PointAccessor::operator[](int layer) const { return trace_->at(PointId{point_, layer}); }
int PointAccessor::size() const { return trace_->num_layers(); }

// Layer -1 is the last, -L the first, as in Python; other indices are left for validate() to refuse.
int Trace::from_end(int layer) const { return layer < 0 && layer >= -num_layers() ? layer + num_layers() : layer; }

torch::Tensor& Trace::at(const PointId& point) {
  return engine_.request(point_info(point.point).per_layer() ? PointId{point.point, from_end(point.layer)} : point);
}
torch::Tensor& Trace::at(const std::string& name) { return at(parse_point(name)); }
torch::Tensor& Trace::token_embeddings() { return at(PointId{Point::Embed, -1}); }
torch::Tensor& Trace::ln_final() { return at(PointId{Point::FinalNorm, -1}); }
torch::Tensor& Trace::logits() { return at(PointId{Point::Logits, -1}); }
torch::Tensor Trace::next_token_probs() { return torch::softmax(logits().select(1, -1).to(torch::kFloat32), -1); }
const torch::Tensor& Trace::input_ids() const { return engine_.input.input_ids; }
const torch::Tensor& Trace::attention_mask() const { return engine_.input.attention_mask; }
int Trace::num_layers() const { return static_cast<int>(engine_.model.num_layers()); }
const LanguageModel& Trace::model() const { return engine_.model; }
torch::Tensor Trace::project_on_vocab(const torch::Tensor& hidden) const { return engine_.model.project_on_vocab(hidden); }

void Trace::steer(const std::vector<int>& layers, const torch::Tensor& vector, double factor,
                  const std::vector<int64_t>& token_positions, std::optional<int64_t> batch_index) {
  std::vector<int> order;
  for (int layer : layers) order.push_back(from_end(layer));
  std::sort(order.begin(), order.end());
  order.erase(std::unique(order.begin(), order.end()), order.end());
  const int64_t H = engine_.model.hidden_size();
  if (!vector.defined() || vector.dim() == 0 || vector.size(-1) != H)
    throw Error(ErrorKind::Shape, "steering vector", "expected a vector of size hidden_size = " + std::to_string(H) +
                                                         ", got " + tensor_text(vector));
  for (int layer : order) {
    auto& out = at(PointId{Point::LayerOutput, layer});
    const int64_t B = out.size(0), T = out.size(1);
    auto delta = vector.to(out.options()) * factor;
    if (token_positions.empty() && !batch_index) {
      out = out + delta;
      continue;
    }
    auto where = torch::zeros({B, T, 1}, out.options());
    std::vector<int64_t> rows;
    if (batch_index) {
      int64_t b = *batch_index < 0 ? *batch_index + B : *batch_index;
      if (b < 0 || b >= B) throw Error(ErrorKind::InvalidArgument, "steer batch_index", "row " + std::to_string(*batch_index) + " is outside the batch of " + std::to_string(B));
      rows = {b};
    } else {
      for (int64_t b = 0; b < B; ++b) rows.push_back(b);
    }
    std::vector<int64_t> cols;
    for (int64_t p : token_positions) {
      int64_t t = p < 0 ? p + T : p;
      if (t < 0 || t >= T) throw Error(ErrorKind::InvalidArgument, "steer token_positions", "position " + std::to_string(p) + " is outside the sequence of " + std::to_string(T));
      cols.push_back(t);
    }
    if (cols.empty())
      for (int64_t t = 0; t < T; ++t) cols.push_back(t);
    for (int64_t b : rows)
      for (int64_t t : cols) where.index_put_({b, t, 0}, 1.0);
    out = out + where * delta;
  }
}

// The SAE's own points, or `point` for its input (and, for an SAE, its output).
static std::pair<PointId, PointId> sae_points(const Sae& sae, const std::optional<PointId>& point) {
  const auto& c = sae.config();
  const std::string name = c.source.empty() ? std::string("t.sae(...)") : c.source.string();
  std::optional<PointId> in = point ? point : c.input_point;
  std::optional<PointId> out = c.transcoder ? c.output_point : in;
  if (!in)
    throw Error(ErrorKind::InvalidArgument, name, "the SAE names no point to read",
                "give one: t.sae(\"layers.3.output\", sae), or SaeLoadOptions::point when loading");
  if (!out)
    throw Error(ErrorKind::InvalidArgument, name, "the transcoder names no output point",
                "give one with SaeLoadOptions::output_point when loading");
  return {*in, *out};
}

torch::Tensor& Trace::sae(const Sae& sae, const SaeSpliceOptions& options) { return this->sae(std::nullopt, sae, options); }
torch::Tensor& Trace::sae(const std::string& point, const Sae& sae, const SaeSpliceOptions& options) {
  return this->sae(parse_point(point), sae, options);
}
torch::Tensor& Trace::sae(const PointId& point, const Sae& sae, const SaeSpliceOptions& options) {
  return this->sae(std::optional<PointId>(point), sae, options);
}

torch::Tensor& Trace::sae(const std::optional<PointId>& point, const Sae& sae, const SaeSpliceOptions& options) {
  auto [in, out] = sae_points(sae, point);
  const bool per_layer_in = point_info(in.point).per_layer(), per_layer_out = point_info(out.point).per_layer();
  if (per_layer_in) in.layer = from_end(in.layer);
  if (per_layer_out) out.layer = from_end(out.layer);
  if (out.before(in))
    throw Error(ErrorKind::InvalidArgument, out.name(), "a transcoder cannot write a point the forward computes before its input " + in.name());
  engine_.validate(out);
  const torch::Tensor& x = at(in);
  const auto rows = token_rows(in, x);
  if (rows.size(-1) != sae.d_in())
    throw Error(ErrorKind::Shape, sae.config().source.empty() ? "t.sae(...)" : sae.config().source.string(),
                "the SAE reads " + std::to_string(sae.d_in()) + " values per token but " + in.name() + " has " +
                    std::to_string(rows.size(-1)), "was it trained for another model or point?");
  // The features are leaves: encoded from the point's value without its graph, so that a gradient
  // reaches earlier points through the point itself (the splice is the identity there) and reaches
  // the features only as their own .grad, never twice through the encoder.
  SaeSplice splice{sae, options, out, rows.detach().clone(), {}, nullptr, nullptr, 0, {}};
  {
    torch::NoGradGuard no_grad;
    splice.encoding = sae.encode_full(splice.input);
  }
  if (options.keep_error) splice.original = FeatureSnapshot(splice.encoding.features);
  auto& features = engine_.sae_features.emplace_back(splice.encoding.features);
  splice.features = &features;
  splice.handed_out = features.unsafeGetTensorImpl();
  splice.version = features._version();
  engine_.splices.push_back(std::move(splice));
  return features;
}

void Trace::skip_layer(int layer, const torch::Tensor& with) { skip_layers(layer, layer, with); }

void Trace::skip_layers(int first, int last, const torch::Tensor& with) {
  first = from_end(first);
  last = from_end(last);
  if (first > last) throw Error(ErrorKind::InvalidArgument, "skip_layers", "first layer " + std::to_string(first) + " is after last layer " + std::to_string(last));
  // Pause the forward at layer `first` (this also checks the index and the forward order), so the
  // skips below are in place before the layer runs.
  at(PointId{Point::LayerInput, first});
  engine_.validate(PointId{Point::LayerOutput, last});
  // Every skipped layer passes its input on (or outputs `with`), so layer `last` outputs the input
  // of `first` (or `with`). An undefined replacement means "the layer's input" (see Engine::skip_layer).
  for (int layer = first; layer <= last; ++layer) engine_.set_skip(layer, with);
}

void Trace::stop() {
  engine_.check_thread("stop()");
  engine_.stop_requested = true;
}

torch::Tensor run_trace(const LanguageModel& model, const TokenBatch& inputs, const TraceBody& body,
                        const TraceOptions& options) {
  ForwardInput input;
  input.input_ids = inputs.input_ids;
  input.attention_mask = inputs.attention_mask;
  return run_trace(model, input, body, options);
}

OpenTrace::OpenTrace(const LanguageModel& model, const ForwardInput& input, const TraceOptions& options)
    : engine_(std::make_unique<Trace::Engine>(model, input, options)), trace_(std::make_unique<Trace>(*engine_)) {}

OpenTrace::~OpenTrace() = default;  // ~Engine abandons a paused forward

torch::Tensor OpenTrace::finish() {
  if (abandoned_) throw Error(ErrorKind::InvalidArgument, "trace", "the trace was abandoned: there is no forward to finish");
  return engine_->finish();
}

void OpenTrace::abandon() {
  abandoned_ = true;
  engine_->abandon();
}

torch::Tensor run_trace(const LanguageModel& model, const ForwardInput& input, const TraceBody& body,
                        const TraceOptions& options) {
  if (!body) {  // nothing to interleave: a plain forward
    GradModeScope grad(options.grad);
    return model.forward(input);
  }
  OpenTrace open(model, input, options);
  GradModeScope grad(options.grad);
  std::exception_ptr body_error;
  try {
    body(open.trace());
  } catch (...) {
    body_error = std::current_exception();
  }
  if (body_error) {
    open.abandon();  // outside the handler: the forward unwinds with no exception being handled here
    std::rethrow_exception(body_error);
  }
  return open.finish();
}

}  // namespace nnterp

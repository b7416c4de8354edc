// The trace engine: the body on the caller's thread, the forward on a worker thread, in
// lock-step. The forward only stops at the one point the body is waiting for; every other point
// costs one comparison.
#include "nnterp/trace.hpp"

#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "core/tensor_text.hpp"
#include "model/decoder.hpp"
#include "nnterp/error.hpp"
#include "nnterp/forward.hpp"
#include "nnterp/model.hpp"

namespace nnterp {

namespace {

struct Aborted {};  // unwinds the worker when the body failed or finished early

std::pair<int, int> key(const PointId& p) { return {static_cast<int>(p.point), p.layer}; }

// Sets autograd on or off for the current thread (grad mode is thread-local in libtorch).
struct GradModeScope {
  explicit GradModeScope(bool enabled) : previous(c10::GradMode::is_enabled()) { c10::GradMode::set_enabled(enabled); }
  ~GradModeScope() { c10::GradMode::set_enabled(previous); }
  bool previous;
};

}  // namespace

struct Trace::Engine : PointHooks {
  enum class Phase { NotStarted, Running, Paused, Done };

  const StandardizedTransformer& model;
  ForwardInput input;
  TraceOptions options;

  std::mutex mutex;
  std::condition_variable changed;
  Phase phase = Phase::NotStarted;
  std::optional<PointId> requested;   // what the body waits for; nullopt: run to the end
  std::optional<PointId> position;    // the last point the forward reached
  bool missed = false;                // the forward passed `requested` without meeting it
  bool abort = false, stop_requested = false;
  std::map<std::pair<int, int>, torch::Tensor> slots;  // values handed to the body, by point
  std::map<int, torch::Tensor> skips;                  // layer → replacement output
  std::exception_ptr forward_error;
  torch::Tensor logits;
  std::thread worker;

  Engine(const StandardizedTransformer& m, const ForwardInput& in, const TraceOptions& o) : model(m), input(in), options(o) {}
  ~Engine() { abandon(); }

  // ---- forward thread ----
  void at(const PointId& point, torch::Tensor& value) override {
    if (stop_requested) throw StopForward{};
    if (!requested) return;  // stable while the forward runs: the body only writes it while we wait
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
    std::unique_lock<std::mutex> lock(mutex);
    slots[key(point)] = value;
    position = point;
    missed = passed;
    phase = Phase::Paused;
    changed.notify_all();
    changed.wait(lock, [&] { return phase == Phase::Running || abort; });
    if (abort) throw Aborted{};
    value = slots[key(point)];  // the body may have assigned a new tensor (the decoder checks its shape)
    if (stop_requested) throw StopForward{};
  }

  void run_forward() {
    GradModeScope grad(options.grad);
    torch::Tensor result;
    std::exception_ptr error;
    try {
      result = model.forward(input, this);
    } catch (const Aborted&) {
    } catch (...) {
      error = std::current_exception();
    }
    std::lock_guard<std::mutex> lock(mutex);
    logits = result;
    forward_error = error;
    phase = Phase::Done;
    changed.notify_all();
  }

  // ---- body thread ----
  // Lets the forward run until it reaches `target` (nullopt: the end). Call with the lock held.
  void advance(std::unique_lock<std::mutex>& lock, std::optional<PointId> target) {
    requested = target;
    if (phase == Phase::NotStarted) {
      phase = Phase::Running;
      worker = std::thread([this] { run_forward(); });
    } else {
      phase = Phase::Running;
      changed.notify_all();
    }
    changed.wait(lock, [&] { return phase == Phase::Paused || phase == Phase::Done; });
    if (forward_error) {
      auto error = forward_error;
      forward_error = nullptr;
      std::rethrow_exception(error);
    }
  }

  void validate(const PointId& p) const {
    const auto& spec = model.arch();
    if (point_info(p.point).per_layer() && (p.layer < 0 || p.layer >= spec.num_layers))
      throw Error(ErrorKind::InvalidArgument, p.name(),
                  "layer index out of range: the model has " + std::to_string(spec.num_layers) + " layers (0.." +
                      std::to_string(spec.num_layers - 1) + ")");
    if (p.point == Point::RouterLogits && spec.mlp.kind != model::MlpKind::MoE)
      throw Error(ErrorKind::InvalidArgument, p.name(), "this " + spec.name + " model has no router (it is not a mixture of experts)");
  }

  torch::Tensor& request(const PointId& p) {
    validate(p);
    std::unique_lock<std::mutex> lock(mutex);
    if (stop_requested) throw Error(ErrorKind::InvalidArgument, p.name(), "the trace was stopped before this point");
    if (phase == Phase::Paused && position && *position == p) {
      missed = false;
      return slots[key(p)];
    }
    if (position && (p.before(*position) || *position == p)) throw OutOfOrderError(p.name(), position->name());
    if (phase == Phase::Done) throw Error(ErrorKind::InvalidArgument, p.name(), "the forward pass has already finished");
    advance(lock, p);
    if (phase == Phase::Done)
      throw Error(ErrorKind::InvalidArgument, p.name(), "the forward pass ended without reaching this point");
    if (missed)
      throw Error(ErrorKind::InvalidArgument, p.name(),
                  "the forward pass went past this point without producing it (it is at " + position->name() + ")");
    return slots[key(p)];
  }

  void set_skip(int layer, const torch::Tensor& with) {
    std::lock_guard<std::mutex> lock(mutex);  // read by the forward only after it resumes
    skips[layer] = with;
  }

  torch::Tensor finish() {
    std::unique_lock<std::mutex> lock(mutex);
    if (phase != Phase::Done) advance(lock, std::nullopt);
    lock.unlock();
    if (worker.joinable()) worker.join();
    return logits;
  }

  void abandon() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      abort = true;
      changed.notify_all();
    }
    if (worker.joinable()) worker.join();
  }
};

torch::Tensor& PointAccessor::operator[](int layer) const { return trace_->at(PointId{point_, layer}); }
int PointAccessor::size() const { return trace_->num_layers(); }

torch::Tensor& Trace::at(const PointId& point) { return engine_.request(point); }
torch::Tensor& Trace::at(const std::string& name) { return at(parse_point(name)); }
torch::Tensor& Trace::token_embeddings() { return at(PointId{Point::Embed, -1}); }
torch::Tensor& Trace::ln_final() { return at(PointId{Point::FinalNorm, -1}); }
torch::Tensor& Trace::logits() { return at(PointId{Point::Logits, -1}); }
torch::Tensor Trace::next_token_probs() { return torch::softmax(logits().select(1, -1), -1); }
const torch::Tensor& Trace::input_ids() const { return engine_.input.input_ids; }
const torch::Tensor& Trace::attention_mask() const { return engine_.input.attention_mask; }
int Trace::num_layers() const { return static_cast<int>(engine_.model.num_layers()); }
const StandardizedTransformer& Trace::model() const { return engine_.model; }
torch::Tensor Trace::project_on_vocab(const torch::Tensor& hidden) const { return engine_.model.project_on_vocab(hidden); }

void Trace::steer(const std::vector<int>& layers, const torch::Tensor& vector, double factor,
                  const std::vector<int64_t>& token_positions, std::optional<int64_t> batch_index) {
  std::vector<int> order = layers;
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

void Trace::skip_layer(int layer, const torch::Tensor& with) { skip_layers(layer, layer, with); }

void Trace::skip_layers(int first, int last, const torch::Tensor& with) {
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
  std::lock_guard<std::mutex> lock(engine_.mutex);
  engine_.stop_requested = true;
}

torch::Tensor run_trace(const StandardizedTransformer& model, const TokenBatch& inputs, const TraceBody& body,
                        const TraceOptions& options) {
  ForwardInput input;
  input.input_ids = inputs.input_ids;
  input.attention_mask = inputs.attention_mask;
  return run_trace(model, input, body, options);
}

torch::Tensor run_trace(const StandardizedTransformer& model, const ForwardInput& input, const TraceBody& body,
                        const TraceOptions& options) {
  if (!body) {  // nothing to interleave: a plain forward
    GradModeScope grad(options.grad);
    return model.forward(input);
  }
  Trace::Engine engine(model, input, options);
  Trace trace(engine);
  {
    GradModeScope grad(options.grad);
    try {
      body(trace);
    } catch (...) {
      engine.abandon();
      throw;
    }
  }
  return engine.finish();
}

}  // namespace nnterp

namespace nnterp {

torch::Tensor StandardizedTransformer::trace(const TraceInput& inputs, const TraceBody& body,
                                             const TraceOptions& options) const {
  return run_trace(*this, tokenize(inputs), body, options);
}

}  // namespace nnterp

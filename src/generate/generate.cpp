// Batched generation over the trace: one trace per step, a KV cache between steps.
#include "nnterp/generate.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <random>

#include "nnterp/error.hpp"
#include "nnterp/language_model.hpp"
#include "nnterp/tokenizer.hpp"

namespace nnterp {

StepBody at_all_steps(TraceBody body) {
  return [body = std::move(body)](Trace& t, int) { body(t); };
}

StepBody at_steps(int first, int last, TraceBody body) {
  return [=](Trace& t, int step) {
    if (step >= first && step <= last) body(t);
  };
}

StepBody at_prompt(TraceBody body) { return at_steps(0, 0, std::move(body)); }

namespace {

bool sampling(const GenerateOptions& o) { return o.temperature > 0 || o.top_k > 0 || o.top_p < 1.0; }

std::string number_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Written so that NaN fails every check.
void check_options(const GenerateOptions& o) {
  auto bad = [](const std::string& what, const std::string& why, const std::string& hint = "") {
    throw Error(ErrorKind::InvalidArgument, what, why, hint);
  };
  if (o.max_new_tokens <= 0)
    bad("max_new_tokens", "must be >= 1, got " + std::to_string(o.max_new_tokens),
        "to score a prompt without generating, use forward() or trace()");
  if (!(o.temperature >= 0)) bad("temperature", "must be >= 0 (0 is greedy), got " + number_text(o.temperature));
  if (o.top_k < 0) bad("top_k", "must be >= 0 (0 is off), got " + std::to_string(o.top_k));
  if (!(o.top_p > 0 && o.top_p <= 1)) bad("top_p", "must lie in (0, 1] (1 is off), got " + number_text(o.top_p));
  if (!(o.repetition_penalty > 0)) bad("repetition_penalty", "must be > 0 (1 is off), got " + number_text(o.repetition_penalty));
}

// Generation appends after the last column: every row must end with a real token (left padding).
void check_left_padded(const torch::Tensor& mask) {
  auto last_real = mask.select(1, -1).ne(0);
  if (last_real.all().item<bool>()) return;
  const int64_t b = last_real.logical_not().nonzero()[0][0].item<int64_t>();
  throw Error(ErrorKind::InvalidArgument, "attention_mask",
              "prompt row " + std::to_string(b) +
                  " ends with padding (its mask is 0 in the last column): generation appends new tokens after the last "
                  "column, so prompts must be left-padded",
              "pad on the left (BatchOptions::padding_side = PaddingSide::Left, the default of model.tokenize)");
}

// With learned absolute positions, the last forward step sees position (longest prompt + max_new_tokens - 2).
void check_position_budget(const LanguageModel& model, const torch::Tensor& mask, int max_new_tokens) {
  const auto positions = model.learned_positions();
  if (!positions) return;
  const int64_t max_positions = *positions;
  const int64_t longest = mask.ne(0).sum(1).max().item<int64_t>();
  const int64_t needed = longest + max_new_tokens - 1;  // the last generated token is never fed back
  if (needed <= max_positions) return;
  const int64_t room = max_positions - longest + 1;
  throw Error(ErrorKind::InvalidArgument, "max_new_tokens",
              "a prompt of " + std::to_string(longest) + " tokens plus " + std::to_string(max_new_tokens) +
                  " new tokens needs " + std::to_string(needed) + " positions, but the model has " +
                  std::to_string(max_positions) + " learned positions",
              room >= 1 ? "lower max_new_tokens to at most " + std::to_string(room) + " or shorten the prompt"
                        : "shorten the prompt to at most " + std::to_string(max_positions) + " tokens");
}

// HF's RepetitionPenaltyLogitsProcessor: every token already in the sequence has its logit divided
// by the penalty when positive, multiplied when negative.
torch::Tensor penalize_repetition(torch::Tensor logits, const torch::Tensor& seen, double penalty) {
  auto score = logits.gather(1, seen);
  score = torch::where(score < 0, score * penalty, score / penalty);
  return logits.scatter(1, seen, score);
}

torch::Tensor filter_top_k(const torch::Tensor& logits, int k) {
  if (k <= 0 || k >= logits.size(-1)) return logits;
  auto kth = std::get<0>(logits.topk(k, -1)).narrow(-1, k - 1, 1);
  return logits.masked_fill(logits < kth, -std::numeric_limits<float>::infinity());
}

// Keeps the smallest set of most likely tokens whose probabilities sum to at least p.
torch::Tensor filter_top_p(const torch::Tensor& logits, double p) {
  if (p >= 1.0) return logits;
  auto [sorted, order] = logits.sort(-1, /*descending=*/true);
  auto probs = torch::softmax(sorted, -1);
  auto before = probs.cumsum(-1) - probs;  // mass strictly before each token
  auto drop_sorted = before > p;
  auto drop = torch::zeros_like(drop_sorted).scatter(-1, order, drop_sorted);
  return logits.masked_fill(drop, -std::numeric_limits<float>::infinity());
}

torch::Tensor choose_tokens(torch::Tensor logits, const torch::Tensor& seen, const GenerateOptions& o,
                            at::Generator& generator) {
  logits = logits.to(torch::kFloat32);
  if (o.repetition_penalty != 1.0) logits = penalize_repetition(logits, seen, o.repetition_penalty);
  if (!sampling(o)) return logits.argmax(-1);
  if (o.temperature > 0) logits = logits / o.temperature;
  logits = filter_top_p(filter_top_k(logits, o.top_k), o.top_p);
  auto probs = torch::softmax(logits, -1);
  return torch::multinomial(probs, 1, false, generator).squeeze(-1);
}

}  // namespace

struct Generation::State {
  const LanguageModel& model;
  GenerateOptions options;
  int64_t B = 0, T = 0;
  std::vector<int64_t> eos;
  int64_t pad = 0;
  at::Generator generator;
  torch::Tensor ids, mask, eos_tensor, unfinished, last_tokens;
  KVCache cache;
  std::vector<torch::Tensor> step_logits;
  int step = 0;
  bool finished = false;

  State(const LanguageModel& m, const GenerateOptions& o) : model(m), options(o) {}
};

Generation::Generation(const LanguageModel& model, const TraceInput& inputs, const GenerateOptions& options)
    : s_(std::make_unique<State>(model, options)) {
  check_options(options);
  TokenBatch batch = model.tokenize(inputs);  // checks ids, mask values and empty rows
  s_->B = batch.input_ids.size(0), s_->T = batch.input_ids.size(1);
  check_left_padded(batch.attention_mask);
  check_position_budget(model, batch.attention_mask, options.max_new_tokens);
  auto& eos = s_->eos;
  eos = options.eos_token_ids.empty() ? model.eos_token_ids() : options.eos_token_ids;
  s_->pad = options.pad_token_id ? *options.pad_token_id : model.pad_token_id().value_or(eos.empty() ? 0 : eos.front());
  if (options.stop_at_eos && !eos.empty() && (s_->pad < 0 || s_->pad >= model.vocab_size()))
    throw Error(ErrorKind::InvalidArgument, "pad_token_id",
                "the id padding finished rows, " + std::to_string(s_->pad) + ", is outside the vocabulary [0, " +
                    std::to_string(model.vocab_size()) + ")",
                options.pad_token_id ? "set GenerateOptions::pad_token_id to an id of this model"
                                     : "the model's config gives this pad id: set GenerateOptions::pad_token_id");
  s_->generator = options.seed ? at::detail::createCPUGenerator(*options.seed)
                               : at::detail::createCPUGenerator(static_cast<uint64_t>(std::random_device{}()));
  s_->ids = batch.input_ids.to(torch::kInt64), s_->mask = batch.attention_mask.to(torch::kInt64);
  s_->eos_tensor = torch::tensor(eos.empty() ? std::vector<int64_t>{-1} : eos, torch::kInt64);
  s_->unfinished = torch::ones({s_->B}, torch::kBool);
  s_->cache.reserve(s_->ids.size(1) + options.max_new_tokens);  // one allocation per layer for the whole generation
}

Generation::~Generation() = default;
Generation::Generation(Generation&&) noexcept = default;

bool Generation::done() const { return s_->finished || s_->step >= s_->options.max_new_tokens; }

int Generation::step() const { return s_->step; }

ForwardInput Generation::next_input() {
  ForwardInput in;
  in.logits_last_only = true;
  const bool whole = s_->options.recompute || s_->step == 0;
  in.input_ids = whole ? s_->ids : s_->last_tokens.unsqueeze(1);
  in.attention_mask = s_->mask;
  if (!s_->options.recompute) in.cache = &s_->cache;
  return in;
}

void Generation::accept(torch::Tensor logits) {
  torch::NoGradGuard no_grad;
  auto& s = *s_;
  if (!logits.defined())
    throw Error(ErrorKind::InvalidArgument, "generation step " + std::to_string(s.step),
                "the step body stopped the forward pass, so there are no logits to choose the next token from");
  // As HF's generate: the next-token logits in float32, beside the ids (on the CPU).
  logits = logits.select(1, -1).to(torch::kCPU, torch::kFloat32);
  if (s.options.keep_logits) s.step_logits.push_back(logits);
  torch::Tensor next = choose_tokens(logits, s.ids, s.options, s.generator);
  const bool eos_stops = s.options.stop_at_eos && !s.eos.empty();
  if (eos_stops) next = torch::where(s.unfinished, next, torch::full_like(next, s.pad));
  s.ids = torch::cat({s.ids, next.unsqueeze(1)}, 1);
  s.mask = torch::cat({s.mask, torch::ones({s.B, 1}, torch::kInt64)}, 1);  // as HF: finished rows keep a mask of 1
  s.last_tokens = next;
  if (s.options.on_step) s.options.on_step(s.step, next);
  ++s.step;
  if (eos_stops) {
    s.unfinished = s.unfinished & torch::isin(next, s.eos_tensor).logical_not();
    if (!s.unfinished.any().item<bool>()) s.finished = true;
  }
}

GenerateResult Generation::result() const {
  const auto& s = *s_;
  GenerateResult result;
  result.ids = s.ids;
  result.attention_mask = s.mask;
  result.prompt_length = s.T;
  if (s.options.keep_logits && !s.step_logits.empty()) result.step_logits = torch::stack(s.step_logits, 1);
  if (const Tokenizer* tok = s.model.tokenizer()) {
    for (int64_t b = 0; b < s.B; ++b) {
      auto row = s.ids[b].narrow(0, s.T, s.ids.size(1) - s.T);
      std::vector<int64_t> new_ids(row.data_ptr<int64_t>(), row.data_ptr<int64_t>() + row.numel());
      // Stop at the first EOS: later positions are padding.
      for (size_t k = 0; k < new_ids.size(); ++k)
        if (std::find(s.eos.begin(), s.eos.end(), new_ids[k]) != s.eos.end()) {
          new_ids.resize(k);
          break;
        }
      result.texts.push_back(tok->decode(new_ids, /*skip_special_tokens=*/true));
    }
  }
  return result;
}

GenerateResult generate(const LanguageModel& model, const TraceInput& inputs, const GenerateOptions& options,
                        const StepBody& body) {
  Generation generation(model, inputs, options);
  torch::NoGradGuard no_grad;
  while (!generation.done()) {
    const int step = generation.step();
    TraceBody step_body;
    if (body) step_body = [&](Trace& t) { body(t, step); };
    generation.accept(run_trace(model, generation.next_input(), step_body));
  }
  return generation.result();
}

}  // namespace nnterp

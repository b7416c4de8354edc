// nnterp-train-toy: trains nnterp's default toy model from scratch on a generated corpus of facts
// and writes it as a standard HuggingFace llama folder (config.json, generation_config.json,
// model.safetensors, tokenizer.json, tokenizer_config.json) plus the corpus it was trained on.
//
// The forward pass is nnterp's own decoder (model::Decoder, the same code every model runs on)
// with requires_grad weights; libtorch autograd + AdamW do the rest. Deterministic given --seed
// and --threads. See docs/toy_model.md.
#include <fmt/format.h>
#include <torch/torch.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "bpe.hpp"
#include "corpus.hpp"
#include "model/arch.hpp"
#include "model/decoder.hpp"
#include "model/weights.hpp"
#include "io/config_json.hpp"
#include "nnterp/config.hpp"
#include "nnterp/error.hpp"
#include "nnterp/model.hpp"
#include "nnterp/safetensors.hpp"
#include "nnterp/threading.hpp"
#include "nnterp/tokenizer.hpp"

namespace fs = std::filesystem;
using nlohmann::json;

namespace nnterp::toy {

namespace {

const std::string kSpecial = "<|endoftext|>";
const std::string kTransformersVersion = "4.46.3";

struct Options {
  std::string out = NNTERP_DEFAULT_MODEL_DIR;
  uint64_t seed = 1234;
  int threads = 2;
  int layers = 4, hidden = 128, heads = 4, intermediate = 384;
  int vocab = 2048;
  int seq = 64, batch = 16;
  int steps = 700, warmup = 50;
  double lr = 3e-3, min_lr_ratio = 0.05, weight_decay = 0.01, clip = 1.0;
  int repeat_docs = 150;  // repeat documents per epoch
  int eval_every = 250;
  bool eval_only = false;
};

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void write_json(const fs::path& path, const json& j) {
  std::ofstream f(path);
  if (!f) throw Error(ErrorKind::Io, path.string(), "cannot write");
  f << j.dump(2) << "\n";
}

json config_json(const Options& o, int64_t vocab) {
  json c;
  c["architectures"] = json::array({"LlamaForCausalLM"});
  c["attention_bias"] = false;
  c["attention_dropout"] = 0.0;
  c["bos_token_id"] = 0;
  c["eos_token_id"] = 0;
  c["head_dim"] = o.hidden / o.heads;
  c["hidden_act"] = "silu";
  c["hidden_size"] = o.hidden;
  c["initializer_range"] = 0.02;
  c["intermediate_size"] = o.intermediate;
  c["max_position_embeddings"] = 256;
  c["mlp_bias"] = false;
  c["model_type"] = "llama";
  c["num_attention_heads"] = o.heads;
  c["num_hidden_layers"] = o.layers;
  c["num_key_value_heads"] = o.heads;
  c["pretraining_tp"] = 1;
  c["rms_norm_eps"] = 1e-05;
  c["rope_scaling"] = nullptr;
  c["rope_theta"] = 10000.0;
  c["tie_word_embeddings"] = false;
  c["torch_dtype"] = "float32";
  c["transformers_version"] = kTransformersVersion;
  c["use_cache"] = true;
  c["vocab_size"] = vocab;
  return c;
}

// Standardized weights (include/nnterp/weight_names.hpp), initialised as HF's
// LlamaPreTrainedModel does (normal(0, 0.02), norms at 1), with the residual-branch outputs scaled
// by 1/sqrt(2·layers).
std::map<WeightId, torch::Tensor> init_weights(const model::ArchSpec& spec) {
  const int64_t H = spec.hidden, V = spec.vocab, I = spec.mlp.intermediate;
  const int64_t qkv = (spec.attn.num_heads + 2 * spec.attn.num_kv_heads) * spec.attn.head_dim;
  const double std = 0.02, out_std = 0.02 / std::sqrt(2.0 * static_cast<double>(spec.num_layers));
  std::map<WeightId, torch::Tensor> w;
  auto normal = [](std::vector<int64_t> shape, double s) { return torch::randn(shape) * s; };
  w[{Weight::Embed}] = normal({V, H}, std);
  for (int i = 0; i < spec.num_layers; ++i) {
    w[{Weight::AttnNorm, i}] = torch::ones({H});
    w[{Weight::Qkv, i}] = normal({qkv, H}, std);
    w[{Weight::O, i}] = normal({H, spec.attn.num_heads * spec.attn.head_dim}, out_std);
    w[{Weight::MlpNorm, i}] = torch::ones({H});
    w[{Weight::GateUp, i}] = normal({2 * I, H}, std);
    w[{Weight::Down, i}] = normal({H, I}, out_std);
  }
  w[{Weight::FinalNorm}] = torch::ones({H});
  w[{Weight::LmHead}] = normal({V, H}, std);
  for (auto& [id, t] : w) t.requires_grad_(true);
  return w;
}

// The HF checkpoint names LlamaForCausalLM.save_pretrained writes.
std::vector<std::pair<std::string, torch::Tensor>> to_hf(const model::ArchSpec& spec,
                                                         const std::map<WeightId, torch::Tensor>& w) {
  const int64_t hq = spec.attn.num_heads * spec.attn.head_dim, hkv = spec.attn.num_kv_heads * spec.attn.head_dim;
  const int64_t I = spec.mlp.intermediate;
  std::vector<std::pair<std::string, torch::Tensor>> out;
  auto put = [&](const std::string& name, const torch::Tensor& t) { out.emplace_back(name, t.detach().contiguous().clone()); };
  put("model.embed_tokens.weight", w.at({Weight::Embed}));
  for (int i = 0; i < spec.num_layers; ++i) {
    const std::string h = "model.layers." + std::to_string(i) + ".";
    auto at = [&](Weight weight) -> const torch::Tensor& { return w.at({weight, i}); };
    const auto& qkv = at(Weight::Qkv);
    put(h + "self_attn.q_proj.weight", qkv.narrow(0, 0, hq));
    put(h + "self_attn.k_proj.weight", qkv.narrow(0, hq, hkv));
    put(h + "self_attn.v_proj.weight", qkv.narrow(0, hq + hkv, hkv));
    put(h + "self_attn.o_proj.weight", at(Weight::O));
    const auto& gu = at(Weight::GateUp);
    put(h + "mlp.gate_proj.weight", gu.narrow(0, 0, I));
    put(h + "mlp.up_proj.weight", gu.narrow(0, I, I));
    put(h + "mlp.down_proj.weight", at(Weight::Down));
    put(h + "input_layernorm.weight", at(Weight::AttnNorm));
    put(h + "post_attention_layernorm.weight", at(Weight::MlpNorm));
  }
  put("model.norm.weight", w.at({Weight::FinalNorm}));
  put("lm_head.weight", w.at({Weight::LmHead}));
  return out;
}

// Greedy correctness by teacher forcing: the model completes the prompt with the answer iff the
// argmax at every answer position is the answer's next token (exactly what greedy decoding emits).
struct EvalRows {
  std::vector<std::vector<int64_t>> ids;
  std::vector<size_t> prompt_len;
};

EvalRows eval_rows(const Tokenizer& tok, const std::vector<Example>& examples) {
  EvalRows rows;
  for (const auto& e : examples) {
    auto p = tok.encode_ids(e.prompt, true);
    auto full = tok.encode_ids(e.text(), true);
    if (full.size() <= p.size() || !std::equal(p.begin(), p.end(), full.begin()))
      throw Error(ErrorKind::InvalidArgument, e.text(), "the prompt's tokens are not a prefix of prompt + answer");
    rows.ids.push_back(full);
    rows.prompt_len.push_back(p.size());
  }
  return rows;
}

double accuracy(const std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>& forward,
                const EvalRows& rows, std::vector<bool>* correct = nullptr) {
  torch::NoGradGuard no_grad;
  const size_t N = rows.ids.size();
  size_t ok = 0;
  if (correct) correct->assign(N, false);
  for (size_t b = 0; b < N; b += 64) {
    const size_t e = std::min(N, b + 64);
    size_t T = 0;
    for (size_t k = b; k < e; ++k) T = std::max(T, rows.ids[k].size());
    auto ids = torch::zeros({static_cast<int64_t>(e - b), static_cast<int64_t>(T)}, torch::kInt64);
    auto mask = torch::zeros_like(ids);
    for (size_t k = b; k < e; ++k)  // right padding: causal attention never sees it
      for (size_t t = 0; t < rows.ids[k].size(); ++t) {
        ids[static_cast<int64_t>(k - b)][static_cast<int64_t>(t)] = rows.ids[k][t];
        mask[static_cast<int64_t>(k - b)][static_cast<int64_t>(t)] = 1;
      }
    auto pred = forward(ids, mask).argmax(-1);
    auto acc = pred.accessor<int64_t, 2>();
    for (size_t k = b; k < e; ++k) {
      bool good = true;
      for (size_t t = rows.prompt_len[k]; t < rows.ids[k].size(); ++t)
        good = good && acc[static_cast<int64_t>(k - b)][static_cast<int64_t>(t - 1)] == rows.ids[k][t];
      ok += good;
      if (correct) (*correct)[k] = good;
    }
  }
  return N ? static_cast<double>(ok) / static_cast<double>(N) : 0.0;
}

// One epoch of packed training rows [rows, seq + 1]: every document is <|endoftext|> + text.
torch::Tensor epoch_tokens(const Tokenizer& tok, const Corpus& corpus, const std::vector<Example>& train, Rng& rng,
                           const Options& o) {
  std::vector<std::string> docs;
  for (const auto& e : train) docs.push_back(e.text());
  for (int k = 0; k < o.repeat_docs; ++k) docs.push_back(corpus.repeat_document(rng, 3 + static_cast<int>(rng.below(4))));
  rng.shuffle(docs);
  std::vector<int64_t> stream;
  for (const auto& d : docs) {
    auto ids = tok.encode_ids(d, true);  // BOS + text
    stream.insert(stream.end(), ids.begin(), ids.end());
  }
  const int64_t width = o.seq + 1, rows = static_cast<int64_t>(stream.size()) / width;
  return torch::tensor(stream).narrow(0, 0, rows * width).view({rows, width}).clone();
}

std::string relation_breakdown(const std::vector<Example>& ex, const std::vector<bool>& correct) {
  std::map<std::string, std::pair<int, int>> by;
  for (size_t i = 0; i < ex.size(); ++i) {
    auto& [ok, n] = by[ex[i].relation];
    ok += correct[i];
    ++n;
  }
  std::string s;
  for (const auto& [r, c] : by) s += fmt::format(" {} {}/{}", r, c.first, c.second);
  return s;
}

void write_corpus(const fs::path& dir, const Corpus& corpus, uint64_t seed) {
  fs::create_directories(dir);
  std::ofstream train(dir / "train.txt"), heldout(dir / "heldout.jsonl");
  for (const auto& e : corpus.examples) {
    if (!e.heldout) train << e.text() << "\n";
    else
      heldout << json{{"prompt", e.prompt}, {"answer", " " + e.answer}, {"relation", e.relation},
                      {"subject", e.subject}, {"template", e.template_index}}.dump() << "\n";
  }
  std::ofstream readme(dir / "README.md");
  readme << "# The toy model's corpus (seed " << seed << ")\n\n"
         << "- `train.txt`: every training sentence (fact + phrasing), one per line. Training also\n"
         << "  sees \"repeat\" documents (`cat cat\\nParis Paris\\n...`) generated on the fly.\n"
         << "- `heldout.jsonl`: the held-out (fact, phrasing) pairs: `prompt`, `answer` (with its\n"
         << "  leading space), `relation`, `subject`, `template`. Every fact is in `train.txt` in other\n"
         << "  phrasings; these prompts never are.\n\n"
         << "Regenerate with `nnterp-train-toy` (see docs/toy_model.md).\n";
}

int run(const Options& o) {
  configure_threads(o.threads);
  torch::manual_seed(o.seed);
  const auto t0 = Clock::now();
  const fs::path out(o.out);
  Corpus corpus = make_corpus(o.seed);
  const auto train = corpus.train(), heldout = corpus.heldout();
  fmt::print("corpus: {} facts x phrasings, {} training sentences, {} held out, {} repeat words\n",
             corpus.examples.size(), train.size(), heldout.size(), corpus.repeat_words.size());

  if (o.eval_only) {
    StandardizedTransformer m(out.string());
    auto rows = eval_rows(*m.tokenizer(), heldout);
    std::vector<bool> correct;
    double acc = accuracy([&](const torch::Tensor& i, const torch::Tensor& a) { return m.forward(i, a); }, rows, &correct);
    fmt::print("held-out accuracy {:.4f} ({}/{}):{}\n", acc, static_cast<int>(std::lround(acc * heldout.size())),
               heldout.size(), relation_breakdown(heldout, correct));
    for (size_t i = 0; i < heldout.size(); ++i)
      if (!correct[i]) fmt::print("  wrong: {:?} -> {:?}\n", heldout[i].prompt, heldout[i].answer);
    return 0;
  }

  // Tokenizer: byte-level BPE on the training text and a sample of repeat documents.
  Rng rng(o.seed ^ 0x5eedull);
  std::vector<std::string> bpe_texts;
  for (const auto& e : train) bpe_texts.push_back(e.text());
  for (int k = 0; k < 2000; ++k) bpe_texts.push_back(corpus.repeat_document(rng, 4));
  auto bpe = train_bpe(bpe_texts, static_cast<size_t>(o.vocab), kSpecial);
  const json tok_json = tokenizer_json(bpe, kSpecial), tok_config = tokenizer_config_json(kSpecial, 256);
  auto tok = Tokenizer::from_json_string(tok_json.dump(), tok_config.dump());
  const int64_t V = static_cast<int64_t>(bpe.vocab.size());
  fmt::print("tokenizer: {} tokens ({} merges); \"The capital of France is Paris\" -> {} tokens\n", V,
             bpe.merges.size(), tok.encode_ids("The capital of France is Paris", false).size());

  const json cfg = config_json(o, V);
  const auto spec = model::arch_from_config(ConfigAccess::from_json(cfg, "config.json"));
  auto params = init_weights(spec);
  model::Weights weights;
  weights.tensors = params;
  model::Decoder decoder(spec, weights);
  auto forward = [&](const torch::Tensor& ids, const torch::Tensor& mask) {
    ForwardInput in;
    in.input_ids = ids;
    in.attention_mask = mask;
    return decoder.forward(in);
  };
  int64_t n_params = 0;
  for (const auto& [id, t] : params) n_params += t.numel();
  fmt::print("model: llama, {} layers, hidden {}, {} heads, intermediate {}, vocab {}: {} parameters\n", o.layers,
             o.hidden, o.heads, o.intermediate, V, n_params);

  // The optimizer and the gradient clipping see the parameters in the order of their standardized
  // names (as when they were keyed by name), so that a retrain reproduces models/default exactly.
  std::map<std::string, torch::Tensor> by_name;
  for (const auto& [id, t] : params) by_name.emplace(id.name(), t);
  std::vector<torch::Tensor> decay, no_decay;
  for (const auto& [name, t] : by_name) (t.dim() >= 2 ? decay : no_decay).push_back(t);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(o.lr).betas({0.9, 0.95}).weight_decay(o.weight_decay)));
  groups.emplace_back(no_decay, std::make_unique<torch::optim::AdamWOptions>(
                                    torch::optim::AdamWOptions(o.lr).betas({0.9, 0.95}).weight_decay(0.0)));
  torch::optim::AdamW optimizer(groups, torch::optim::AdamWOptions(o.lr));
  std::vector<torch::Tensor> all_params;
  for (const auto& [name, t] : by_name) all_params.push_back(t);

  const auto heldout_rows = eval_rows(tok, heldout);
  auto eval_train_sample = train;
  { Rng r(o.seed + 7); r.shuffle(eval_train_sample); eval_train_sample.resize(std::min<size_t>(300, train.size())); }
  const auto train_rows = eval_rows(tok, eval_train_sample);

  torch::Tensor epoch;
  int64_t cursor = 0, epochs = 0;
  double loss_avg = 0;
  const auto t_train = Clock::now();
  for (int step = 1; step <= o.steps; ++step) {
    if (!epoch.defined() || cursor + o.batch > epoch.size(0)) {
      epoch = epoch_tokens(tok, corpus, train, rng, o);
      cursor = 0;
      ++epochs;
    }
    auto rows = epoch.narrow(0, cursor, o.batch);
    cursor += o.batch;
    const double warm = std::min(1.0, static_cast<double>(step) / o.warmup);
    const double progress = static_cast<double>(std::max(0, step - o.warmup)) / std::max(1, o.steps - o.warmup);
    const double lr = o.lr * warm * (o.min_lr_ratio + (1 - o.min_lr_ratio) * 0.5 * (1 + std::cos(M_PI * progress)));
    for (auto& g : optimizer.param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);

    auto inputs = rows.narrow(1, 0, o.seq), targets = rows.narrow(1, 1, o.seq);
    auto logits = forward(inputs, torch::Tensor());
    auto loss = torch::nn::functional::cross_entropy(logits.reshape({-1, V}), targets.reshape({-1}));
    optimizer.zero_grad();
    loss.backward();
    torch::nn::utils::clip_grad_norm_(all_params, o.clip);
    optimizer.step();
    const double l = loss.item<double>();
    loss_avg = step == 1 ? l : 0.95 * loss_avg + 0.05 * l;
    if (step % 50 == 0 || step == 1)
      fmt::print("step {:5d}  epoch {:3d}  lr {:.2e}  loss {:.4f}  ({:.0f} s)\n", step, epochs, lr, loss_avg,
                 seconds_since(t_train));
    if (step % o.eval_every == 0 || step == o.steps) {
      std::vector<bool> correct;
      double ha = accuracy(forward, heldout_rows, &correct);
      double ta = accuracy(forward, train_rows);
      fmt::print("  eval: train-sample accuracy {:.3f}, held-out accuracy {:.3f}:{}\n", ta, ha,
                 relation_breakdown(heldout, correct));
    }
    std::fflush(stdout);
  }
  const double train_seconds = seconds_since(t_train);

  // Write the HF folder.
  fs::create_directories(out);
  write_json(out / "config.json", cfg);
  write_json(out / "generation_config.json", json{{"_from_model_config", true}, {"bos_token_id", 0}, {"eos_token_id", 0},
                                                 {"transformers_version", kTransformersVersion}});
  write_json(out / "tokenizer.json", tok_json);
  write_json(out / "tokenizer_config.json", tok_config);
  write_json(out / "special_tokens_map.json",
             json{{"bos_token", kSpecial}, {"eos_token", kSpecial}, {"pad_token", kSpecial}});
  io::save_safetensors(out / "model.safetensors", to_hf(spec, params), {{"format", "pt"}});
  write_corpus(out / "corpus", corpus, o.seed);

  // Reload the folder as any model and measure the held-out accuracy on it.
  StandardizedTransformer reloaded(out.string());
  auto rows = eval_rows(*reloaded.tokenizer(), heldout);
  std::vector<bool> correct;
  const double acc = accuracy([&](const torch::Tensor& i, const torch::Tensor& a) { return reloaded.forward(i, a); },
                              rows, &correct);
  fmt::print("wrote {} ({} steps, {} epochs, training {:.0f} s, total {:.0f} s, {} threads)\n", out.string(), o.steps,
             epochs, train_seconds, seconds_since(t0), o.threads);
  fmt::print("held-out accuracy of the saved model: {:.4f}:{}\n", acc, relation_breakdown(heldout, correct));
  for (size_t i = 0; i < heldout.size(); ++i)
    if (!correct[i]) fmt::print("  wrong: {:?} -> {:?}\n", heldout[i].prompt, heldout[i].answer);
  return 0;
}

}  // namespace

}  // namespace nnterp::toy

int main(int argc, char** argv) {
  nnterp::toy::Options o;
  CLI::App app{"nnterp-train-toy: train nnterp's default toy model (a small llama) on generated facts"};
  app.add_option("--out", o.out, "output model folder (default: models/default of the source tree)");
  app.add_option("--seed", o.seed, "seed of the corpus split, initialisation and data order (default 1234)");
  app.add_option("--threads", o.threads, "BLAS threads; results are deterministic for a given count (default 2)");
  app.add_option("--layers", o.layers, "decoder layers (default 4)");
  app.add_option("--hidden", o.hidden, "hidden size (default 128)");
  app.add_option("--heads", o.heads, "attention heads (default 4)");
  app.add_option("--intermediate", o.intermediate, "MLP size (default 384)");
  app.add_option("--vocab", o.vocab, "maximum vocabulary size (default 2048)");
  app.add_option("--seq", o.seq, "training sequence length (default 64)");
  app.add_option("--batch", o.batch, "sequences per step (default 16)");
  app.add_option("--steps", o.steps, "optimizer steps (default 700)");
  app.add_option("--warmup", o.warmup, "linear warm-up steps (default 50)");
  app.add_option("--lr", o.lr, "peak learning rate, cosine decay after warm-up (default 3e-3)");
  app.add_option("--repeat-docs", o.repeat_docs, "repeat documents per epoch (default 150)");
  app.add_option("--eval-every", o.eval_every, "steps between held-out evaluations (default 250)");
  app.add_flag("--eval-only", o.eval_only, "only measure the held-out accuracy of the model in --out");
  app.footer("Example:\n  nnterp-train-toy                      # rewrites models/default\n"
             "  nnterp-train-toy --out /tmp/toy --steps 200\n  nnterp-train-toy --eval-only");
  CLI11_PARSE(app, argc, argv);
  try {
    return nnterp::toy::run(o);
  } catch (const std::exception& e) {
    fmt::print(stderr, "nnterp-train-toy: {}\n", e.what());
    return 1;
  }
}

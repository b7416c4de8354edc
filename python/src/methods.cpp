// nnterp's methods (nnterp/methods.hpp) for the Python package, which gives them the Python
// library's names and signatures (python/nnterp/_methods.py). Long runs release the GIL.
#include <pybind11/functional.h>
#include <pybind11/stl.h>

#include "bindings.hpp"
#include "nnterp/error.hpp"
#include "nnterp/methods.hpp"

namespace nnterp::python {

namespace {

// (prompt, index_to_patch, token_ids): the ids, when not empty, are used instead of the text.
using TargetTuple = std::tuple<std::string, int64_t, std::vector<int64_t>>;

std::vector<TargetPrompt> target_prompts(const std::vector<TargetTuple>& targets) {
  std::vector<TargetPrompt> out;
  for (const auto& [prompt, index, ids] : targets) out.push_back(TargetPrompt{prompt, index, ids});
  return out;
}

}  // namespace

GenerateOptions generate_options(const py::dict& o) {
  GenerateOptions g;
  for (const auto& [key, value] : o) {
    const auto name = key.cast<std::string>();
    if (name == "max_new_tokens") g.max_new_tokens = value.cast<int>();
    else if (name == "temperature") g.temperature = value.cast<double>();
    else if (name == "top_k") g.top_k = value.cast<int>();
    else if (name == "top_p") g.top_p = value.cast<double>();
    else if (name == "repetition_penalty") g.repetition_penalty = value.cast<double>();
    else if (name == "seed") g.seed = value.cast<uint64_t>();
    else if (name == "stop_at_eos") g.stop_at_eos = value.cast<bool>();
    else if (name == "eos_token_ids") g.eos_token_ids = value.cast<std::vector<int64_t>>();
    else if (name == "pad_token_id") g.pad_token_id = value.cast<int64_t>();
    else if (name == "recompute") g.recompute = value.cast<bool>();
    else if (name == "keep_logits") g.keep_logits = value.cast<bool>();
    else throw py::type_error("generate() got an unexpected keyword argument '" + name + "'");
  }
  return g;
}

py::dict generate_result(const GenerateResult& r) {
  return py::dict(py::arg("ids") = r.ids, py::arg("attention_mask") = r.attention_mask,
                  py::arg("prompt_length") = r.prompt_length,
                  py::arg("step_logits") = r.step_logits.defined() ? py::cast(r.step_logits) : py::none(),
                  py::arg("texts") = r.texts);
}

void bind_methods(py::module_& m) {
  using Model = StandardizedTransformer;
  m.def("logit_lens", [](const Model& model, const py::handle& prompts, const std::vector<int>& layers, int64_t idx,
                         int64_t batch_size, bool inverse) {
    auto input = trace_input(prompts);
    py::gil_scoped_release unlocked;
    auto lens = logit_lens_with_inverse(model, input, LensOptions{layers, idx, batch_size}, inverse);
    return std::make_pair(lens.probs, lens.inverse_probs);
  });
  m.def("next_token_probs", [](const Model& model, const py::handle& prompts, int64_t batch_size) {
    auto input = trace_input(prompts);
    py::gil_scoped_release unlocked;
    return next_token_probs(model, input, batch_size);
  });
  m.def("get_token_activations", [](const Model& model, const py::handle& prompts, int64_t idx,
                                    const std::vector<int>& layers, Point point) {
    auto input = trace_input(prompts);
    py::gil_scoped_release unlocked;
    return get_token_activations(model, input, idx, layers, point);
  });
  m.def("collect_token_activations_batched", [](const Model& model, const py::handle& prompts, int64_t batch_size,
                                                const std::vector<int>& layers, int64_t idx, Point point) {
    auto input = trace_input(prompts);
    py::gil_scoped_release unlocked;
    return collect_token_activations_batched(model, input, batch_size, layers, idx, point);
  });
  m.def("patchscope_lens", [](const Model& model, const py::handle& sources,
                              const std::vector<TargetTuple>& targets, const std::vector<int>& layers,
                              int64_t source_idx, int64_t batch_size) {
    const PatchscopeOptions options{layers, source_idx, batch_size};
    if (THPVariable_Check(sources.ptr()) && sources.cast<torch::Tensor>().is_floating_point()) {
      auto latents = sources.cast<torch::Tensor>();
      py::gil_scoped_release unlocked;
      return patchscope_lens(model, latents, target_prompts(targets), options);
    }
    auto input = trace_input(sources);
    py::gil_scoped_release unlocked;
    return patchscope_lens(model, input, target_prompts(targets), options);
  });
  m.def("it_repeat_prompt", [](const Tokenizer& tokenizer, const std::vector<std::string>& words, const std::string& rel,
                               const std::string& sep, const std::string& placeholder, bool complete_prompt,
                               bool add_user_instr, bool use_system_prompt) {
    auto target = it_repeat_prompt(tokenizer, words, rel, sep, placeholder, complete_prompt, add_user_instr,
                                   use_system_prompt);
    return py::make_tuple(target.prompt, target.index_to_patch, target.token_ids);
  });
  m.def("repeat_prompt", [](const std::vector<std::string>& words, const std::string& rel, const std::string& sep,
                            const std::string& placeholder, int64_t index_to_patch) {
    auto target = repeat_prompt(words, rel, sep, placeholder, index_to_patch);
    return py::make_tuple(target.prompt, target.index_to_patch);
  });
  m.def("steering_vector", [](const Model& model, const py::handle& positive, const py::handle& negative, int layer,
                              int64_t idx, int64_t batch_size) {
    auto pos = trace_input(positive), neg = trace_input(negative);
    py::gil_scoped_release unlocked;
    return steering_vector(model, pos, neg, layer, SteeringVectorOptions{idx, batch_size, Point::LayerOutput});
  });
  m.def("generate", [](const Model& model, const py::handle& prompts, const py::dict& options) {
    auto input = trace_input(prompts);
    auto o = generate_options(options);
    GenerateResult result;
    {
      py::gil_scoped_release unlocked;
      result = model.generate(input, o);
    }
    return generate_result(result);
  });

  m.def("collect_token_activations", [](const Model& model, const py::handle& prompts, const std::vector<int>& layers,
                                        int64_t idx, Point point, int64_t batch_size, const std::string& out_dir,
                                        int64_t shard_size, const std::string& dtype, bool overwrite, bool progress) {
    auto input = trace_input(prompts);
    CollectOptions o;
    o.layers = layers, o.idx = idx, o.point = point, o.batch_size = batch_size, o.out_dir = out_dir;
    o.shard_size = shard_size, o.overwrite = overwrite, o.progress = progress;
    o.dtype = parse_dtype_option(dtype, "dtype").value_or(torch::kFloat32);
    CollectResult r;
    {
      py::gil_scoped_release unlocked;
      r = collect_token_activations(model, input, o);
    }
    std::vector<std::string> shards;
    for (const auto& path : r.shards) shards.push_back(path.string());
    return py::dict(py::arg("activations") = r.activations.defined() ? py::cast(r.activations) : py::none(),
                    py::arg("layers") = r.layers, py::arg("num_prompts") = r.num_prompts,
                    py::arg("shards") = shards, py::arg("shards_written") = r.shards_written,
                    py::arg("shards_skipped") = r.shards_skipped, py::arg("seconds") = r.seconds);
  });
  m.def("load_activations", [](const std::string& dir, const std::vector<int>& layers) {
    auto shards = ActivationShards::open(dir);
    return py::make_tuple(shards.load(layers), shards.prompt_index(), shards.manifest_json());
  });
  m.def("activation_patching", [](const Model& model, const py::handle& clean, const py::handle& corrupted,
                                  PatchMetric metric, Point point, const std::vector<int>& layers, bool per_position,
                                  const std::vector<int64_t>& positions, bool per_head, int64_t batch_size,
                                  const std::string& method) {
    auto clean_input = trace_input(clean), corrupted_input = trace_input(corrupted);
    PatchingOptions o;
    if (method != "exact" && method != "atp")
      throw Error(ErrorKind::InvalidArgument, "method", "unknown patching method '" + method + "'", "use \"exact\" or \"atp\"");
    o.method = method == "atp" ? PatchMethod::Attribution : PatchMethod::Activation;
    o.point = point, o.layers = layers, o.per_position = per_position, o.positions = positions;
    o.per_head = per_head, o.metric = std::move(metric), o.batch_size = batch_size;
    PatchingResult r;
    {
      py::gil_scoped_release unlocked;  // the metric, a Python callable, takes the GIL back when called
      r = activation_patching(model, clean_input, corrupted_input, o);
    }
    return py::dict(py::arg("values") = r.values, py::arg("normalized") = r.normalized(), py::arg("dims") = r.dims,
                    py::arg("layers") = r.layers, py::arg("positions") = r.positions,
                    py::arg("clean_metric") = r.clean_metric, py::arg("corrupted_metric") = r.corrupted_metric);
  });

  m.def("direct_logit_attribution", [](const Model& model, const py::handle& prompts, const std::vector<int64_t>& targets,
                                       int64_t idx, int64_t batch_size) {
    auto input = trace_input(prompts);
    DlaOptions o;
    o.idx = idx, o.batch_size = batch_size;
    DlaResult r;
    {
      py::gil_scoped_release unlocked;
      r = direct_logit_attribution(model, input, targets, o);
    }
    return py::dict(py::arg("components") = r.components, py::arg("values") = r.values, py::arg("logits") = r.logits,
                    py::arg("model_logits") = r.model_logits, py::arg("targets") = r.targets);
  });

  py::class_<Prompt>(m, "Prompt", "A prompt with target tokens per category (nnterp::Prompt).")
      .def(py::init<>())
      .def_readwrite("prompt", &Prompt::prompt)
      .def_readwrite("target_tokens", &Prompt::target_tokens)
      .def_readwrite("target_strings", &Prompt::target_strings)
      .def_static("from_strings",
                  [](const std::string& prompt, const std::map<std::string, std::vector<std::string>>& targets,
                     const Model& model, bool allow_collisions) {
                    return Prompt::from_strings(prompt, targets, model, allow_collisions);
                  },
                  py::arg("prompt"), py::arg("targets"), py::arg("model"), py::arg("allow_collisions") = false)
      .def("has_no_collisions", &Prompt::has_no_collisions, py::arg("ignore") = std::vector<std::string>{})
      .def("get_target_probs", &Prompt::get_target_probs, py::arg("probs"));
  m.def("run_prompts", [](const Model& model, const std::vector<Prompt>& prompts, int64_t batch_size, bool lens,
                          const std::vector<int>& layers) {
    RunPromptsOptions o;
    o.batch_size = batch_size;
    o.progress = false;
    if (lens) o.probs = logit_lens_fn(LensOptions{layers, -1, batch_size});
    py::gil_scoped_release unlocked;
    return run_prompts(model, prompts, o);
  });
}

}  // namespace nnterp::python

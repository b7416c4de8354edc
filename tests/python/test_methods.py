"""The methods under the Python library's names and shapes, against their definitions computed
with the trace (so the C++ methods and the Python block agree)."""

import pytest
import torch

import nnterp
from nnterp.display import plot_topk_tokens, prompts_to_df
from nnterp.interventions import TargetPrompt, logit_lens, patchscope_lens, repeat_prompt
from nnterp.nnsight_utils import collect_token_activations_batched, get_token_activations, get_mlp_output
from nnterp.prompt_utils import Prompt, run_prompts

PROMPTS = ["The capital of France is", "Hello, my name", "1 2 3 4 5"]


def last_token_outputs(model, prompts):
    with model.trace(prompts):
        return torch.stack([model.layers_output[i][:, -1].clone() for i in range(model.num_layers)])


def test_logit_lens_is_each_layers_projection_of_the_last_token(default_model):
    model = default_model
    probs, inverse = logit_lens(model, PROMPTS, return_inv_logits=True)
    assert probs.shape == (3, model.num_layers, model.vocab_size)
    hidden = last_token_outputs(model, PROMPTS).transpose(0, 1)  # [batch, layers, hidden]
    assert torch.allclose(probs, torch.softmax(model.project_on_vocab(hidden), -1), atol=1e-6)
    # nnterp's definition: the negation comes after the final norm.
    assert torch.allclose(inverse, torch.softmax(model.lm_head(-model.ln_final(hidden)), -1), atol=1e-6)
    with model.trace(PROMPTS):
        next_probs = model.next_token_probs.save()
    assert torch.allclose(probs[:, -1], next_probs, atol=1e-6)  # the last layer is the model's own
    assert logit_lens(model, PROMPTS[0]).shape == (1, model.num_layers, model.vocab_size)


def test_token_activations_are_layers_first(default_model):
    model = default_model
    acts = get_token_activations(model, PROMPTS)
    assert torch.equal(acts, last_token_outputs(model, PROMPTS))
    mlp = get_token_activations(model, PROMPTS, layers=[1, 3], get_activations=get_mlp_output, idx=-2)
    with model.trace(PROMPTS):
        by_hand = torch.stack([model.mlps_output[i][:, -2].clone() for i in (1, 3)])
    assert torch.equal(mlp, by_hand)
    custom = get_token_activations(model, PROMPTS, layers=[2], get_activations=lambda m, l: m.attentions_input[l] * 2)
    with model.trace(PROMPTS):
        assert torch.equal(custom[0], model.attentions_input[2][:, -1] * 2)
    with model.trace(PROMPTS) as tracer:  # inside an open trace
        inside = get_token_activations(model, layers=[0, 1], tracer=tracer)
    assert torch.equal(inside, acts[:2])
    many = [f"prompt number {i} says" for i in range(7)]
    batched = collect_token_activations_batched(model, many, batch_size=3)
    assert batched.shape == (model.num_layers, 7, model.hidden_size)
    assert torch.allclose(batched, get_token_activations(model, many), atol=1e-5)


def test_patchscope_lens_patches_each_layer_into_the_target(default_model):
    model = default_model
    target = repeat_prompt()
    assert target == TargetPrompt("king king\n1135 1135\nhello hello\n?", -1)
    assert repeat_prompt(words=["cat", "dog"], rel="->", sep=" | ", placeholder="X").prompt == "cat->cat | dog->dog | X"
    sources = ["Paris", "The capital of Italy"]
    lens = patchscope_lens(model, sources, layers=[0, 2])
    assert lens.shape == (2, 2, model.vocab_size)
    latents = get_token_activations(model, sources, layers=[0, 2])
    for j, layer in enumerate((0, 2)):
        with model.trace([target.prompt] * 2):
            out = model.layers_output[layer]
            out[:, -1] = latents[j]
            expected = model.next_token_probs.save()
        assert torch.allclose(lens[:, j], expected, atol=1e-6), layer
    assert torch.allclose(patchscope_lens(model, latents=latents, layers=[0, 2]), lens, atol=1e-6)
    with pytest.raises(ValueError, match="either"):
        patchscope_lens(model)


def test_prompts_run_prompts_and_the_table(default_model):
    model = default_model
    p = Prompt.from_strings("The capital of France is", {"fr": ["Paris"], "en": "London"}, model.tokenizer)
    tok = model.tokenizer
    first = lambda text: tok.encode(text, add_special_tokens=False)[0]  # noqa: E731
    assert p.target_tokens["fr"] == list(dict.fromkeys([first("Paris"), first(" Paris")]))
    q = Prompt.from_strings("1 2 3 4", ["5", "6"], model)
    assert q.has_no_collisions()
    results = run_prompts(model, [p, p], get_probs_func=logit_lens)
    assert set(results) == {"fr", "en"} and results["fr"].shape == (2, model.num_layers)
    probs = logit_lens(model, p.prompt)
    assert torch.allclose(results["fr"][0], probs[0, :, p.target_tokens["fr"]].sum(-1), atol=1e-6)
    default = run_prompts(model, [p])
    assert default["fr"].shape == (1, 1) and torch.allclose(default["fr"][0, 0], results["fr"][0, -1], atol=1e-6)
    df = prompts_to_df([p, q], tok)
    assert list(df.columns) == [0, 1] and df.loc["prompt", 0] == p.prompt
    assert df.loc["fr_tokens", 0] == tok.convert_ids_to_tokens(p.target_tokens["fr"])


def test_plot_topk_tokens_returns_a_plotly_figure(default_model, tmp_path):
    model = default_model
    probs = logit_lens(model, PROMPTS[:2])
    fig = plot_topk_tokens(probs, model.tokenizer, k=3, file=tmp_path / "topk.html", show=False)
    assert type(fig).__name__ == "Figure" and len(fig.data) == 2
    top = probs[1, 2].topk(3)
    assert fig.data[1].z[2] == tuple(top.values.tolist()) or list(fig.data[1].z[2]) == top.values.tolist()
    assert "'" + model.tokenizer.convert_ids_to_tokens(int(top.indices[0])) + "'" == fig.data[1].text[2][0]
    assert (tmp_path / "topk.html").read_text().count("plotly") > 0


def test_generate_returns_prompt_and_new_tokens(default_model):
    model = default_model
    ids = model.generate("The capital of France is", max_new_tokens=5, stop_at_eos=False).output
    prompt_len = len(model.tokenizer.encode("The capital of France is"))
    assert ids.shape == (1, prompt_len + 5)
    with model.trace(ids[:, :-1]):
        predicted = model.logits[0, -1].argmax()
    assert predicted == ids[0, -1]  # greedy: the last token is the argmax after the others


def test_generation_steps_run_in_lock_step_with_the_loop_body(default_model):
    model = default_model
    prompt = ["The capital of France is", "Hello"]
    torch.manual_seed(0)
    v = torch.randn(model.hidden_size) * 4
    with model.generate(prompt, max_new_tokens=6, stop_at_eos=False) as gen:
        seen = []
        for step in gen.iter[1:4]:
            model.steer(layers=[1], steering_vector=v)
            seen.append((step, model.input_ids.shape[1]))
            if step == 1:
                steered_logits = model.logits[:, -1].clone()
    assert [s for s, _ in seen] == [1, 2, 3] and all(width == 1 for _, width in seen)  # KV cache: one new token
    steered = gen.output
    # The same steering through the C++ step body, for steps 1..3: identical tokens.
    import nnterp._nnterp as native  # noqa: F401
    plain = model.generate(prompt, max_new_tokens=6, stop_at_eos=False).output
    assert steered.shape == plain.shape == (2, steered.shape[1])
    assert torch.equal(steered[:, :-5], plain[:, :-5])  # the prompt and step 0's token are untouched
    with model.generate(prompt, max_new_tokens=2, stop_at_eos=False) as unsteered:
        for step in unsteered.iter[1]:
            plain_logits = model.logits[:, -1].clone()
    assert not torch.allclose(steered_logits, plain_logits), "the loop body's steering must reach the forward"
    with model.generate(prompt, max_new_tokens=6, stop_at_eos=False) as again:
        for step in again.all():
            if 1 <= step <= 3:
                model.layers_output[1] = model.layers_output[1] + v
    assert torch.equal(again.output, steered)
    with pytest.raises(ZeroDivisionError):
        with model.generate(prompt, max_new_tokens=3) as failing:
            for step in failing.all():
                model.layers_output[0]
                1 / 0
    with model.trace(prompt):  # the model is free again
        model.logits


def test_activation_patching_restores_the_clean_answer(default_model):
    model = default_model
    clean, corrupted = "The capital of France is", "The capital of Italy is"
    tok = model.tokenizer
    assert len(tok.encode(clean)) == len(tok.encode(corrupted))
    paris, rome = tok.encode(" Paris", add_special_tokens=False)[0], tok.encode(" Rome", add_special_tokens=False)[0]
    result = nnterp.activation_patching(model, clean, corrupted, (paris, rome), layers=[0, model.num_layers - 1])
    assert result.dims == ["layer", "position"] and result.values.shape == (2, len(tok.encode(clean)))
    assert result.clean_metric > result.corrupted_metric
    # The last layer's residual at the last position carries everything the logits depend on.
    assert result.normalized[1, -1].item() == pytest.approx(1.0, abs=1e-5)
    with model.trace(clean):
        clean_logits = model.logits[:, -1].clone()
    assert result.clean_metric == pytest.approx((clean_logits[:, paris] - clean_logits[:, rome]).mean().item(), rel=1e-5)


def test_attribution_patching_estimates_the_same_grid(default_model):
    model = default_model
    tok = model.tokenizer
    paris, rome = tok.encode(" Paris", add_special_tokens=False)[0], tok.encode(" Rome", add_special_tokens=False)[0]

    def metric(last):  # differentiable torch code, as AtP needs
        return (last[:, paris] - last[:, rome]).double().mean()

    args = (model, "The capital of France is", "The capital of Italy is", metric)
    exact = nnterp.activation_patching(*args)
    atp = nnterp.activation_patching(*args, method="atp")
    assert atp.values.shape == exact.values.shape and atp.dims == exact.dims
    assert atp.corrupted_metric == pytest.approx(exact.corrupted_metric, rel=1e-5)
    # The prefix the prompts share (BOS, The, capital, of) carries no effect in either; the country's
    # column at layer 0 moves the metric the same way in both.
    assert torch.allclose(atp.values[:, :4], exact.values[:, :4])
    assert (atp.values[0, 4] - atp.corrupted_metric) * (exact.values[0, 4] - exact.corrupted_metric) > 0
    with pytest.raises(nnterp.InvalidArgumentError, match="method"):
        nnterp.activation_patching(*args, method="fast")


def test_direct_logit_attribution_sums_to_the_logit(default_model):
    model = default_model
    paris = model.tokenizer.encode(" Paris", add_special_tokens=False)[0]
    r = nnterp.direct_logit_attribution(model, ["The capital of France is"], paris)
    assert r["components"][0] == "embed" and r["components"][-1] == "bias"
    assert r["values"].shape == (1, 2 * model.num_layers + 2)
    assert torch.allclose(r["logits"], r["model_logits"], atol=1e-4)


def test_collection_streams_to_disk_and_reads_back(default_model, tmp_path):
    model = default_model
    prompts = [f"prompt number {i} says" for i in range(7)]
    r = nnterp.collect_token_activations(model, prompts, layers=[1, 3], out_dir=tmp_path / "acts", shard_size=3)
    assert r["activations"] is None and len(r["shards"]) == 3 and r["shards_written"] == 3
    acts, index = nnterp.load_activations(tmp_path / "acts")
    assert torch.equal(index, torch.arange(7))
    assert torch.allclose(acts, get_token_activations(model, prompts, layers=[1, 3]), atol=1e-5)
    again = nnterp.collect_token_activations(model, prompts, layers=[1, 3], out_dir=tmp_path / "acts", shard_size=3)
    assert again["shards_skipped"] == 3  # a rerun resumes
    in_memory = nnterp.collect_token_activations(model, prompts, layers=[1, 3], point="mlps_output", dtype=torch.bfloat16)
    assert in_memory["activations"].dtype == torch.bfloat16 and in_memory["activations"].shape == (2, 7, model.hidden_size)
    with pytest.raises(nnterp.InvalidArgumentError, match="unknown 'mlp_out'"):
        nnterp.collect_token_activations(model, prompts, point="mlp_out")

"""SAEs from Python (issue 21): nnterp.Sae, tracer.sae (live features whose edits reach the forward,
gradients through the splice) and the SAE methods, on the default model."""

import torch

import nnterp

PROMPTS = ["The capital of France is", "The sky is"]


def random_sae(point="layers.2.output", d=128, d_sae=256, seed=0):
    g = torch.Generator().manual_seed(seed)
    w_dec = torch.randn(d_sae, d, generator=g)
    w_dec = w_dec / w_dec.norm(dim=1, keepdim=True)
    return nnterp.Sae.from_weights(w_dec.t().contiguous(), torch.full((d_sae,), -0.2), w_dec, torch.zeros(d), point)


def identity_sae(point, d=128):
    eye = torch.eye(d)
    return nnterp.Sae.from_weights(torch.cat([eye, -eye], 1), torch.zeros(2 * d), torch.cat([eye, -eye], 0),
                                   torch.zeros(d), point)


def test_sae_object(tmp_path):
    sae = random_sae()
    assert (sae.d_in, sae.d_sae, sae.d_out) == (128, 256, 128)
    assert sae.config["point"] == "layers.2.output"
    x = torch.randn(3, 128)
    f = sae.encode(x)
    assert torch.equal(f, torch.relu(x @ sae.W_enc - 0.2))
    assert torch.allclose(sae.decode(f), f @ sae.W_dec, atol=1e-6)
    sae.save_saelens(str(tmp_path / "sae"))
    moved = nnterp.Sae.load(str(tmp_path / "sae"), point="layers.1.output")
    assert moved.config["point"] == "layers.1.output"
    assert torch.equal(moved.encode(x), f)


def test_trace_sae_is_live(default_model):
    model, sae = default_model, random_sae()
    with model.trace(PROMPTS) as tracer:
        h = model.layers_output[2].clone()
        logits = model.logits.clone()
    with model.trace(PROMPTS) as tracer:
        f = tracer.sae(sae)
        assert f.shape == (2, h.shape[1], 256)
        assert torch.allclose(f, sae.encode(h))
        unedited = model.logits.clone()
    assert torch.equal(unedited, logits), "an unedited splice is the identity"
    feature = int(f[0, -1].argmax())
    with model.trace(PROMPTS) as tracer:
        tracer.sae(sae)[0, -1, feature] = 0
        ablated = model.logits.clone()
    assert not torch.equal(ablated[0, -1], logits[0, -1])
    assert torch.equal(ablated[1], logits[1]), "the other prompt is untouched"


def test_attribution_is_the_derivative_of_scaling_a_feature(default_model):
    model, sae = default_model, random_sae(seed=1)
    target = int(model.tokenizer.encode(" Paris", add_special_tokens=False)[0])
    r = nnterp.sae_feature_attribution(model, PROMPTS[:1], sae, target, top=5)
    assert r["dla"].shape == (1, 256) and r["top_features"].shape == (1, 5)
    feature = int(r["top_features"][0, 0])

    def logit(alpha):  # the feature scaled by alpha at every token, through the live features
        with model.trace(PROMPTS[:1]) as tracer:
            tracer.sae(sae)[0, :, feature] *= alpha
            return float(model.logits[0, -1, target])
    finite_difference = (logit(1.01) - logit(0.99)) / 0.02
    assert abs(float(r["attribution"][0, feature]) - finite_difference) < 2e-3 + 2e-3 * abs(finite_difference)


def test_methods(default_model):
    model, sae = default_model, random_sae()
    top = nnterp.sae_top_features(model, PROMPTS, sae, k=3)
    assert top["indices"].shape == top["activations"].shape == (2, top["input_ids"].shape[1], 3)
    assert len(top["tokens"][1]) == int(top["attention_mask"][1].sum())
    with model.trace(PROMPTS):
        h = model.layers_output[2].clone()
    values, indices = sae.encode(h[0]).topk(3, -1)
    assert torch.equal(top["indices"][0], indices)
    perfect = nnterp.sae_evaluate(model, PROMPTS, identity_sae("layers.1.output"))
    assert abs(perfect["fve"] - 1) < 1e-9 and abs(perfect["loss_recovered"] - 1) < 1e-5
    assert perfect["ce_zero"] > perfect["ce_clean"]

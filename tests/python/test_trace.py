"""The `with model.trace(...)` block against the C++ trace, on every fixture architecture."""

import pytest
import torch

import nnterp
from conftest import ARCHS, forward_order_points, hf_inputs, hf_model


@pytest.mark.parametrize("arch", ARCHS)
def test_every_accessor_equals_the_cpp_trace_bit_for_bit(arch):
    model, inputs = hf_model(arch), hf_inputs(arch)
    points = forward_order_points(model)
    expected = model.dump(inputs, [name for name, _ in points])
    with model.trace(inputs) as tracer:
        values = {name: read().save() for name, read in points}
    assert set(values) == set(expected)
    for name, value in values.items():
        assert value.dtype == expected[name].dtype and value.shape == expected[name].shape, name
        batch, tokens = inputs["input_ids"].shape
        assert value.shape == model.point_shape(name, batch, tokens), f"{arch}: {name} vs its point_shape"
        assert torch.equal(value, expected[name]), f"{arch}: {name} differs from the C++ trace's value"
    assert torch.equal(tracer.output, expected["logits"])


@pytest.mark.parametrize("arch", ["gpt2", "llama", "mixtral", "gemma2"])
def test_writing_the_last_layer_output_gives_its_projection(arch):
    model, inputs = hf_model(arch), hf_inputs(arch)
    last = model.num_layers - 1
    with model.trace(inputs):
        h = model.layers_output[last]
        replacement = torch.randn_like(h)
        model.layers_output[-1] = replacement
        logits = model.logits.save()
    assert torch.equal(logits, model.project_on_vocab(replacement))
    with model.trace(inputs):
        h = model.layers_output[last].save()
        normed = model.ln_final.output.save()
        out = model.lm_head.output.save()
    assert torch.equal(model.ln_final(h), normed) and torch.equal(model.lm_head(normed), out)


def test_in_place_edits_reach_the_forward(default_model):
    model = default_model
    with model.trace("The capital of France is"):
        model.layers_output[-1].zero_()
        logits = model.logits.save()
    assert torch.equal(logits, model.project_on_vocab(torch.zeros(1, logits.shape[1], model.hidden_size)))


def test_editing_attention_probabilities_changes_the_attention_output(default_model):
    model = default_model
    prompt = "The Eiffel Tower is in the city of"
    plain = model.dump(prompt, ["layers.1.attn_output"])["layers.1.attn_output"]
    with model.trace(prompt):
        probs = model.attention_probabilities[1]
        probs[:, :, :, 0] = 0  # the example: edits the live value
        edited = model.attentions_output[1].save()
    assert not torch.equal(plain, edited)
    with model.trace(prompt):
        model.attention_probabilities[1]
        unedited = model.attentions_output[1].save()
    assert torch.equal(plain, unedited)


def test_steer_equals_adding_the_vector_by_hand(default_model):
    model = default_model
    torch.manual_seed(0)
    v = torch.randn(model.hidden_size)
    prompt = ["The capital of France is", "Hi"]
    with model.trace(prompt):
        model.steer(layers=[1, 3], steering_vector=v, factor=0.5)
        steered = model.logits.save()
    with model.trace(prompt):
        for layer in (1, 3):
            model.layers_output[layer] = model.layers_output[layer] + 0.5 * v
        by_hand = model.logits.save()
    assert torch.equal(steered, by_hand)
    with model.trace(prompt):
        model.steer(layers=2, steering_vector=v, token_positions=[-1], batch_index=1)
        out = model.layers_output[2].save()
    plain = model.dump(prompt, ["layers.2.output"])["layers.2.output"]
    delta = out - plain
    assert torch.allclose(delta[1, -1], v, atol=1e-6)
    delta[1, -1] = 0
    assert torch.count_nonzero(delta) == 0, "steering one row and position must leave the others alone"


def test_skip_layers_passes_the_input_on(default_model):
    model = default_model
    with model.trace("The capital of France is"):
        h = model.layers_input[1].save()
        model.skip_layers(1, 2)
        out = model.layers_output[2].save()
    assert torch.equal(out, h)
    with model.trace("The capital of France is"):
        model.skip_layer(0)
        model.layers_output[0]


def test_stop_ends_the_forward(default_model):
    model = default_model
    with model.trace("The capital of France is") as tracer:
        h = model.layers_output[0].save()
        tracer.stop()
    assert tracer.output is None and h.shape[-1] == model.hidden_size
    with pytest.raises(nnterp.InvalidArgumentError, match="stopped"):
        with model.trace("The capital of France is"):
            model.stop()
            model.logits


def test_gradients_inside_and_after_the_block(default_model):
    model = default_model
    last = model.num_layers - 1
    with model.trace("The capital of France is", grad=True):
        h = model.layers_output[last]
        h.requires_grad_(True)
        loss = model.logits[0, -1, 42]
        loss.backward()
        grad_inside = h.grad.clone()
    reference = h.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        model.project_on_vocab(reference)[0, -1, 42].backward()
    assert torch.allclose(grad_inside, reference.grad, atol=1e-6)
    with model.trace("The capital of France is", grad=True):
        h = model.layers_output[last]
        h.requires_grad_(True)
        logits = model.logits.save()
    logits[0, -1, 42].backward()  # after the block: the graph outlives it
    assert torch.allclose(h.grad, reference.grad, atol=1e-6)


def test_every_point_read_with_grad_gets_its_gradient(default_model):
    # Layer 0 and the last layer both requires_grad_(): the last depends on layer 0, so it is no
    # leaf, yet its .grad is there and equals the one it gets when read alone.
    model, last = default_model, default_model.num_layers - 1
    with model.trace("The capital of France is", grad=True):
        h0 = model.layers_output[0]
        h0.requires_grad_(True)
        h_last = model.layers_output[last]
        h_last.requires_grad_(True)
        model.logits[0, -1, 42].backward()
    with model.trace("The capital of France is", grad=True):
        alone = model.layers_output[last]
        alone.requires_grad_(True)
        model.logits[0, -1, 42].backward()
    assert h0.grad is not None and h_last.grad is not None
    assert torch.allclose(h_last.grad, alone.grad, atol=1e-7)


def test_points_say_from_the_config_which_exist_and_their_shape():
    model = hf_model("lfm2")  # layers 0 and 2: short convolutions; layer 1: attention
    assert model.supports("layers.1.attn_scores") and not model.supports("layers.0.attn_scores")
    assert "short-convolution" in model.why_not("layers.0.z")
    assert model.why_not("layers.1.z") == ""
    assert model.point_shape("layers.1.attn_scores", 2, 5, past=3) == (2, model.num_heads, 5, 8)
    with pytest.raises(nnterp.InvalidArgumentError, match="layers.0.q"):
        model.point_shape("layers.0.q", 1, 1)


def test_grad_mode_is_restored_after_the_block(default_model):
    before = torch.is_grad_enabled()
    with default_model.trace("Hi", grad=not before):
        assert torch.is_grad_enabled() == (not before)
    assert torch.is_grad_enabled() == before

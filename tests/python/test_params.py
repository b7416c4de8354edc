"""Parameters in standardized shapes and weight edits, through the Python module."""

import pytest
import torch

import nnterp
from conftest import hf_inputs, hf_model

PROMPT = "The capital of France is"


def test_w_o_turns_z_into_the_attention_output(default_model):
    model = default_model
    with model.trace(PROMPT):
        z = model.z[1].save()
        attn = model.attentions_output[1].save()
    w_o = model.param("W_O", 1)
    assert w_o.shape == (model.num_heads, z.shape[-1], model.hidden_size)
    expected = torch.einsum("bthd,hdo->bto", z, w_o)
    has_bias, _ = model.has_param("b_O", 1)
    if has_bias:
        expected = expected + model.param("b_O", 1)
    assert torch.allclose(attn, expected, atol=1e-5)


def test_edits_are_seen_by_the_next_forward_and_untie_nothing_else():
    model = nnterp.StandardizedTransformer()  # its own copy: the edits below change it
    with model.trace(PROMPT):
        model.mlp_hidden[0][..., 3] = 0
        zeroed = model.logits.save()
    model.ablate_neuron(0, 3)
    with model.trace(PROMPT):
        ablated = model.logits.save()
    assert torch.allclose(zeroed, ablated, atol=1e-5)
    direction = torch.randn(model.hidden_size)
    model.project_out_of_residual_writes(direction)
    with model.trace(PROMPT):
        last = model.layers_output[-1].save()
    unit = direction / direction.norm()
    assert (last @ unit).abs().max() < 1e-4 * last.norm(dim=-1).max()
    with pytest.raises(nnterp.ShapeError, match="layers.0.W_Q"):
        model.set_param("W_Q", 0, torch.zeros(3))


def test_missing_parameters_say_why():
    has, why = hf_model("mixtral").has_param("W_in", 0)
    assert not has and "mixture of experts" in why
    with pytest.raises(nnterp.InvalidArgumentError, match="latent attention"):
        hf_model("deepseek_v2").param("W_Q", 0)
    assert [row["name"] for row in nnterp.param_table()][:3] == ["W_E", "W_pos", "W_U"]

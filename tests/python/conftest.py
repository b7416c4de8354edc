"""Shared fixtures of the Python module's tests (run from tests/, PYTHONPATH=<build>/python)."""

import functools
import os

import pytest
import torch

import nnterp

DATA = os.path.join(os.path.dirname(__file__), "..", "data")
HF = os.path.join(DATA, "hf")
ARCHS = sorted(a for a in os.listdir(HF) if os.path.exists(os.path.join(HF, a, "expected.safetensors")))


@functools.lru_cache(maxsize=None)
def hf_model(arch):
    """The HF fixture of `arch` loaded once per test process."""
    return nnterp.StandardizedTransformer(os.path.join(HF, arch))


@functools.lru_cache(maxsize=None)
def hf_inputs(arch):
    """The fixture's left-padded batch: {"input_ids", "attention_mask"}."""
    expected = nnterp.load_safetensors(os.path.join(HF, arch, "expected.safetensors"))
    return {"input_ids": expected["input_ids"], "attention_mask": expected["attention_mask"]}


@pytest.fixture(scope="session")
def default_model():
    return nnterp.StandardizedTransformer()


def forward_order_points(model):
    """Every point of `model` in forward order, as (dump name, reader inside a trace)."""
    points = [("embed.output", lambda: model.token_embeddings)]
    per_layer = [("input", "layers_input"), ("attn_input", "attentions_input"), ("q", "queries"), ("k", "keys"),
                 ("v", "values"), ("attn_scores", "attention_scores"), ("attn_probs", "attention_probabilities"),
                 ("conv_state", "conv_states"), ("recurrent_state", "recurrent_states"), ("z", "z"),
                 ("attn_output", "attentions_output"), ("resid_mid", "resid_mid"), ("mlp_input", "mlps_input"),
                 ("router_logits", "router_logits"), ("expert_indices", "expert_indices"),
                 ("expert_weights", "expert_weights"), ("mlp_hidden", "mlp_hidden"), ("mlp_output", "mlps_output"),
                 ("output", "layers_output")]
    for i in range(model.num_layers):
        for suffix, accessor in per_layer:
            if not model._engine.has_point(f"layers.{i}.{suffix}"):
                continue
            points.append((f"layers.{i}.{suffix}", functools.partial(lambda a, i: getattr(model, a)[i], accessor, i)))
    points += [("ln_final.output", lambda: model.ln_final.output), ("logits", lambda: model.logits)]
    return points

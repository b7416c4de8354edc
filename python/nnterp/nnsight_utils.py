"""The Python library's activation helpers."""

import torch

from . import _nnterp
from ._model import StandardizedTransformer

_P = _nnterp.Point


def get_layer_input(nn_model, layer):
    return nn_model.layers_input[layer]


def get_layer_output(nn_model, layer):
    return nn_model.layers_output[layer]


def get_attention_output(nn_model, layer):
    return nn_model.attentions_output[layer]


def get_mlp_output(nn_model, layer):
    return nn_model.mlps_output[layer]


def get_next_token_probs(nn_model):
    return nn_model.next_token_probs


def get_num_layers(nn_model):
    return nn_model.num_layers


def project_on_vocab(nn_model, h):
    return nn_model.project_on_vocab(h)


# The point each getter reads, so the C++ engine can run them without a Python body.
_POINT_OF = {get_layer_input: _P.LayerInput, get_layer_output: _P.LayerOutput,
             get_attention_output: _P.AttnOutput, get_mlp_output: _P.MlpOutput}


def _layers(nn_model, layers):
    if layers is None:
        return list(range(nn_model.num_layers))
    return [layers] if isinstance(layers, int) else list(layers)


@torch.no_grad()
def get_token_activations(nn_model: StandardizedTransformer, prompts=None, layers=None, get_activations=None,
                          remote=False, idx=None, tracer=None):
    """The activations of token ``idx`` (default -1, the last; prompts are left-padded) of each
    prompt at ``layers`` (default all): [len(layers), batch, hidden]. ``get_activations(model,
    layer)`` picks the point (default the layer output). Inside an open trace pass ``tracer`` and
    no prompts: the values come from that trace."""
    layers = _layers(nn_model, layers)
    idx = -1 if idx is None else idx
    get_activations = get_activations or get_layer_output
    if tracer is not None or prompts is None:
        return torch.stack([get_activations(nn_model, layer)[:, idx] for layer in layers])
    point = _POINT_OF.get(get_activations)
    if point is not None:
        return _nnterp.get_token_activations(nn_model._engine, prompts, idx, layers, point)
    acts = []
    with nn_model.trace(prompts) as t:
        for layer in layers:
            acts.append(get_activations(nn_model, layer)[:, idx].clone())
        t.stop()
    return torch.stack(acts)


@torch.no_grad()
def collect_token_activations_batched(nn_model: StandardizedTransformer, prompts, batch_size, layers=None,
                                      get_activations=None, remote=False, idx=None, tqdm=None, use_session=True):
    """get_token_activations over batches of ``batch_size`` prompts: [len(layers), N, hidden]."""
    layers = _layers(nn_model, layers)
    idx = -1 if idx is None else idx
    point = _POINT_OF.get(get_activations or get_layer_output)
    if point is not None and tqdm is None:
        return _nnterp.collect_token_activations_batched(nn_model._engine, list(prompts), batch_size, layers, idx, point)
    starts = range(0, len(prompts), batch_size)
    chunks = [get_token_activations(nn_model, list(prompts[i:i + batch_size]), layers, get_activations, idx=idx)
              for i in (tqdm(starts) if tqdm else starts)]
    return torch.cat(chunks, dim=1)


def compute_next_token_probs(nn_model, prompt, remote=False):
    """The next-token distribution of each prompt: [batch, vocab]."""
    return _nnterp.next_token_probs(nn_model._engine, prompt, 32)


__all__ = ["get_token_activations", "collect_token_activations_batched", "project_on_vocab", "get_layer_output",
           "get_layer_input", "get_attention_output", "get_mlp_output", "get_next_token_probs",
           "compute_next_token_probs", "get_num_layers"]

"""Activation patching and activation collection to disk, from the C++ engine."""

from dataclasses import dataclass

import torch

from . import _nnterp
from .errors import InvalidArgumentError

_POINTS = {row["trace_name"]: row["point"] for row in _nnterp.point_table()}


def _point(point):
    if isinstance(point, _nnterp.Point):
        return point
    if point in _POINTS:
        return _POINTS[point]
    raise InvalidArgumentError(f"point: unknown {point!r}; expected one of {sorted(_POINTS)}")


@dataclass
class PatchingResult:
    """``values`` [layers (, heads) (, positions)] of the metric with one activation patched from the
    clean run into the corrupted one; ``normalized`` = (value − corrupted) / (clean − corrupted)."""

    values: torch.Tensor
    normalized: torch.Tensor
    dims: list
    layers: list
    positions: list
    clean_metric: float
    corrupted_metric: float


def logit_diff_metric(correct, incorrect):
    """logits[correct] − logits[incorrect] at the last position, averaged over the batch."""
    return lambda last_logits: (last_logits[:, correct] - last_logits[:, incorrect]).mean()


def activation_patching(model, clean, corrupted, metric, point="layers_output", layers=None, per_position=True,
                        positions=None, per_head=True, batch_size=32, method="exact"):
    """Runs ``corrupted`` with one activation (``point`` at one layer, one position, one head for
    queries/keys/values/attention_probabilities) replaced by its value in ``clean``, over the grid
    of layers × positions (× heads), and measures ``metric(last_logits [B, vocab]) -> scalar``.
    Clean and corrupted must tokenize to the same shape. ``method="atp"``: attribution patching,
    every cell's first-order estimate from one forward + backward (the metric must be
    differentiable torch code)."""
    if isinstance(metric, tuple):
        metric = logit_diff_metric(*metric)
    r = _nnterp.activation_patching(model._engine, clean, corrupted, metric, _point(point), list(layers or []),
                                    per_position, list(positions or []), per_head, batch_size, method)
    return PatchingResult(**r)


def collect_token_activations(model, prompts, layers=None, idx=-1, point="layers_output", batch_size=32,
                              out_dir=None, shard_size=0, dtype=torch.float32, overwrite=False, progress=False):
    """The activations of token ``idx`` of every prompt at ``layers``: [layers, N, hidden] in
    memory, or streamed to ``out_dir`` as safetensors shards (bounded memory; a rerun resumes).
    Returns a dict (activations, layers, shards, ...); read a folder back with load_activations."""
    dtype = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}.get(dtype, dtype)
    return _nnterp.collect_token_activations(model._engine, prompts, list(layers or []), idx, _point(point), batch_size,
                                             "" if out_dir is None else str(out_dir), shard_size, dtype, overwrite,
                                             progress)


def load_activations(out_dir, layers=None):
    """A collection folder's activations [layers, N, hidden] and prompt indices [N]."""
    activations, prompt_index, _ = _nnterp.load_activations(str(out_dir), list(layers or []))
    return activations, prompt_index


__all__ = ["activation_patching", "logit_diff_metric", "PatchingResult", "collect_token_activations",
           "load_activations"]

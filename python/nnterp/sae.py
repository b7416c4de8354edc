"""Sparse dictionaries (SAEs, transcoders) inside the trace, and what their features say (docs/sae.md).

    sae = nnterp.Sae.load("models/default/sae/...")        # SAELens, Gemma Scope, or .safetensors
    with model.trace("The capital of France is") as tracer:
        f = tracer.sae(sae)                               # [B, T, d_sae], live: edits reach the forward
        f[..., 123] = 0                                   # ablate feature 123
    top = nnterp.sae_top_features(model, prompts, sae, k=5)
"""

from . import _nnterp

Sae = _nnterp.Sae


def _targets(target):
    return [int(target)] if isinstance(target, int) else [int(t) for t in target]


def sae_top_features(nn_model, prompts, sae, k=10, batch_size=32):
    """Each token's ``k`` most active features: a dict with ``indices`` (int64) and ``activations``
    [N, T, k] (-1 / 0 where fewer fire, and at padding), ``input_ids``, ``attention_mask`` [N, T]
    (left padding) and ``tokens`` (per prompt, its tokens as text)."""
    return _nnterp.sae_top_features(nn_model._engine, prompts, sae, k, batch_size)


def sae_feature_activations(nn_model, prompts, sae, features=(), batch_size=32):
    """The activations of ``features`` (every feature when empty) at every token: [N, T, F] float32."""
    return _nnterp.sae_feature_activations(nn_model._engine, prompts, sae, [int(f) for f in features], batch_size)


def sae_feature_attribution(nn_model, prompts, sae, target, idx=-1, batch_size=32, top=10):
    """The features behind ``target``'s logit (a token id, or one per prompt) at token ``idx``: a dict
    with ``attribution`` [N, d_sae] (activation × gradient through the splice, summed over tokens),
    ``attribution_at_idx``, ``dla`` (direct logit attribution; None for an SAE that does not write
    the residual stream), ``activations`` at ``idx``, ``logits`` and ``top_features`` [N, top]."""
    return _nnterp.sae_feature_attribution(nn_model._engine, prompts, sae, _targets(target), idx, batch_size, top)


def sae_evaluate(nn_model, prompts, sae, batch_size=32, exclude_special_tokens=True):
    """SAELens's evaluation on ``prompts``: ``fve``, ``mse``, ``l0``, ``dead_fraction``,
    ``feature_density``, ``ce_clean`` / ``ce_sae`` / ``ce_zero`` and ``loss_recovered``."""
    return _nnterp.sae_evaluate(nn_model._engine, prompts, sae, batch_size, exclude_special_tokens)


__all__ = ["Sae", "sae_top_features", "sae_feature_activations", "sae_feature_attribution", "sae_evaluate"]

"""The tuned lens (docs/tuned_lens.md): per-layer affine translators h -> h + A h + b before the model's
final norm and unembedding, trained to minimise KL(final distribution || lens distribution).

    from nnterp import StandardizedTransformer, TunedLens, tuned_lens, train_tuned_lens
    model = StandardizedTransformer()
    lens = TunedLens.load("models/default/tuned_lens.safetensors", model)
    probs = tuned_lens(model, "The capital of France is", lens)      # [1, layers, vocab]
    lens = train_tuned_lens(model, prompts, steps=250, checkpoint="ckpt.safetensors")
    lens.save("lens.safetensors")
"""

import os

from . import _nnterp


class TunedLens:
    """A tuned lens: one translator per layer (the last one zero: never trained)."""

    def __init__(self, native):
        self._native = native

    @staticmethod
    def load(path, model):
        """Reads a lens file, checked against ``model`` (hidden size, layer count)."""
        return TunedLens(_nnterp.TunedLens.load(os.fspath(path), model._engine))

    @staticmethod
    def identity(model):
        """Every translator zero: the logit lens."""
        return TunedLens(_nnterp.TunedLens.identity(model._engine))

    def save(self, path):
        self._native.save(os.fspath(path))

    def translate(self, layer, hidden):
        """``hidden`` [..., hidden] from layer ``layer``'s output -> hidden + A hidden + b."""
        return self._native.translate(layer, hidden)

    def weight(self, layer):
        return self._native.weight(layer)

    def bias(self, layer):
        return self._native.bias(layer)

    num_layers = property(lambda self: self._native.num_layers)
    hidden_size = property(lambda self: self._native.hidden_size)
    steps = property(lambda self: self._native.steps)
    train_loss = property(lambda self: self._native.train_loss)

    def __repr__(self):
        return f"TunedLens(layers={self.num_layers}, hidden={self.hidden_size}, steps={self.steps})"


def tuned_lens(nn_model, prompts, lens, layers=None, idx=-1, batch_size=32):
    """The tuned lens at token ``idx`` of each prompt: [batch, layers, vocab] probabilities, as
    ``logit_lens`` (with ``TunedLens.identity`` it equals ``logit_lens``)."""
    return _nnterp.tuned_lens(nn_model._engine, prompts, lens._native, list(layers or []), idx, batch_size)


def lens_kl_to_final(nn_model, prompts, lens, batch_size=32, last_token_only=False):
    """Mean KL(final || lens) per layer over every unpadded token (or each prompt's last): [layers]."""
    return _nnterp.lens_kl_to_final(nn_model._engine, prompts, lens._native, batch_size, last_token_only)


def train_tuned_lens(nn_model, prompts, steps=250, batch_size=32, optimizer="sgd", lr=0.0, weight_decay=1e-3,
                     warmup_steps=-1, seed=42, checkpoint=None, checkpoint_every=50, resume=False, on_step=None):
    """Trains a tuned lens on ``prompts`` (the model is not changed). ``lr=0``: the optimizer's default
    (sgd 0.1, adam 1e-3). With ``checkpoint``, a checkpoint is written every ``checkpoint_every``
    steps; ``resume=True`` continues from it (the same lens as an uninterrupted run).
    ``on_step(step, steps, loss)`` is called after each step."""
    native = _nnterp.train_tuned_lens(nn_model._engine, prompts, steps, batch_size, optimizer, lr, weight_decay,
                                      warmup_steps, seed, os.fspath(checkpoint) if checkpoint else "",
                                      checkpoint_every, resume, on_step)
    return TunedLens(native)


__all__ = ["TunedLens", "tuned_lens", "lens_kl_to_final", "train_tuned_lens"]

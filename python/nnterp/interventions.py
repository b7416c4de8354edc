"""The Python library's interventions: logit lens, patchscopes, target prompts, steering."""

from dataclasses import dataclass

import torch

from . import _nnterp
from ._model import StandardizedTransformer


def _layers(model, layers):
    if layers is None:
        return list(range(model.num_layers))
    return [layers] if isinstance(layers, int) else list(layers)


@torch.no_grad()
def logit_lens(nn_model: StandardizedTransformer, prompts, remote=False, return_inv_logits=False):
    """softmax(lm_head(ln_final(h))) of every layer's output at the last token of each prompt:
    [batch, num_layers, vocab] probabilities (the last layer's row is the model's own next-token
    distribution). With ``return_inv_logits``, also softmax(lm_head(-ln_final(h))): (probs, inv)."""
    probs, inverse = _nnterp.logit_lens(nn_model._engine, prompts, [], -1, 32, bool(return_inv_logits))
    return (probs, inverse) if return_inv_logits else probs


@dataclass
class TargetPrompt:
    """A target prompt for patchscopes: the hidden state is patched in at ``index_to_patch``."""

    prompt: str
    index_to_patch: int


def repeat_prompt(words=None, rel=" ", sep="\n", placeholder="?", index_to_patch=-1):
    """The repeat target prompt: ``sep.join(w + rel + w for w in words) + sep + placeholder``
    (default words king, 1135, hello), patched at ``index_to_patch``."""
    prompt, index = _nnterp.repeat_prompt(["king", "1135", "hello"] if words is None else list(words), rel, sep,
                                          placeholder, index_to_patch)
    return TargetPrompt(prompt, index)


@dataclass
class TargetPromptBatch:
    """Target prompts and their patch indices, one per source."""

    prompts: list
    index_to_patch: torch.Tensor

    @staticmethod
    def from_target_prompts(prompts):
        return TargetPromptBatch([p.prompt for p in prompts], torch.tensor([p.index_to_patch for p in prompts]))

    @staticmethod
    def from_target_prompt(prompt, batch_size):
        return TargetPromptBatch.from_target_prompts([prompt] * batch_size)

    @staticmethod
    def auto(target_prompt, batch_size):
        if isinstance(target_prompt, TargetPrompt):
            return TargetPromptBatch.from_target_prompt(target_prompt, batch_size)
        if isinstance(target_prompt, list):
            return TargetPromptBatch.from_target_prompts(target_prompt)
        if isinstance(target_prompt, TargetPromptBatch):
            return target_prompt
        raise ValueError(f"expected a TargetPrompt, a list of them or a TargetPromptBatch, got {type(target_prompt).__name__}")

    def __len__(self):
        return len(self.prompts)

    def __getitem__(self, i):
        return TargetPrompt(self.prompts[i], int(self.index_to_patch[i]))

    def __iter__(self):
        return (self[i] for i in range(len(self)))


@torch.no_grad()
def patchscope_lens(nn_model: StandardizedTransformer, source_prompts=None, target_patch_prompts=None, layers=None,
                    latents=None, remote=False):
    """For each layer: the target prompts run with ``layers_output[layer]`` at ``index_to_patch``
    replaced by the source's last-token hidden state (or ``latents[i]`` [len(layers), N, hidden]);
    returns their next-token probabilities [num_sources, len(layers), vocab]."""
    if (source_prompts is None) == (latents is None):
        raise ValueError("give either source_prompts or latents")
    layers = _layers(nn_model, layers)
    if isinstance(source_prompts, str):
        source_prompts = [source_prompts]
    num_sources = len(source_prompts) if latents is None else latents.shape[1]
    targets = TargetPromptBatch.auto(repeat_prompt() if target_patch_prompts is None else target_patch_prompts,
                                     num_sources)
    pairs = [(t.prompt, t.index_to_patch) for t in targets]
    sources = latents if latents is not None else source_prompts
    return _nnterp.patchscope_lens(nn_model._engine, sources, pairs, layers, -1, 32)


def steer(nn_model: StandardizedTransformer, layers, steering_vector, factor=1, position=-1):
    """Inside a trace: adds ``factor * steering_vector`` to the output of each layer in ``layers``
    at token ``position`` (the last by default): the Python library's free function (up to
    v1.2.1). ``model.steer`` steers every position by default."""
    nn_model.steer(layers, steering_vector, factor, token_positions=position)


def direct_logit_attribution(nn_model: StandardizedTransformer, prompts, target, idx=-1, batch_size=32):
    """The logit of ``target`` (a token id, or one per prompt) at token ``idx`` split over the
    embedding and each layer's attention and MLP, with the final norm frozen at its scale: a dict
    with ``components`` (names), ``values`` [prompts, components] (float64), ``logits`` (their sum,
    the logit before any final soft-cap) and ``model_logits``."""
    targets = [int(target)] if isinstance(target, int) else [int(t) for t in target]
    return _nnterp.direct_logit_attribution(nn_model._engine, prompts, targets, idx, batch_size)


__all__ = ["logit_lens", "TargetPrompt", "repeat_prompt", "TargetPromptBatch", "patchscope_lens", "steer",
           "direct_logit_attribution"]

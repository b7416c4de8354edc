"""The Python library's interventions: logit lens, patchscopes, target prompts, steering."""

from dataclasses import dataclass, field

import torch

from . import _nnterp
from ._model import StandardizedTransformer


def _layers(model, layers):
    if layers is None:
        return list(range(model.num_layers))
    return [layers] if isinstance(layers, int) else list(layers)


def chat_inputs(nn_model: StandardizedTransformer, prompts, system=None, chat_template=None, **template_kwargs):
    """Prompts for an instruct model: each prompt a user turn (after a ``system`` turn when given)
    in the model's chat template, followed by its generation prompt, tokenized without added special
    tokens (the template writes BOS) and left-padded. Returns a BatchEncoding that every method,
    ``trace`` and ``generate`` take as inputs; ``template_kwargs`` become template variables
    (e.g. ``enable_thinking=False``)."""
    if nn_model.tokenizer is None:
        raise ValueError("chat prompts need the model's tokenizer (no tokenizer.json in its folder)")
    if isinstance(prompts, str):
        prompts = [prompts]
    system_turn = [] if system is None else [{"role": "system", "content": system}]
    chats = [system_turn + [{"role": "user", "content": p}] for p in prompts]
    return nn_model.tokenizer.apply_chat_template(chats, chat_template=chat_template, add_generation_prompt=True,
                                                  return_tensors="pt", return_dict=True, **template_kwargs)


def _num_prompts(prompts):
    """Prompts given as text, a list of texts, token ids [B, T] or a tokenizer's output."""
    ids = prompts.get("input_ids") if hasattr(prompts, "keys") else getattr(prompts, "input_ids", prompts)
    return ids.shape[0] if isinstance(ids, torch.Tensor) else len(prompts)


def _maybe_chat(nn_model, prompts, chat):
    return chat_inputs(nn_model, prompts) if chat else prompts


@torch.no_grad()
def logit_lens(nn_model: StandardizedTransformer, prompts, remote=False, return_inv_logits=False, chat=False):
    """softmax(lm_head(ln_final(h))) of every layer's output at the last token of each prompt:
    [batch, num_layers, vocab] probabilities (the last layer's row is the model's own next-token
    distribution). With ``return_inv_logits``, also softmax(lm_head(-ln_final(h))): (probs, inv).
    With ``chat``, each prompt is a user turn of the model's chat template (see chat_inputs)."""
    prompts = _maybe_chat(nn_model, prompts, chat)
    probs, inverse = _nnterp.logit_lens(nn_model._engine, prompts, [], -1, 32, bool(return_inv_logits))
    return (probs, inverse) if return_inv_logits else probs


@dataclass
class TargetPrompt:
    """A target prompt for patchscopes: the hidden state is patched in at ``index_to_patch``."""

    prompt: str
    index_to_patch: int
    token_ids: list = field(default=None, repr=False)  # the prompt pre-tokenized (used instead of the text)


def repeat_prompt(words=None, rel=" ", sep="\n", placeholder="?", index_to_patch=-1):
    """The repeat target prompt: ``sep.join(w + rel + w for w in words) + sep + placeholder``
    (default words king, 1135, hello), patched at ``index_to_patch``."""
    prompt, index = _nnterp.repeat_prompt(["king", "1135", "hello"] if words is None else list(words), rel, sep,
                                          placeholder, index_to_patch)
    return TargetPrompt(prompt, index)


def it_repeat_prompt(tokenizer, words=None, rel=" ", sep="\n", placeholder="?", complete_prompt=True,
                     add_user_instr=True, use_system_prompt=True):
    """``repeat_prompt`` inside the tokenizer's chat template, for instruction-tuned models, patched
    at the last token. ``tokenizer``: the model's tokenizer (or the model). With
    ``add_user_instr`` a user turn asks the model to guess the next word and the assistant agrees
    before the prompt; otherwise the instruction is the system turn (or, without
    ``use_system_prompt``, part of the user turn). With ``complete_prompt`` the assistant's answer
    starts with the repeat prompt, left open for the model to continue. The TargetPrompt carries the
    token ids of the rendering (without added special tokens: the template writes BOS, which the
    Python library's re-tokenized text doubles)."""
    tokenizer = getattr(tokenizer, "tokenizer", None) or tokenizer  # a model gives its tokenizer
    prompt, index, ids = _nnterp.it_repeat_prompt(tokenizer._tok, ["king", "1135", "hello"] if words is None else
                                                  list(words), rel, sep, placeholder, complete_prompt, add_user_instr,
                                                  use_system_prompt)
    return TargetPrompt(prompt, index, list(ids))


@dataclass
class TargetPromptBatch:
    """Target prompts and their patch indices, one per source."""

    prompts: list
    index_to_patch: torch.Tensor
    token_ids: list = field(default=None, repr=False)  # per prompt: its ids, or None for the text

    @staticmethod
    def from_target_prompts(prompts):
        return TargetPromptBatch([p.prompt for p in prompts], torch.tensor([p.index_to_patch for p in prompts]),
                                 [p.token_ids for p in prompts])

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
        ids = self.token_ids[i] if self.token_ids is not None else None
        return TargetPrompt(self.prompts[i], int(self.index_to_patch[i]), ids)

    def __iter__(self):
        return (self[i] for i in range(len(self)))


@torch.no_grad()
def patchscope_lens(nn_model: StandardizedTransformer, source_prompts=None, target_patch_prompts=None, layers=None,
                    latents=None, remote=False, chat=False):
    """For each layer: the target prompts run with ``layers_output[layer]`` at ``index_to_patch``
    replaced by the source's last-token hidden state (or ``latents[i]`` [len(layers), N, hidden]);
    returns their next-token probabilities [num_sources, len(layers), vocab]. With ``chat``, the
    sources are user turns of the model's chat template and the default target is
    ``it_repeat_prompt``."""
    if (source_prompts is None) == (latents is None):
        raise ValueError("give either source_prompts or latents")
    layers = _layers(nn_model, layers)
    if isinstance(source_prompts, str):
        source_prompts = [source_prompts]
    num_sources = _num_prompts(source_prompts) if latents is None else latents.shape[1]
    if target_patch_prompts is None:
        target_patch_prompts = it_repeat_prompt(nn_model.tokenizer) if chat else repeat_prompt()
    targets = TargetPromptBatch.auto(target_patch_prompts, num_sources)
    triples = [(t.prompt, t.index_to_patch, list(t.token_ids or [])) for t in targets]
    sources = latents if latents is not None else _maybe_chat(nn_model, source_prompts, chat)
    return _nnterp.patchscope_lens(nn_model._engine, sources, triples, layers, -1, 32)


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


__all__ = ["logit_lens", "TargetPrompt", "repeat_prompt", "it_repeat_prompt", "chat_inputs", "TargetPromptBatch",
           "patchscope_lens", "steer",
           "direct_logit_attribution"]

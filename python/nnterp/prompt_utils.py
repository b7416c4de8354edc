"""Prompts with target tokens, run in batches: the Python library's prompt utilities."""

import torch

from . import _nnterp
from ._model import StandardizedTransformer
from .interventions import chat_inputs


class Prompt:
    """A prompt and, per category, the token ids whose probability is tracked."""

    def __init__(self, prompt, target_tokens, target_strings=None):
        self.prompt = prompt
        self.target_tokens = {k: list(v) for k, v in target_tokens.items()}
        self.target_strings = target_strings

    @classmethod
    def from_strings(cls, prompt, target_strings, tokenizer_or_model):
        """Targets from words: for each word, the first token of ``word`` and of ``" " + word``
        (without a bare-space token, duplicates removed). ``target_strings`` is a dict of category →
        words, or a word / list of words (category "target")."""
        if isinstance(target_strings, (str, list)):
            target_strings = {"target": target_strings}
        targets = {k: [v] if isinstance(v, str) else list(v) for k, v in target_strings.items()}
        model = getattr(tokenizer_or_model, "_model", tokenizer_or_model)  # a Tokenizer knows its model
        native = _nnterp.Prompt.from_strings(prompt, targets, model._engine, True)
        return cls(prompt, native.target_tokens, target_strings)

    def has_no_collisions(self, ignore_targets=None):
        ignore = set([ignore_targets] if isinstance(ignore_targets, str) else (ignore_targets or []))
        seen = set()
        for category, tokens in self.target_tokens.items():
            if category in ignore:
                continue
            if seen & set(tokens):
                return False
            seen |= set(tokens)
        return True

    def get_target_probs(self, probs, layer=None):
        """{category: probs[:, :, tokens].sum(-1)} for probs [batch, layers, vocab] ([batch, layers]
        each; [batch] with ``layer``)."""
        out = {k: probs[:, :, v].sum(dim=2).cpu() for k, v in self.target_tokens.items()}
        return out if layer is None else {k: v[:, layer] for k, v in out.items()}

    def run(self, nn_model, get_probs):
        return self.get_target_probs(get_probs(nn_model, self.prompt))

    def __repr__(self):
        return f"Prompt(prompt={self.prompt!r}, target_tokens={self.target_tokens}, target_strings={self.target_strings})"


def next_token_probs_unsqueeze(nn_model, prompt, remote=False, **kwargs):
    """The next-token distribution as [batch, 1, vocab] (run_prompts' default)."""
    return _nnterp.next_token_probs(nn_model._engine, prompt, 32).unsqueeze(1)


@torch.no_grad()
def run_prompts(nn_model: StandardizedTransformer, prompts, batch_size=32, get_probs_func=None, func_kwargs=None,
                remote=False, tqdm=None, chat=False):
    """Each category's summed target probability for every prompt: {category: [N, layers]}
    (layers = 1 with the default next-token probabilities, num_layers with get_probs_func=logit_lens).
    With ``chat``, each prompt is a user turn of the model's chat template (see chat_inputs)."""
    if not prompts:
        return {}
    keys = set(prompts[0].target_tokens)
    if any(set(p.target_tokens) != keys for p in prompts):
        raise ValueError("all prompts must have the same target categories")
    get_probs_func = get_probs_func or next_token_probs_unsqueeze
    func_kwargs = func_kwargs or {}
    starts = range(0, len(prompts), batch_size)
    results = {k: [] for k in keys}
    for i in (tqdm(starts, desc="Running prompts") if tqdm else starts):
        batch = prompts[i:i + batch_size]
        texts = [p.prompt for p in batch]
        probs = get_probs_func(nn_model, chat_inputs(nn_model, texts) if chat else texts, **func_kwargs)
        for j, p in enumerate(batch):
            for k, tokens in p.target_tokens.items():
                results[k].append(probs[j, :, tokens].sum(dim=1).cpu())
    return {k: torch.stack(v) for k, v in results.items()}


def get_first_tokens(words, llm_or_tokenizer):
    """The first token of each word and of " " + word (see Prompt.from_strings)."""
    words = [words] if isinstance(words, str) else list(words)
    return Prompt.from_strings("", {"w": words}, llm_or_tokenizer).target_tokens["w"]


__all__ = ["Prompt", "run_prompts", "get_first_tokens", "next_token_probs_unsqueeze"]

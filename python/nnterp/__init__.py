"""nnterp: one standardized interface over HuggingFace causal language models, on a C++ engine.

    from nnterp import StandardizedTransformer
    model = StandardizedTransformer("path/to/model")      # dtype=, device= too
    with model.trace("The Eiffel Tower is in the city of"):
        h5 = model.layers_output[5].save()
        logits = model.logits.save()

Values in a trace are real torch tensors (no proxies). See docs/python.md.
"""

import torch  # first: registers torch's Python types, which the extension's tensors use

from . import _nnterp

__version__ = _nnterp.__version__

# NNsight code calls .save() on every value it keeps; here values are real tensors, kept alive by
# the reference itself, so save() returns the tensor.
if not hasattr(torch.Tensor, "save"):
    def _save(self):
        """nnterp: returns the tensor itself (NNsight compatibility; values are real tensors)."""
        return self

    torch.Tensor.save = _save

from .errors import *  # noqa: E402,F401,F403
from .errors import Error  # noqa: E402
from ._model import StandardizedTransformer, Tracer, Config  # noqa: E402
from .interventions import (logit_lens, patchscope_lens, TargetPrompt, TargetPromptBatch, repeat_prompt,  # noqa: E402
                            it_repeat_prompt, chat_inputs, steer, direct_logit_attribution)
from .nnsight_utils import get_token_activations, collect_token_activations_batched  # noqa: E402
from .prompt_utils import Prompt, run_prompts, get_first_tokens  # noqa: E402
from .patching import activation_patching, collect_token_activations, load_activations  # noqa: E402
from .sae import Sae, sae_top_features, sae_feature_activations, sae_feature_attribution, sae_evaluate  # noqa: E402
from .tuned_lens import TunedLens, tuned_lens, lens_kl_to_final, train_tuned_lens  # noqa: E402
from . import display  # noqa: E402,F401


load_safetensors = _nnterp.load_safetensors
save_safetensors = _nnterp.save_safetensors
param_table = _nnterp.param_table


def default_model_dir():
    """The embedded default model's folder (its trained SAE and tuned lens are inside: sae/, tuned_lens.safetensors)."""
    return _nnterp.default_model_dir()


def configure_threads(threads=0):
    """nnterp's threading policy: BLAS threads = cores (or ``threads``), libtorch intra-op = 1
    (measured fastest, docs/performance.md). Returns the BLAS thread count."""
    return _nnterp.configure_threads(threads)


__all__ = ["StandardizedTransformer", "Tracer", "Config", "Error", "logit_lens", "patchscope_lens", "TargetPrompt",
           "TargetPromptBatch", "repeat_prompt", "it_repeat_prompt", "chat_inputs", "steer", "get_token_activations", "collect_token_activations_batched",
           "direct_logit_attribution", "Prompt", "run_prompts", "get_first_tokens", "activation_patching", "collect_token_activations",
           "load_activations", "Sae", "sae_top_features", "sae_feature_activations", "sae_feature_attribution",
           "sae_evaluate", "TunedLens", "tuned_lens", "lens_kl_to_final", "train_tuned_lens", "configure_threads", "default_model_dir", "load_safetensors", "save_safetensors", "param_table", "display", "__version__"]

"""StandardizedTransformer: the Python library's model class over nnterp's C++ engine."""

import json
import os

import torch

from . import _nnterp
from .errors import InvalidArgumentError, UnsupportedError

_P = _nnterp.Point
_EMBED, _FINAL_NORM, _LOGITS = int(_P.Embed), int(_P.FinalNorm), int(_P.Logits)

_set_grad_enabled = torch._C._set_grad_enabled  # what torch.set_grad_enabled calls, minus a context object

_DTYPES = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}


def _dtype_text(dtype):
    if dtype is None or dtype == "auto":
        return "auto"
    if isinstance(dtype, torch.dtype):
        if dtype not in _DTYPES:
            raise InvalidArgumentError(f"dtype: {dtype} is not supported (use torch.float32, torch.bfloat16, torch.float16 or 'auto')")
        return _DTYPES[dtype]
    return str(dtype)


class Config:
    """config.json with attribute access (``model.config.hidden_size``), plus HF's common names
    (hidden_size, num_hidden_layers, num_attention_heads, num_key_value_heads, vocab_size) where
    the file spells them otherwise (GPT-2's n_embd, n_layer, ...)."""

    def __init__(self, values, model=None):
        self.__dict__.update(values)
        if model is not None:
            for name, value in (("hidden_size", model.hidden_size), ("num_hidden_layers", model.num_layers),
                                ("num_attention_heads", model.num_heads), ("num_key_value_heads", model.num_kv_heads),
                                ("vocab_size", model.vocab_size)):
                self.__dict__.setdefault(name, value)

    def to_dict(self):
        return dict(self.__dict__)

    def __repr__(self):
        return f"Config({json.dumps(self.__dict__, indent=2, default=str)})"


class BatchEncoding(dict):
    """What calling the tokenizer returns: a dict with attribute access (``enc.input_ids``)."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class Tokenizer:
    """The model's tokenizer with the HF names researchers use (left padding, as nnterp's methods
    read the last position of each row)."""

    padding_side = "left"

    def __init__(self, model=None, native=None):
        self._model = model
        self._tok = native if native is not None else model._engine.tokenizer

    @classmethod
    def from_pretrained(cls, path):
        """The tokenizer of a model folder (tokenizer.json, tokenizer_config.json, chat_template.jinja)
        without loading the model."""
        return cls(native=_nnterp.Tokenizer.from_folder(os.fspath(path)))

    def __call__(self, text, return_tensors=None, add_special_tokens=True, padding=True, **kwargs):
        if return_tensors not in (None, "pt"):
            raise UnsupportedError(f"return_tensors={return_tensors!r}: only 'pt' (torch) or None")
        if isinstance(text, str) and return_tensors is None:
            ids = self.encode(text, add_special_tokens=add_special_tokens)
            return BatchEncoding(input_ids=ids, attention_mask=[1] * len(ids))
        if return_tensors is None:
            ids = [self.encode(t, add_special_tokens=add_special_tokens) for t in text]
            return BatchEncoding(input_ids=ids, attention_mask=[[1] * len(i) for i in ids])
        if add_special_tokens and self._model is not None:
            ids, mask = self._model._engine.tokenize(text)  # with the model's input checks
            return BatchEncoding(input_ids=ids, attention_mask=mask)
        texts = [text] if isinstance(text, str) else text
        return self._pad_rows([self.encode(t, add_special_tokens=add_special_tokens) for t in texts])

    def _pad_rows(self, rows):
        """Token rows left-padded into tensors (pad id: pad, else eos, else 0; the mask hides it)."""
        width = max(len(r) for r in rows)
        pad = self.pad_token_id if self.pad_token_id is not None else self._tok.padding_id
        ids = torch.tensor([[pad] * (width - len(r)) + list(r) for r in rows], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows], dtype=torch.long)
        return BatchEncoding(input_ids=ids, attention_mask=mask)

    def encode(self, text, add_special_tokens=True):
        return self._tok.encode(text, add_special_tokens)

    def decode(self, ids, skip_special_tokens=False):
        if isinstance(ids, torch.Tensor):
            ids = ids.reshape(-1).tolist()
        elif isinstance(ids, int):
            ids = [ids]
        return self._tok.decode(list(ids), skip_special_tokens)

    def batch_decode(self, rows, skip_special_tokens=False):
        return [self.decode(r, skip_special_tokens) for r in rows]

    def convert_ids_to_tokens(self, ids):
        if isinstance(ids, torch.Tensor):
            ids = ids.tolist()
        if isinstance(ids, int):
            return self._tok.id_to_token(ids)
        return [self._tok.id_to_token(int(i)) for i in ids]

    def convert_tokens_to_ids(self, tokens):
        if isinstance(tokens, str):
            return self._tok.token_to_id(tokens)
        return [self._tok.token_to_id(t) for t in tokens]

    def tokenize(self, text, add_special_tokens=False):
        return self._tok.tokens(text, add_special_tokens)

    @property
    def chat_template(self):
        """The model's chat template: its source, a dict of name → source when it has several, or None."""
        names = self._tok.chat_template_names
        if names:
            return {name: self._tok.chat_template_source(name) for name in names}
        return self._tok.chat_template_source() if self._tok.has_chat_template else None

    def apply_chat_template(self, conversation, tools=None, documents=None, chat_template=None,
                            add_generation_prompt=False, continue_final_message=False, tokenize=True,
                            padding=False, truncation=False, max_length=None, return_tensors=None,
                            return_dict=False, tokenizer_kwargs=None, **kwargs):
        """transformers' ``tokenizer.apply_chat_template``, rendered by nnterp's Jinja2 interpreter.

        ``conversation``: a list of messages (dicts with "role" and "content", and whatever else the
        template reads: tool_calls, reasoning_content, lists of content parts), or a list of such
        lists (a batch). ``tools`` and ``documents``: lists of JSON-schema dicts / dicts. Extra
        keyword arguments become template variables (e.g. ``enable_thinking=False``). With
        ``tokenize`` (the default, as in transformers) the text is encoded without adding special
        tokens, since the template writes them."""
        if kwargs.pop("return_assistant_tokens_mask", False):
            raise UnsupportedError("apply_chat_template: return_assistant_tokens_mask is not supported")
        if truncation or max_length is not None or tokenizer_kwargs:
            raise UnsupportedError("apply_chat_template: truncation, max_length and tokenizer_kwargs are not "
                                   "supported; tokenize the text yourself")
        if tools is not None:
            for tool in tools:
                if not isinstance(tool, dict):
                    raise UnsupportedError("apply_chat_template: tools must be JSON-schema dicts (nnterp does not "
                                           "derive schemas from Python functions)")
        batched = bool(conversation) and isinstance(conversation[0], (list, tuple)) or \
            bool(conversation) and hasattr(conversation[0], "messages")
        chats = conversation if batched else [conversation]
        chats = [getattr(chat, "messages", chat) for chat in chats]
        texts = [self._tok.apply_chat_template(
            json.dumps(list(chat), ensure_ascii=False), add_generation_prompt, continue_final_message,
            chat_template or "", "" if tools is None else json.dumps(tools, ensure_ascii=False),
            "" if documents is None else json.dumps(documents, ensure_ascii=False),
            json.dumps(kwargs, ensure_ascii=False) if kwargs else "") for chat in chats]
        if not tokenize:
            return texts if batched else texts[0]
        rows = [self.encode(t, add_special_tokens=False) for t in texts]
        if return_tensors == "pt" or return_dict:
            if return_tensors == "pt":
                encoded = self._pad_rows(rows)
            else:
                encoded = BatchEncoding(input_ids=rows if batched else rows[0],
                                        attention_mask=[[1] * len(r) for r in rows] if batched else [1] * len(rows[0]))
            return encoded if return_dict else encoded["input_ids"]
        if return_tensors is not None:
            raise UnsupportedError(f"return_tensors={return_tensors!r}: only 'pt' (torch) or None")
        return rows if batched else rows[0]

    @property
    def pad_token_id(self):
        return self._tok.pad_token_id

    @property
    def bos_token_id(self):
        return self._tok.bos_token_id

    @property
    def eos_token_id(self):
        return self._tok.eos_token_id

    @property
    def vocab_size(self):
        return self._tok.vocab_size

    def __len__(self):
        return self._tok.vocab_size


class LayerAccessor:
    """``model.layers_output[i]`` and friends, inside a trace: reading runs the forward up to the
    point and returns the live tensor (in-place edits change the forward); assigning replaces what
    flows on. Negative indices count from the end; ``len()`` is the number of layers."""

    __slots__ = ("_model", "_point", "_name")

    def __init__(self, model, point, name):
        self._model, self._point, self._name = model, int(point), name

    def _layer(self, i):
        if i.__class__ is not int:
            if not isinstance(i, int):
                raise TypeError(f"{self._name}[...] takes a layer index (int), got {type(i).__name__}")
        if i < 0:
            n = self._model.num_layers
            if i >= -n:
                return i + n
        return i

    def __getitem__(self, i):  # the hot path of a trace: kept lean (bench/bench_python_trace.py)
        model = self._model
        trace = model._trace
        if trace is None:
            trace = model._open_trace(self._name)
        if i.__class__ is not int or i < 0:
            i = self._layer(i)
        return trace.get(self._point, i)

    def __setitem__(self, i, value):
        self._model._open_trace(self._name).set(self._point, self._layer(i), value)

    def __call__(self, i):
        return self[i]

    def __len__(self):
        return self._model.num_layers

    def __repr__(self):
        return f"<nnterp {self._name}: {self._model.num_layers} layers>"


class ModulePoint:
    """``model.ln_final`` / ``model.lm_head`` / ``model.embed_tokens``: ``.output`` inside a trace;
    ``model.ln_final(h)`` and ``model.lm_head(h)`` apply the module (the final norm; the
    unembedding with the model's final scaling / soft-cap, so lm_head(ln_final(h)) ==
    project_on_vocab(h))."""

    def __init__(self, model, point, name, apply=None):
        self._model, self._point, self._name, self._apply = model, int(point), name, apply

    @property
    def output(self):
        return self._model._open_trace(f"{self._name}.output").get(self._point, -1)

    @output.setter
    def output(self, value):
        self._model._open_trace(f"{self._name}.output").set(self._point, -1, value)

    def __call__(self, hidden):
        if self._apply is None:
            raise UnsupportedError(f"calling model.{self._name} as a function is not supported")
        return self._apply(hidden)


class Tracer:
    """The object of ``with model.trace(...) as tracer:``. The block's code runs in lock-step with
    one forward pass; after the block, ``tracer.output`` holds the logits (None if stopped)."""

    def __init__(self, model, inputs, grad, check_non_finite):
        self._model, self._inputs, self._grad, self._check = model, inputs, grad, check_non_finite
        self._trace = None
        self._grad_mode = None
        self.output = None

    def __enter__(self):
        if self._model._trace is not None:
            raise InvalidArgumentError("trace: this model already has an open trace (traces do not nest)")
        self._trace = _nnterp.Trace(self._model._engine, self._inputs, self._grad, self._check)
        self._model._trace = self._trace
        self._grad_mode = torch.is_grad_enabled()
        _set_grad_enabled(self._grad)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self.output = self._trace.finish()
            else:
                self._trace.abandon()  # unwinds the paused forward; the exception propagates
        finally:
            self._model._trace = None
            _set_grad_enabled(self._grad_mode)
        return False

    def stop(self):
        """Ends the forward pass here: nothing after the current point is computed."""
        self._trace.stop()

    def sae(self, sae, point=None, keep_error=True):
        """The features of ``sae`` [B, T, d_sae] at its point (or ``point``), live: edit them in place
        (``f[..., 12] = 0``) and the forward continues with decode(features) + error (``keep_error``;
        without it, the reconstruction alone). In a grad trace, ``requires_grad_()`` them first."""
        return self._model.sae(sae, point, keep_error)


class _Steps:
    """``gen.iter[a:b]``: steps a..b-1 as an iterable (``gen.iter[3]``: step 3 alone)."""

    def __init__(self, generator):
        self._generator = generator

    def __getitem__(self, which):
        if isinstance(which, int):
            return self._generator._steps(which, which + 1)
        if not isinstance(which, slice) or which.step not in (None, 1):
            raise TypeError("gen.iter[...] takes a step index or a slice of steps (a:b)")
        return self._generator._steps(which.start or 0, which.stop)


class Generator:
    """The object of ``with model.generate(...) as gen:`` (see StandardizedTransformer.generate)."""

    def __init__(self, model, inputs, options):
        self._model, self._inputs, self._options = model, inputs, options
        self._generation = None
        self._step_trace = None
        self._result = None
        self.iter = _Steps(self)

    def __enter__(self):
        if self._model._trace is not None:
            raise InvalidArgumentError("generate: this model already has an open trace (traces do not nest)")
        self._generation = _nnterp.Generation(self._model._engine, self._inputs, self._options)
        return self

    def __exit__(self, exc_type, exc, tb):
        try:
            if exc_type is None:
                self._generation.run_until()
                self._result = self._generation.result()
            elif self._step_trace is not None:
                self._step_trace.abandon()
        finally:
            self._step_trace = None
            self._model._trace = None
        return False

    def all(self):
        """Every step, as an iterable: ``for step in gen.all():``."""
        return self._steps(0, None)

    def _steps(self, first, stop):
        if self._generation is None:
            raise InvalidArgumentError("gen.iter / gen.all(): only inside `with model.generate(...) as gen:`")
        if first < self._generation.step:
            raise InvalidArgumentError(f"step {first}: generation is already at step {self._generation.step}")
        self._generation.run_until(first)
        while not self._generation.done and (stop is None or self._generation.step < stop):
            step = self._generation.step
            self._step_trace = self._generation.open_step()
            self._model._trace = self._step_trace
            try:
                yield step
                logits = self._step_trace.finish()
            except BaseException:
                self._step_trace.abandon()
                raise
            finally:
                self._model._trace = None
                self._step_trace = None
            self._generation.accept(logits)

    @property
    def output(self):
        """The token ids [batch, prompt + new tokens] (prompt left-padded)."""
        if self._result is None:
            if self._generation is not None:
                raise InvalidArgumentError("gen.output: available after the `with model.generate(...)` block")
            with self:
                pass
        return self._result["ids"]

    @property
    def texts(self):
        """The decoded new tokens of each row."""
        self.output
        return self._result["texts"]


class StandardizedTransformer:
    """A HuggingFace causal LM with nnterp's standardized points, run by nnterp's C++ engine.

    ``model`` is a local folder (config.json, *.safetensors, tokenizer.json) or a hub id in the
    local HF cache; omitted, nnterp's small embedded default model. ``dtype`` (or HF's ``torch_dtype``): torch.float32 (default), torch.bfloat16,
    torch.float16 or "auto" (the checkpoint's). ``device``: "cpu" or "cuda[:N]" (a CUDA build).

    Inside ``with model.trace(prompts):`` read and write ``layers_input``, ``layers_output``,
    ``attentions_input``, ``attentions_output``, ``mlps_input``, ``mlps_output``,
    ``attention_probabilities``, ``queries``, ``keys``, ``values``, ``router_logits`` (indexed by
    layer), ``token_embeddings``, ``logits``, ``next_token_probs``, ``input_ids``, ``attention_mask``.
    """

    def __init__(self, model=None, dtype=torch.float32, device="cpu", *, torch_dtype=None, device_map=None,
                 validate=True, load_tokenizer=True, trust_remote_code=False, check_renaming=True,
                 enable_attention_probs=False, attn_implementation=None, allow_dispatch=True, remote=False,
                 **kwargs):
        if remote:
            raise UnsupportedError("remote=True: nnterp runs models locally; NDIF is not reachable from it")
        if kwargs:
            raise TypeError(f"StandardizedTransformer() got unexpected keyword arguments: {sorted(kwargs)}")
        if torch_dtype is not None:
            dtype = torch_dtype
        if model is None:
            model = _nnterp.default_model_dir()
        if device_map not in (None, "auto", "cpu"):
            device = device_map
        self._engine = _nnterp.Model(os.fspath(model), _dtype_text(dtype), str(device), load_tokenizer, validate)
        self._trace = None
        self.num_layers = self._engine.num_layers
        self.num_heads = self._engine.num_heads
        self.hidden_size = self._engine.hidden_size
        self.vocab_size = self._engine.vocab_size
        self.name_or_path = self._engine.path
        config_path = os.path.join(self._engine.path, "config.json")
        with open(config_path, encoding="utf-8") as f:
            self.config = Config(json.load(f), self._engine)
        self.tokenizer = Tokenizer(self) if self._engine.tokenizer is not None else None
        for name, point in (("layers_input", _P.LayerInput), ("layers_output", _P.LayerOutput),
                            ("attentions_input", _P.AttnInput), ("attentions_output", _P.AttnOutput),
                            ("mlps_input", _P.MlpInput), ("mlps_output", _P.MlpOutput),
                            ("attention_probabilities", _P.AttnProbs), ("attention_scores", _P.AttnScores),
                            ("z", _P.Z), ("resid_mid", _P.ResidMid), ("mlp_hidden", _P.MlpHidden), ("queries", _P.Query), ("keys", _P.Key),
                            ("values", _P.Value), ("conv_states", _P.ConvState),
                            ("recurrent_states", _P.RecurrentState), ("router_logits", _P.RouterLogits),
                            ("expert_indices", _P.ExpertIndices), ("expert_weights", _P.ExpertWeights)):
            setattr(self, name, LayerAccessor(self, point, name))
        self.embed_tokens = ModulePoint(self, _P.Embed, "embed_tokens")
        self.ln_final = ModulePoint(self, _P.FinalNorm, "ln_final", self._engine.final_norm)
        self.lm_head = ModulePoint(self, _P.Logits, "lm_head", self._engine.unembed)

    def __repr__(self):
        return (f"StandardizedTransformer({self._engine.path!r}, {self._engine.architecture}, "
                f"{self.num_layers} layers, dtype={self.dtype})")

    # ---- the trace ----
    def trace(self, inputs, grad=False, check_non_finite=True):
        """``with model.trace(inputs) as tracer:`` — the block's code runs in lock-step with one
        forward pass over ``inputs`` (a prompt, a list of prompts (left-padded), a tensor of token
        ids, or a tokenizer's output). Reading a point runs the forward up to it; points must be read
        in forward order. Values are real tensors: print them, edit them in place, assign new ones
        (``model.layers_output[3] = h``); ``.save()`` returns the tensor itself (kept after the block).
        A Python exception in the block abandons the forward and propagates.

        ``grad=True`` runs the forward with autograd: call ``backward()`` inside or after the block.
        ``check_non_finite``: after an edit, warn (once) at the first point holding NaN/Inf.
        After the block, ``tracer.output`` is the logits (None if the body called stop())."""
        return Tracer(self, inputs, grad, check_non_finite)

    def _open_trace(self, what):
        if self._trace is None:
            raise InvalidArgumentError(f"{what}: points can only be read or written inside `with model.trace(...)`")
        return self._trace

    @property
    def token_embeddings(self):
        return self._open_trace("token_embeddings").get(_EMBED, -1)

    @token_embeddings.setter
    def token_embeddings(self, value):
        self._open_trace("token_embeddings").set(_EMBED, -1, value)

    @property
    def logits(self):
        return self._open_trace("logits").get(_LOGITS, -1)

    @logits.setter
    def logits(self, value):
        self._open_trace("logits").set(_LOGITS, -1, value)

    @property
    def next_token_probs(self):
        return self._open_trace("next_token_probs").next_token_probs()

    @property
    def input_ids(self):
        return self._open_trace("input_ids").input_ids

    @property
    def attention_mask(self):
        return self._open_trace("attention_mask").attention_mask

    @property
    def input_size(self):
        return self.input_ids.shape

    @property
    def attn_probs_available(self):
        return True

    # ---- interventions (inside a trace) ----
    def steer(self, layers, steering_vector, factor=1, positions=None, token_positions=None, batch_index=None):
        """Adds ``factor * steering_vector`` ([hidden]) to the output of each layer in ``layers``
        (sorted), at ``token_positions`` and batch rows ``batch_index`` when given (paired as torch
        advanced indexing pairs them)."""
        if positions is not None:
            if token_positions is not None:
                raise ValueError("give token_positions only (positions is its deprecated name)")
            token_positions = positions
        layers = [layers] if isinstance(layers, int) else list(layers)
        trace = self._open_trace("steer")
        simple_rows = batch_index is None or isinstance(batch_index, int)
        if simple_rows and (token_positions is None or isinstance(token_positions, (int, list, tuple))):
            positions_list = [] if token_positions is None else (
                [token_positions] if isinstance(token_positions, int) else list(token_positions))
            trace.steer(layers, steering_vector, float(factor), positions_list, batch_index)
            return
        for layer in sorted(set(layers)):  # tensor or list indices: in place, as the Python library does
            out = trace.get(int(_P.LayerOutput), layer)
            v = factor * steering_vector.to(out.device, out.dtype)
            rows = slice(None) if batch_index is None else batch_index
            cols = slice(None) if token_positions is None else token_positions
            out[rows, cols] += v

    def sae(self, sae, point=None, keep_error=True):
        """Inside a trace: the live features of ``sae`` at its point (see ``Tracer.sae``)."""
        return self._open_trace("sae").sae(sae, point, keep_error)

    def skip_layer(self, layer, skip_with=None):
        """Bypasses ``layer``: its output becomes ``skip_with`` (default: its input)."""
        self.skip_layers(layer, layer, skip_with)

    def skip_layers(self, start_layer, end_layer, skip_with=None):
        """Bypasses layers start..end inclusive: the output of ``end_layer`` becomes ``skip_with``
        (default: the input of ``start_layer``)."""
        self._open_trace("skip_layers").skip_layers(start_layer, end_layer, skip_with)

    def stop(self):
        """Ends the forward pass at the current point (as ``tracer.stop()``)."""
        self._open_trace("stop").stop()

    # ---- outside a trace too ----
    def dump(self, inputs, points):
        """The values of ``points`` (names such as "layers.3.output", in forward order) for
        ``inputs``, read by the C++ engine in one forward: {name: tensor}."""
        return _nnterp.trace_points(self._engine, inputs, list(points))

    @staticmethod
    def points():
        """The standardized points: a list of dicts (pattern, trace_name, shape, meaning)."""
        return _nnterp.point_table()

    def supports(self, point):
        """Whether this model has the point named `point` ("layers.3.z"), from its config alone;
        ``why_not(point)`` says why not."""
        return self._engine.has_point(point)

    def why_not(self, point):
        """Why this model has no `point` (an empty string when it has it)."""
        return self._engine.why_no_point(point)

    def point_shape(self, point, batch=1, tokens=1, past=0):
        """The shape `point` has for `batch` rows of `tokens` tokens (after `past` cached ones),
        without running the model; a ValueError naming the point when the model lacks it."""
        return tuple(self._engine.point_shape(point, batch, tokens, past))

    # ---- parameters in standardized shapes (TransformerLens names) ----
    def param(self, name, layer=None):
        """The parameter `name` ("W_E", "W_U", "W_Q", "W_O", "W_in", "W_out", "ln1_w", ...; see
        ``nnterp.param_table()``) of `layer` (per-layer ones), in TransformerLens's shape: W_Q is
        [heads, hidden, d_head], W_O [heads, d_v, hidden], W_in [hidden, d_mlp], W_U [hidden, vocab].
        A view of the weights the forward uses: edit through ``set_param``, never in place."""
        return self._engine.param(name, self._param_layer(name, layer))

    def has_param(self, name, layer=None):
        """(bool, why not): whether this model has parameter `name` at `layer`."""
        return self._engine.has_param(name, self._param_layer(name, layer))

    def set_param(self, name, layer, value):
        """Replaces a parameter (same shape as ``param``); the next forward uses it. Tied weights
        are untied (editing W_E leaves W_U as it was)."""
        self._engine.set_param(name, self._param_layer(name, layer), value)

    def ablate_neuron(self, layer, neuron):
        """Zeroes MLP neuron `neuron`'s row of W_out at `layer`: it writes nothing any more."""
        self._engine.ablate_neuron(self._layer_index(layer), neuron)

    def project_out_of_residual_writes(self, direction):
        """Projects `direction` [hidden] out of every weight that writes into the residual stream
        (W_E, W_pos, W_O, W_out, experts, ...): no residual activation has a component along it."""
        self._engine.project_out_of_residual_writes(direction)

    def _layer_index(self, layer):
        return layer + self.num_layers if -self.num_layers <= layer < 0 else layer

    def _param_layer(self, name, layer):
        per_layer = next((row["per_layer"] for row in _nnterp.param_table() if row["name"] == name), True)
        if not per_layer:
            return -1
        if layer is None:
            raise TypeError(f"{name} is a per-layer parameter: give its layer")
        return self._layer_index(layer)

    def project_on_vocab(self, hidden_state):
        """ln_final then lm_head (with the model's final scaling / soft-cap): logits [..., vocab]."""
        return self._engine.project_on_vocab(hidden_state)

    def get_topk_closest_tokens(self, hidden_state, k=5):
        """The k tokens whose probability under project_on_vocab(hidden_state) is highest:
        {token: probability} for a [hidden] vector, a list of them for [N, hidden]."""
        if hidden_state.dim() > 2 or hidden_state.shape[-1] != self.hidden_size:
            raise ValueError(f"expected [hidden] or [N, hidden] with hidden = {self.hidden_size}, got {list(hidden_state.shape)}")
        probs = torch.softmax(self.project_on_vocab(hidden_state).float(), dim=-1)
        top = probs.topk(k, dim=-1)

        def row(values, ids):
            return {self.tokenizer.convert_ids_to_tokens(int(i)): float(v) for v, i in zip(values, ids)}

        if hidden_state.dim() == 1:
            return row(top.values, top.indices)
        return [row(v, i) for v, i in zip(top.values, top.indices)]

    def generate(self, inputs, max_new_tokens=20, do_sample=False, temperature=None, top_k=None, top_p=None,
                 repetition_penalty=None, seed=None, stop_at_eos=True, **kwargs):
        """Generation with a KV cache (greedy unless ``do_sample``), as a context manager whose
        steps can be intervened on with a plain ``for`` loop; each iteration's body runs in
        lock-step with that step's forward, exactly as a trace block::

            with model.generate(prompt, max_new_tokens=10) as gen:
                for step in gen.iter[0:3]:          # or gen.all(); steps 0..2 (step 0 is the prompt)
                    model.steer(layers=[1], steering_vector=v)
            ids = gen.output                        # [batch, prompt + new tokens]

        Steps no loop visits run unchanged. Outside a ``with`` block, ``.output`` runs the whole
        generation: ``model.generate(prompt, max_new_tokens=5).output``. Other keywords:
        eos_token_ids, pad_token_id, recompute (no KV cache), keep_logits."""
        options = {"max_new_tokens": max_new_tokens, "stop_at_eos": stop_at_eos}
        if do_sample:
            options["temperature"] = 1.0 if temperature is None else temperature
        for name, value in (("top_k", top_k), ("top_p", top_p), ("repetition_penalty", repetition_penalty),
                            ("seed", seed)):
            if value is not None:
                options[name] = value
        options.update(kwargs)
        return Generator(self, inputs, options)

    @property
    def dtype(self):
        return getattr(torch, self._engine.dtype)

    @property
    def device(self):
        return torch.device(self._engine.device)

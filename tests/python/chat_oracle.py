"""Python jinja2 set up exactly as transformers' ``apply_chat_template`` sets it up: the reference
that nnterp's own chat-template interpreter (src/chat/) is compared with.

transformers compiles a chat template in ``_compile_jinja_template``
(``src/transformers/utils/chat_template_utils.py``):

* an ``ImmutableSandboxedEnvironment`` with ``trim_blocks=True`` and ``lstrip_blocks=True``;
* the extensions ``jinja2.ext.loopcontrols`` (``{% break %}``, ``{% continue %}``) and its
  ``AssistantTracker``, the ``{% generation %}`` ... ``{% endgeneration %}`` tag, which renders its
  body unchanged (it only records where the body falls when transformers asks for assistant
  masks, which nnterp does not compare);
* its own ``tojson`` filter (``json.dumps`` with ``ensure_ascii=False`` and no HTML escaping,
  instead of jinja2's);
* the globals ``raise_exception(message)`` (raises ``jinja2.exceptions.TemplateError``) and
  ``strftime_now(format)`` (``datetime.now().strftime``; here a fixed clock, :data:`FIXED_TIME`,
  which nnterp's ``fixed_time`` render option sets to the same instant).

``apply_chat_template`` then renders with ``messages``, ``tools``, ``documents`` and
``add_generation_prompt`` always passed (``None``/``False`` when absent), plus the tokenizer's
special tokens and any extra keyword arguments: :func:`apply_chat_template_variables` makes that
one dict of variables, which :func:`render` takes as nnterp's ``ChatTemplate.render`` takes one
JSON object.

:class:`OracleTokenizer` (and :func:`tokenizer_apply_chat_template`) goes one level up: a tokenizer
folder read as transformers' ``from_pretrained`` reads it (tokenizer_config.json,
special_tokens_map.json, chat_template.jinja, additional_chat_templates/), its special tokens, the
template ``get_chat_template`` selects and ``apply_chat_template(tokenize=False)``'s rendering,
continue_final_message's cut included.

``mutable=True`` compiles in a plain ``jinja2.Environment`` instead (same options), the
behaviour nnterp's ``allow_container_mutation`` render option follows (``list.append``,
``dict.update``, ... allowed).
"""

import copy
import functools
import json
import os
import pathlib
from datetime import datetime

import jinja2
import jinja2.exceptions
import jinja2.ext
import jinja2.nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment

# strftime_now's clock in both renderers, in the form nnterp's fixed_time option takes.
FIXED_TIME = "2026-01-15 12:34:56"
_FIXED_NOW = datetime.strptime(FIXED_TIME, "%Y-%m-%d %H:%M:%S")


class GenerationTag(jinja2.ext.Extension):
    """``{% generation %}BODY{% endgeneration %}``: BODY rendered as is, wrapped in a call block as
    transformers' AssistantTracker wraps it (so scoping inside the body follows the same rules)."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return jinja2.nodes.CallBlock(self.call_method("_render_body"), [], [], body).set_lineno(lineno)

    @jinja2.pass_eval_context
    def _render_body(self, eval_context, caller):
        return caller()


def raise_exception(message):
    raise jinja2.exceptions.TemplateError(message)


def tojson(value, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
    return json.dumps(value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def strftime_now(format):
    return _FIXED_NOW.strftime(format)


def compile_template(source, mutable=False):
    """The compiled template (a ``jinja2.Template``); raises what jinja2 raises for a bad one."""
    environment_class = jinja2.Environment if mutable else ImmutableSandboxedEnvironment
    env = environment_class(trim_blocks=True, lstrip_blocks=True, extensions=[GenerationTag, jinja2.ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env.from_string(source)


def apply_chat_template_variables(context):
    """The variables apply_chat_template renders with: `context` (a deep copy) with ``tools``,
    ``documents`` and ``add_generation_prompt`` added as ``None``/``False`` where it lacks them,
    since transformers always passes those three. Both renderers must get these same variables."""
    variables = copy.deepcopy(context)
    variables.setdefault("tools", None)
    variables.setdefault("documents", None)
    variables.setdefault("add_generation_prompt", False)
    return variables


def render(template, variables):
    """Renders a compiled template with `variables` (a deep copy: a template in a plain
    Environment may mutate its data, and each render must start from the same values)."""
    return template.render(**copy.deepcopy(variables))


def is_raise_exception(error):
    """True when `error` is what the template's own ``raise_exception(...)`` raised: exactly
    ``jinja2.exceptions.TemplateError`` (jinja2's other errors are subclasses of it)."""
    return type(error) is jinja2.exceptions.TemplateError


def error_line(error):
    """The template line jinja2 blames for `error`, or None when it names none.

    A syntax error carries it (``lineno``); for an error while rendering, jinja2 rewrites the
    traceback so that the template's frames read ``<template>`` with template line numbers, and
    the innermost one is where the error arose.
    """
    if isinstance(error, jinja2.exceptions.TemplateSyntaxError):
        return error.lineno
    line = None
    tb = error.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


# ---------------------------------------------------------------------------------------------
# apply_chat_template(tokenize=False) on a tokenizer folder, as transformers 4.5x does it:
# from_pretrained's reading of the folder, PreTrainedTokenizerBase.special_tokens_map,
# get_chat_template, apply_chat_template's checks and render_jinja_template (with its
# continue_final_message cut). Only the jinja2 environment above is shared with the renderer test.

# SpecialTokensMixin.SPECIAL_TOKENS_ATTRIBUTES, in its order.
SPECIAL_TOKENS_ATTRIBUTES = ("bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token",
                             "mask_token", "additional_special_tokens")


def _read_json_file(path):
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def _read_text_file(path):
    # Text mode, as transformers opens template files: "\r\n" and "\r" read as "\n".
    with open(path, encoding="utf-8") as f:
        return f.read()


class _Token:
    """A token object ({"content": ...}), as transformers holds an AddedToken: str() is its content,
    and it never equals a plain string (that matters when additional_special_tokens lists merge)."""

    def __init__(self, content):
        self.content = content

    def __eq__(self, other):
        return isinstance(other, _Token) and other.content == self.content

    def __str__(self):
        return self.content


def _token(value, from_special_tokens_map=False):
    """A special token as read from tokenizer_config.json (an object when it has
    "__type": "AddedToken") or from special_tokens_map.json (any object)."""
    if isinstance(value, dict) and (from_special_tokens_map or value.get("__type") == "AddedToken"):
        return _Token(value["content"])
    if isinstance(value, list):
        return [_token(v, from_special_tokens_map) for v in value]
    return value


class OracleTokenizer:
    """The chat-template side of a transformers tokenizer loaded from a local folder:
    ``chat_template`` (None, a source, or a dict name -> source), ``special_tokens_map`` and
    ``apply_chat_template(..., tokenize=False)``."""

    def __init__(self, chat_template, special_tokens_map):
        self.chat_template = chat_template
        self.special_tokens_map = special_tokens_map

    @classmethod
    def from_pretrained(cls, folder):
        folder = os.fspath(folder)
        config = _read_json_file(os.path.join(folder, "tokenizer_config.json"))
        init_kwargs = {k: _token(v) for k, v in (config or {}).items()}

        # chat_template.jinja clobbers the config's template; additional_chat_templates/NAME.jinja
        # make a dict of templates, the main one (a string) named "default". transformers indexes
        # the config's value by name here, so a *list* in the config with additional files fails.
        main = os.path.join(folder, "chat_template.jinja")
        if os.path.isfile(main):
            init_kwargs["chat_template"] = _read_text_file(main)
        extra_dir = pathlib.Path(folder, "additional_chat_templates")
        extra = sorted(extra_dir.glob("*.jinja")) if extra_dir.is_dir() else []
        if extra:
            if isinstance(init_kwargs.get("chat_template"), str):
                init_kwargs["chat_template"] = {"default": init_kwargs["chat_template"]}
            elif init_kwargs.get("chat_template") is None:
                init_kwargs["chat_template"] = {}
            for path in extra:
                init_kwargs["chat_template"][path.name[: -len(".jinja")]] = _read_text_file(path)

        # The legacy path: special_tokens_map.json only when the config has no added_tokens_decoder;
        # its values then replace the config's (additional_special_tokens: appended, deduplicated).
        if "added_tokens_decoder" not in init_kwargs:
            special_map = _read_json_file(os.path.join(folder, "special_tokens_map.json")) or {}
            for key, value in special_map.items():
                value = _token(value, from_special_tokens_map=True)
                if key == "additional_special_tokens" and isinstance(value, list):
                    merged = list(init_kwargs.pop("additional_special_tokens", None) or [])
                    merged += [t for t in value if t not in merged]
                    value = merged
                init_kwargs[key] = value

        # PreTrainedTokenizerBase.__init__: a list of {"name", "template"} becomes a dict.
        chat_template = init_kwargs.get("chat_template")
        if isinstance(chat_template, (list, tuple)):
            chat_template = {entry["name"]: entry["template"] for entry in chat_template}

        # special_tokens_map: each attribute that is set and truthy, as strings; then
        # extra_special_tokens (model-specific names, v4.47+), which must be a dict in 4.x.
        values = {attr: init_kwargs.get(attr) for attr in SPECIAL_TOKENS_ATTRIBUTES}
        attributes = list(SPECIAL_TOKENS_ATTRIBUTES)
        extra_special = init_kwargs.get("extra_special_tokens") or {}
        for key, value in extra_special.items():
            attributes.append(key)
            values[key] = value
        special_tokens_map = {}
        for attr in attributes:
            value = values[attr]
            if value is None:
                continue
            tokens = value if attr == "additional_special_tokens" else [value]
            if not all(isinstance(t, (str, _Token)) for t in tokens):
                raise TypeError(f"Special token {attr} has to be either str or AddedToken")
            text = [str(t) for t in value] if attr == "additional_special_tokens" else str(value)
            if text:
                special_tokens_map[attr] = text
            else:
                special_tokens_map.pop(attr, None)
        return cls(chat_template, special_tokens_map)

    def get_chat_template(self, chat_template=None, tools=None):
        if isinstance(self.chat_template, dict):
            templates = self.chat_template
            if chat_template is not None and chat_template in templates:
                return templates[chat_template]
            if chat_template is None:
                if tools is not None and "tool_use" in templates:
                    return templates["tool_use"]
                if "default" in templates:
                    return templates["default"]
                raise ValueError("This model has multiple chat templates with no default specified! Available "
                                 f"template names are {sorted(templates)}.")
            return chat_template
        if chat_template is None:
            if self.chat_template is None:
                raise ValueError("Cannot use chat template functions because tokenizer.chat_template is not set "
                                 "and no template argument was passed!")
            return self.chat_template
        return chat_template

    def apply_chat_template(self, conversation, tools=None, documents=None, chat_template=None,
                            add_generation_prompt=False, continue_final_message=False, **kwargs):
        """The rendered text (tokenize=False) of one conversation or of a batch (a list of them)."""
        source = self.get_chat_template(chat_template, tools)
        batched = isinstance(conversation, (list, tuple)) and isinstance(conversation[0], (list, tuple))
        conversations = conversation if batched else [conversation]
        if continue_final_message and add_generation_prompt:
            raise ValueError("continue_final_message and add_generation_prompt are not compatible.")
        template_kwargs = {**self.special_tokens_map, **kwargs}
        rendered = render_conversations(source, conversations, tools, documents, add_generation_prompt,
                                        continue_final_message, **template_kwargs)
        return rendered if batched else rendered[0]


@functools.lru_cache(maxsize=None)
def _compiled_for_tokenizer(source):
    return compile_template(source)  # cached, as transformers caches _compile_jinja_template


def render_conversations(chat_template, conversations, tools=None, documents=None, add_generation_prompt=False,
                         continue_final_message=False, **kwargs):
    """render_jinja_template (tokenize=False, no assistant mask): one text per conversation."""
    compiled = _compiled_for_tokenizer(chat_template)
    if tools is not None and not all(isinstance(tool, dict) for tool in tools):
        raise ValueError("Tools should be JSON schemas (dicts).")
    if documents is not None and not all(isinstance(document, dict) for document in documents):
        raise TypeError("Documents should be a list of dicts.")
    out = []
    for chat in conversations:
        text = compiled.render(messages=copy.deepcopy(chat), tools=copy.deepcopy(tools),
                               documents=copy.deepcopy(documents), add_generation_prompt=add_generation_prompt,
                               **copy.deepcopy(kwargs))
        if continue_final_message:
            text = cut_after_final_message(text, chat[-1]["content"])
        out.append(text)
    return out


def cut_after_final_message(rendered, final_message):
    """transformers 4.5x: the rendering ends right after the final message's text (the last text
    part of a list of parts), found with rindex of its stripped text; the message's own trailing
    whitespace is kept when the template kept it and its text has no leading whitespace."""
    if isinstance(final_message, (list, tuple)):
        for part in reversed(final_message):
            if "text" in part:
                final_message = part["text"]
                break
        else:
            raise ValueError("continue_final_message is set but we could not find any text to continue "
                             "in the final message!")
    if final_message.strip() not in rendered:
        raise ValueError("continue_final_message is set but the final message does not appear in the chat "
                         "after applying the chat template!")
    at = rendered.rindex(final_message.strip())
    if rendered[at: at + len(final_message.lstrip())] == final_message:
        return rendered[: at + len(final_message.lstrip())]
    return rendered[: at + len(final_message.strip())]


def tokenizer_apply_chat_template(folder, conversation, **options):
    """transformers' AutoTokenizer.from_pretrained(folder).apply_chat_template(conversation,
    tokenize=False, **options)."""
    return OracleTokenizer.from_pretrained(folder).apply_chat_template(conversation, **options)


class Outcome:
    """One renderer's result: the text, or the exception raised."""

    def __init__(self, text=None, error=None):
        self.text, self.error = text, error

    @property
    def ok(self):
        return self.error is None

    def __repr__(self):
        return f"text {self.text!r}" if self.ok else f"raised {type(self.error).__name__}: {self.error}"


def outcome(call):
    """What calling `call` gives: its text, or the exception it raised (whatever it is)."""
    try:
        return Outcome(text=call())
    except Exception as e:  # noqa: BLE001 - compared by the tests
        return Outcome(error=e)

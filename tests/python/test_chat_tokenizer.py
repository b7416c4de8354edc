"""nnterp's Tokenizer.apply_chat_template against transformers' (tests/python/chat_oracle.py's
OracleTokenizer: transformers 4.5x's loading, template selection, special tokens and
continue_final_message cut, rendered by Python jinja2 set up as transformers sets it up).

* every fixture tokenizer with a template x every conversation of tests/data/chat_conversations/
  x add_generation_prompt: byte-identical text, or both raise;
* continue_final_message (content, trailing/leading spacing, empty, lists of parts, templates that
  drop the message): identical, or both raise;
* tokenize=True is encode(text, add_special_tokens=False): no doubled BOS;
* template loading from folders built here: chat_template.jinja, a list of named templates,
  additional_chat_templates/, selection by name / tool_use / default, templates that fail to parse;
* the special tokens the template sees (special_tokens_map.json's legacy path, extra_special_tokens);
* extra keyword arguments, and the argument errors.

The llama3, gemma3 and deepseek-v3 tokenizers live in ../shared (custom licences); their cases
skip, visibly, without it.
"""

import functools
import gzip
import json
import os
import shutil

import pytest

try:
    import jinja2  # noqa: F401
except ImportError:
    pytest.skip("Python jinja2 (the reference renderer) is not installed", allow_module_level=True)

import chat_oracle  # noqa: E402
import nnterp  # noqa: E402,F401  (registers nnterp.errors for the module's errors)
from nnterp._model import Tokenizer  # noqa: E402
from nnterp.errors import Error, InvalidArgumentError, TemplateError  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
DATA = os.path.join(REPO, "tests", "data")
SHARED = os.path.normpath(os.path.join(REPO, "..", "shared", "fixtures", "tokenizers"))
CONVERSATIONS_DIR = os.path.join(DATA, "chat_conversations")

COMMITTED = ["qwen2", "qwen3", "phi3", "mistral-nemo"]
SHARED_ONLY = ["llama3", "gemma3", "deepseek-v3"]
NO_SHARED = "../shared/fixtures/tokenizers is absent (custom-licence fixtures, not in the repository)"


def folder_of(name):
    if name in COMMITTED:
        return os.path.join(DATA, "tokenizers", name)
    return os.path.join(SHARED, name)


def fixture_params():
    params = [pytest.param(name, id=name) for name in COMMITTED]
    for name in SHARED_ONLY:
        present = os.path.isdir(folder_of(name))
        params.append(pytest.param(name, id=name, marks=pytest.mark.skipif(not present, reason=NO_SHARED)))
    return params


FIXTURES = fixture_params()
CONVERSATIONS = sorted(f[: -len(".json")] for f in os.listdir(CONVERSATIONS_DIR) if f.endswith(".json"))
# The conversation files carry placeholder special tokens for the renderer test; here the
# tokenizer supplies its own.
PLACEHOLDERS = {"bos_token", "eos_token", "unk_token", "pad_token"}


@functools.lru_cache(maxsize=None)
def ours_tokenizer(folder):
    return Tokenizer.from_pretrained(folder)


@functools.lru_cache(maxsize=None)
def oracle_tokenizer(folder):
    return chat_oracle.OracleTokenizer.from_pretrained(folder)


@functools.lru_cache(maxsize=None)
def conversation(name):
    """(messages, apply_chat_template keyword arguments) of chat_conversations/NAME.json."""
    with open(os.path.join(CONVERSATIONS_DIR, name + ".json"), encoding="utf-8") as f:
        context = json.load(f)
    messages = context.pop("messages")
    return messages, {k: v for k, v in context.items() if k not in PLACEHOLDERS}


Outcome, outcome = chat_oracle.Outcome, chat_oracle.outcome


def uses_strftime(tok, options):
    """Whether the template `options` select calls strftime_now (then ours needs fixed_time)."""
    chosen = options.get("chat_template") or ""
    if chosen and chosen not in tok._tok.chat_template_names:
        return "strftime_now" in chosen  # a template source given as is
    try:
        return "strftime_now" in tok._tok.chat_template_source(chosen, options.get("tools") is not None)
    except Error:
        return False  # no template: both raise


def ours_text(tok, messages, /, **options):
    """Our apply_chat_template(..., tokenize=False): the Python method, or the native call with
    chat_oracle.FIXED_TIME when the template reads the clock."""
    if not uses_strftime(tok, options):
        return tok.apply_chat_template(messages, tokenize=False, **options)
    known = ("tools", "documents", "chat_template", "add_generation_prompt", "continue_final_message")
    tools, documents = options.get("tools"), options.get("documents")
    extra = {k: v for k, v in options.items() if k not in known}
    return tok._tok.apply_chat_template(
        json.dumps(messages, ensure_ascii=False), options.get("add_generation_prompt", False),
        options.get("continue_final_message", False), options.get("chat_template") or "",
        "" if tools is None else json.dumps(tools, ensure_ascii=False),
        "" if documents is None else json.dumps(documents, ensure_ascii=False),
        json.dumps(extra, ensure_ascii=False) if extra else "", chat_oracle.FIXED_TIME)


def both(folder, messages, /, **options):
    """(transformers' Outcome, ours) for one apply_chat_template(tokenize=False) call."""
    theirs = outcome(lambda: oracle_tokenizer(folder).apply_chat_template(messages, **options))
    ours = outcome(lambda: ours_text(ours_tokenizer(folder), messages, **options))
    return theirs, ours


def disagreement(theirs, ours):
    """None when the outcomes agree: the same text, or both raise (ours an nnterp error; the
    template's own raise_exception(MESSAGE) a TemplateError with that message)."""
    if theirs.ok and ours.ok:
        return None if theirs.text == ours.text else f"texts differ:\n  transformers {theirs!r}\n  nnterp       {ours!r}"
    if theirs.ok != ours.ok:
        return f"transformers {theirs!r}\n  nnterp {ours!r}"
    if not isinstance(ours.error, Error):
        return f"both raise, but ours is not an nnterp error: {ours!r} (transformers {theirs!r})"
    if chat_oracle.is_raise_exception(theirs.error):
        if not isinstance(ours.error, TemplateError) or ours.error.detail != str(theirs.error):
            return f"the template's raise_exception({str(theirs.error)!r}), but ours {ours!r}"
    return None


def check_all(cases):
    """cases: [(label, theirs, ours)]; fails listing the disagreements."""
    failures = [f"--- {label}: {why}" for label, theirs, ours in cases
                if (why := disagreement(theirs, ours)) is not None]
    assert not failures, f"{len(failures)} case(s) differ from transformers:\n" + "\n".join(failures[:5])


# ---------------------------------------------------------------------------------------------
# Fixture tokenizers x conversations.


@pytest.mark.parametrize("name", FIXTURES)
def test_conversations_render_as_transformers(name):
    folder = folder_of(name)
    assert ours_tokenizer(folder).chat_template == oracle_tokenizer(folder).chat_template
    cases, rendered = [], set()
    for conv in CONVERSATIONS:
        messages, options = conversation(conv)
        for add_generation_prompt in (False, True):
            theirs, ours = both(folder, messages, add_generation_prompt=add_generation_prompt, **options)
            cases.append((f"{name} x {conv}, add_generation_prompt={add_generation_prompt}", theirs, ours))
            if theirs.ok and ours.ok:
                rendered.add(conv)
    check_all(cases)
    assert len(rendered) >= 8, f"{name}: only {sorted(rendered)} render; the comparison means little"


def final_message_cases():
    """(label, messages, options) for continue_final_message: a final assistant message to continue."""
    head = [{"role": "user", "content": "Write a haiku about the sea."}]
    contents = {
        "plain": "Waves fold into foam",
        "trailing_spaces": "Waves fold into foam   ",
        "leading_spaces": "   Waves fold into foam",
        "both_sides": "\n Waves fold into foam \n",
        "unicode_spacing": "Waves fold into foam\u00a0\u3000",
        "empty": "",
        "spaces_only": "   ",
        "parts": [{"type": "text", "text": "First line."}, {"type": "text", "text": "Waves fold  "}],
        "parts_image_last": [{"type": "text", "text": "Waves fold"}, {"type": "image"}],
        "parts_without_text": [{"type": "image"}],
        "parts_text_not_string": [{"type": "text", "text": "ok"}, {"type": "text", "text": 5}],
    }
    for label, content in contents.items():
        yield label, head + [{"role": "assistant", "content": content}], {}
    yield "system_and_turns", [{"role": "system", "content": "Be brief."}, head[0],
                               {"role": "assistant", "content": "Gulls."}, {"role": "user", "content": "More."},
                               {"role": "assistant", "content": "Salt wind"}], {}
    yield "final_user_message", head, {}
    yield "no_content_key", head + [{"role": "assistant"}], {}
    yield "thinking_off", head + [{"role": "assistant", "content": "Tide"}], {"enable_thinking": False}


# A template that writes lists of parts, and one that drops assistant messages.
PARTS_TEMPLATE = ("{% for m in messages %}<{{ m.role }}>{% if m.content is string %}{{ m.content }}{% else %}"
                  "{% for p in m.content %}{% if p.type == 'text' %}{{ p.text }}{% else %}[{{ p.type }}]{% endif %}"
                  "{% endfor %}{% endif %}</{{ m.role }}>\n{% endfor %}")
DROPPING_TEMPLATE = "{% for m in messages if m.role != 'assistant' %}{{ m.role }}: {{ m.content }}\n{% endfor %}"


@pytest.mark.parametrize("name", FIXTURES)
def test_continue_final_message_as_transformers(name):
    folder = folder_of(name)
    cases, continued = [], 0
    for label, messages, options in final_message_cases():
        for template in (None, PARTS_TEMPLATE, DROPPING_TEMPLATE):
            theirs, ours = both(folder, messages, continue_final_message=True, chat_template=template, **options)
            which = "model template" if template is None else "parts template" if template is PARTS_TEMPLATE \
                else "dropping template"
            cases.append((f"{name}, {which}, {label}", theirs, ours))
            continued += theirs.ok and ours.ok and template is None
            if template is DROPPING_TEMPLATE and label == "plain":
                assert not ours.ok and isinstance(ours.error, TemplateError), ours
                assert "does not appear" in str(ours.error)
    check_all(cases)
    assert continued >= 5, f"{name}: the model's template continues only {continued} final messages"


def test_continue_final_message_cuts_where_expected():
    """The cut itself, on a template that keeps spacing (Qwen2) and on one that trims (PARTS vs trim)."""
    folder = folder_of("qwen2")
    tok = ours_tokenizer(folder)
    head = [{"role": "user", "content": "Hi"}]
    text = tok.apply_chat_template(head + [{"role": "assistant", "content": "Hello  "}], tokenize=False,
                                   continue_final_message=True)
    assert text.endswith("<|im_start|>assistant\nHello  ")
    text = tok.apply_chat_template(head + [{"role": "assistant", "content": "  Hello  "}], tokenize=False,
                                   continue_final_message=True)
    assert text.endswith("<|im_start|>assistant\n  Hello")  # leading spacing: the trailing one is dropped
    trimming = "{% for m in messages %}[{{ m.content | trim }}]{% endfor %}"
    text = tok.apply_chat_template(head + [{"role": "assistant", "content": "Hello  "}], tokenize=False,
                                   continue_final_message=True, chat_template=trimming)
    assert text == "[Hi][Hello"
    parts = [{"type": "text", "text": "a"}, {"type": "text", "text": "b b"}, {"type": "image"}]
    text = tok.apply_chat_template(head + [{"role": "assistant", "content": parts}], tokenize=False,
                                   continue_final_message=True, chat_template=PARTS_TEMPLATE)
    assert text == "<user>Hi</user>\n<assistant>ab b"


# ---------------------------------------------------------------------------------------------
# tokenize=True.


@pytest.mark.parametrize("name", FIXTURES)
def test_tokenize_encodes_without_adding_special_tokens(name):
    tok = ours_tokenizer(folder_of(name))
    messages, _ = conversation("multi_turn")
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    ids = tok.apply_chat_template(messages, add_generation_prompt=True)
    assert ids == tok.encode(text, add_special_tokens=False)
    bos = tok.bos_token_id
    if name in ("qwen2", "qwen3"):
        assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")
    if text.startswith(tok._tok.id_to_token(bos) if bos is not None else "\0"):
        # A template that writes BOS: it appears once, first.
        assert ids[0] == bos and ids.count(bos) == 1, (ids[:5], ids.count(bos))
    # return_dict / return_tensors / a batch.
    encoded = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)
    assert encoded["input_ids"] == ids and encoded["attention_mask"] == [1] * len(ids)
    tensors = tok.apply_chat_template([messages, messages[:1]], add_generation_prompt=True, return_tensors="pt")
    assert tensors.shape[0] == 2 and tensors[0].tolist() == ids
    assert tok.apply_chat_template([messages, messages], add_generation_prompt=True) == [ids, ids]


def test_bos_writing_templates_do_not_double_bos():
    # mistral-nemo is committed; the others are in ../shared.
    for name in [n for n in ("mistral-nemo", "llama3", "gemma3", "deepseek-v3") if os.path.isdir(folder_of(n))]:
        tok = ours_tokenizer(folder_of(name))
        text = tok.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False, add_generation_prompt=True)
        bos_text = tok._tok.id_to_token(tok.bos_token_id)
        assert text.startswith(bos_text), (name, text[:40])
        ids = tok.apply_chat_template([{"role": "user", "content": "Hi"}], add_generation_prompt=True)
        assert ids[0] == tok.bos_token_id and ids.count(tok.bos_token_id) == 1, (name, ids[:6])


# ---------------------------------------------------------------------------------------------
# Template loading: folders built from phi3's tokenizer (small, loads fast).

BASE = folder_of("phi3")
PROBE = [{"role": "user", "content": "Hi"}]
TOOLS = [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}]


def make_folder(tmp_path, config_changes=None, files=None, special_tokens_map=None, drop=()):
    """A tokenizer folder: phi3's tokenizer.json and tokenizer_config.json with `config_changes`
    (a key set to None is removed; keys in `drop` too), plus `files` {relative path: text}."""
    folder = tmp_path / "tok"
    folder.mkdir(parents=True)
    shutil.copy(os.path.join(BASE, "tokenizer.json.gz"), folder / "tokenizer.json.gz")
    with open(os.path.join(BASE, "tokenizer_config.json"), encoding="utf-8") as f:
        config = json.load(f)
    for key, value in (config_changes or {}).items():
        config[key] = value
    for key in drop:
        config.pop(key, None)
    (folder / "tokenizer_config.json").write_text(json.dumps(config, ensure_ascii=False), encoding="utf-8")
    if special_tokens_map is not None:
        (folder / "special_tokens_map.json").write_text(json.dumps(special_tokens_map), encoding="utf-8")
    for path, text in (files or {}).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        with open(folder / path, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    return str(folder)


def render_both(folder, messages=PROBE, /, **options):
    theirs, ours = both(folder, messages, **options)
    why = disagreement(theirs, ours)
    assert why is None, f"{options}: {why}"
    return ours


def test_chat_template_jinja_overrides_the_config(tmp_path):
    folder = make_folder(tmp_path, files={"chat_template.jinja": "FILE {{ messages[0].content }}\n"})
    assert render_both(folder).text == "FILE Hi"  # jinja2 drops the one trailing newline
    tok = Tokenizer.from_pretrained(folder)
    assert tok.chat_template == "FILE {{ messages[0].content }}\n" == chat_oracle.OracleTokenizer.from_pretrained(
        folder).chat_template
    assert tok._tok.chat_template_names == []


def test_chat_template_jinja_with_crlf(tmp_path):
    # transformers reads the file in text mode (CRLF -> LF); jinja2 normalizes newlines anyway.
    source = "{% for m in messages %}\r\n{{ m.role }}:\r{{ m.content }}\r\n{% endfor %}\r\nend"
    folder = make_folder(tmp_path, files={"chat_template.jinja": source})
    assert render_both(folder, add_generation_prompt=True).text == "user:\nHi\nend"
    assert Tokenizer.from_pretrained(folder).chat_template == chat_oracle.OracleTokenizer.from_pretrained(
        folder).chat_template


NAMED = [{"name": "default", "template": "DEFAULT {{ messages[0].content }}"},
         {"name": "tool_use", "template": "TOOLS {{ tools | length }} {{ messages[0].content }}"},
         {"name": "rag", "template": "RAG {{ documents | length }}"}]


def test_named_templates_in_the_config(tmp_path):
    folder = make_folder(tmp_path, {"chat_template": NAMED})
    tok = Tokenizer.from_pretrained(folder)
    assert tok._tok.chat_template_names == ["default", "tool_use", "rag"]
    assert tok.chat_template == {t["name"]: t["template"] for t in NAMED}
    assert tok.chat_template == chat_oracle.OracleTokenizer.from_pretrained(folder).chat_template
    assert render_both(folder).text == "DEFAULT Hi"
    assert render_both(folder, tools=TOOLS).text == "TOOLS 1 Hi"
    assert render_both(folder, tools=[]).text == "TOOLS 0 Hi"  # tools=[] is not None: tool_use
    assert render_both(folder, chat_template="rag", documents=[{"title": "t", "text": "x"}]).text == "RAG 1"
    assert render_both(folder, chat_template="default", tools=TOOLS).text == "DEFAULT Hi"
    # A string that is not a name is a template source.
    assert render_both(folder, chat_template="RAW {{ messages | length }}").text == "RAW 1"


def test_duplicate_names_keep_the_last_template(tmp_path):
    folder = make_folder(tmp_path, {"chat_template": NAMED + [{"name": "default", "template": "SECOND"}]})
    assert render_both(folder).text == "SECOND"
    assert Tokenizer.from_pretrained(folder)._tok.chat_template_names == ["default", "tool_use", "rag"]


def test_additional_chat_templates(tmp_path):
    folder = make_folder(tmp_path, {"chat_template": "CONFIG"},
                         files={"additional_chat_templates/tool_use.jinja": "EXTRA TOOLS",
                                "additional_chat_templates/rag.jinja": "EXTRA RAG",
                                "additional_chat_templates/notes.txt": "not a template"})
    tok = Tokenizer.from_pretrained(folder)
    assert sorted(tok._tok.chat_template_names) == ["default", "rag", "tool_use"]
    assert tok.chat_template == chat_oracle.OracleTokenizer.from_pretrained(folder).chat_template
    assert render_both(folder).text == "CONFIG"
    assert render_both(folder, tools=TOOLS).text == "EXTRA TOOLS"
    assert render_both(folder, chat_template="rag").text == "EXTRA RAG"


def test_additional_templates_with_chat_template_jinja(tmp_path):
    folder = make_folder(tmp_path, files={"chat_template.jinja": "MAIN FILE",
                                          "additional_chat_templates/tool_use.jinja": "EXTRA TOOLS"})
    assert render_both(folder).text == "MAIN FILE"
    assert render_both(folder, chat_template="default", tools=TOOLS).text == "MAIN FILE"
    assert render_both(folder, tools=TOOLS).text == "EXTRA TOOLS"
    # additional_chat_templates/default.jinja replaces the main template.
    folder = make_folder(tmp_path / "b", files={"chat_template.jinja": "MAIN FILE",
                                                "additional_chat_templates/default.jinja": "EXTRA DEFAULT"})
    assert render_both(folder).text == "EXTRA DEFAULT"


def test_no_default_template_lists_the_names(tmp_path):
    named = [t for t in NAMED if t["name"] != "default"]
    folder = make_folder(tmp_path, {"chat_template": named})
    for options in ({}, {"documents": []}):
        ours = render_both(folder, **options)
        assert isinstance(ours.error, TemplateError)
        assert "rag, tool_use" in str(ours.error) and "chat_template" in str(ours.error), str(ours.error)
    assert render_both(folder, tools=TOOLS).text == "TOOLS 1 Hi"
    assert render_both(folder, chat_template="rag", documents=[]).text == "RAG 0"
    # Only additional templates, no main one: no default either.
    folder = make_folder(tmp_path / "b", {"chat_template": None}, files={"additional_chat_templates/x.jinja": "X"})
    assert isinstance(render_both(folder).error, TemplateError)
    assert render_both(folder, chat_template="x").text == "X"


def test_template_that_fails_to_parse_fails_when_used(tmp_path):
    broken = "{% for m in messages %}{{ m.content }"  # unterminated
    folder = make_folder(tmp_path, {"chat_template": NAMED + [{"name": "broken", "template": broken}]})
    tok = Tokenizer.from_pretrained(folder)  # loading succeeds
    assert "broken" in tok._tok.chat_template_names
    assert render_both(folder).text == "DEFAULT Hi"
    assert isinstance(render_both(folder, chat_template="broken").error, TemplateError)
    # The model's only template, broken; and a broken template passed as chat_template.
    folder = make_folder(tmp_path / "b", files={"chat_template.jinja": broken})
    tok = Tokenizer.from_pretrained(folder)
    assert tok._tok.has_chat_template
    assert isinstance(render_both(folder).error, TemplateError)
    assert render_both(folder, chat_template="OK {{ messages | length }}").text == "OK 1"
    assert isinstance(render_both(folder, chat_template="{% if %}").error, TemplateError)


def test_raw_template_reading_the_clock(tmp_path):
    folder = make_folder(tmp_path)
    source = "{{ strftime_now('%d %b %Y') }}: {{ messages[0].content }}"
    assert render_both(folder, chat_template=source).text == "15 Jan 2026: Hi"


def test_model_without_template_says_how_to_pass_one():
    folder = os.path.join(DATA, "tokenizers", "gpt2")
    tok = Tokenizer.from_pretrained(folder)
    assert tok.chat_template is None and not tok._tok.has_chat_template
    ours = render_both(folder)
    assert isinstance(ours.error, TemplateError)
    assert "chat_template=" in str(ours.error), str(ours.error)
    assert render_both(folder, chat_template="{{ messages[0].content }}!").text == "Hi!"


# ---------------------------------------------------------------------------------------------
# The special tokens the template sees.

SPECIAL_PROBE = "".join(f"{name}={{{{ {name} if {name} is defined else '-' }}}};" for name in (
    "bos_token", "eos_token", "unk_token", "sep_token", "pad_token", "cls_token", "mask_token", "image_token")) + \
    "additional={{ additional_special_tokens | tojson if additional_special_tokens is defined else '-' }}"


def special_tokens_seen(folder):
    return render_both(folder, chat_template=SPECIAL_PROBE).text


def test_special_tokens_from_the_config(tmp_path):
    folder = make_folder(tmp_path, {"sep_token": {"__type": "AddedToken", "content": "<sep>", "lstrip": False},
                                    "mask_token": "", "additional_special_tokens": ["<a>", "<b>"],
                                    "extra_special_tokens": {"image_token": "<img>"}},
                         special_tokens_map={"cls_token": "<cls>", "bos_token": "<map-bos>"})
    # The config has added_tokens_decoder: special_tokens_map.json is not read.
    assert special_tokens_seen(folder) == ("bos_token=<s>;eos_token=<|endoftext|>;unk_token=<unk>;sep_token=<sep>;"
                                           "pad_token=<|endoftext|>;cls_token=-;mask_token=-;image_token=<img>;"
                                           'additional=["<a>", "<b>"]')


def test_special_tokens_map_on_the_legacy_path(tmp_path):
    folder = make_folder(tmp_path, {"additional_special_tokens": ["<a>", "<b>"], "pad_token": None},
                         drop=("added_tokens_decoder",),
                         special_tokens_map={"cls_token": "<cls>", "bos_token": {"content": "<map-bos>"},
                                             "unk_token": None, "additional_special_tokens": ["<b>", "<c>"]})
    assert special_tokens_seen(folder) == ("bos_token=<map-bos>;eos_token=<|endoftext|>;unk_token=-;sep_token=-;"
                                           "pad_token=-;cls_token=<cls>;mask_token=-;image_token=-;"
                                           'additional=["<a>", "<b>", "<c>"]')


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_special_tokens(name):
    text = special_tokens_seen(folder_of(name))
    if name == "gemma3":
        assert "image_token=<image_soft_token>;" in text  # its extra_special_tokens


# ---------------------------------------------------------------------------------------------
# Extra keyword arguments and argument errors.


def test_extra_kwargs_reach_the_template():
    folder = folder_of("qwen3")
    messages = [{"role": "user", "content": "Hi"}]
    off = render_both(folder, messages, add_generation_prompt=True, enable_thinking=False).text
    on = render_both(folder, messages, add_generation_prompt=True, enable_thinking=True).text
    default = render_both(folder, messages, add_generation_prompt=True).text
    assert off.endswith("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    assert on == default and on.endswith("<|im_start|>assistant\n")
    # A kwarg replaces a special token of the same name.
    assert render_both(folder, messages, chat_template="{{ eos_token }}", eos_token="<E>").text == "<E>"
    # ...but cannot replace apply_chat_template's own variables.
    assert render_both(folder, messages, chat_template="x", **{"messages": []}).error is not None


def test_generation_prompt_with_continue_final_message_is_an_error():
    folder = folder_of("qwen2")
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]
    ours = render_both(folder, messages, add_generation_prompt=True, continue_final_message=True)
    assert isinstance(ours.error, InvalidArgumentError)


def test_malformed_messages_are_invalid_arguments():
    tok = ours_tokenizer(folder_of("qwen2"))
    for messages_json in ('{"role": "user", "content": "Hi"}', '"Hi"', '[{"role": "user", "content": "Hi"}, 3]',
                          '[["nested"]]', '[{"role": "user"', ""):
        with pytest.raises(InvalidArgumentError):
            tok._tok.apply_chat_template(messages_json)
    with pytest.raises(InvalidArgumentError):
        tok.apply_chat_template(["Hi"], tokenize=False)
    for bad in ({"tools_json": '{"a": 1}'}, {"tools_json": "[1]"}, {"documents_json": '["x"]'},
                {"extra_json": "[1]"}):
        with pytest.raises(InvalidArgumentError):
            tok._tok.apply_chat_template('[{"role": "user", "content": "Hi"}]', **bad)

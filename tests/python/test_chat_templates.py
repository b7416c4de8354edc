"""nnterp's Jinja2 interpreter (src/chat/) renders chat templates byte for byte as transformers'
apply_chat_template does: Python jinja2 configured as in tests/python/chat_oracle.py.

* every real template of tests/data/chat_templates/ with every conversation of
  tests/data/chat_conversations/, add_generation_prompt false and true: identical output, or both
  raise (the template's own raise_exception on both sides, with the same message);
* every feature test of tests/data/chat_features/ (one Jinja construct per file): identical
  output; err_*.jinja must raise in both, ours a TemplateError naming the line jinja2 names;
  mutable_*.jinja renders with allow_container_mutation=True against a plain jinja2.Environment.
"""

import difflib
import functools
import json
import os
import re

import pytest

try:
    import jinja2  # noqa: F401
except ImportError:
    pytest.skip("Python jinja2 (the reference renderer) is not installed", allow_module_level=True)

import chat_oracle  # noqa: E402
import nnterp  # noqa: E402,F401  (registers nnterp.errors.TemplateError for the module's errors)
from nnterp import _nnterp  # noqa: E402
from nnterp.errors import TemplateError  # noqa: E402

DATA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "data")
TEMPLATES_DIR = os.path.join(DATA, "chat_templates")
CONVERSATIONS_DIR = os.path.join(DATA, "chat_conversations")
FEATURES_DIR = os.path.join(DATA, "chat_features")

TEMPLATES = sorted(f[: -len(".jinja")] for f in os.listdir(TEMPLATES_DIR) if f.endswith(".jinja"))
CONVERSATIONS = sorted(f[: -len(".json")] for f in os.listdir(CONVERSATIONS_DIR) if f.endswith(".json"))
FEATURES = sorted(f[: -len(".jinja")] for f in os.listdir(FEATURES_DIR) if f.endswith(".jinja"))

# The corpus must exercise the interpreter, not only agree that templates refuse conversations.
MIN_TEMPLATES_RENDERED = 30
MIN_CONVERSATIONS_RENDERED = 5

# Ours says raise_exception only in the hint of an error the template's raise_exception() raised.
RAISED_HINT = "raise_exception"

# expressions.jinja holds "\q" in a string literal on purpose; jinja2 warns about it.
pytestmark = pytest.mark.filterwarnings("ignore:invalid escape sequence:DeprecationWarning")


def read_source(path):
    with open(path, encoding="utf-8", newline="") as f:  # keep CRLF and lone CR as they are
        return f.read()


def read_context(path):
    """The variables of NAME.json (none when absent) as apply_chat_template would pass them."""
    context = {}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            context = json.load(f)
    return chat_oracle.apply_chat_template_variables(context)


@functools.lru_cache(maxsize=None)
def conversation(name):
    return read_context(os.path.join(CONVERSATIONS_DIR, name + ".json"))


Outcome = chat_oracle.Outcome


def jinja2_outcome(compiled, context):
    """`compiled` is a jinja2 Template, or the exception compiling it raised."""
    if isinstance(compiled, BaseException):
        return Outcome(error=compiled)
    try:
        return Outcome(text=chat_oracle.render(compiled, context))
    except Exception as e:  # noqa: BLE001 - whatever jinja2 raises counts as "raises"
        return Outcome(error=e)


def nnterp_outcome(compiled, context, mutable=False):
    """`compiled` is an _nnterp.ChatTemplate, or the exception constructing it raised."""
    if isinstance(compiled, BaseException):
        return Outcome(error=compiled)
    try:
        text = compiled.render(json.dumps(context, ensure_ascii=False), fixed_time=chat_oracle.FIXED_TIME,
                               allow_container_mutation=mutable)
        return Outcome(text=text)
    except Exception as e:  # noqa: BLE001 - compared below; a non-TemplateError is a disagreement
        return Outcome(error=e)


def compile_both(source, name, mutable=False):
    try:
        theirs = chat_oracle.compile_template(source, mutable)
    except Exception as e:  # noqa: BLE001
        theirs = e
    try:
        ours = _nnterp.ChatTemplate(source, name)
    except Exception as e:  # noqa: BLE001
        ours = e
    return theirs, ours


def text_diff(expected, actual, limit=40):
    """A unified diff of the two texts, each line shown as repr() so whitespace is visible."""
    a = [repr(line) for line in expected.splitlines(keepends=True)]
    b = [repr(line) for line in actual.splitlines(keepends=True)]
    lines = list(difflib.unified_diff(a, b, "jinja2", "nnterp", lineterm="", n=2))
    if len(lines) > limit:
        lines = lines[:limit] + [f"... ({len(lines) - limit} more diff lines)"]
    return "\n".join(lines)


def disagreement(theirs, ours):
    """None when the two outcomes agree, else why not."""
    if theirs.ok and ours.ok:
        if theirs.text == ours.text:
            return None
        return "outputs differ:\n" + text_diff(theirs.text, ours.text)
    if theirs.ok != ours.ok:
        return f"jinja2 {theirs!r}\n  nnterp {ours!r}"
    if not isinstance(ours.error, TemplateError):
        return f"both raise, but ours is not a TemplateError: {ours!r} (jinja2 {theirs!r})"
    ours_raised = RAISED_HINT in ours.error.hint
    if chat_oracle.is_raise_exception(theirs.error):
        if not ours_raised or ours.error.detail != str(theirs.error):
            return f"jinja2's raise_exception({str(theirs.error)!r}), but ours: {ours!r}"
    elif ours_raised:
        return f"ours reports raise_exception, jinja2 raised {theirs!r}"
    return None


# ---------------------------------------------------------------------------------------------
# The corpus: real templates x conversations x add_generation_prompt.


@functools.lru_cache(maxsize=None)
def corpus_results(template):
    """[(conversation, add_generation_prompt, jinja2 Outcome, nnterp Outcome)] for one template."""
    source = read_source(os.path.join(TEMPLATES_DIR, template + ".jinja"))
    theirs_compiled, ours_compiled = compile_both(source, template + ".jinja")
    results = []
    for conv in CONVERSATIONS:
        for add_generation_prompt in (False, True):
            context = dict(conversation(conv), add_generation_prompt=add_generation_prompt)
            results.append((conv, add_generation_prompt, jinja2_outcome(theirs_compiled, context),
                            nnterp_outcome(ours_compiled, context)))
    return results


@pytest.mark.parametrize("template", TEMPLATES)
def test_corpus_template_renders_as_jinja2(template):
    failures = []
    for conv, add_generation_prompt, theirs, ours in corpus_results(template):
        why = disagreement(theirs, ours)
        if why is not None:
            failures.append(f"--- {template}.jinja, conversation {conv}, add_generation_prompt={add_generation_prompt}: "
                            f"{why}")
    assert not failures, f"{len(failures)} case(s) disagree with jinja2:\n" + "\n".join(failures[:4])


def test_corpus_renders_more_than_refusals():
    """Enough cases render (in both) for the comparison to mean something: at least
    MIN_TEMPLATES_RENDERED templates each render at least MIN_CONVERSATIONS_RENDERED conversations
    (both add_generation_prompt values) identically."""
    assert len(TEMPLATES) >= MIN_TEMPLATES_RENDERED and len(CONVERSATIONS) >= MIN_CONVERSATIONS_RENDERED
    rich_templates = []
    identical = both_raised = 0
    for template in TEMPLATES:
        rendered = {}
        for conv, _, theirs, ours in corpus_results(template):
            same = theirs.ok and ours.ok and theirs.text == ours.text
            identical += same
            both_raised += (not theirs.ok) and (not ours.ok)
            rendered[conv] = rendered.get(conv, True) and same
        if sum(rendered.values()) >= MIN_CONVERSATIONS_RENDERED:
            rich_templates.append(template)
    print(f"\ncorpus: {len(TEMPLATES)} templates x {len(CONVERSATIONS)} conversations x 2: {identical} identical, "
          f"{both_raised} both raised; {len(rich_templates)} templates render >= {MIN_CONVERSATIONS_RENDERED} "
          "conversations")
    assert len(rich_templates) >= MIN_TEMPLATES_RENDERED, (
        f"only {len(rich_templates)} templates render >= {MIN_CONVERSATIONS_RENDERED} conversations in both "
        f"renderers: {rich_templates}")


# ---------------------------------------------------------------------------------------------
# Feature tests: one construct per file.

PLAIN_FEATURES = [f for f in FEATURES if not f.startswith(("err_", "mutable_"))]
ERROR_FEATURES = [f for f in FEATURES if f.startswith("err_")]
MUTABLE_FEATURES = [f for f in FEATURES if f.startswith("mutable_")]
SUBJECT = re.compile(r"^(?P<name>.+):(?P<line>\d+):(?P<column>\d+)$")


def feature(name, mutable=False):
    """(jinja2 Outcome, nnterp Outcome) for features/NAME.jinja with its NAME.json context."""
    source = read_source(os.path.join(FEATURES_DIR, name + ".jinja"))
    context = read_context(os.path.join(FEATURES_DIR, name + ".json"))
    theirs_compiled, ours_compiled = compile_both(source, name + ".jinja", mutable)
    return jinja2_outcome(theirs_compiled, context), nnterp_outcome(ours_compiled, context, mutable)


@pytest.mark.parametrize("name", PLAIN_FEATURES)
def test_feature_renders_as_jinja2(name):
    theirs, ours = feature(name)
    assert theirs.ok, f"the feature test itself is broken: jinja2 {theirs!r}"
    why = disagreement(theirs, ours)
    assert why is None, f"{name}.jinja: {why}"


@pytest.mark.parametrize("name", ERROR_FEATURES)
def test_feature_error_raises_in_both(name):
    theirs, ours = feature(name)
    assert not theirs.ok, f"the feature test itself is broken: jinja2 {theirs!r}"
    assert not ours.ok, f"{name}.jinja: jinja2 {theirs!r}, ours rendered {ours.text!r}"
    why = disagreement(theirs, ours)
    assert why is None, f"{name}.jinja: {why}"
    location = SUBJECT.match(ours.error.subject)
    assert location, f"{name}.jinja: our error's subject {ours.error.subject!r} is not NAME:LINE:COLUMN"
    assert location["name"] == name + ".jinja" and int(location["column"]) >= 1
    line = chat_oracle.error_line(theirs.error)
    if line is not None:
        assert int(location["line"]) == line, (
            f"{name}.jinja: jinja2 blames line {line} ({theirs!r}), ours {ours.error.subject}")


@pytest.mark.parametrize("name", MUTABLE_FEATURES)
def test_feature_mutable_renders_as_plain_jinja2(name):
    theirs, ours = feature(name, mutable=True)
    assert theirs.ok, f"the feature test itself is broken: jinja2 {theirs!r}"
    why = disagreement(theirs, ours)
    assert why is None, f"{name}.jinja (allow_container_mutation=True): {why}"
    # transformers' sandbox refuses the same template, in both.
    theirs, ours = feature(name)
    assert not theirs.ok and not ours.ok and isinstance(ours.error, TemplateError), (
        f"{name}.jinja in the sandbox: jinja2 {theirs!r}, nnterp {ours!r}")


def test_data_is_there():
    """The parametrized tests cannot pass vacuously."""
    assert len(TEMPLATES) >= 70 and len(CONVERSATIONS) >= 15
    assert len(PLAIN_FEATURES) >= 15 and len(ERROR_FEATURES) >= 20 and MUTABLE_FEATURES

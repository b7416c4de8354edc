"""Instruct-model methods in Python: it_repeat_prompt against the Python library's construction
rendered by transformers' apply_chat_template (the jinja2 oracle, chat_oracle.py), and the
``chat=True`` option of logit_lens / patchscope_lens / run_prompts."""

import os
import shutil

import pytest
import torch

import nnterp
from nnterp._model import Tokenizer

jinja2 = pytest.importorskip("jinja2", reason="python3-jinja2 is the oracle of these tests")
import chat_oracle  # noqa: E402  (needs jinja2)

from conftest import DATA  # noqa: E402

SHARED = os.path.join(DATA, "..", "..", "..", "shared", "fixtures", "tokenizers")
LOCAL_TOKENIZERS = ["qwen2", "qwen3", "phi3", "mistral-nemo"]
SHARED_TOKENIZERS = ["llama3", "gemma3", "deepseek-v3"]


def tokenizer_folder(name):
    local = os.path.join(DATA, "tokenizers", name)
    if os.path.isdir(local):
        return local
    shared = os.path.join(SHARED, name)
    if not os.path.isdir(shared):
        pytest.skip(f"{name}: its tokenizer is under a custom licence and lives in ../shared/fixtures/tokenizers, "
                    "which this checkout lacks")
    return shared


def python_library_chat(words=None, rel=" ", sep="\n", placeholder="?", complete_prompt=True, add_user_instr=True,
                        use_system_prompt=True):
    """The conversation nnterp's Python it_repeat_prompt builds (nnterp/interventions.py)."""
    prompt = sep.join(w + rel + w for w in (words or ["king", "1135", "hello"])) + sep + placeholder
    chat = []
    if add_user_instr:
        if use_system_prompt:
            chat.append({"role": "system", "content": "You are a helpful assistant."})
        chat += [{"role": "user", "content": "I will provide you with a series of sentences. Your task is to guess the "
                                             "next word in the sentence. You must answer with the next word only."},
                 {"role": "assistant", "content": "Ok."},
                 {"role": "user", "content": prompt}]
    elif use_system_prompt:
        chat += [{"role": "system", "content": "The user will provide you with a sentence. Your task is to guess the "
                                               "next word in the sentence. You must answer with the next word only."},
                 {"role": "user", "content": prompt}]
    else:
        chat.append({"role": "user", "content": "Guess the next word in the following sentence (answer only the next "
                                                f"word): {prompt}"})
    chat.append({"role": "assistant", "content": prompt if complete_prompt else ""})
    return chat


VARIANTS = [dict(complete_prompt=c, add_user_instr=u, use_system_prompt=s)
            for c in (True, False) for u in (True, False) for s in (True, False)]


@pytest.mark.parametrize("name", LOCAL_TOKENIZERS + SHARED_TOKENIZERS)
def test_it_repeat_prompt_is_transformers_rendering_of_the_python_librarys_chat(name):
    folder = tokenizer_folder(name)
    tokenizer = Tokenizer.from_pretrained(folder)
    rendered = 0
    for variant in VARIANTS:
        chat = python_library_chat(words=["sun", "7"], **variant)
        try:
            expected = chat_oracle.tokenizer_apply_chat_template(folder, chat, continue_final_message=True)
        except Exception as oracle_error:  # the template refuses this conversation: so must ours
            with pytest.raises(nnterp.Error):
                nnterp.it_repeat_prompt(tokenizer, words=["sun", "7"], **variant)
            continue
        target = nnterp.it_repeat_prompt(tokenizer, words=["sun", "7"], **variant)
        assert target.prompt == expected, f"{name} {variant}"
        assert target.index_to_patch == -1
        assert target.token_ids == tokenizer.encode(expected, add_special_tokens=False)
        rendered += 1
    assert rendered >= 2, f"{name}: the template refused almost every variant"


def test_it_repeat_prompt_without_a_template_is_a_template_error():
    with pytest.raises(nnterp.TemplateError, match="no chat template"):
        nnterp.it_repeat_prompt(Tokenizer.from_pretrained(os.path.join(DATA, "tokenizers", "gpt2")))


@pytest.fixture(scope="module")
def instruct_model(tmp_path_factory):
    """The default model with Llama 3's chat template (which writes BOS) as chat_template.jinja."""
    folder = tmp_path_factory.mktemp("instruct")
    default = nnterp._nnterp.default_model_dir()
    for name in os.listdir(default):
        if os.path.isfile(os.path.join(default, name)):
            shutil.copy(os.path.join(default, name), folder / name)
    shutil.copy(os.path.join(DATA, "chat_templates", "llama-3.jinja"), folder / "chat_template.jinja")
    return nnterp.StandardizedTransformer(str(folder))


def test_chat_inputs_are_the_templates_tokens(instruct_model):
    tok = instruct_model.tokenizer
    batch = nnterp.chat_inputs(instruct_model, ["Paris is", "Rome"], system="Be brief.")
    for row, prompt in enumerate(["Paris is", "Rome"]):
        text = chat_oracle.tokenizer_apply_chat_template(
            instruct_model.name_or_path, [{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
            add_generation_prompt=True)
        ids = batch["input_ids"][row][batch["attention_mask"][row].bool()].tolist()
        assert ids == tok.encode(text, add_special_tokens=False)
        assert ids[0] == 0 and ids[1] != 0, "BOS written once by the template, not doubled"


def test_chat_option_of_the_methods(instruct_model):
    prompts = ["Paris is", "The capital of France is"]
    chat = nnterp.logit_lens(instruct_model, prompts, chat=True)
    assert torch.equal(chat, nnterp.logit_lens(instruct_model, nnterp.chat_inputs(instruct_model, prompts)))
    assert not torch.allclose(chat, nnterp.logit_lens(instruct_model, prompts), atol=1e-3)

    target = nnterp.it_repeat_prompt(instruct_model)
    by_ids = nnterp.TargetPrompt("", -1, target.token_ids)
    lens = nnterp.patchscope_lens(instruct_model, "Paris", layers=[1], chat=True)
    assert torch.equal(lens, nnterp.patchscope_lens(instruct_model, nnterp.chat_inputs(instruct_model, "Paris"),
                                                    target_patch_prompts=by_ids, layers=[1]))

    record = nnterp.Prompt.from_strings(prompts[0], {"paris": ["Paris"]}, instruct_model)
    mass = nnterp.run_prompts(instruct_model, [record], chat=True)["paris"]
    last = nnterp.logit_lens(instruct_model, [prompts[0]], chat=True)[0, -1]
    assert mass.item() == pytest.approx(last[record.target_tokens["paris"]].sum().item(), abs=1e-6)


def test_hf_style_apply_chat_template_returns(instruct_model):
    tok = instruct_model.tokenizer
    chat = [{"role": "user", "content": "Hi"}]
    text = tok.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
    ids = tok.apply_chat_template(chat, add_generation_prompt=True)
    assert ids == tok.encode(text, add_special_tokens=False)
    tensors = tok.apply_chat_template([chat, chat + [{"role": "assistant", "content": "Hello"}]], return_tensors="pt",
                                      return_dict=True)
    assert tensors["input_ids"].shape == tensors["attention_mask"].shape
    assert tensors["attention_mask"][0, 0] == 0, "left padding, as every nnterp method expects"
    assert tok.chat_template.startswith("{% set loop_messages = messages %}")
    with pytest.raises(nnterp.UnsupportedError, match="JSON-schema dicts"):
        tok.apply_chat_template(chat, tools=[len])

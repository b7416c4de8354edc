#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora (fuzz/corpus/<target>/) and dictionaries (fuzz/*.dict)
from the committed test fixtures (tests/data). Deterministic; no dependencies.
Run from anywhere: python3 fuzz/corpus/make_seeds.py"""
import gzip
import json
import re
import struct
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATA = ROOT / "tests" / "data"


def reset(name):
    """Removes the seeds this script wrote; keeps the inputs `tools/fuzz.sh --campaign` merged in
    (named by their SHA-1, as libFuzzer names them)."""
    d = HERE / name
    d.mkdir(exist_ok=True)
    for f in d.iterdir():
        if not re.fullmatch(r"[0-9a-f]{40}", f.name):
            f.unlink()
    return d


def safetensors(tensors, metadata=None, pad_to=8, extra=b""):
    """tensors: [(name, dtype, shape, bytes)] -> the bytes of a .safetensors file."""
    header, data = {}, b""
    if metadata is not None:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in tensors:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    text = json.dumps(header, separators=(",", ":")).encode()
    if pad_to:
        text += b" " * ((-(8 + len(text))) % pad_to)
    return struct.pack("<Q", len(text)) + text + data + extra


def i64(values):
    return b"".join(struct.pack("<q", v) for v in values)


# ---- safetensors ----------------------------------------------------------------------------
d = reset("safetensors")
seeds = {
    "f32_2x3": safetensors([("w", "F32", [2, 3], struct.pack("<6f", *range(6)))]),
    "all_dtypes": safetensors([
        ("f64", "F64", [2], struct.pack("<2d", 1.5, -2)), ("f32", "F32", [1], struct.pack("<f", 3)),
        ("f16", "F16", [2], b"\x00\x3c\x00\xc0"), ("bf16", "BF16", [2], b"\x80\x3f\x00\x40"),
        ("i64", "I64", [1], i64([7])), ("i32", "I32", [2], struct.pack("<2i", -1, 2)),
        ("i16", "I16", [1], b"\x01\x00"), ("i8", "I8", [2], b"\xff\x01"), ("u8", "U8", [3], b"\x00\x80\xff"),
        ("bool", "BOOL", [2], b"\x00\x01")], metadata={"format": "pt"}),
    "empty_tensors": safetensors([("e", "F32", [0, 4], b""), ("s", "F16", [], b"\x00\x3c"), ("z", "I8", [3, 0, 2], b"")]),
    "misaligned": safetensors([("a", "F32", [3], struct.pack("<3f", 1, 2, 3)), ("b", "I64", [2], i64([1, 2]))], pad_to=0),
    "trailing_bytes": safetensors([("x", "U8", [4], b"abcd")], extra=b"\x00" * 16),
    "metadata_only": safetensors([], metadata={"a": "b", "model": "x"}),
    "unsupported_dtype": safetensors([("q", "F8_E4M3", [2], b"\x01\x02")]),
    "overlap": b"",  # filled below
    "nul_padding": b"",
}
hdr = b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}'
seeds["overlap"] = struct.pack("<Q", len(hdr)) + hdr + b"abc"
hdr = b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}\x00\x00\x00'
seeds["nul_padding"] = struct.pack("<Q", len(hdr)) + hdr + b"z"
# Real fixture headers, with the first bytes of their data only (offsets then run past the end).
for fam in ["gpt2", "llama", "qwen2_moe"]:
    raw = (DATA / "hf" / fam / "model.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    seeds[f"hf_{fam}_header"] = raw[: 8 + n + 64]
# The index.json mode (input starting with '{'): shards "a", "b" (shard 1) and "c" (shard 2).
S1, S2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
seeds["index_ok"] = json.dumps({"metadata": {"total_size": 40}, "weight_map": {"a": S1, "b": S1, "c": S2}}).encode()
seeds["index_missing_shard"] = json.dumps({"weight_map": {"a": S1, "c": "model-00003.safetensors"}}).encode()
seeds["index_wrong_shard"] = json.dumps({"weight_map": {"a": S2, "b": S1, "c": S2}}).encode()
seeds["index_path"] = json.dumps({"weight_map": {"a": "../" + S1}}).encode()
for name, raw in seeds.items():
    (d / name).write_bytes(raw)

# ---- config ---------------------------------------------------------------------------------
d = reset("config")
for cfg in sorted((DATA / "hf").glob("*/config.json")):
    (d / cfg.parent.name).write_bytes(cfg.read_bytes())
# Edit records (fuzz_config.cpp): [base config] then ([key index] [erase if % 8 == 0] [value])*.
for i in range(len(list((DATA / "hf").glob("*/config.json")))):
    (d / f"edit_base_{i:02d}").write_bytes(bytes([i]))
(d / "edit_heads_zero").write_bytes(bytes([13, 9, 1, 0, 8]))    # num_attention_heads = 0
(d / "edit_layers_huge").write_bytes(bytes([13, 5, 1, 2, 40]))  # num_hidden_layers = 2^40

# ---- tokenizer_load: tokenizer.json [NUL tokenizer_config.json] ---------------------------------
d = reset("tokenizer_load")
tiny = DATA / "tiny_tokenizer"
(d / "tiny_tokenizer").write_bytes((tiny / "tokenizer.json").read_bytes() + b"\x00" + (tiny / "tokenizer_config.json").read_bytes())
for case in json.loads((DATA / "tokenizers" / "synthetic" / "cases.json").read_text())["tokenizers"]:
    (d / ("synthetic_" + case["name"])).write_bytes(json.dumps(case["tokenizer"], ensure_ascii=False, separators=(",", ":")).encode())
    if case["name"] == "bytelevel_default":  # the first crash found: a float vocab id (UBSan)
        bad = json.loads(json.dumps(case["tokenizer"]))
        bad["model"]["vocab"][next(iter(bad["model"]["vocab"]))] = 1.1844674407370955e20
        (d / "regression_float_vocab_id").write_bytes(json.dumps(bad, separators=(",", ":")).encode())

# ---- tokenizer_encode: [tokenizer index][flags] text-or-ids ---------------------------------------
# Index: 0 tiny_tokenizer, 1 gpt2, 2 t5, 3 mistral, 4 qwen2 (fuzz_tokenizer_encode.cpp).
d = reset("tokenizer_encode")
families = {1: "gpt2", 2: "t5", 3: "mistral", 4: "qwen2"}
texts = ["Hello world", "", " ", "The capital of France is", "  leading and trailing  ",
         "héllo wörld 東京 🤗 مرحبا", "<|endoftext|>x</s><s><unk>", "a\tb\nc\r\nd", "1234567 + 89.5",
         "\u00a0\u2028\u200b zero width", "ＦＵＬＬ　ｗｉｄｔｈ", "don't I'll we're"]
n = 0
for idx in range(5):
    for i, t in enumerate(texts):
        flags = i % 4 | (8 if i % 3 == 0 else 0) | (32 if i % 5 == 0 else 0)
        (d / f"enc_{idx}_{i}").write_bytes(bytes([idx, flags]) + t.encode())
    (d / f"invalid_utf8_{idx}").write_bytes(bytes([idx, 1]) + b"ok \xff\xfe \xc3( \xe2\x82 \xf0\x9f\x98")
for idx, fam in families.items():
    lines = (DATA / "tokenizers" / fam / "decode_cases.jsonl").read_text().splitlines()
    for j, line in enumerate(lines[:: max(1, len(lines) // 4)][:4]):
        ids = json.loads(line)["ids"]
        (d / f"dec_{idx}_{j}").write_bytes(bytes([idx, 4 | (j & 2)]) + b"".join(struct.pack(">I", i + 8)[1:] for i in ids))
(d / "dec_raw").write_bytes(bytes([1, 4 | 16]) + b"".join(struct.pack(">q", v) for v in [-1, 0, 50256, 2**40, -(2**63)]))

# ---- cli_inputs: [mode] content ---------------------------------------------------------------
d = reset("cli_inputs")
cli = {
    "prompts_txt": b"\x00The capital of France is\n\nHello\r\nworld\n",
    "prompts_jsonl": b'\x01"The capital of France is"\n{"prompt": "Hello"}\n\n{"prompt": "x", "other": 1}\n',
    "prompts_jsonl_bad": b'\x01{"text": "no prompt"}\n',
    "records_jsonl": b'\x02{"prompt": "a", "target": " Paris", "layer": 3}\n[1, 2]\n"s"\n',
    "inputs_ok": b"\x03" + safetensors([("input_ids", "I64", [2, 3], i64([0, 5, 6, 7, 8, 9])),
                                       ("attention_mask", "I64", [2, 3], i64([0, 1, 1, 1, 1, 1]))]),
    "inputs_no_mask": b"\x03" + safetensors([("input_ids", "I64", [1, 2], i64([1, 2]))]),
    "inputs_bad_mask": b"\x03" + safetensors([("input_ids", "I64", [1, 2], i64([1, 2])), ("attention_mask", "I64", [2, 1], i64([1, 1]))]),
    "inputs_i32": b"\x03" + safetensors([("input_ids", "I32", [1, 2], struct.pack("<2i", 1, 2))]),
    "layers_all": b"\x04\x0call",
    "layers_list": b"\x04\x0c0,2,5",
    "layers_range": b"\x04\x0c3-6,-1",
    "layers_neg": b"\x04\x06-3--1",
    "regression_layers_huge_range": b"\x04\x0c0-2147483647",  # expanded before checking: OOM
}
for name, raw in cli.items():
    (d / name).write_bytes(raw)

# ---- chat_template ------------------------------------------------------------------------------
# Input: a template, optionally followed by NUL and a JSON context (else fuzz_chat_template's
# default conversation; fuzz/chat_template_input.hpp).
d = reset("chat_template")
# The interpreter's feature tests (tests/data/chat_features/: whitespace control, loops, scoping,
# macros, filters, tests, strings, methods, tojson, errors), each with its context if it has one.
for path in sorted((DATA / "chat_features").glob("*.jinja")):
    context = path.with_suffix(".json")
    raw = path.read_bytes() + (b"\x00" + context.read_bytes() if context.exists() else b"")
    (d / f"feature_{path.stem}").write_bytes(raw)
# A handful of real templates (tests/data/chat_templates/), chosen for their constructs: tool calls,
# namespaces, macros, loop.last / loop.index0, raise_exception, strftime_now, string methods.
# Each with the default context (a tool call among the turns) and with a plain alternating chat.
chat = json.dumps({"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "2+2?"}],
                   "bos_token": "<s>", "eos_token": "</s>", "add_generation_prompt": True}).encode()
for name in ["chatml", "llama-2", "llama-3.1-tools", "llama-3.2", "qwen2.5-tools", "qwen3", "mistral-v3-tools",
             "mistral-nemo", "gemma-3", "phi-3", "deepseek-r1", "hermes-2-pro-tools", "granite-3.3", "command-r",
             "kimi-k2-thinking", "zephyr"]:
    source = (DATA / "chat_templates" / f"{name}.jinja").read_bytes()
    (d / f"template_{name}").write_bytes(source)
    (d / f"template_{name}_chat").write_bytes(source + b"\x00" + chat)
# Contexts: a real template on other conversations, and contexts that are not what templates expect.
chatml = (DATA / "chat_templates" / "chatml.jinja").read_bytes()
contexts = {
    "context_user_only": {"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": False},
    "context_list_content": {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image"}]}]},
    "context_odd_values": {"messages": [{"role": None, "content": 1.5e308}, {"role": "user", "content": -0.0},
                                        {"role": "user", "content": [[], {}, True]}], "bos_token": 7},
    "context_no_messages": {},
    "context_messages_not_list": {"messages": "abc"},
}
for name, value in contexts.items():
    (d / name).write_bytes(chatml + b"\x00" + json.dumps(value, ensure_ascii=False).encode())
(d / "context_not_object").write_bytes(b"{{ messages }}\x00[1]")
(d / "context_malformed").write_bytes(b"{{ messages }}\x00{\"messages\": [")
(d / "context_deep").write_bytes(b"{{ x }}\x00{\"x\": " + b"[" * 200 + b"]" * 200 + b"}")
# Limits and robustness: recursion, huge loops and sizes, blowups, cycles, bad bytes, unterminated
# constructs (each must end as an Error naming the limit or the problem, quickly).
adversarial = {
    "recursive_macro": "{% macro m() %}{{ m() }}{% endmacro %}{{ m() }}",
    "exponential_macro": "{% macro m(n) %}{% if n > 0 %}{{ m(n - 1) }}{{ m(n - 1) }}{% endif %}{% endmacro %}{{ m(40) }}",
    "recursive_loop": "{% for x in [1] recursive %}{{ loop([x]) }}{% endfor %}",
    "nested_loops": "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}",
    "range_huge": "{% for i in range(10**9) %}{% endfor %}",
    "string_doubling": "{% set ns = namespace(s='x') %}{% for i in range(100) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s|length }}",
    "list_doubling": "{% set ns = namespace(s=[1]) %}{% for i in range(100) %}{% set ns.s = ns.s + ns.s %}{% endfor %}",
    "replace_blowup": "{% set ns = namespace(s='xx') %}{% for i in range(40) %}{% set ns.s = ns.s.replace('', ns.s) %}{% endfor %}",
    "str_repeat": "{{ 'x' * 10000000000 }}{{ [1, 2] * 10000000000 }}",
    "pad_huge": "{{ 'x'|center(10000000000) }}{{ 'x'.ljust(10000000000) }}{{ 'x'.zfill(10000000000) }}",
    "width_huge": "{{ '{:999999999999}'.format(1) }}{{ '%999999999999d' % 1 }}{{ [[1]]|tojson(indent=10000000000) }}",
    "batch_slice_huge": "{{ [1]|batch(10000000000, 0)|list|length }}{{ [1]|slice(10000000000)|list|length }}",
    "pow_big": "{{ 2 ** 1000000000000000000 }}{{ 10.0 ** 400 }}{{ 123456789012345678901234567890 }}",
    "deep_value_chain": "{% set ns = namespace(x=1) %}{% for i in range(100000) %}{% set ns.x = [ns.x] %}{% endfor %}{{ ns.x }}",
    "lazy_chain": "{% set ns = namespace(g=[1]) %}{% for i in range(100000) %}{% set ns.g = [ns.g]|map('first') %}{% endfor %}{{ ns.g|list }}",
    "namespace_cycle": "{% set ns = namespace() %}{% set ns.me = ns %}{% set ns.l = [ns, ns] %}{{ ns.me.me.me is defined }}{{ ns }}",
    "deep_parens": "{{ " + "(" * 150 + "1" + ")" * 150 + " }}",
    "deep_ifs": "{% if true %}" * 150 + "x" + "{% endif %}" * 150,
    "long_chain": "{{ 1" + " + 1" * 400 + " }}",
    "unterminated_var": "{{ x ",
    "unterminated_comment": "{# never closed",
    "unterminated_raw": "{% raw %}never closed",
    "unterminated_string": "{{ 'never closed }}",
    "stray_endfor": "a{% endfor %}",
    "include": "{% include 'other.jinja' %}",
    "extends": "{% extends 'base.jinja' %}",
    "unknown_filter": "{{ 1|no_such_filter }}",
    "unknown_test": "{{ 1 is no_such_test }}",
    "raise": "{{ raise_exception('refused: ' ~ messages|length) }}",
    "strftime": "{{ strftime_now('%Y-%m-%d %H:%M:%S %A %B %j %p %%') }}",
}
for name, text in adversarial.items():
    (d / f"adversarial_{name}").write_bytes(text.encode())
# Findings of fuzz_chat_template, fixed (docs/fuzzing.md): a namespace holding itself, or a long chain
# of namespaces, printed (its repr() restarted the nesting count, so it recursed until the stack
# overflowed); raise_exception() of an empty or undefined message (an Error with no message).
regressions = {
    "namespace_repr_cycle": "{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}",
    "raise_empty_message": "{{ raise_exception(undefined_name) }}",  # an Error without a message
    "namespace_repr_chain": "{% set ns = namespace(cur=none) %}{% for i in range(3000) %}"
                            "{% set ns.cur = namespace(prev=ns.cur) %}{% endfor %}{{ ns.cur }}",
}
for name, text in regressions.items():
    (d / f"regression_{name}").write_bytes(text.encode())
(d / "adversarial_invalid_utf8").write_bytes(b"{{ 'a\xff\xfe' }} \xc3( {{ messages[0].content }} \xe2\x82")
(d / "adversarial_nul_in_context").write_bytes(b"{{ x }}\x00{\"x\": \"a\\u0000b\"}")

# ---- dictionaries -------------------------------------------------------------------------------
def write_dict(name, words):
    lines = ['"%s"' % w.replace("\\", "\\\\").replace('"', '\\"') for w in sorted(set(words))]
    (HERE.parent / name).write_text("# Generated by fuzz/corpus/make_seeds.py\n" + "\n".join(lines) + "\n")


json_words = ["{", "}", "[", "]", ":", ",", "null", "true", "false", "-1", "0", "1e308", "-0.0",
              "18446744073709551615", "9223372036854775808", "\\u0000", "\\ud800", '""']
write_dict("safetensors.dict", json_words + ["dtype", "shape", "data_offsets", "__metadata__", "weight_map", "metadata",
                                             "F64", "F32", "F16", "BF16", "I64", "I32", "I16", "I8", "U8", "BOOL",
                                             "F8_E4M3", "U64", S1, S2])
src = "\n".join(p.read_text() for p in sorted((ROOT / "src" / "model").rglob("*.cpp")))
keys = set(re.findall(r'\{("[a-z_A-Z0-9]+"(?:, "[a-z_A-Z0-9]+")*)\}', src))
config_words = {k.strip('"') for group in keys for k in group.split(", ")}
config_words |= set(re.findall(r'NNTERP_ARCH\("([a-z0-9_]+)"', src))
config_words |= {"model_type", "torch_dtype", "dtype", "float32", "bfloat16", "linear", "llama3", "default",
                 "sliding_attention", "full_attention", "gelu", "gelu_new", "silu", "relu", "gelu_pytorch_tanh"}
write_dict("config.dict", json_words + sorted(config_words))
tok_src = "\n".join(p.read_text() for p in sorted((ROOT / "src" / "tokenizer").glob("*.cpp")))
tok_words = set(re.findall(r'"([A-Za-z_]{2,})"', tok_src))
write_dict("tokenizer.dict", json_words + sorted(tok_words) + ["<s>", "</s>", "<unk>", "\\u0120", "\\u2581", "<0x0A>"])
write_dict("cli_inputs.dict", json_words + ["prompt", "input_ids", "attention_mask", "I64", "dtype", "shape",
                                            "data_offsets", "all", "-", ","])
chat_src = "\n".join(p.read_text() for p in sorted((ROOT / "src" / "chat").glob("*.cpp")))
chat_words = set(re.findall(r'"([a-z_][a-z_0-9]{1,20})"', chat_src))
write_dict("chat_template.dict", sorted(chat_words) + [
    "{{", "}}", "{%", "%}", "{#", "#}", "{{-", "-}}", "{%-", "-%}", "{%+", "+%}", "{% endfor %}", "{% endif %}",
    "{% else %}", "{% set ", "{% for ", "{% if ", " in ", " is ", " not ", "|", "~", "**", "//", "==", "!=", "<=", ">=",
    "(", ")", "[", "]", "{", "}", ",", ":", ".", "'", '"', "\\n", "\\x00", "\\u2028", "-1", "0", "1e308", "10**9",
    "message['role']", "message['content']", "messages[0]", "loop.index0", "loop.last", "loop.first", "ns.",
    "caller()", "namespace(", "range(", "raise_exception(", "strftime_now(", "tool_calls", "tool_call", "function",
    "arguments", "tools", "bos_token", "eos_token", "system", "assistant", "reasoning_content"])
with open(HERE.parent / "chat_template.dict", "a") as f:
    f.write('"\\x00"\n')  # the NUL byte that separates the template from its JSON context

#!/usr/bin/env python3
"""Writes tokenizer.json: a tiny byte-level WordLevel tokenizer (< 1000 tokens) for the tests of
nnterp's string-based methods on the fixture models (vocab 1000). Every byte-level symbol is a
token, and each word below is one token both bare ("king") and after a space ("Ġking"), so
`word` and `" " + word` tokenize differently, as with GPT-2. Anything else is <unk>.
Run: python3 make_tokenizer.py  (no dependencies)."""
import json
from pathlib import Path


def bytes_to_unicode():
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for b, c in sorted(zip(bs, cs))]


WORDS = """the a an of is in to and it was on at for with as by from that this
king queen man woman hello world 1135 cat dog mouse bird fish chat chien souris oiseau
poisson Paris France London England Berlin Germany Rome Italy Madrid Spain Tokyo Japan
capital city country river red blue green yellow black white one two three four five
six seven eight nine ten le la un une des est de du en et il elle
cold hot big small good bad happy sad love hate yes no true false""".split()

special = ["<pad>", "<unk>", "<s>", "</s>"]
vocab = {}
for tok in special + bytes_to_unicode():
    vocab.setdefault(tok, len(vocab))
for w in WORDS:
    for form in (w, "Ġ" + w):
        vocab.setdefault(form, len(vocab))
assert len(vocab) <= 1000, len(vocab)

tokenizer = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": [
        {"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for t in special
    ],
    "normalizer": None,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
    "post_processor": None,
    "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
    "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
}
config = {"pad_token": "<pad>", "unk_token": "<unk>", "bos_token": "<s>", "eos_token": "</s>",
          "add_bos_token": False, "add_eos_token": False, "tokenizer_class": "PreTrainedTokenizerFast"}
here = Path(__file__).parent
(here / "tokenizer.json").write_text(json.dumps(tokenizer, ensure_ascii=False, indent=1) + "\n")
(here / "tokenizer_config.json").write_text(json.dumps(config, indent=1) + "\n")
print(len(vocab), "tokens")

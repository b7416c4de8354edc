// Writes cases.json: small synthetic tokenizer.json files that exercise every component nnterp
// implements (and combinations the 16 real tokenizers do not use), with the ids, tokens and
// decodes that HuggingFace tokenizers (npm `tokenizers` 0.23.2, the Rust library) produces.
//
//   (cd bench/tokenizer_node && npm install)
//   node tests/data/tokenizers/synthetic/generate.mjs
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(HERE, "../../../../bench/tokenizer_node/package.json"));
const { Tokenizer } = require("tokenizers");
const version = require("tokenizers/package.json").version;

// ---------------------------------------------------------------------------------------------
// Models

function bytesToUnicode() {
  const bs = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const cs = [...bs];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bs.includes(b)) {
      bs.push(b);
      cs.push(256 + n++);
    }
  }
  const m = {};
  bs.forEach((b, i) => (m[b] = String.fromCodePoint(cs[i])));
  return m;
}
const B2U = bytesToUnicode();
const bl = (s) => [...Buffer.from(s, "utf8")].map((b) => B2U[b]).join("");

// Byte-level BPE: the 256 byte chars plus merges learnt by hand for a few words.
function byteLevelBpe(extra = {}) {
  const vocab = {};
  let id = 0;
  for (let b = 0; b < 256; b++) vocab[B2U[b]] = id++;
  const merges = [];
  const words = [" the", "the", " hello", "hello", " world", " 123", "ing", " and", " café", "He", "ll", "Ġ"];
  for (const w of words) {
    let cur = [...bl(w)];
    while (cur.length > 1) {
      const a = cur[0], b = cur[1];
      const m = a + b;
      if (!(m in vocab)) vocab[m] = id++;
      if (!merges.some(([x, y]) => x === a && y === b)) merges.push([a, b]);
      cur = [m, ...cur.slice(2)];
    }
  }
  return { type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null,
           fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges, ...extra };
}

// Character BPE with "##" continuing prefix and "</w>" end-of-word suffix, and an unk token.
function suffixBpe(fuseUnk) {
  const vocab = { "<unk>": 0 };
  let id = 1;
  const add = (t) => { if (!(t in vocab)) vocab[t] = id++; };
  const letters = "abcdehilnorstw";
  for (const c of letters) { add(c); add("##" + c); add(c + "</w>"); add("##" + c + "</w>"); }
  const merges = [];
  const merge = (a, b) => {
    const m = a + b.replace(/^##/, "");
    add(m);
    merges.push(`${a} ${b}`);
  };
  merge("t", "##h"); merge("th", "##e</w>"); merge("h", "##e"); merge("he", "##l"); merge("hel", "##l");
  merge("hell", "##o</w>"); merge("w", "##o"); merge("wo", "##r"); merge("wor", "##l"); merge("worl", "##d</w>");
  merge("##a", "##n"); merge("##an", "##d</w>"); merge("a", "##n"); merge("an", "##d</w>");
  return { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: "##",
           end_of_word_suffix: "</w>", fuse_unk: fuseUnk, byte_fallback: false, vocab, merges };
}

// SentencePiece-like BPE with byte fallback and ignore_merges.
function spmBpe(ignoreMerges) {
  const vocab = { "<unk>": 0, "<s>": 1, "</s>": 2 };
  let id = 3;
  for (let b = 0; b < 256; b++) vocab[`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`] = id++;
  const add = (t) => { if (!(t in vocab)) vocab[t] = id++; };
  for (const c of "▁abcdefghijklmnopqrstuvwxyzHTW.,!é") add(c);
  const merges = [];
  const word = (w) => {
    let cur = [...w];
    while (cur.length > 1) {
      const m = cur[0] + cur[1];
      add(m);
      if (!merges.some(([x, y]) => x === cur[0] && y === cur[1])) merges.push([cur[0], cur[1]]);
      cur = [m, ...cur.slice(2)];
    }
  };
  ["▁the", "▁hello", "▁world", "▁Th", "ing", "▁and"].forEach(word);
  add("▁helloworld");  // reachable only through ignore_merges
  return { type: "BPE", dropout: null, unk_token: "<unk>", continuing_subword_prefix: null,
           end_of_word_suffix: null, fuse_unk: true, byte_fallback: true, ignore_merges: ignoreMerges, vocab, merges };
}

function unigram(byteFallback) {
  const pieces = [["<unk>", 0], ["<s>", 0], ["</s>", 0]];
  if (byteFallback) for (let b = 0; b < 256; b++) pieces.push([`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`, 0]);
  const words = { "▁": -2, "▁the": -3, "▁hello": -4, "▁world": -4.5, "▁he": -5, "llo": -5.5, "▁wor": -6, "ld": -6,
                  "h": -7, "e": -7, "l": -7, "o": -7, "w": -7, "r": -7, "d": -7, "t": -7, "a": -7, "n": -7,
                  "▁and": -4, "an": -6, "d!": -8, "!": -5, ",": -5, ".": -5, "1": -6, "2": -6, "3": -6, "12": -6.5,
                  "é": -8, "caf": -7, "▁caf": -6.8 };
  for (const [w, s] of Object.entries(words)) pieces.push([w, s]);
  return { type: "Unigram", unk_id: 0, vocab: pieces, byte_fallback: byteFallback };
}

function wordPiece() {
  const vocab = {};
  ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "hello", "world", "the", "and", "cafe", "##s", "##ing", "un", "##aff",
   "##able", ",", "!", ".", "1", "##2", "##3", "play", "a", "b", "c", "h", "##e", "##l", "##o"].forEach((t, i) => (vocab[t] = i));
  return { type: "WordPiece", unk_token: "[UNK]", continuing_subword_prefix: "##", max_input_chars_per_word: 100, vocab };
}

function wordLevel() {
  const vocab = {};
  ["<unk>", "hello", "world", "the", "and", "café", ",", "!", ".", "123", "3", "14", "naïve", "hi", "there"].forEach((t, i) => (vocab[t] = i));
  return { type: "WordLevel", vocab, unk_token: "<unk>" };
}

// ---------------------------------------------------------------------------------------------
// Components

const byteLevelPre = (o = {}) => ({ type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true, ...o });
const byteLevelDec = { type: "ByteLevel", add_prefix_space: true, trim_offsets: true, use_regex: true };
const seq = (...p) => ({ type: "Sequence", pretokenizers: p });
const split = (pattern, behavior, invert = false) => ({ type: "Split", pattern, behavior, invert });
const template = (single, specials) => ({
  type: "TemplateProcessing", single, pair: single,
  special_tokens: Object.fromEntries(specials.map(([t, id]) => [t, { id: t, ids: [id], tokens: [t] }])),
});
const added = (id, content, o = {}) => ({ id, content, single_word: false, lstrip: false, rstrip: false,
                                          normalized: false, special: true, ...o });

function tok(model, o = {}) {
  return { version: "1.0", truncation: null, padding: null, added_tokens: o.added ?? [], normalizer: o.normalizer ?? null,
           pre_tokenizer: o.pre ?? null, post_processor: o.post ?? null, decoder: o.decoder ?? null, model };
}

const texts = [
  "Hello world", "hello  world", " the  and the", "\tthe\nworld\r\n", "   ", "", "123 456,7890 3.14",
  "Hello, world!! What's up?", "don't we'll HE'LL", "Café naïve Ångström ÉCOLE", "ﬁ ① ｈｅｌｌｏ Ⅻ",
  "日本語のテキスト 中文", "emoji 🍕🎉 👩‍💻 end", "a\u0301 e\u0301 combining", "theing and helloworld",
  "x<mask>y <mask> z", "  <mask>  x", "a<mask>b <mask>", "[SEP]hello[SEP] [SEP]", "HELLO <MASK> hello",
  "tab\there  spaces   end ", "tricky__under_score--dash", "€100 £5 ¥3 ½", "line1\n\nline2\n",
];

const cases = [];
const defs = [];
const def = (name, json) => defs.push({ name, json });

// Byte-level BPE with every pre-tokenizer variant.
def("bytelevel_default", tok(byteLevelBpe(), { pre: byteLevelPre(), decoder: byteLevelDec }));
def("bytelevel_prefix_space", tok(byteLevelBpe(), { pre: byteLevelPre({ add_prefix_space: true }), decoder: byteLevelDec,
                                                  post: { type: "ByteLevel", add_prefix_space: true, trim_offsets: false, use_regex: true } }));
def("bytelevel_no_regex", tok(byteLevelBpe(), { pre: byteLevelPre({ use_regex: false }), decoder: byteLevelDec }));
for (const behavior of ["Removed", "Isolated", "MergedWithPrevious", "MergedWithNext", "Contiguous"]) {
  for (const invert of [false, true]) {
    def(`split_regex_${behavior}_${invert}`, tok(byteLevelBpe(), {
      pre: seq(split({ Regex: "\\s+|[0-9]" }, behavior, invert), byteLevelPre({ use_regex: false })), decoder: byteLevelDec }));
  }
  def(`split_string_${behavior}`, tok(byteLevelBpe(), {
    pre: seq(split({ String: "l" }, behavior), byteLevelPre({ use_regex: false })), decoder: byteLevelDec }));
  def(`punctuation_${behavior}`, tok(byteLevelBpe(), {
    pre: seq({ type: "Punctuation", behavior }, byteLevelPre({ use_regex: false })), decoder: byteLevelDec }));
}
def("split_lookahead_casei", tok(byteLevelBpe(), {
  pre: seq(split({ Regex: "(?i:'s|'ll)|\\s+(?!\\S)|\\p{Lu}\\p{Ll}*|\\p{N}{1,2}" }, "Isolated"), byteLevelPre({ use_regex: false })),
  decoder: byteLevelDec }));
def("split_empty_matches", tok(byteLevelBpe(), {
  pre: seq(split({ Regex: "x*" }, "Isolated"), byteLevelPre({ use_regex: false })), decoder: byteLevelDec }));
def("digits_individual", tok(byteLevelBpe(), { pre: seq({ type: "Digits", individual_digits: true }, byteLevelPre()), decoder: byteLevelDec }));
def("digits_contiguous", tok(byteLevelBpe(), { pre: seq({ type: "Digits", individual_digits: false }, byteLevelPre({ use_regex: false })), decoder: byteLevelDec }));
def("whitespace", tok(byteLevelBpe(), { pre: seq({ type: "Whitespace" }, byteLevelPre({ use_regex: false })), decoder: byteLevelDec }));
def("whitespace_split", tok(byteLevelBpe(), { pre: seq({ type: "WhitespaceSplit" }, byteLevelPre({ use_regex: false })), decoder: byteLevelDec }));
def("bert_pre_delimiter", tok(byteLevelBpe(), {
  pre: seq({ type: "BertPreTokenizer" }, { type: "CharDelimiterSplit", delimiter: "e" }, byteLevelPre({ use_regex: false })),
  decoder: byteLevelDec }));
def("fixed_length", tok(byteLevelBpe(), { pre: seq({ type: "FixedLength", length: 3 }, byteLevelPre({ use_regex: false })), decoder: byteLevelDec }));

// Normalizers (byte-level BPE underneath).
const norm = (n) => tok(byteLevelBpe(), { normalizer: n, pre: byteLevelPre(), decoder: byteLevelDec });
def("norm_nfc", norm({ type: "NFC" }));
def("norm_nfd", norm({ type: "NFD" }));
def("norm_nfkc", norm({ type: "NFKC" }));
def("norm_nfkd_strip_accents_lower", norm({ type: "Sequence", normalizers: [{ type: "NFKD" }, { type: "StripAccents" }, { type: "Lowercase" }] }));
def("norm_strip_both", norm({ type: "Strip", strip_left: true, strip_right: true }));
def("norm_strip_right", norm({ type: "Strip", strip_left: false, strip_right: true }));
def("norm_replace_regex_prepend", norm({ type: "Sequence", normalizers: [
  { type: "Replace", pattern: { Regex: "\\s+" }, content: " " }, { type: "Replace", pattern: { String: "world" }, content: "the" },
  { type: "Prepend", prepend: "@" }] }));
def("norm_bert", norm({ type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true }));
def("norm_nmt", norm({ type: "Nmt" }));
def("norm_bytelevel", tok(byteLevelBpe(), { normalizer: { type: "ByteLevel" }, decoder: byteLevelDec }));

// Added tokens: every flag, normalized and not (with a lower-casing normalizer).
const addedSet = [
  added(1000, "<mask>", { lstrip: true, rstrip: true, single_word: true, normalized: false, special: true }),
  added(1001, "[SEP]", { special: true }),
  added(1002, "hello", { normalized: true, special: false }),
  added(1003, "<MASK>", { normalized: true, special: false, lstrip: true }),
];
def("added_tokens_lowercase", tok(byteLevelBpe(), { added: addedSet, normalizer: { type: "Lowercase" }, pre: byteLevelPre(),
                                                   decoder: byteLevelDec, post: template([{ SpecialToken: { id: "[SEP]", type_id: 0 } },
                                                   { Sequence: { id: "A", type_id: 0 } }, { SpecialToken: { id: "[SEP]", type_id: 0 } }], [["[SEP]", 1001]]) }));
def("added_tokens_plain", tok(byteLevelBpe(), { added: [added(1000, "<mask>", { rstrip: true }), added(1001, "[SEP]", { lstrip: true, special: false }),
                                                       added(1002, " x", { normalized: true, special: false }), added(1003, "<ma", { special: true })],
                                               pre: byteLevelPre(), decoder: byteLevelDec }));

// Character BPE with prefix/suffix and unk.
const suffixDec = { type: "BPEDecoder", suffix: "</w>" };
def("bpe_suffix_unk", tok(suffixBpe(false), { pre: { type: "Whitespace" }, decoder: suffixDec }));
def("bpe_suffix_fuse_unk", tok(suffixBpe(true), { pre: { type: "WhitespaceSplit" }, decoder: suffixDec }));

// SentencePiece-style BPE: byte fallback, Metaspace pre-tokenizer / decoder, Strip decoder.
const spmDecoder = { type: "Sequence", decoders: [{ type: "Replace", pattern: { String: "▁" }, content: " " },
                                                  { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }] };
for (const scheme of ["always", "first", "never"]) {
  for (const splitFlag of [true, false]) {
    def(`metaspace_${scheme}_${splitFlag}`, tok(spmBpe(false), {
      added: [added(1, "<s>"), added(2, "</s>")],
      pre: { type: "Metaspace", replacement: "▁", prepend_scheme: scheme, split: splitFlag },
      decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: scheme, split: splitFlag },
      post: template([{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } },
                      { SpecialToken: { id: "</s>", type_id: 0 } }], [["<s>", 1], ["</s>", 2]]) }));
  }
}
def("spm_bpe_fallback", tok(spmBpe(false), { added: [added(1, "<s>"), added(2, "</s>")],
  normalizer: { type: "Sequence", normalizers: [{ type: "Prepend", prepend: "▁" }, { type: "Replace", pattern: { String: " " }, content: "▁" }] },
  decoder: spmDecoder }));
def("spm_bpe_ignore_merges", tok(spmBpe(true), { pre: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
                                                decoder: spmDecoder }));

// Unigram.
def("unigram_plain", tok(unigram(false), { pre: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true },
                                          decoder: { type: "Metaspace", replacement: "▁", prepend_scheme: "always", split: true } }));
def("unigram_byte_fallback", tok(unigram(true), { normalizer: { type: "NFKC" },
  pre: { type: "Sequence", pretokenizers: [{ type: "WhitespaceSplit" }, { type: "Metaspace", replacement: "▁", add_prefix_space: true }] },
  decoder: { type: "Sequence", decoders: [{ type: "ByteFallback" }, { type: "Metaspace", replacement: "▁", add_prefix_space: true }] } }));

// WordPiece (BERT) and WordLevel.
def("wordpiece_bert", tok(wordPiece(), {
  added: [added(0, "[PAD]"), added(1, "[UNK]"), added(2, "[CLS]"), added(3, "[SEP]"), added(4, "[MASK]")],
  normalizer: { type: "BertNormalizer", clean_text: true, handle_chinese_chars: true, strip_accents: null, lowercase: true },
  pre: { type: "BertPreTokenizer" }, decoder: { type: "WordPiece", prefix: "##", cleanup: true },
  post: { type: "BertProcessing", sep: ["[SEP]", 3], cls: ["[CLS]", 2] } }));
def("wordpiece_roberta_post", tok(wordPiece(), {
  pre: { type: "Whitespace" }, decoder: { type: "WordPiece", prefix: "##", cleanup: false },
  post: { type: "RobertaProcessing", sep: ["[SEP]", 3], cls: ["[CLS]", 2], trim_offsets: true, add_prefix_space: false } }));
def("wordlevel_nfkc_lower", tok(wordLevel(), { normalizer: { type: "Sequence", normalizers: [{ type: "NFKC" }, { type: "Lowercase" }] },
                                              pre: { type: "Whitespace" } }));
def("wordlevel_ctc", tok(wordLevel(), { pre: { type: "WhitespaceSplit" },
                                       decoder: { type: "CTC", pad_token: "<unk>", word_delimiter_token: "|", cleanup: true } }));

// ---------------------------------------------------------------------------------------------

const out = { generator: `tokenizers ${version} (npm)`, tokenizers: [] };
for (const { name, json } of defs) {
  const s = JSON.stringify(json);
  let t;
  try {
    t = Tokenizer.fromString(s);
  } catch (e) {
    throw new Error(`${name}: ${e}`);
  }
  const entry = { name, tokenizer: json, cases: [] };
  for (const text of texts) {
    const e = await t.encode(text, null, { addSpecialTokens: false });
    const w = await t.encode(text, null, { addSpecialTokens: true });
    const ids = e.getIds(), ws = w.getIds();
    entry.cases.push({
      text, ids, tokens: e.getTokens(), ids_with_special: ws,
      decoded: await t.decode(ids, false),
      decoded_with_special: await t.decode(ws, false),
      decoded_skip_special: await t.decode(ws, true),
    });
  }
  out.tokenizers.push(entry);
}
fs.writeFileSync(path.join(HERE, "cases.json"), JSON.stringify(out) + "\n");
console.log(`wrote ${out.tokenizers.length} tokenizers x ${texts.length} texts to cases.json`);

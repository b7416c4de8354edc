// HuggingFace tokenizers' official Node binding (npm `tokenizers`, the Rust library) on the
// same text as bench_tokenizer, same modes, same checksum of the ids, same output format:
//   whole  one encode() call on the whole text;
//   docs   encode() on each document (split on "\f\n"), one after the other;
//   batch  encodeBatch() over all documents (the Rust library spreads it over all cores).
//
//   node bench.mjs --text FILE [--repeat R] DIR...
import fs from "node:fs";
import path from "node:path";
import zlib from "node:zlib";
import { performance } from "node:perf_hooks";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const { Tokenizer } = require("tokenizers");
const version = require("tokenizers/package.json").version;

let textFile = null, repeat = 3;
const dirs = [];
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === "--text") textFile = argv[++i];
  else if (argv[i] === "--repeat") repeat = parseInt(argv[++i], 10);
  else dirs.push(argv[i]);
}
if (!textFile) {
  console.error("usage: node bench.mjs --text FILE [--repeat R] DIR...");
  process.exit(2);
}
const text = fs.readFileSync(textFile, "utf8");
const docs = text.split("\f\n");
const mbytes = Buffer.byteLength(text, "utf8") / 1e6;
console.log(`text: ${mbytes.toFixed(2)} MB, ${docs.length} documents (tokenizers ${version})`);

// FNV-style mix over 64-bit values, as bench_tokenizer.cpp does.
const MASK = (1n << 64n) - 1n;
function mixIds(h, ids) {
  for (const id of ids) h = ((h ^ BigInt(id)) * 0x100000001B3n) & MASK;
  return h;
}

function readTokenizerJson(dir) {
  const p = path.join(dir, "tokenizer.json");
  if (fs.existsSync(p)) return fs.readFileSync(p, "utf8");
  return zlib.gunzipSync(fs.readFileSync(p + ".gz")).toString("utf8");
}

for (const dir of dirs) {
  const name = path.basename(dir);
  if (!fs.existsSync(dir)) {
    console.log(`${name.padEnd(14)} skipped: ${dir} not found`);
    continue;
  }
  const t0 = performance.now();
  const tok = Tokenizer.fromString(readTokenizerJson(dir));
  const loadS = (performance.now() - t0) / 1000;
  const res = { whole: { best: Infinity }, docs: { best: Infinity }, batch: { best: Infinity } };
  const rowsStats = (s, rows) => {
    let h = 0xCBF29CE484222325n, n = 0;
    for (const row of rows) {
      h = mixIds(h, row);
      n += row.length;
    }
    s.tokens = n;
    s.checksum = h;
  };
  for (let r = 0; r < repeat; r++) {
    let a = performance.now();
    const enc = await tok.encode(text, null, { addSpecialTokens: false });
    const ids = enc.getIds();
    res.whole.best = Math.min(res.whole.best, (performance.now() - a) / 1000);
    res.whole.tokens = ids.length;
    res.whole.checksum = mixIds(0xCBF29CE484222325n, ids);

    a = performance.now();
    const rows = [];
    for (const d of docs) rows.push((await tok.encode(d, null, { addSpecialTokens: false })).getIds());
    res.docs.best = Math.min(res.docs.best, (performance.now() - a) / 1000);
    rowsStats(res.docs, rows);

    a = performance.now();
    const encs = await tok.encodeBatch(docs, { addSpecialTokens: false });
    const brows = encs.map((e) => e.getIds());
    res.batch.best = Math.min(res.batch.best, (performance.now() - a) / 1000);
    rowsStats(res.batch, brows);
  }
  for (const mode of ["whole", "docs", "batch"]) {
    const s = res[mode];
    const cs = s.checksum.toString(16).padStart(16, "0");
    console.log(`${name.padEnd(14)} ${mode.padEnd(6)} ${(mbytes / s.best).toFixed(2).padStart(8)} MB/s  ${String(s.tokens).padStart(9)} tokens  ${s.best.toFixed(3)} s  (load ${loadS.toFixed(2)} s)  checksum ${cs}`);
    console.log(`RESULT {"impl":"hf-tokenizers-node","tokenizer":"${name}","mode":"${mode}","mb_per_s":${(mbytes / s.best).toFixed(4)},"tokens":${s.tokens},"seconds":${s.best.toFixed(5)},"checksum":"${cs}"}`);
  }
}

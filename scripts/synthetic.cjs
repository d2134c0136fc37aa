// Deterministic sequence-classification data without a tokenizer, shared by the reliability scripts
// (crash-resume, leak-check, lsan-train) and tests (numerics, isolation): [CLS] ids… [SEP] with ids
// drawn from bert's vocabulary range, lengths minLen + (i mod lengths), alternating labels.
"use strict";

/** n examples { ids, label }; the same (n, options) always give the same data. */
function examples(n, { seed = 12345, minLen = 5, lengths = 12 } = {}) {
  let s = seed >>> 0;
  const next = () => ((s = (Math.imul(s, 1103515245) + 12345) >>> 0) / 4294967296);
  return Array.from({ length: n }, (_, i) => ({
    ids: [101, ...Array.from({ length: minLen + (i % lengths) }, () => 1000 + Math.floor(next() * 28000)), 102],
    label: i % 2,
  }));
}

/** Pads a list of examples to the longest (dynamic padding) into a TaskBatch. */
function collate(f) {
  const T = Math.max(...f.map((e) => e.ids.length));
  const inputIds = new Int32Array(f.length * T), attentionMask = new Uint8Array(f.length * T);
  f.forEach((e, b) => e.ids.forEach((id, t) => { inputIds[b * T + t] = id; attentionMask[b * T + t] = 1; }));
  return { inputIds, attentionMask, batchSize: f.length, seqLen: T, labels: Int32Array.from(f.map((e) => e.label)) };
}

module.exports = { examples, collate };

// Mutations of real bytes, drawn with fast-check: a plan (a seed index + 1..4 operations whose
// positions are fractions of the length) is sampled by fast-check, then applied to the seed's bytes.
// The operations are the classic ones (bit flip, byte insert/delete/duplicate, truncation, splicing)
// plus format-aware ones: header integers overwritten with extreme values, JSON numbers replaced by
// extreme numbers, JSON keys replaced by prototype names, deep nesting, delimiter/quote/newline noise.
import fc from "fast-check";

const EXTREME_INTS = [0n, 1n, 0x7fn, 0x80n, 0xffn, 0x7fffn, 0xffffn, 0x7fffffffn, 0x80000000n, 0xffffffffn,
  0x100000000n, (1n << 53n) - 1n, 1n << 53n, (1n << 63n) - 1n, (1n << 64n) - 1n];
const EXTREME_NUMS = ["0", "-1", "1e309", "-1e309", "1e30", "1000000000000000019884624838656", "9007199254740993",
  "4294967295", "4294967296", "2147483648", "100000000", "1000000000", "99999999999999999999", "1.5", "-0", "0.0", "NaN", "1e-400", "123456789"];
const PROTO_KEYS = ["__proto__", "constructor", "toString", "hasOwnProperty", "valueOf", "prototype", "__defineGetter__"];
const NOISE = ['"', ",", "\t", "\n", "\r\n", "\n\n", "\r", "\uFEFF", "\\", "{", "}", "[", "]", ":", "\u0000", "-DOCSTART-", " ", "\"\"", "'", "\u2028"];
const INVALID_UTF8 = [[0xff], [0xfe, 0xff], [0xc3], [0xed, 0xa0, 0x80], [0xf4, 0x90, 0x80, 0x80], [0x80]];

const frac = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const op = fc.oneof(
  { weight: 4, arbitrary: fc.record({ k: fc.constant("flip"), at: frac, bit: fc.integer({ min: 0, max: 7 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("set"), at: frac, v: fc.oneof(fc.constantFrom(0, 0xff, 0x7f, 0x80, 0x0a, 0x22, 0x2c), fc.integer({ min: 0, max: 255 })) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("insert"), at: frac, bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("delete"), at: frac, len: fc.integer({ min: 1, max: 64 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("dup"), at: frac, len: fc.integer({ min: 1, max: 256 }), to: frac, times: fc.integer({ min: 1, max: 8 }) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("truncate"), at: frac }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("splice"), at: frac, from: frac, len: fc.integer({ min: 1, max: 4096 }), other: fc.nat() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("int"), at: frac, width: fc.constantFrom(1, 2, 4, 8), v: fc.constantFrom(...EXTREME_INTS), be: fc.boolean(), neg: fc.boolean() }) },
  { weight: 4, arbitrary: fc.record({ k: fc.constant("jsonnum"), which: frac, v: fc.constantFrom(...EXTREME_NUMS) }) },
  { weight: 2, arbitrary: fc.record({ k: fc.constant("jsonkey"), which: frac, v: fc.constantFrom(...PROTO_KEYS) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("deep"), at: frac, depth: fc.constantFrom(100, 3000, 20000, 200000), open: fc.constantFrom("[", "{\"a\":", "[{\"x\":"), close: fc.boolean() }) },
  { weight: 3, arbitrary: fc.record({ k: fc.constant("noise"), at: frac, s: fc.constantFrom(...NOISE), times: fc.integer({ min: 1, max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("badutf8"), at: frac, b: fc.constantFrom(...INVALID_UTF8) }) },
  { weight: 1, arbitrary: fc.record({ k: fc.constant("line"), which: frac, dup: fc.integer({ min: 0, max: 3 }) }) },
);

/** A mutation plan: which seed, which of its files, which operations. */
export const planArb = fc.record({ seed: fc.nat(), file: fc.nat(), ops: fc.array(op, { minLength: 1, maxLength: 4 }) });

const cat = (...parts) => Buffer.concat(parts.map((p) => Buffer.from(p)));
const pos = (f, n) => Math.min(n, Math.floor(f * (n + 1)));

/** Spans of ASCII digit runs (JSON numbers, header fields); cheap and good enough. */
function numberSpans(b, limit = 4096) {
  const out = [];
  for (let i = 0; i < b.length && out.length < limit; i++) {
    if ((b[i] >= 0x30 && b[i] <= 0x39) || (b[i] === 0x2d && b[i + 1] >= 0x30 && b[i + 1] <= 0x39)) {
      let j = i + 1;
      while (j < b.length && ((b[j] >= 0x30 && b[j] <= 0x39) || b[j] === 0x2e || b[j] === 0x65 || b[j] === 0x2b || b[j] === 0x2d)) j++;
      out.push([i, j]);
      i = j;
    }
  }
  return out;
}
/** Spans of short double-quoted strings (JSON keys and values). */
function stringSpans(b, limit = 4096) {
  const out = [];
  for (let i = 0; i < b.length && out.length < limit; i++) {
    if (b[i] !== 0x22) continue;
    let j = i + 1;
    while (j < b.length && j - i < 80 && b[j] !== 0x22 && b[j] !== 0x5c) j++;
    if (b[j] === 0x22) { out.push([i + 1, j]); i = j; }
  }
  return out;
}

export function applyOp(b, o, others) {
  const n = b.length;
  switch (o.k) {
    case "flip": if (n) { const c = Buffer.from(b); c[pos(o.at, n - 1)] ^= 1 << o.bit; return c; } return b;
    case "set": if (n) { const c = Buffer.from(b); c[pos(o.at, n - 1)] = o.v; return c; } return b;
    case "insert": { const p = pos(o.at, n); return cat(b.subarray(0, p), o.bytes, b.subarray(p)); }
    case "delete": { const p = pos(o.at, n); return cat(b.subarray(0, p), b.subarray(Math.min(n, p + o.len))); }
    case "dup": {
      const p = pos(o.at, n), chunk = b.subarray(p, Math.min(n, p + o.len)), t = pos(o.to, n);
      return cat(b.subarray(0, t), ...Array(o.times).fill(chunk), b.subarray(t));
    }
    case "truncate": return b.subarray(0, pos(o.at, n));
    case "splice": {
      const src = others.length ? others[o.other % others.length] : b;
      const f = pos(o.from, src.length), p = pos(o.at, n);
      return cat(b.subarray(0, p), src.subarray(f, Math.min(src.length, f + o.len)), b.subarray(p));
    }
    case "int": {
      if (n < o.width) return b;
      const c = Buffer.from(b), p = pos(o.at, n - o.width);
      let v = o.neg ? (1n << BigInt(8 * o.width)) - o.v : o.v;
      for (let i = 0; i < o.width; i++) { c[o.be ? p + o.width - 1 - i : p + i] = Number(v & 0xffn); v >>= 8n; }
      return c;
    }
    case "jsonnum": {
      const spans = numberSpans(b);
      if (!spans.length) return b;
      const [s, e] = spans[Math.floor(o.which * spans.length)];
      return cat(b.subarray(0, s), Buffer.from(o.v), b.subarray(e));
    }
    case "jsonkey": {
      const spans = stringSpans(b);
      if (!spans.length) return b;
      const [s, e] = spans[Math.floor(o.which * spans.length)];
      return cat(b.subarray(0, s), Buffer.from(o.v), b.subarray(e));
    }
    case "deep": {
      const p = pos(o.at, n);
      const closer = o.open === "[" ? "]" : o.open === "{\"a\":" ? "}" : "}]";
      const deep = o.open.repeat(o.depth) + "0" + (o.close ? closer.repeat(o.depth) : "");
      return cat(b.subarray(0, p), Buffer.from(deep), b.subarray(p));
    }
    case "noise": { const p = pos(o.at, n); return cat(b.subarray(0, p), Buffer.from(o.s.repeat(o.times)), b.subarray(p)); }
    case "badutf8": { const p = pos(o.at, n); return cat(b.subarray(0, p), Buffer.from(o.b), b.subarray(p)); }
    case "line": {
      // Duplicate or drop one line (rows, vocabulary entries, merges).
      const starts = [0];
      for (let i = 0; i < n && starts.length < 100000; i++) if (b[i] === 0x0a) starts.push(i + 1);
      const li = Math.floor(o.which * starts.length), s = starts[li], e = li + 1 < starts.length ? starts[li + 1] : n;
      const line = b.subarray(s, e);
      return cat(b.subarray(0, s), ...Array(o.dup).fill(line), b.subarray(e));
    }
  }
  return b;
}

/** Applies `plan` to a copy of seed files {name: bytes}; returns the mutated file map. */
export function mutate(seeds, plan) {
  const seed = seeds[plan.seed % seeds.length];
  const names = Object.keys(seed).filter((k) => !seed[k].fixed);
  const out = {};
  for (const [k, v] of Object.entries(seed)) out[k] = v.bytes ?? v;
  if (!names.length) return out;
  const name = names[plan.file % names.length];
  const others = seeds.map((s) => Object.values(s)[0]).map((v) => v.bytes ?? v);
  let b = out[name];
  for (const o of plan.ops) b = applyOp(b, o, others);
  out[name] = b;
  return out;
}

// `node bench/decoder_ops.mjs`: CPU speed of the decoder kernels at Qwen2-0.5B sizes (hidden 896, 14
// query heads, 2 kv heads, head dim 64, intermediate 4864): attention_decode at batch 1 and 8 against a
// 512-token cache, and the bandwidth-bound RMSNorm / RoPE / SwiGLU as GB/s of memory they must touch
// (every input read once, every output written once).
// --quick: tiny repeat counts, checks that everything runs; the numbers mean little then.
import { native } from "../dist/index.js";
import { machine, timeIt, table, saveResults, fmt } from "./common.mjs";

const quick = process.argv.includes("--quick");
const opts = quick ? { time: 0.05, iters: 3 } : { time: 1, iters: 20 };

function randn(n) {
  const a = native.alloc(n);
  for (let i = 0; i < n; i++) a[i] = Math.random() * 2 - 1;
  return a;
}

const m = machine(native);
console.log(`decoder kernels on ${m.cpu}, ${m.threads} threads, ISA ${m.isa}`);
const rows = [];

// attention_decode: one token per (batch, head) against the cache; it reads the whole K and V cache.
const H = 14, Hkv = 2, D = 64, Tk = 512;
for (const B of [1, 8]) {
  const q = randn(B * H * D), k = randn(B * Tk * Hkv * D), v = randn(B * Tk * Hkv * D), o = native.alloc(B * H * D);
  const s = await timeIt(`decode B=${B}`, () => native.attentionDecode({ B, H, Hkv, Tk, D, q, k, v, o }), opts);
  const bytes = 4 * (2 * B * Tk * Hkv * D + 2 * B * H * D);
  rows.push({ op: "attention_decode", shape: `B=${B} H=${H} Hkv=${Hkv} D=${D} Tk=${Tk}`, us: s * 1e6, GBps: bytes / s / 1e9, GFLOPs: (4 * B * H * Tk * D) / s / 1e9 });
  [q, k, v, o].forEach((x) => native.free(x));
}

// RMSNorm over (2048, 896): forward reads x, writes y (and rstd); backward reads x, dy, writes dx (and dweight).
{
  const R = 2048, C = 896, x = randn(R * C), w = randn(C), y = native.alloc(R * C), rstd = native.alloc(R);
  const dy = randn(R * C), dx = native.alloc(R * C), dw = native.alloc(C);
  const f = await timeIt("rmsnorm fwd", () => native.rmsNormForward({ rows: R, C, x, weight: w, y, rstd }), opts);
  const b = await timeIt("rmsnorm bwd", () => native.rmsNormBackward({ rows: R, C, x, weight: w, rstd, dy, dx, dweight: dw }), opts);
  rows.push({ op: "rmsnorm_forward", shape: `${R}x${C}`, us: f * 1e6, GBps: (8 * R * C) / f / 1e9 });
  rows.push({ op: "rmsnorm_backward", shape: `${R}x${C}`, us: b * 1e6, GBps: (12 * R * C) / b / 1e9 });
  [x, w, y, rstd, dy, dx, dw].forEach((t) => native.free(t));
}

// RoPE on q and k of a packed [q | k | v] (2048 tokens, 14 + 2 heads rotated in place): reads and writes them.
{
  const N = 2048, ld = (H + 2 * Hkv) * D, P = 4096, x = randn(N * ld), cos = randn(P * D / 2), sin = randn(P * D / 2);
  const positions = Int32Array.from({ length: N }, (_, i) => i);
  const s = await timeIt("rope", () => native.ropeForward({ B: 1, T: N, H: H + Hkv, D, P, x, ld, cos, sin, positions }), opts);
  rows.push({ op: "rope_forward", shape: `${N} tokens x ${H + Hkv} heads x ${D}`, us: s * 1e6, GBps: (8 * N * (H + Hkv) * D) / s / 1e9 });
  [x, cos, sin].forEach((t) => native.free(t));
}

// SwiGLU over a fused [gate | up] (2048, 2·4864): forward reads both halves, writes y; backward reads three, writes two.
{
  const R = 2048, C = 4864, gu = randn(R * 2 * C), y = native.alloc(R * C), dy = randn(R * C), dgu = native.alloc(R * 2 * C);
  const gate = gu, up = gu.subarray(C);
  const f = await timeIt("swiglu fwd", () => native.swigluForward({ rows: R, C, gate, up, y, ldg: 2 * C, ldu: 2 * C }), opts);
  const b = await timeIt("swiglu bwd", () =>
    native.swigluBackward({ rows: R, C, gate, up, dy, ldg: 2 * C, ldu: 2 * C, dgate: dgu, dup: dgu.subarray(C), lddg: 2 * C, lddu: 2 * C }), opts);
  rows.push({ op: "swiglu_forward", shape: `${R}x${C}`, us: f * 1e6, GBps: (12 * R * C) / f / 1e9 });
  rows.push({ op: "swiglu_backward", shape: `${R}x${C}`, us: b * 1e6, GBps: (20 * R * C) / b / 1e9 });
  [gu, y, dy, dgu].forEach((t) => native.free(t));
}

table(rows.map((r) => ({ ...r, us: fmt(r.us, 0), GBps: fmt(r.GBps, 1), GFLOPs: fmt(r.GFLOPs, 1) })), ["op", "shape", "us", "GBps", "GFLOPs"]);
if (!quick) saveResults("decoder_ops", { machine: m, rows });

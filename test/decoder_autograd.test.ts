// The decoder ops through autograd (rmsNorm, rope, swiglu, grouped-query / sliding-window attention):
// gradients against float64 finite differences of the same ops; rotary frequencies against HF's
// (goldens made with PyTorch, test/fixtures/golden_decoder_ops.py); and the KV cache: a prefill plus
// one decode step at a time gives the attention of the whole sequence, left padding and GQA included.
import * as fs from "fs";
import * as path from "path";
import { Tensor } from "../lib/tensor/tensor";
import * as ops from "../lib/tensor/ops";
import { rmsNorm, rope, ropeTables, swiglu } from "../lib/tensor/decoder_ops";
import { ropeInvFreq } from "../lib/models/rope";
import { KVCache, cachedAttention } from "../lib/models/cache";

const golden = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "decoder_ops.json"), "utf8"));

function rand(n: number, seed: number, scale = 1): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    return ((s / 4294967296) * 2 - 1) * scale;
  });
}

// d(Σ f(inputs)·R)/d(input) by central differences (float64 sums of float32 forwards) vs autograd.
function gradCheck(inputs: Tensor[], f: (xs: Tensor[]) => Tensor, tol = 2e-2): void {
  const out0 = f(inputs.map((t) => new Tensor(t.shape, Float32Array.from(t.toHost()))));
  const R = rand(out0.size, 99);
  const loss = (xs: Tensor[]) => {
    const y = f(xs).toHost();
    let s = 0;
    for (let i = 0; i < y.length; i++) s += y[i] * R[i];
    return s;
  };
  const leaves = inputs.map((t) => new Tensor(t.shape, Float32Array.from(t.toHost()), true));
  ops.weightedSum(f(leaves), R).backward();
  inputs.forEach((t, k) => {
    const base = t.toHost();
    const g = leaves[k].grad!.toHost();
    let maxG = 1e-3;
    for (const v of g) maxG = Math.max(maxG, Math.abs(v));
    for (let i = 0; i < base.length; i += Math.max(1, Math.floor(base.length / 24))) {
      const eps = 1e-2;
      const plus = inputs.map((u) => new Tensor(u.shape, Float32Array.from(u.toHost())));
      const minus = inputs.map((u) => new Tensor(u.shape, Float32Array.from(u.toHost())));
      plus[k].toHost()[i] += eps;
      minus[k].toHost()[i] -= eps;
      const fd = (loss(plus) - loss(minus)) / (2 * eps);
      expect(Math.abs(fd - g[i]) / maxG).toBeLessThan(tol);
    }
  });
}

describe("decoder ops through autograd", () => {
  test("rmsNorm over the hidden size and per head (Qwen3's q_norm), with and without a weight", () => {
    const x = Tensor.from([2, 3, 8], rand(48, 1)), w = Tensor.from([8], rand(8, 2));
    gradCheck([x, w], ([a, b]) => rmsNorm(a, b, 1e-6));
    gradCheck([x, Tensor.from([4], rand(4, 3))], ([a, b]) => rmsNorm(a, b, 1e-5, 4)); // 2 heads of 4
    gradCheck([x], ([a]) => rmsNorm(a, null, 1e-6));
  });

  test("rope: positions per token (left padding), several heads", () => {
    const tables = ropeTables(ropeInvFreq(4, 10000), 16, "cpu");
    const pos = Int32Array.from([1, 1, 0, 1, 0, 1, 2, 3]); // row 0 left-padded (pads at position 1, as HF)
    gradCheck([Tensor.from([2, 4, 12], rand(96, 4))], ([a]) => rope(a, 3, pos, tables));
  });

  test("swiglu", () => {
    gradCheck([Tensor.from([3, 5], rand(15, 5, 3)), Tensor.from([3, 5], rand(15, 6))], ([g, u]) => swiglu(g, u));
  });

  test("grouped-query attention with a causal sliding window and padding", () => {
    const B = 2, T = 5, H = 4, Hkv = 2, D = 4;
    const mask = Uint8Array.from([1, 1, 1, 1, 0, 1, 1, 1, 1, 1]);
    const gen = new ops.Generator(1);
    gradCheck([Tensor.from([B, T, H * D], rand(B * T * H * D, 7)), Tensor.from([B, T, Hkv * D], rand(B * T * Hkv * D, 8)), Tensor.from([B, T, Hkv * D], rand(B * T * Hkv * D, 9))],
      ([q, k, v]) => ops.attention(ops.heads(q), ops.heads(k), ops.heads(v), B, T, H * D, {
        numHeads: H, numKvHeads: Hkv, window: 3, keyMask: mask, causal: true, dropoutP: 0, training: false, gen,
      }));
  });
});

describe("rotary frequencies as HF computes them", () => {
  type RopeCase = { D: number; P: number; theta: number; scaling: unknown; invFreq: number[]; cos: number[] };
  test.each((golden.rope as RopeCase[]).map((c, i) => [i, c] as [number, RopeCase]))("case %i: inv_freq and the cos/sin tables", (_i, c) => {
    const s = c.scaling as null | { factor: number; low_freq_factor: number; high_freq_factor: number; old_context_len: number };
    const inv = ropeInvFreq(c.D, c.theta, s && { ropeType: "llama3", factor: s.factor, lowFreqFactor: s.low_freq_factor, highFreqFactor: s.high_freq_factor, originalMaxPositionEmbeddings: s.old_context_len });
    (c.invFreq as number[]).forEach((v, i) => expect(Math.abs(inv[i] - v)).toBeLessThanOrEqual(Math.abs(v) * 2e-7));
    const t = ropeTables(inv, c.P, "cpu");
    const cos = t.cos.toHost();
    (c.cos as number[]).forEach((v, i) => expect(Math.abs(cos[i] - v)).toBeLessThan(2e-6));
  });
});

describe("the KV cache", () => {
  test("prefill, then one token at a time, equals causal attention over the whole (left-padded) sequence", () => {
    const B = 2, T = 7, P = 3, H = 4, Hkv = 2, D = 8, window = 4;
    const mask = Uint8Array.from([0, 0, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 1, 1, 1, 1]); // row 0 left-padded by 2
    const q = Tensor.from([B, T, H * D], rand(B * T * H * D, 11));
    const k = Tensor.from([B, T, Hkv * D], rand(B * T * Hkv * D, 12));
    const v = Tensor.from([B, T, Hkv * D], rand(B * T * Hkv * D, 13));
    const full = ops.attention(ops.heads(q), ops.heads(k), ops.heads(v), B, T, H * D, {
      numHeads: H, numKvHeads: Hkv, window, keyMask: mask, causal: true, dropoutP: 0, training: false, gen: new ops.Generator(1),
    }).toHost();
    const slice = (x: Tensor, t0: number, t1: number) => {
      const W = x.shape[2], src = x.toHost(), out = new Float32Array(B * (t1 - t0) * W);
      for (let b = 0; b < B; b++) out.set(src.subarray((b * T + t0) * W, (b * T + t1) * W), b * (t1 - t0) * W);
      return Tensor.from([B, t1 - t0, W], out);
    };
    const cache = new KVCache(B, 16, 1, Hkv, D, "cpu");
    const step = (t0: number, t1: number) => {
      const n = t1 - t0, m = new Uint8Array(B * n);
      for (let b = 0; b < B; b++) m.set(mask.subarray(b * T + t0, b * T + t1), b * n);
      cache.begin(m, n);
      const ks = slice(k, t0, t1), vs = slice(v, t0, t1);
      cache.append(0, ops.heads(ks), ops.heads(vs), n);
      const o = cachedAttention(ops.heads(slice(q, t0, t1)), ops.heads(ks), ops.heads(vs), cache, 0, n, H, window).toHost();
      cache.end(n);
      return o;
    };
    const got = new Float32Array(B * T * H * D), W = H * D;
    const put = (o: Float32Array, t0: number, n: number) => { for (let b = 0; b < B; b++) got.set(o.subarray(b * n * W, (b + 1) * n * W), (b * T + t0) * W); };
    put(step(0, P), 0, P);
    for (let t = P; t < T; t++) put(step(t, t + 1), t, 1);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        if (!mask[b * T + t]) continue; // a padding query's output is not used
        for (let j = 0; j < W; j++) expect(Math.abs(got[(b * T + t) * W + j] - full[(b * T + t) * W + j])).toBeLessThan(1e-5);
      }
    expect(Array.from(cache.positions)).toEqual([5, 7]);
    cache.free();
  });
});

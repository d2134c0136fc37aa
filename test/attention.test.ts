import { native } from "../lib/native";
import type { AttentionForwardArgs } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, rng, maxAbsDiff, loadGolden, f32, pickIndices } from "./helpers";

// ---- Philox 4x32-10 in JS (the test's own copy, to recompute dropout masks) ----------------------

/** [hi, lo] of the 64-bit product of two uint32, exact in doubles via 16-bit halves. */
function mulhilo(a: number, b: number): [number, number] {
  const ah = a >>> 16, al = a & 0xffff, bh = b >>> 16, bl = b & 0xffff;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh % 65536) + (hl % 65536);
  const hi = (hh + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536)) >>> 0;
  return [hi, Math.imul(a, b) >>> 0];
}

function philoxBlock(counter: number, seed: number): number[] {
  let c0 = counter % 2 ** 32, c1 = Math.floor(counter / 2 ** 32), c2 = 0, c3 = 0;
  let k0 = seed % 2 ** 32, k1 = Math.floor(seed / 2 ** 32);
  for (let round = 0; round < 10; round++) {
    const [hi0, lo0] = mulhilo(0xd2511f53, c0), [hi1, lo1] = mulhilo(0xcd9e8d57, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

/** Uniform of element e of (seed, offset), as native/cpu/philox.h draws it (the last block is kept). */
let lastBlock = { counter: -1, seed: -1, words: [0, 0, 0, 0] };
function philoxUniform(seed: number, offset: number, e: number): number {
  const i = offset + e, counter = Math.floor(i / 4);
  if (lastBlock.counter !== counter || lastBlock.seed !== seed) lastBlock = { counter, seed, words: philoxBlock(counter, seed) };
  return (lastBlock.words[i % 4] >>> 8) / 16777216;
}

// ---- Naive reference: materialised softmax in float64 -------------------------------------------

interface Problem {
  B: number; H: number; Tq: number; Tk: number; D: number;
  causal?: boolean; keyMask?: Uint8Array; scale?: number;
  dropoutP?: number; seed?: number; offset?: number;
}
interface Inputs { q: Float32Array; k: Float32Array; v: Float32Array; dout: Float32Array }
interface Result { o: Float64Array; lse: Float64Array; dq: Float64Array; dk: Float64Array; dv: Float64Array }

/** Forward and analytic backward; all tensors dense (B, T, H, D). */
function reference(p: Problem, x: Inputs): Result {
  const { B, H, Tq, Tk, D } = p;
  const scale = p.scale ?? 1 / Math.sqrt(D), dp = Math.fround(p.dropoutP ?? 0);
  const at = (T: number, b: number, t: number, h: number) => ((b * T + t) * H + h) * D;
  const o = new Float64Array(B * Tq * H * D), lse = new Float64Array(B * H * Tq);
  const dq = new Float64Array(B * Tq * H * D), dk = new Float64Array(B * Tk * H * D), dv = new Float64Array(B * Tk * H * D);
  const P = new Float64Array(Tk), M = new Float64Array(Tk), dP = new Float64Array(Tk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Tq; i++) {
        const qi = at(Tq, b, i, h);
        let mx = -Infinity;
        for (let j = 0; j < Tk; j++) {
          const on = (!p.keyMask || p.keyMask[b * Tk + j] === 1) && (!p.causal || j <= i);
          let s = -Infinity;
          if (on) {
            s = 0;
            for (let d = 0; d < D; d++) s += x.q[qi + d] * x.k[at(Tk, b, j, h) + d];
            s *= scale;
          }
          P[j] = s;
          mx = Math.max(mx, s);
        }
        const li = (b * H + h) * Tq + i;
        if (mx === -Infinity) {
          lse[li] = -Infinity; // o, dq stay 0
          continue;
        }
        let sum = 0;
        for (let j = 0; j < Tk; j++) sum += (P[j] = Math.exp(P[j] - mx));
        lse[li] = mx + Math.log(sum);
        for (let j = 0; j < Tk; j++) {
          P[j] /= sum;
          const keep = dp === 0 || philoxUniform(p.seed ?? 0, p.offset ?? 0, li * Tk + j) >= dp;
          M[j] = keep ? 1 / (1 - dp) : 0;
        }
        let Di = 0;
        for (let j = 0; j < Tk; j++) {
          const vj = at(Tk, b, j, h);
          let g = 0;
          for (let d = 0; d < D; d++) {
            o[qi + d] += P[j] * M[j] * x.v[vj + d];
            g += x.dout[qi + d] * x.v[vj + d];
            dv[vj + d] += P[j] * M[j] * x.dout[qi + d];
          }
          dP[j] = g * M[j];
          Di += P[j] * dP[j];
        }
        for (let j = 0; j < Tk; j++) {
          const dS = P[j] * (dP[j] - Di) * scale, kj = at(Tk, b, j, h);
          for (let d = 0; d < D; d++) {
            dq[qi + d] += dS * x.k[kj + d];
            dk[kj + d] += dS * x.q[qi + d];
          }
        }
      }
  return { o, lse, dq, dk, dv };
}

function inputs(p: Problem, seed: number): Inputs {
  const nq = p.B * p.Tq * p.H * p.D, nk = p.B * p.Tk * p.H * p.D;
  return { q: randn(nq, seed), k: randn(nk, seed + 1), v: randn(nk, seed + 2), dout: randn(nq, seed + 3) };
}

function randomMask(B: number, Tk: number, seed: number, density = 0.7): Uint8Array {
  const r = rng(seed);
  return Uint8Array.from({ length: B * Tk }, () => (r() < density ? 1 : 0));
}

/** Runs forward then backward with dense layouts. */
function run(p: Problem, x: Inputs) {
  const { B, H, Tq, Tk, D } = p;
  const o = new Float32Array(B * Tq * H * D), lse = new Float32Array(B * H * Tq);
  const dq = new Float32Array(B * Tq * H * D).fill(NaN), dk = new Float32Array(B * Tk * H * D).fill(NaN);
  const dv = new Float32Array(B * Tk * H * D).fill(NaN);
  const args = { ...p, q: x.q, k: x.k, v: x.v, o, lse };
  native.attentionForward(args);
  native.attentionBackward({ ...args, dout: x.dout, dq, dk, dv });
  return { o, lse, dq, dk, dv };
}

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
};
/** Absolute error relative to the largest reference magnitude (float32 kernels against float64). */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number) {
  expect(maxAbsDiff(got, want)).toBeLessThan(tol * Math.max(1, maxAbs(want)));
}
function expectMatches(got: ReturnType<typeof run>, want: Result, tol = 2e-5) {
  expectClose(got.o, want.o, tol);
  expect(Array.from(got.lse).map((x) => (x === -Infinity ? "-inf" : "")))
    .toEqual(Array.from(want.lse).map((x) => (x === -Infinity ? "-inf" : "")));
  expectClose(got.lse.map((x) => (x === -Infinity ? 0 : x)), want.lse.map((x) => (x === -Infinity ? 0 : x)), tol);
  expectClose(got.dq, want.dq, 5 * tol);
  expectClose(got.dk, want.dk, 5 * tol);
  expectClose(got.dv, want.dv, 5 * tol);
}

// Sizes cross the query tile (64) and key tile (128) boundaries and the vector widths (16, 8).
const shapes: Problem[] = [
  { B: 1, H: 1, Tq: 1, Tk: 1, D: 1 },
  { B: 2, H: 3, Tq: 7, Tk: 7, D: 8 },
  { B: 1, H: 2, Tq: 65, Tk: 130, D: 64 },
  { B: 2, H: 1, Tq: 130, Tk: 65, D: 65 },
  { B: 1, H: 1, Tq: 7, Tk: 200, D: 1 },
  { B: 1, H: 1, Tq: 130, Tk: 300, D: 17 }, // one head over two threads: keys split, dq summed
];
const cases: (Problem & { name: string })[] = [];
for (const s of shapes) {
  const tag = `B=${s.B} H=${s.H} Tq=${s.Tq} Tk=${s.Tk} D=${s.D}`;
  cases.push({ ...s, name: tag });
  cases.push({ ...s, name: `${tag} padding mask`, keyMask: randomMask(s.B, s.Tk, s.Tk) });
  cases.push({ ...s, name: `${tag} causal`, causal: true });
  cases.push({ ...s, name: `${tag} causal + padding, scale 0.5`, causal: true, keyMask: randomMask(s.B, s.Tk, s.Tq, 0.5), scale: 0.5 });
}

// The reference of each case is computed once and shared by the ISAs.
const referenceOf = new Map<string, { x: Inputs; want: Result }>();
function caseData(c: Problem & { name: string }) {
  let d = referenceOf.get(c.name);
  if (!d) {
    const x = inputs(c, c.Tq * 31 + c.Tk);
    d = { x, want: reference(c, x) };
    referenceOf.set(c.name, d);
  }
  return d;
}

describe.each(ISAS)("attention on %s", (isa) => {
  test.each(cases)("$name: forward and backward match the naive reference", (c) => {
    withIsa(isa, () => {
      const { x, want } = caseData(c);
      expectMatches(run(c, x), want);
    });
  });

  test("dropout: the same Philox mask as the reference, in forward and backward", () => {
    withIsa(isa, () => {
      for (const c of [
        { B: 2, H: 2, Tq: 9, Tk: 11, D: 8, dropoutP: 0.25, seed: 7, offset: 3 },
        { B: 1, H: 2, Tq: 70, Tk: 140, D: 16, dropoutP: 0.1, seed: 2 ** 40 + 5, offset: 2 ** 35 + 1, causal: true },
        { B: 1, H: 1, Tq: 5, Tk: 33, D: 3, dropoutP: 0.9, seed: 1, offset: 0, keyMask: randomMask(1, 33, 4) },
      ]) {
        const x = inputs(c, 11);
        const got = run(c, x), want = reference(c, x);
        expectMatches(got, want);
        // A different seed gives a different output.
        const other = run({ ...c, seed: c.seed + 1 }, x);
        expect(maxAbsDiff(other.o, got.o)).toBeGreaterThan(1e-3);
      }
    });
  });

  test("a query row with every key masked gives O = 0, lse = -inf and zero gradients", () => {
    withIsa(isa, () => {
      // Batch row 0: keys 0 and 1 padded, causal → queries 0 and 1 see no key. Batch row 1: no key at all.
      const c: Problem = { B: 2, H: 2, Tq: 5, Tk: 5, D: 4, causal: true, keyMask: Uint8Array.from([0, 0, 1, 1, 1, 0, 0, 0, 0, 0]) };
      const x = inputs(c, 3);
      const got = run(c, x);
      expectMatches(got, reference(c, x));
      for (const h of [0, 1]) for (const i of [0, 1]) expect(got.lse[h * 5 + i]).toBe(-Infinity);
      for (let i = 0; i < 10; i++) expect(got.lse[10 + i]).toBe(-Infinity);
      for (const t of [got.o, got.dq, got.dk, got.dv]) expect(t.every(Number.isFinite)).toBe(true);
      expect(got.o.subarray(0, 2 * 2 * 4).every((x) => x === 0)).toBe(true);
      expect(got.o.subarray(5 * 2 * 4).every((x) => x === 0)).toBe(true);
      expect(got.dq.subarray(5 * 2 * 4).every((x) => x === 0)).toBe(true);
      // Padded keys (batch row 0: keys 0, 1; batch row 1: all) get exactly zero gradients.
      for (const t of [got.dk, got.dv]) {
        expect(t.subarray(0, 2 * 2 * 4).every((x) => x === 0)).toBe(true);
        expect(t.subarray(5 * 2 * 4).every((x) => x === 0)).toBe(true);
      }
    });
  });

  test("packed qkv: q, k, v views of one [B, T, 3·H·D] buffer, gradients into one packed buffer", () => {
    withIsa(isa, () => {
      const p: Problem = { B: 2, H: 3, Tq: 70, Tk: 70, D: 16, causal: true, keyMask: randomMask(2, 70, 9) };
      const { B, H, D } = p, T = 70, HD = H * D, ld = 3 * HD;
      const qkv = randn(B * T * ld, 5), dout = randn(B * T * HD, 6);
      const dense = (off: number) => {
        const out = new Float32Array(B * T * HD);
        for (let t = 0; t < B * T; t++) out.set(qkv.subarray(t * ld + off, t * ld + off + HD), t * HD);
        return out;
      };
      const x: Inputs = { q: dense(0), k: dense(HD), v: dense(2 * HD), dout };
      // O written into the middle of wider rows, lse next to nothing else.
      const o = new Float32Array(B * T * (HD + 5)).fill(7), lse = new Float32Array(B * H * T);
      const args = { ...p, q: qkv, k: qkv.subarray(HD), v: qkv.subarray(2 * HD), ldq: ld, ldk: ld, ldv: ld, o: o.subarray(2), ldo: HD + 5, lse };
      native.attentionForward(args);
      const dqkv = new Float32Array(B * T * ld).fill(NaN);
      native.attentionBackward({ ...args, dout, dq: dqkv, dk: dqkv.subarray(HD), dv: dqkv.subarray(2 * HD), lddq: ld, lddk: ld, lddv: ld });
      const dense1 = run(p, x);
      for (let t = 0; t < B * T; t++) {
        expect(maxAbsDiff(o.subarray(t * (HD + 5) + 2, t * (HD + 5) + 2 + HD), dense1.o.subarray(t * HD, (t + 1) * HD))).toBe(0);
        expect(o[t * (HD + 5)]).toBe(7); // untouched
        expect(o[t * (HD + 5) + HD + 4]).toBe(7);
        for (const [off, want] of [[0, dense1.dq], [HD, dense1.dk], [2 * HD, dense1.dv]] as const)
          expect(maxAbsDiff(dqkv.subarray(t * ld + off, t * ld + off + HD), want.subarray(t * HD, (t + 1) * HD))).toBe(0);
      }
      expect(maxAbsDiff(lse, dense1.lse)).toBe(0);
      expectMatches(dense1, reference(p, x));
    });
  });

  test("no keys (Tk = 0) gives O = 0, lse = -inf, dq = 0; empty batches do nothing", () => {
    withIsa(isa, () => {
      const p: Problem = { B: 2, H: 3, Tq: 4, Tk: 0, D: 8 };
      const x = inputs(p, 1);
      const got = run(p, x);
      expect(got.o.every((v) => v === 0)).toBe(true);
      expect(got.lse.every((v) => v === -Infinity)).toBe(true);
      expect(got.dq.every((v) => v === 0)).toBe(true);
      const none = run({ B: 0, H: 3, Tq: 4, Tk: 4, D: 8 }, inputs({ B: 0, H: 3, Tq: 4, Tk: 4, D: 8 }, 1));
      expect(none.o.length).toBe(0);
    });
  });

  test("results are the same from call to call", () => {
    withIsa(isa, () => {
      const p: Problem = { B: 2, H: 4, Tq: 100, Tk: 150, D: 32, dropoutP: 0.1, seed: 3 };
      const x = inputs(p, 21);
      const a = run(p, x), b = run(p, x);
      for (const k of ["o", "lse", "dq", "dk", "dv"] as const) expect(maxAbsDiff(a[k], b[k])).toBe(0);
    });
  });
});

describe("attention threading", () => {
  // One head is split over the threads by key ranges, each part's dq summed afterwards.
  test("1, 2 and 3 threads agree with the reference", () => {
    const p: Problem = { B: 1, H: 1, Tq: 100, Tk: 400, D: 32, causal: true, dropoutP: 0.1, seed: 4 };
    const x = inputs(p, 41), want = reference(p, x);
    const before = native.numThreads();
    try {
      for (const n of [1, 2, 3]) {
        native.setNumThreads(n);
        expectMatches(run(p, x), want);
      }
    } finally {
      native.setNumThreads(before);
    }
  });
});

describe("attention gradients against finite differences", () => {
  // L = Σ O·W; dL/dx by central differences of the kernel's forward, against the kernel's backward.
  const p: Problem = { B: 1, H: 2, Tq: 6, Tk: 9, D: 5, causal: true, keyMask: Uint8Array.from([1, 1, 0, 1, 1, 1, 0, 1, 1]), dropoutP: 0.2, seed: 5 };
  test.each(ISAS)("kernel backward = finite differences of the kernel forward on %s", (isa) => {
    withIsa(isa, () => {
      const x = inputs(p, 17);
      const got = run(p, x);
      const loss = () => {
        const o = new Float32Array(x.dout.length), lse = new Float32Array(p.B * p.H * p.Tq);
        native.attentionForward({ ...p, q: x.q, k: x.k, v: x.v, o, lse });
        let s = 0;
        for (let i = 0; i < o.length; i++) s += o[i] * x.dout[i];
        return s;
      };
      for (const [name, grad] of [["q", got.dq], ["k", got.dk], ["v", got.dv]] as const) {
        const t = x[name], idx = pickIndices(t.length, 6, name.charCodeAt(0));
        const h = 1e-2;
        for (const i of idx) {
          const t0 = t[i];
          t[i] = t0 + h;
          const lp = loss();
          t[i] = t0 - h;
          const lm = loss();
          t[i] = t0;
          expect(Math.abs((lp - lm) / (2 * h) - grad[i])).toBeLessThan(3e-3 + 1e-2 * Math.abs(grad[i]));
        }
      }
    });
  });

  test("the reference's analytic gradient = float64 finite differences of the reference", () => {
    const x = inputs(p, 23);
    const want = reference(p, x);
    const loss = (xx: Inputs) => {
      const o = reference(p, xx).o;
      let s = 0;
      for (let i = 0; i < o.length; i++) s += o[i] * x.dout[i];
      return s;
    };
    for (const [name, grad] of [["q", want.dq], ["k", want.dk], ["v", want.dv]] as const) {
      // Float64 copies so the step is not rounded to float32.
      const t64 = Float64Array.from(x[name]);
      for (const i of pickIndices(t64.length, 8, 3)) {
        const h = 1e-4;
        const at = (val: number) => {
          const t = Float64Array.from(t64);
          t[i] = val;
          return loss({ ...x, [name]: t as unknown as Float32Array });
        };
        const fd = (at(t64[i] + h) - at(t64[i] - h)) / (2 * h);
        expect(Math.abs(fd - grad[i])).toBeLessThan(1e-6 + 1e-6 * Math.abs(grad[i]));
      }
    }
  });
});

describe("attention against PyTorch goldens", () => {
  interface Golden {
    B: number; H: number; Tq: number; Tk: number; D: number; causal: boolean; scale: number | null; keyMask: number[] | null;
    q: number[]; k: number[]; v: number[]; dout: number[]; o: number[]; lse: number[]; dq: number[]; dk: number[]; dv: number[];
  }
  const golden = loadGolden<{ cases: Golden[] }>("attention.json");
  test.each(ISAS)("every golden case on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.cases) {
        const p: Problem = { B: g.B, H: g.H, Tq: g.Tq, Tk: g.Tk, D: g.D, causal: g.causal, scale: g.scale ?? undefined, keyMask: g.keyMask ? Uint8Array.from(g.keyMask) : undefined };
        const got = run(p, { q: f32(g.q), k: f32(g.k), v: f32(g.v), dout: f32(g.dout) });
        expectClose(got.o, g.o, 2e-5);
        expectClose(got.lse, g.lse, 2e-5);
        expectClose(got.dq, g.dq, 1e-4);
        expectClose(got.dk, g.dk, 1e-4);
        expectClose(got.dv, g.dv, 1e-4);
      }
    });
  });
});

describe("attention async and bad input", () => {
  test("Philox in this test matches the published known-answer vector", () => {
    expect(philoxBlock(0, 0)).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  });

  test("the Async variants give the same results", async () => {
    const p: Problem = { B: 2, H: 2, Tq: 40, Tk: 50, D: 16, causal: true, dropoutP: 0.1, seed: 9 };
    const x = inputs(p, 31);
    const sync = run(p, x);
    const o = new Float32Array(sync.o.length), lse = new Float32Array(sync.lse.length);
    const dq = new Float32Array(sync.dq.length), dk = new Float32Array(sync.dk.length), dv = new Float32Array(sync.dv.length);
    const args = { ...p, q: x.q, k: x.k, v: x.v, o, lse };
    await native.attentionForwardAsync(args);
    await native.attentionBackwardAsync({ ...args, dout: x.dout, dq, dk, dv });
    for (const [a, b] of [[o, sync.o], [lse, sync.lse], [dq, sync.dq], [dk, sync.dk], [dv, sync.dv]]) expect(maxAbsDiff(a, b)).toBe(0);
    await expect(native.attentionForwardAsync({ ...args, q: new Float32Array(3) })).rejects.toThrow(TunekitError);
  });

  test("errors name the op, the argument, what was given and what was expected", () => {
    const B = 1, H = 2, T = 3, D = 4;
    const n = B * T * H * D;
    const base = (): AttentionForwardArgs => ({
      B, H, Tq: T, Tk: T, D, q: new Float32Array(n), k: new Float32Array(n), v: new Float32Array(n), o: new Float32Array(n), lse: new Float32Array(B * H * T),
    });
    const fwd = (over: Record<string, unknown>) => () => native.attentionForward({ ...base(), ...over } as AttentionForwardArgs);
    expect(fwd({ q: new Float32Array(20) })).toThrow(new TunekitError("attentionForward: argument 'q' has 20 elements, expected at least 24"));
    expect(fwd({ ldk: 12 })).toThrow(new TunekitError("attentionForward: argument 'k' has 24 elements, expected at least 32"));
    expect(fwd({ ldq: 7 })).toThrow(/attentionForward: argument 'ldq' = 7 is out of range, expected 8\.\./);
    expect(fwd({ lse: new Float32Array(5) })).toThrow(/argument 'lse' has 5 elements, expected at least 6/);
    expect(fwd({ D: 0 })).toThrow(/argument 'D' = 0 is out of range, expected 1\.\./);
    expect(fwd({ H: 1.5 })).toThrow(/argument 'H' must be an integer/);
    expect(fwd({ dropoutP: 1 })).toThrow(new TunekitError("attentionForward: argument 'dropoutP' = 1 is out of range, expected [0, 1)"));
    expect(fwd({ dropoutP: -0.1 })).toThrow(/argument 'dropoutP' = -0.1 is out of range/);
    expect(fwd({ scale: Infinity })).toThrow(new TunekitError("attentionForward: argument 'scale' = inf, expected a finite number"));
    expect(fwd({ seed: 2 ** 53 + 2 })).toThrow(/argument 'seed' = 9007199254740994 is out of range, expected 0\.\.9007199254740992/);
    expect(fwd({ offset: -1 })).toThrow(/argument 'offset' = -1 is out of range/);
    expect(fwd({ keyMask: new Uint8Array(2) })).toThrow(/argument 'keyMask' has 2 elements, expected at least 3/);
    expect(fwd({ keyMask: new Float32Array(3) })).toThrow(/argument 'keyMask' must be a Uint8Array or a device buffer, got a Float32Array/);
    expect(fwd({ keyMask: Uint8Array.from([1, 2, 0]) })).toThrow(
      new TunekitError("attentionForward: argument 'keyMask' has 2 at index 1, expected 0 (padding) or 1 (attend)"),
    );
    expect(fwd({ causal: 1 })).toThrow(/argument 'causal' must be a boolean, got a number/);
    const shared = new Float32Array(2 * n);
    expect(fwd({ q: shared, o: shared.subarray(n - 1) })).toThrow(/attentionForward: output 'o' overlaps input 'q'/);
    expect(fwd({ o: shared, lse: shared.subarray(n - 2) })).toThrow(/attentionForward: output 'lse' overlaps output 'o'; expected separate buffers$/);
    expect(() => (native.attentionForward as unknown as (x: number) => void)(1)).toThrow(/attentionForward: expected one object of named arguments, got a number/);

    const bwd = (over: Record<string, unknown>) => () =>
      native.attentionBackward({ ...base(), dout: new Float32Array(n), dq: new Float32Array(n), dk: new Float32Array(n), dv: new Float32Array(n), ...over } as never);
    expect(bwd({ dout: undefined })).toThrow(new TunekitError("attentionBackward: argument 'dout' is missing"));
    expect(bwd({ dv: new Float32Array(3) })).toThrow(/attentionBackward: argument 'dv' has 3 elements, expected at least 24/);
    expect(bwd({ lddk: 3 })).toThrow(/argument 'lddk' = 3 is out of range, expected 8\.\./);
    const io = new Float32Array(n);
    expect(bwd({ o: io, dq: io })).toThrow(/attentionBackward: output 'dq' overlaps input 'o'/);
    expect(bwd({ dk: shared, dv: shared.subarray(4) })).toThrow(/output 'dv' overlaps output 'dk'; expected separate buffers or views of one packed buffer/);
    // Packed gradients with overlapping columns (offset 4 < H·D = 8) are refused; offset 8 with ld 24 is fine.
    const packed = new Float32Array(B * T * 24);
    expect(bwd({ dq: packed, dk: packed.subarray(4), lddq: 24, lddk: 24 })).toThrow(/output 'dk' overlaps output 'dq'/);
    expect(bwd({ dq: packed, dk: packed.subarray(8), dv: packed.subarray(16), lddq: 24, lddk: 24, lddv: 24 })).not.toThrow();
  });
});

import { native } from "../lib/native";
import type { LoraForwardArgs, LoraBackwardArgs } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, maxAbsDiff, loadGolden, f32, finiteDiff, pickIndices } from "./helpers";

// ---- Philox 4x32-10 in JS (native/cpu/philox.h), to recompute dropout masks independently ----------

/** hi and lo 32-bit words of the 64-bit product of two uint32. */
function mulhilo(a: number, b: number): [number, number] {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const ll = al * bl, lh = al * bh, hl = ah * bl, hh = ah * bh;
  const mid = (ll >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return [(hh + (lh >>> 16) + (hl >>> 16) + Math.floor(mid / 65536)) >>> 0, Math.imul(a, b) >>> 0];
}

function philoxBlock(ctr: number[], key: number[]): number[] {
  let [c0, c1, c2, c3] = ctr;
  let [k0, k1] = key;
  for (let round = 0; round < 10; round++) {
    const [hi0, lo0] = mulhilo(0xd2511f53, c0);
    const [hi1, lo1] = mulhilo(0xcd9e8d57, c2);
    [c0, c1, c2, c3] = [(hi1 ^ c1 ^ k0) >>> 0, lo1, (hi0 ^ c3 ^ k1) >>> 0, lo0];
    k0 = (k0 + 0x9e3779b9) >>> 0;
    k1 = (k1 + 0xbb67ae85) >>> 0;
  }
  return [c0, c1, c2, c3];
}

const TWO32 = 4294967296;
/** Uniform of Philox element e of (seed, offset): lane (offset+e) % 4 of block counter (offset+e) / 4. */
function philoxUniform(seed: number, offset: number, e: number): number {
  const i = offset + e, ctr = Math.floor(i / 4);
  const block = philoxBlock([ctr % TWO32, Math.floor(ctr / TWO32), 0, 0], [seed % TWO32, Math.floor(seed / TWO32)]);
  return (block[i % 4] >>> 8) / 16777216;
}

// ---- naive reference in float64 -------------------------------------------------------------------

interface Shape { M: number; in: number; out: number; r: number }
interface Case extends Shape { bias: boolean; scale: number; p: number; seed: number; offset: number }

/** dropout(x) with the kernel's rule: keep where uniform >= p (p as float32), scale 1/(1-p). */
function dropoutRef(x: ArrayLike<number>, c: Case): Float64Array {
  const p = Math.fround(c.p), out = new Float64Array(x.length);
  for (let e = 0; e < x.length; e++) out[e] = c.p === 0 ? x[e] : philoxUniform(c.seed, c.offset, e) >= p ? x[e] / (1 - p) : 0;
  return out;
}

/** C (m x n) = sum_k a(i,k) b(k,j) for element getters. */
function mm(m: number, n: number, k: number, a: (i: number, k: number) => number, b: (k: number, j: number) => number): Float64Array {
  const out = new Float64Array(m * n);
  for (let i = 0; i < m; i++)
    for (let j = 0; j < n; j++) {
      let s = 0;
      for (let q = 0; q < k; q++) s += a(i, q) * b(q, j);
      out[i * n + j] = s;
    }
  return out;
}

interface Data { x: Float32Array; W: Float32Array; bias: Float32Array | null; A: Float32Array; B: Float32Array; dy: Float32Array }

function forwardRef(c: Case, d: Data) {
  const xd = dropoutRef(d.x, c);
  const h = mm(c.M, c.r, c.in, (i, k) => xd[i * c.in + k], (k, j) => d.A[j * c.in + k]);
  const base = mm(c.M, c.out, c.in, (i, k) => d.x[i * c.in + k], (k, j) => d.W[j * c.in + k]);
  const lora = mm(c.M, c.out, c.r, (i, k) => h[i * c.r + k], (k, j) => d.B[j * c.r + k]);
  const y = base.map((v, e) => v + c.scale * lora[e] + (d.bias ? d.bias[e % c.out] : 0));
  return { xd, h, y };
}

function backwardRef(c: Case, d: Data) {
  const { xd, h } = forwardRef(c, d);
  const dB = mm(c.out, c.r, c.M, (i, k) => c.scale * d.dy[k * c.out + i], (k, j) => h[k * c.r + j]);
  const dh = mm(c.M, c.r, c.out, (i, k) => c.scale * d.dy[i * c.out + k], (k, j) => d.B[k * c.r + j]);
  const dA = mm(c.r, c.in, c.M, (i, k) => dh[k * c.r + i], (k, j) => xd[k * c.in + j]);
  const dxBase = mm(c.M, c.in, c.out, (i, k) => d.dy[i * c.out + k], (k, j) => d.W[k * c.in + j]);
  const dxd = mm(c.M, c.in, c.r, (i, k) => dh[i * c.r + k], (k, j) => d.A[k * c.in + j]);
  const dx = dxBase.map((v, e) => v + dropoutRef([dxd[e]], { ...c, offset: c.offset + e })[0]);
  const dbias = new Float64Array(c.out);
  for (let e = 0; e < c.M * c.out; e++) dbias[e % c.out] += d.dy[e];
  return { dx, dA, dB, dbias };
}

function data(c: Case, seed: number): Data {
  return {
    x: randn(c.M * c.in, seed), W: randn(c.out * c.in, seed + 1, 0.5), bias: c.bias ? randn(c.out, seed + 2) : null,
    A: randn(c.r * c.in, seed + 3, 0.5), B: randn(c.out * c.r, seed + 4, 0.5), dy: randn(c.M * c.out, seed + 5),
  };
}

const fwdArgs = (c: Case, d: Data, y: Float32Array, h: Float32Array): LoraForwardArgs => ({
  M: c.M, in: c.in, out: c.out, r: c.r, x: d.x, W: d.W, bias: d.bias, A: d.A, B: d.B, scale: c.scale,
  dropoutP: c.p, seed: c.seed, offset: c.offset, y, h,
});

function forward(c: Case, d: Data) {
  const y = new Float32Array(c.M * c.out).fill(NaN), h = new Float32Array(c.M * c.r).fill(NaN);
  native.loraForward(fwdArgs(c, d, y, h));
  return { y, h };
}

function bwdArgs(c: Case, d: Data, h: Float32Array, g: { dx?: Float32Array | null; dA: Float32Array; dB: Float32Array; dbias?: Float32Array | null }): LoraBackwardArgs {
  return { M: c.M, in: c.in, out: c.out, r: c.r, x: d.x, W: d.W, A: d.A, B: d.B, h, scale: c.scale, dropoutP: c.p, seed: c.seed, offset: c.offset, dy: d.dy, ...g };
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}
/** Largest error relative to the largest reference value (float32 GEMM sums). */
const relErr = (got: ArrayLike<number>, want: ArrayLike<number>) => maxAbsDiff(got, want) / Math.max(1, maxAbs(want));

const cases: Case[] = [
  { M: 1, in: 1, out: 1, r: 1, bias: true, scale: 2, p: 0, seed: 0, offset: 0 },
  { M: 7, in: 13, out: 5, r: 3, bias: false, scale: 0.5, p: 0, seed: 0, offset: 0 },
  { M: 7, in: 13, out: 5, r: 3, bias: true, scale: 0.5, p: 0.25, seed: 11, offset: 3 },
  { M: 33, in: 65, out: 17, r: 8, bias: true, scale: 1.5, p: 0.1, seed: 2 ** 40 + 5, offset: 2 ** 36 + 1 }, // counters past 2^32
  { M: 96, in: 200, out: 161, r: 16, bias: true, scale: 2, p: 0.3, seed: 7, offset: 1000 }, // threaded passes
  { M: 64, in: 129, out: 96, r: 4, bias: false, scale: 1, p: 0, seed: 0, offset: 0 },
];

describe("the JS Philox used as reference", () => {
  test("matches the Random123 known answers and philox.h", () => {
    expect(philoxBlock([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
    expect(philoxBlock([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])).toEqual([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
    expect(philoxBlock([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
    // values printed by tk::philox::uniform (64-bit seed and offset split into words)
    expect(philoxUniform(123456789, 5, 3)).toBeCloseTo(0.0918264389, 9);
    expect(philoxUniform(2 ** 32 + 1, 2 ** 33 + 1, 2)).toBeCloseTo(0.836668193, 8);
  });
});

// The references depend only on the case (not the ISA): compute each once.
const refs = new Map<Case, { data: Data; fwd: ReturnType<typeof forwardRef>; bwd: ReturnType<typeof backwardRef> }>();
function ref(c: Case) {
  let r = refs.get(c);
  if (!r) {
    const d = data(c, c.M + c.in);
    r = { data: d, fwd: forwardRef(c, d), bwd: backwardRef(c, d) };
    refs.set(c, r);
  }
  return r;
}

describe.each(ISAS)("lora on %s", (isa) => {
  test.each(cases)("forward M=$M in=$in out=$out r=$r bias=$bias p=$p matches the naive loop", (c) => {
    withIsa(isa, () => {
      const { data: d, fwd: want } = ref(c);
      const { y, h } = forward(c, d);
      expect(relErr(h, want.h)).toBeLessThan(1e-5);
      expect(relErr(y, want.y)).toBeLessThan(1e-5);
    });
  });

  test.each(cases)("backward M=$M in=$in out=$out r=$r bias=$bias p=$p matches the naive loop and accumulates", (c) => {
    withIsa(isa, () => {
      const { data: d, bwd: want } = ref(c);
      const { h } = forward(c, d);
      const dA0 = randn(c.r * c.in, 1), dB0 = randn(c.out * c.r, 2), db0 = randn(c.out, 3);
      const g = { dx: new Float32Array(c.M * c.in).fill(NaN), dA: dA0.slice(), dB: dB0.slice(), dbias: c.bias ? db0.slice() : null };
      native.loraBackward(bwdArgs(c, d, h, g));
      expect(relErr(g.dx, want.dx)).toBeLessThan(1e-5);
      expect(relErr(g.dA.map((v, i) => v - dA0[i]), want.dA)).toBeLessThan(1e-5);
      expect(relErr(g.dB.map((v, i) => v - dB0[i]), want.dB)).toBeLessThan(1e-5);
      if (g.dbias) expect(relErr(g.dbias.map((v, i) => v - db0[i]), want.dbias)).toBeLessThan(1e-5);
    });
  });

  test("dx and dbias are optional and do not change the other gradients", () => {
    withIsa(isa, () => {
      const c = cases[3], d = data(c, 5);
      const { h } = forward(c, d);
      const full = { dx: new Float32Array(c.M * c.in), dA: new Float32Array(c.r * c.in), dB: new Float32Array(c.out * c.r), dbias: new Float32Array(c.out) };
      const part = { dA: new Float32Array(c.r * c.in), dB: new Float32Array(c.out * c.r) };
      native.loraBackward(bwdArgs(c, d, h, full));
      native.loraBackward(bwdArgs(c, d, h, { ...part, dx: null, dbias: null }));
      expect(maxAbsDiff(part.dA, full.dA)).toBe(0);
      expect(maxAbsDiff(part.dB, full.dB)).toBe(0);
    });
  });

  test.each([0, 0.25])("finite differences of the kernel's own forward give dx, dA, dB, dbias (p=%s)", (p) => {
    withIsa(isa, () => {
      const c: Case = { M: 5, in: 9, out: 7, r: 3, bias: true, scale: 1.5, p, seed: 3, offset: 17 };
      const d = data(c, 21);
      // loss = sum(y * dy), so dloss/dy = dy
      const loss = () => forward(c, d).y.reduce((s, v, i) => s + v * d.dy[i], 0);
      const { h } = forward(c, d);
      const g = { dx: new Float32Array(c.M * c.in), dA: new Float32Array(c.r * c.in), dB: new Float32Array(c.out * c.r), dbias: new Float32Array(c.out) };
      native.loraBackward(bwdArgs(c, d, h, g));
      // y is linear in each of x, A, B, bias separately: a central difference is exact up to rounding
      for (const [name, param, grad] of [["x", d.x, g.dx], ["A", d.A, g.dA], ["B", d.B, g.dB], ["bias", d.bias!, g.dbias]] as const) {
        const idx = pickIndices(param.length, 12, name.length);
        const fd = finiteDiff(loss, param, idx, 0.1);
        idx.forEach((i, k) => expect(Math.abs(grad[i] - fd[k])).toBeLessThan(2e-3 * (1 + Math.abs(fd[k]))));
      }
      if (p > 0) expect(g.dx.some((v) => v !== 0)).toBe(true);
    });
  });

  test("W (and every input) stays bit-identical: there is no dW", () => {
    withIsa(isa, () => {
      const c = cases[4], d = data(c, 9);
      const before = { x: d.x.slice(), W: d.W.slice(), A: d.A.slice(), B: d.B.slice(), bias: d.bias!.slice(), dy: d.dy.slice() };
      const { h } = forward(c, d);
      const h0 = h.slice();
      const dW = new Float32Array(c.out * c.in).fill(42); // passed along: nothing may write it
      const args = { ...bwdArgs(c, d, h, { dx: new Float32Array(c.M * c.in), dA: new Float32Array(c.r * c.in), dB: new Float32Array(c.out * c.r), dbias: new Float32Array(c.out) }), dW };
      native.loraBackward(args);
      expect(Buffer.from(d.W.buffer).equals(Buffer.from(before.W.buffer))).toBe(true);
      for (const k of ["x", "A", "B", "bias", "dy"] as const) expect(maxAbsDiff(d[k]!, before[k])).toBe(0);
      expect(maxAbsDiff(h, h0)).toBe(0);
      expect(dW.every((v) => v === 42)).toBe(true);
    });
  });

  test("the dropout mask is Philox of (seed, offset), different for another offset, kept at rate 1-p", () => {
    withIsa(isa, () => {
      // r = 1 and A = e_0 make h[m] = dropout(x)[m, 0]: the mask of column 0 is read back directly
      const c: Case = { M: 2000, in: 3, out: 1, r: 1, bias: false, scale: 1, p: 0.375, seed: 99, offset: 5 };
      const d: Data = { x: new Float32Array(c.M * c.in).fill(1), W: new Float32Array(3), bias: null, A: f32([1, 0, 0]), B: f32([1]), dy: new Float32Array(c.M) };
      const { h } = forward(c, d);
      let kept = 0;
      for (let m = 0; m < c.M; m++) {
        const keep = philoxUniform(c.seed, c.offset, m * c.in) >= c.p;
        expect(h[m]).toBe(keep ? Math.fround(1 / (1 - c.p)) : 0);
        kept += keep ? 1 : 0;
      }
      expect(Math.abs(kept / c.M - (1 - c.p))).toBeLessThan(0.05);
      const other = forward({ ...c, offset: 6 }, d).h;
      expect(maxAbsDiff(other, h)).toBeGreaterThan(0);
      // block counters crossing 2^32 inside one SIMD group of blocks
      const far = { ...c, offset: 2 ** 34 - 203 }, hf = forward(far, d).h;
      for (let m = 0; m < c.M; m++) expect(hf[m]).toBe(philoxUniform(far.seed, far.offset, m * c.in) >= c.p ? Math.fround(1 / (1 - c.p)) : 0);
    });
  });
});

interface GoldenCase {
  M: number; in: number; out: number; r: number; scale: number;
  x: number[]; W: number[]; bias: number[] | null; A: number[]; B: number[]; dy: number[];
  y: number[]; h: number[]; dx: number[]; dA: number[]; dB: number[]; dbias: number[] | null;
}

describe("lora against PyTorch goldens (autograd of x@W.T + b + s*(x@A.T)@B.T)", () => {
  const golden = loadGolden<{ cases: GoldenCase[] }>("lora.json");
  test.each(ISAS)("every golden case on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.cases) {
        const c: Case = { M: g.M, in: g.in, out: g.out, r: g.r, bias: g.bias !== null, scale: g.scale, p: 0, seed: 0, offset: 0 };
        const d: Data = { x: f32(g.x), W: f32(g.W), bias: g.bias && f32(g.bias), A: f32(g.A), B: f32(g.B), dy: f32(g.dy) };
        const { y, h } = forward(c, d);
        expect(relErr(y, g.y)).toBeLessThan(1e-5);
        expect(relErr(h, g.h)).toBeLessThan(1e-5);
        const grads = { dx: new Float32Array(g.M * g.in), dA: new Float32Array(g.r * g.in), dB: new Float32Array(g.out * g.r), dbias: g.bias && new Float32Array(g.out) };
        native.loraBackward(bwdArgs(c, d, h, grads));
        expect(relErr(grads.dx, g.dx)).toBeLessThan(1e-5);
        expect(relErr(grads.dA, g.dA)).toBeLessThan(1e-5);
        expect(relErr(grads.dB, g.dB)).toBeLessThan(1e-5);
        if (g.dbias) expect(relErr(grads.dbias!, g.dbias)).toBeLessThan(1e-5);
      }
    });
  });
});

describe("lora async and bad input", () => {
  const c: Case = { M: 3, in: 4, out: 5, r: 2, bias: true, scale: 2, p: 0.2, seed: 1, offset: 0 };

  test("the Async forms give the same results", async () => {
    const big = cases[4], d = data(big, 4);
    const a = forward(big, d), y = new Float32Array(a.y.length), h = new Float32Array(a.h.length);
    await native.loraForwardAsync(fwdArgs(big, d, y, h));
    expect(maxAbsDiff(y, a.y)).toBe(0);
    const g1 = { dx: new Float32Array(big.M * big.in), dA: new Float32Array(big.r * big.in), dB: new Float32Array(big.out * big.r) };
    const g2 = { dx: new Float32Array(big.M * big.in), dA: new Float32Array(big.r * big.in), dB: new Float32Array(big.out * big.r) };
    native.loraBackward(bwdArgs(big, d, h, g1));
    await native.loraBackwardAsync(bwdArgs(big, d, h, g2));
    expect(maxAbsDiff(g1.dx, g2.dx)).toBe(0);
    expect(maxAbsDiff(g1.dA, g2.dA)).toBe(0);
  });

  test("loraForward errors name the argument, what was given and what was expected", () => {
    const d = data(c, 1);
    const ok = () => fwdArgs(c, d, new Float32Array(15), new Float32Array(6));
    const err = (over: Record<string, unknown>) => () => native.loraForward({ ...ok(), ...over } as LoraForwardArgs);
    expect(err({ W: new Float32Array(21) })).toThrow(new TunekitError("loraForward: argument 'W' has 21 elements, expected 20 ([out, in] = [5, 4])"));
    expect(err({ A: d.B })).toThrow(new TunekitError("loraForward: argument 'A' has 10 elements, expected 8 ([r, in] = [2, 4])"));
    expect(err({ bias: new Float32Array(4) })).toThrow(new TunekitError("loraForward: argument 'bias' has 4 elements, expected 5 ([out] = [5])"));
    expect(err({ h: new Float32Array(5) })).toThrow(/loraForward: argument 'h' has 5 elements, expected 6 \(\[M, r\] = \[3, 2\]\)/);
    expect(err({ r: 0 })).toThrow(/loraForward: argument 'r' = 0 is out of range, expected 1\.\./);
    expect(err({ dropoutP: 1 })).toThrow(new TunekitError("loraForward: argument 'dropoutP' = 1 is out of range, expected 0 <= p < 1"));
    expect(err({ dropoutP: -0.5 })).toThrow(/argument 'dropoutP' = -0.5 is out of range/);
    expect(err({ scale: Infinity })).toThrow(new TunekitError("loraForward: argument 'scale' must be finite, got inf"));
    expect(err({ scale: undefined })).toThrow(new TunekitError("loraForward: argument 'scale' is missing"));
    expect(err({ seed: -1 })).toThrow(/loraForward: argument 'seed' = -1 is out of range/);
    expect(err({ x: new Float64Array(12) })).toThrow(/loraForward: argument 'x' must be a Float32Array or a device buffer, got a Float64Array/);
    expect(err({})).not.toThrow();
    const shared = new Float32Array(40);
    expect(err({ x: shared.subarray(0, 12), y: shared.subarray(10, 25) })).toThrow(new TunekitError("loraForward: output 'y' overlaps input 'x'; expected separate buffers"));
    expect(err({ y: shared.subarray(0, 15), h: shared.subarray(14, 20) })).toThrow(/loraForward: output 'h' overlaps input 'y'/);
  });

  test("loraBackward errors name the argument, what was given and what was expected", () => {
    const d = data(c, 2), h = new Float32Array(6);
    const ok = () => bwdArgs(c, d, h, { dx: new Float32Array(12), dA: new Float32Array(8), dB: new Float32Array(10), dbias: new Float32Array(5) });
    const err = (over: Record<string, unknown>) => () => native.loraBackward({ ...ok(), ...over } as LoraBackwardArgs);
    expect(err({ dy: new Float32Array(14) })).toThrow(new TunekitError("loraBackward: argument 'dy' has 14 elements, expected 15 ([M, out] = [3, 5])"));
    expect(err({ dA: undefined })).toThrow(new TunekitError("loraBackward: argument 'dA' is missing"));
    expect(err({ h: undefined })).toThrow(new TunekitError("loraBackward: argument 'h' is missing"));
    expect(err({ dx: new Float32Array(11) })).toThrow(/loraBackward: argument 'dx' has 11 elements, expected 12/);
    expect(err({ dA: d.A })).toThrow(new TunekitError("loraBackward: output 'dA' overlaps input 'A'; expected separate buffers"));
    expect(err({ dx: d.x })).toThrow(/loraBackward: output 'dx' overlaps input 'x'/);
    const shared = new Float32Array(30);
    expect(err({ dA: shared.subarray(0, 8), dB: shared.subarray(4, 14) })).toThrow(/loraBackward: output 'dB' overlaps input 'dA'/);
    expect(err({ in: 5 })).toThrow(/loraBackward: argument 'x' has 12 elements, expected 15/);
  });

  test("async errors reject with TunekitError", async () => {
    await expect(native.loraForwardAsync({ ...fwdArgs(c, data(c, 1), new Float32Array(15), new Float32Array(6)), r: 0 })).rejects.toThrow(TunekitError);
  });
});

// The task-head and loss ops (native/binding/heads.cc): unaryForward/Backward, copyStrided,
// maskedMeanForward/Backward, cosineForward/Backward, l2NormForward/Backward, mse/bce Forward/Backward,
// dotForward, axpby, and scale's device-side factor sp. Each against a naive float64 loop, every
// backward against finite differences of the kernel's own forward, PyTorch goldens
// (test/fixtures/golden_heads.py), odd sizes, every ISA, thread-count determinism, bad input.
import { native } from "../lib/native";
import type { UnaryKind } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, rng, maxAbsDiff, loadGolden, f32, finiteDiff, pickIndices } from "./helpers";

const KINDS: UnaryKind[] = ["tanh", "relu", "sigmoid", "silu"];
const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));
const F: Record<UnaryKind, (x: number) => number> = {
  tanh: Math.tanh,
  relu: (x) => (x < 0 ? 0 : x),
  sigmoid,
  silu: (x) => x * sigmoid(x),
};
const DF: Record<UnaryKind, (x: number) => number> = {
  tanh: (x) => 1 - Math.tanh(x) ** 2,
  relu: (x) => (x > 0 ? 1 : 0),
  sigmoid: (x) => sigmoid(x) * (1 - sigmoid(x)),
  silu: (x) => sigmoid(x) * (1 + x * (1 - sigmoid(x))),
};

/** max |got - want| / (1 + |scale|): absolute near 0, relative for large values. */
function maxScaledDiff(got: ArrayLike<number>, want: ArrayLike<number>, scale: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]) / (1 + Math.abs(scale[i]));
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}
/** max |got - want| relative to the largest |want| (at least 1). */
function maxNormDiff(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let big = 1;
  for (let i = 0; i < want.length; i++) big = Math.max(big, Math.abs(want[i]));
  return maxAbsDiff(got, want) / big;
}
const dot = (w: ArrayLike<number>, y: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += w[i] * y[i];
  return s;
};
const one = (v: number) => f32([v]);

function withThreads<T>(n: number, fn: () => T): T {
  const before = native.numThreads();
  native.setNumThreads(n);
  try {
    return fn();
  } finally {
    native.setNumThreads(before);
  }
}

// ---- naive float64 references ----------------------------------------------------------------------
function maskedMeanRef(B: number, T: number, C: number, x: ArrayLike<number>, mask: Uint8Array) {
  const y = new Float64Array(B * C), counts = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) if (mask[b * T + t]) counts[b]++;
    const n = Math.max(counts[b], 1e-9);
    for (let t = 0; t < T; t++) if (mask[b * T + t]) for (let c = 0; c < C; c++) y[b * C + c] += x[(b * T + t) * C + c] / n;
  }
  return { y, counts };
}

function cosineRef(N: number, C: number, a: ArrayLike<number>, b: ArrayLike<number>, dy: ArrayLike<number>) {
  const y = new Float64Array(N), da = new Float64Array(N * C), db = new Float64Array(N * C);
  for (let r = 0; r < N; r++) {
    let d = 0, saa = 0, sbb = 0;
    for (let c = 0; c < C; c++) {
      const u = a[r * C + c], v = b[r * C + c];
      d += u * v; saa += u * u; sbb += v * v;
    }
    const ra = Math.sqrt(saa), rb = Math.sqrt(sbb), na = Math.max(ra, 1e-8), nb = Math.max(rb, 1e-8);
    const cos = d / (na * nb);
    y[r] = cos;
    for (let c = 0; c < C; c++) {
      const u = a[r * C + c], v = b[r * C + c];
      // A clamped norm is a constant: only the cross term is left.
      da[r * C + c] = dy[r] * (v / (na * nb) - (ra > 1e-8 ? (cos * u) / (na * na) : 0));
      db[r * C + c] = dy[r] * (u / (na * nb) - (rb > 1e-8 ? (cos * v) / (nb * nb) : 0));
    }
  }
  return { y, da, db };
}

function l2normRef(N: number, C: number, x: ArrayLike<number>, dy: ArrayLike<number>) {
  const y = new Float64Array(N * C), norm = new Float64Array(N), dx = new Float64Array(N * C);
  for (let r = 0; r < N; r++) {
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[r * C + c] ** 2;
    const raw = Math.sqrt(ss), n = Math.max(raw, 1e-8);
    norm[r] = n;
    for (let c = 0; c < C; c++) y[r * C + c] = x[r * C + c] / n;
    let s = 0;
    if (raw > 1e-8) for (let c = 0; c < C; c++) s += y[r * C + c] * dy[r * C + c];
    for (let c = 0; c < C; c++) dx[r * C + c] = (dy[r * C + c] - y[r * C + c] * s) / n;
  }
  return { y, norm, dx };
}

type LossOp = "mse" | "bce";
const LOSS_TERM: Record<LossOp, (x: number, t: number) => number> = {
  mse: (x, t) => (x - t) ** 2,
  bce: (z, t) => Math.max(z, 0) - z * t + Math.log1p(Math.exp(-Math.abs(z))),
};
const LOSS_GRAD: Record<LossOp, (x: number, t: number) => number> = {
  mse: (x, t) => 2 * (x - t),
  bce: (z, t) => sigmoid(z) - t,
};
function lossRef(op: LossOp, x: ArrayLike<number>, t: ArrayLike<number>, divisor: number, dy: number) {
  const n = x.length, div = divisor > 0 ? divisor : n;
  let s = 0;
  for (let i = 0; i < n; i++) s += LOSS_TERM[op](x[i], t[i]);
  return { loss: div > 0 ? s / div : 0, dx: Float64Array.from(x, (v, i) => (dy * LOSS_GRAD[op](v, t[i])) / div) };
}
function lossForward(op: LossOp) {
  return op === "mse" ? native.mseForward : native.bceForward;
}
function lossBackward(op: LossOp) {
  return op === "mse" ? native.mseBackward : native.bceBackward;
}

function randomMask(B: number, T: number, seed: number): Uint8Array {
  const r = rng(seed), mask = new Uint8Array(B * T);
  for (let i = 0; i < B * T; i++) mask[i] = r() < 0.6 ? 1 : 0;
  for (let b = 0; b < B; b++) mask[b * T] = 1; // every row has a real token ...
  if (B > 2) mask.fill(0, T, 2 * T); // ... but row 1: padding only
  return mask;
}

const sizes = [1, 7, 63, 65, 1000, 1023, 40000];

describe.each(ISAS)("head ops on %s", (isa) => {
  describe.each(KINDS)("unary %s", (kind) => {
    test.each(sizes)("n=%i forward and backward match the naive loop; in place gives the same bits", (n) => {
      withIsa(isa, () => {
        const x = randn(n, n + 11, 3), dy = randn(n, n + 12);
        if (n > 10) (x[0] = 0), (x[1] = -40), (x[2] = 40), (x[3] = 1e-7), (x[4] = -90);
        const y = new Float32Array(n), dx = new Float32Array(n);
        native.unaryForward({ n, kind, x, y });
        native.unaryBackward({ n, kind, x, y, dy, dx });
        expect(maxScaledDiff(y, Array.from(x, F[kind]), x)).toBeLessThan(1e-6);
        const want = Array.from(x, (v, i) => dy[i] * DF[kind](v));
        expect(maxScaledDiff(dx, want, Array.from(x, (v, i) => (1 + Math.abs(v)) * (1 + Math.abs(dy[i])) - 1))).toBeLessThan(2e-6);
        // y = x and dx = dy in place.
        const xi = x.slice(), di = dy.slice();
        native.unaryForward({ n, kind, x: xi, y: xi });
        expect(maxAbsDiff(xi, y)).toBe(0);
        native.unaryBackward({ n, kind, x, y, dy: di, dx: di });
        expect(maxAbsDiff(di, dx)).toBe(0);
      });
    });

    test("backward matches finite differences of the kernel's forward; reads only what its kind needs", () => {
      withIsa(isa, () => {
        const n = 101, x = randn(n, 71, 2), w = randn(n, 72), y = new Float32Array(n);
        for (let i = 0; i < n; i++) if (Math.abs(x[i]) < 0.05) x[i] = 0.5; // relu's kink is no place for a difference
        const f = () => {
          native.unaryForward({ n, kind, x, y });
          return dot(w, y);
        };
        f();
        const dx = new Float32Array(n);
        // The argument the kind does not use is left out: silu reads x, the others y.
        if (kind === "silu") native.unaryBackward({ n, kind, x, dy: w, dx });
        else native.unaryBackward({ n, kind, y, dy: w, dx });
        const idx = pickIndices(n, 25, 73);
        expect(maxAbsDiff(idx.map((i) => dx[i]), finiteDiff(f, x, idx, 1e-3))).toBeLessThan(2e-3);
      });
    });
  });

  test("unary: NaN in gives NaN out, relu too", () => {
    withIsa(isa, () => {
      for (const kind of KINDS) {
        const x = f32([NaN, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, NaN]), y = new Float32Array(17);
        native.unaryForward({ n: 17, kind, x, y });
        expect([kind, Number.isNaN(y[0]), Number.isNaN(y[16])]).toEqual([kind, true, true]);
        expect(y.slice(1, 16).every(Number.isFinite)).toBe(true);
      }
    });
  });

  test.each([
    [1, 1, 1, 1], [5, 1, 3, 1], [7, 3, 10, 3], [64, 17, 40, 19], [300, 65, 65, 100], [2000, 9, 31, 9],
  ])("copyStrided rows=%i cols=%i srcLd=%i dstLd=%i, copy and accumulate", (rows, cols, srcLd, dstLd) => {
    withIsa(isa, () => {
      const src = randn((rows - 1) * srcLd + cols + 5, rows + 1), dst0 = randn(rows * dstLd, rows + 2);
      const at = (r: number, c: number) => r * dstLd + c;
      const dst = dst0.slice();
      native.copyStrided({ rows, cols, src, srcLd, dst, dstLd });
      const want = dst0.slice(); // elements between the rows are left alone
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) want[at(r, c)] = src[r * srcLd + c];
      expect(maxAbsDiff(dst, want)).toBe(0);
      const acc = dst0.slice();
      native.copyStrided({ rows, cols, src, srcLd, dst: acc, dstLd, accumulate: true });
      const wantAcc = dst0.slice();
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) wantAcc[at(r, c)] = Math.fround(dst0[at(r, c)] + src[r * srcLd + c]);
      expect(maxAbsDiff(acc, wantAcc)).toBe(0);
    });
  });

  test("copyStrided is selectColumn: column j of (rows, K) out, and its gradient back into the column", () => {
    withIsa(isa, () => {
      const rows = 37, K = 2, x = randn(rows * K, 5);
      for (const j of [0, 1]) {
        const y = new Float32Array(rows);
        native.copyStrided({ rows, cols: 1, src: x.subarray(j), srcLd: K, dst: y, dstLd: 1 });
        expect(Array.from(y)).toEqual(Array.from({ length: rows }, (_, r) => x[r * K + j]));
        const g = new Float32Array(rows * K).fill(1), gy = randn(rows, 6 + j);
        native.copyStrided({ rows, cols: 1, src: gy, dst: g.subarray(j), dstLd: K, accumulate: true });
        for (let r = 0; r < rows; r++) {
          expect(g[r * K + j]).toBe(Math.fround(1 + gy[r]));
          expect(g[r * K + 1 - j]).toBe(1);
        }
      }
    });
  });

  test.each([[1, 1, 1], [3, 5, 4], [4, 9, 65], [2, 130, 300], [6, 33, 17]])("maskedMean B=%i T=%i C=%i forward and backward", (B, T, C) => {
    withIsa(isa, () => {
      const x = randn(B * T * C, B + T + C), mask = randomMask(B, T, C), dy = randn(B * C, 7);
      const y = new Float32Array(B * C).fill(NaN), dx = new Float32Array(B * T * C).fill(NaN);
      native.maskedMeanForward({ B, T, C, x, mask, y });
      native.maskedMeanBackward({ B, T, C, mask, dy, dx });
      const ref = maskedMeanRef(B, T, C, x, mask);
      expect(maxNormDiff(y, ref.y)).toBeLessThan(1e-6);
      const want = new Float64Array(B * T * C);
      for (let b = 0; b < B; b++)
        for (let t = 0; t < T; t++)
          if (mask[b * T + t]) for (let c = 0; c < C; c++) want[(b * T + t) * C + c] = dy[b * C + c] / ref.counts[b];
      expect(maxNormDiff(dx, want)).toBeLessThan(1e-7);
      if (B > 2) {
        // A row of padding only: y = 0 and no gradient.
        expect(Array.from(y.subarray(C, 2 * C)).every((v) => v === 0)).toBe(true);
        expect(Array.from(dx.subarray(T * C, 2 * T * C)).every((v) => v === 0)).toBe(true);
      }
      // Mask bytes other than 0 and 1 count as real tokens.
      const y2 = new Float32Array(B * C);
      native.maskedMeanForward({ B, T, C, x, mask: mask.map((m) => m * 7), y: y2 });
      expect(maxAbsDiff(y2, y)).toBe(0);
    });
  });

  test("maskedMean backward matches finite differences of its forward", () => {
    withIsa(isa, () => {
      const B = 3, T = 6, C = 5, x = randn(B * T * C, 1), mask = randomMask(B, T, 2), w = randn(B * C, 3);
      const y = new Float32Array(B * C);
      const f = () => {
        native.maskedMeanForward({ B, T, C, x, mask, y });
        return dot(w, y);
      };
      const dx = new Float32Array(B * T * C);
      native.maskedMeanBackward({ B, T, C, mask, dy: w, dx });
      const idx = Array.from({ length: B * T * C }, (_, i) => i);
      expect(maxAbsDiff(dx, finiteDiff(f, x, idx))).toBeLessThan(1e-3);
    });
  });

  test.each([[1, 1], [4, 7], [9, 64], [5, 300], [300, 33]])("cosine N=%i C=%i forward and backward match the naive loop", (N, C) => {
    withIsa(isa, () => {
      const a = randn(N * C, N + C), b = randn(N * C, N + C + 1, 2), dy = randn(N, 3);
      const y = new Float32Array(N), da = new Float32Array(N * C), db = new Float32Array(N * C);
      native.cosineForward({ N, C, a, b, y });
      native.cosineBackward({ N, C, a, b, dy, da, db });
      const ref = cosineRef(N, C, a, b, dy);
      expect(maxAbsDiff(y, ref.y)).toBeLessThan(1e-6);
      expect(maxNormDiff(da, ref.da)).toBeLessThan(1e-6);
      expect(maxNormDiff(db, ref.db)).toBeLessThan(1e-6);
      // One gradient alone gives the same bits.
      const da2 = new Float32Array(N * C), db2 = new Float32Array(N * C);
      native.cosineBackward({ N, C, a, b, dy, da: da2 });
      native.cosineBackward({ N, C, a, b, dy, db: db2 });
      expect(maxAbsDiff(da2, da)).toBe(0);
      expect(maxAbsDiff(db2, db)).toBe(0);
    });
  });

  test("cosine backward matches finite differences; a zero row's norm is clamped (y = 0, finite gradient)", () => {
    withIsa(isa, () => {
      const N = 3, C = 8, a = randn(N * C, 31), b = randn(N * C, 32), w = randn(N, 33), y = new Float32Array(N);
      const f = () => {
        native.cosineForward({ N, C, a, b, y });
        return dot(w, y);
      };
      const da = new Float32Array(N * C), db = new Float32Array(N * C);
      native.cosineBackward({ N, C, a, b, dy: w, da, db });
      const idx = Array.from({ length: N * C }, (_, i) => i);
      expect(maxAbsDiff(da, finiteDiff(f, a, idx, 1e-3))).toBeLessThan(2e-3);
      expect(maxAbsDiff(db, finiteDiff(f, b, idx, 1e-3))).toBeLessThan(2e-3);
      const z = a.slice();
      z.fill(0, 0, C);
      native.cosineForward({ N, C, a: z, b, y });
      native.cosineBackward({ N, C, a: z, b, dy: w, da, db });
      expect(y[0]).toBe(0);
      const ref = cosineRef(N, C, z, b, w);
      expect(maxNormDiff(da, ref.da)).toBeLessThan(1e-6); // dy·b/(1e-8·‖b‖): large, exact
      expect(Array.from(db.subarray(0, C)).every((v) => v === 0)).toBe(true);
    });
  });

  test.each([[1, 1], [3, 5], [8, 64], [4, 257], [200, 31]])("l2Norm N=%i C=%i forward and backward match the naive loop", (N, C) => {
    withIsa(isa, () => {
      const x = randn(N * C, N * C, 2), dy = randn(N * C, 9);
      const y = new Float32Array(N * C), norm = new Float32Array(N), dx = new Float32Array(N * C);
      native.l2NormForward({ N, C, x, y, norm });
      native.l2NormBackward({ N, C, y, norm, dy, dx });
      const ref = l2normRef(N, C, x, dy);
      expect(maxAbsDiff(y, ref.y)).toBeLessThan(1e-6);
      expect(maxNormDiff(norm, ref.norm)).toBeLessThan(1e-6);
      expect(maxNormDiff(dx, ref.dx)).toBeLessThan(2e-6);
      // In place: y = x, dx = dy.
      const xi = x.slice(), di = dy.slice();
      native.l2NormForward({ N, C, x: xi, y: xi, norm });
      expect(maxAbsDiff(xi, y)).toBe(0);
      native.l2NormBackward({ N, C, y, norm, dy: di, dx: di });
      expect(maxAbsDiff(di, dx)).toBe(0);
    });
  });

  test("l2Norm backward matches finite differences; a tiny row is clamped (dx = dy / 1e-8)", () => {
    withIsa(isa, () => {
      const N = 3, C = 6, x = randn(N * C, 41), w = randn(N * C, 42);
      const y = new Float32Array(N * C), norm = new Float32Array(N), dx = new Float32Array(N * C);
      const f = () => {
        native.l2NormForward({ N, C, x, y, norm });
        return dot(w, y);
      };
      f();
      native.l2NormBackward({ N, C, y, norm, dy: w, dx });
      const idx = Array.from({ length: N * C }, (_, i) => i);
      expect(maxAbsDiff(dx, finiteDiff(f, x, idx, 1e-3))).toBeLessThan(2e-3);
      const tiny = x.map((v, i) => (i < C ? v * 1e-12 : v));
      native.l2NormForward({ N, C, x: tiny, y, norm });
      expect(norm[0]).toBe(Math.fround(1e-8));
      native.l2NormBackward({ N, C, y, norm, dy: w, dx });
      expect(maxNormDiff(dx.subarray(0, C), Array.from(w.subarray(0, C), (v) => v / Math.fround(1e-8)))).toBeLessThan(1e-7);
      expect(maxNormDiff(dx, l2normRef(N, C, tiny, w).dx)).toBeLessThan(1e-6);
    });
  });

  describe.each(["mse", "bce"] as LossOp[])("%s loss", (op) => {
    const fwd = lossForward(op), bwd = lossBackward(op);
    test.each([[1, 0], [7, 0], [65, 2.5], [1000, 1], [40000, 0], [100003, 7]])("n=%i divisor=%d: loss and dx match the naive loop", (n, divisor) => {
      withIsa(isa, () => {
        const x = randn(n, n, op === "bce" ? 6 : 2), t = op === "bce" ? Float32Array.from(randn(n, n + 1), (v) => (v > 0 ? 1 : 0)) : randn(n, n + 1);
        if (op === "bce" && n > 10) (x[0] = 100), (x[1] = -100), (x[2] = 0), (t[3] = 0.3);
        const loss = new Float32Array(1), dx = new Float32Array(n).fill(NaN);
        fwd({ n, x, target: t, divisor, loss });
        bwd({ n, x, target: t, divisor, dy: one(-1.5), dx });
        const ref = lossRef(op, x, t, divisor, -1.5);
        expect(Math.abs(loss[0] - ref.loss)).toBeLessThan(1e-6 * Math.max(1, Math.abs(ref.loss)));
        expect(maxNormDiff(dx, ref.dx)).toBeLessThan(1e-6);
      });
    });

    test("backward matches finite differences of the forward (dy = 1)", () => {
      withIsa(isa, () => {
        const n = 20, x = randn(n, 51, 2), t = op === "bce" ? Float32Array.from(randn(n, 52), (v) => 1 / (1 + Math.exp(-v))) : randn(n, 52);
        const loss = new Float32Array(1), f = () => (fwd({ n, x, target: t, divisor: 3, loss }), loss[0]);
        const dx = new Float32Array(n);
        bwd({ n, x, target: t, divisor: 3, dy: one(1), dx });
        const idx = Array.from({ length: n }, (_, i) => i);
        expect(maxAbsDiff(dx, finiteDiff(f, x, idx, 1e-2))).toBeLessThan(2e-3);
      });
    });

    test("the loss is the same bits on 1 and 3 threads; dx may be x", () => {
      withIsa(isa, () => {
        const n = 200003, x = randn(n, 61), t = randn(n, 62, 0.5).map((v) => (op === "bce" ? Math.abs(v) % 1 : v));
        const run = (threads: number) => withThreads(threads, () => {
          const loss = new Float32Array(1);
          fwd({ n, x, target: t, loss });
          return loss[0];
        });
        expect(run(1)).toBe(run(3));
        const dx = new Float32Array(n), xi = x.slice();
        bwd({ n, x, target: t, dy: one(2), dx });
        bwd({ n, x: xi, target: t, dy: one(2), dx: xi });
        expect(maxAbsDiff(xi, dx)).toBe(0);
      });
    });

    test("n = 0: loss 0 with the mean", () => {
      withIsa(isa, () => {
        const loss = one(NaN);
        fwd({ n: 0, x: new Float32Array(0), target: new Float32Array(0), loss });
        expect(loss[0]).toBe(0);
      });
    });
  });

  test.each([1, 7, 1000, 16385, 100003])("dotForward n=%i matches the naive sum; its backward is axpby with dy", (n) => {
    withIsa(isa, () => {
      const x = randn(n, n + 3), w = randn(n, n + 4), y = one(NaN);
      native.dotForward({ n, x, w, y });
      const want = dot(x, w);
      expect(Math.abs(y[0] - want)).toBeLessThan(1e-6 * Math.max(1, Math.abs(want)));
      // d/dx Σ x·w = w: dx += dy[0]·w.
      const dx0 = randn(n, 5), dx = dx0.slice();
      native.axpby({ n, a: w, ap: one(-0.5), beta: 1, b: dx, y: dx });
      expect(maxNormDiff(dx, Array.from(dx0, (v, i) => v - 0.5 * w[i]))).toBeLessThan(3e-7);
    });
  });

  test("dotForward is the same bits on 1 and 3 threads", () => {
    withIsa(isa, () => {
      const n = 300001, x = randn(n, 81), w = randn(n, 82);
      const run = (threads: number) => withThreads(threads, () => {
        const y = new Float32Array(1);
        native.dotForward({ n, x, w, y });
        return y[0];
      });
      expect(run(1)).toBe(run(3));
    });
  });

  test.each(sizes)("axpby n=%i: y = alpha·ap·a + beta·b, in place on a or b, b not read when absent or beta = 0", (n) => {
    withIsa(isa, () => {
      const a = randn(n, 91), b = randn(n, 92), y = new Float32Array(n);
      // Two roundings (scalar) or one (fma): within a few float32 ulps of the largest term.
      const near = (got: Float32Array, want: (i: number) => number) => expect(maxNormDiff(got, Array.from(got, (_, i) => want(i)))).toBeLessThan(3e-7);
      native.axpby({ n, alpha: 0.5, a, beta: 0.5, b, y }); // QA's (start + end) / 2
      near(y, (i) => 0.5 * a[i] + 0.5 * b[i]);
      native.axpby({ n, alpha: 2, a, ap: one(-3), beta: -1, b, y });
      near(y, (i) => -6 * a[i] - b[i]);
      const ya = a.slice(), yb = b.slice();
      native.axpby({ n, alpha: 2, a: ya, ap: one(-3), beta: -1, b, y: ya });
      native.axpby({ n, alpha: 2, a, ap: one(-3), beta: -1, b: yb, y: yb });
      expect(maxAbsDiff(ya, y)).toBe(0);
      expect(maxAbsDiff(yb, y)).toBe(0);
      native.axpby({ n, alpha: 3, a, y });
      expect(maxAbsDiff(y, Array.from(a, (v) => Math.fround(3 * v)))).toBe(0);
      const nan = new Float32Array(n).fill(NaN);
      native.axpby({ n, alpha: 3, a, beta: 0, b: nan, y: nan });
      expect(maxAbsDiff(nan, Array.from(a, (v) => Math.fround(3 * v)))).toBe(0);
    });
  });

  test("scale by s·sp[0] (an upstream gradient in native memory)", () => {
    withIsa(isa, () => {
      const n = 1001, x = randn(n, 95), xs = x.slice();
      native.scale({ n, x: xs, s: 0.25, sp: one(-3) });
      expect(maxAbsDiff(xs, Array.from(x, (v) => Math.fround(v * Math.fround(0.25 * -3))))).toBe(0);
    });
  });
});

describe("head ops against PyTorch goldens", () => {
  interface Golden {
    unary: { kind: UnaryKind; x: number[]; dy: number[]; y: number[]; dx: number[] }[];
    masked_mean: { B: number; T: number; C: number; x: number[]; mask: number[]; dy: number[]; y: number[]; dx: number[] }[];
    cosine: { N: number; C: number; a: number[]; b: number[]; dy: number[]; y: number[]; da: number[]; db: number[] }[];
    l2norm: { N: number; C: number; x: number[]; dy: number[]; y: number[]; norm: number[]; dx: number[] }[];
    losses: { op: LossOp; n: number; divisor: number; dy: number; x: number[]; target: number[]; loss: number; dx: number[] }[];
  }
  const golden = loadGolden<Golden>("heads.json");

  test.each(ISAS)("torch.tanh / relu / sigmoid / F.silu and their backward on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.unary) {
        const n = g.x.length, x = f32(g.x), y = new Float32Array(n), dx = new Float32Array(n);
        native.unaryForward({ n, kind: g.kind, x, y });
        native.unaryBackward({ n, kind: g.kind, x, y, dy: f32(g.dy), dx });
        expect([g.kind, maxScaledDiff(y, g.y, x) < 1e-6]).toEqual([g.kind, true]);
        expect([g.kind, maxScaledDiff(dx, g.dx, x) < 4e-6]).toEqual([g.kind, true]);
      }
    });
  });

  test.each(ISAS)("mean pooling, F.cosine_similarity, F.normalize and their backward on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.masked_mean) {
        const { B, T, C } = g, mask = Uint8Array.from(g.mask), y = new Float32Array(B * C), dx = new Float32Array(B * T * C);
        native.maskedMeanForward({ B, T, C, x: f32(g.x), mask, y });
        native.maskedMeanBackward({ B, T, C, mask, dy: f32(g.dy), dx });
        expect(maxNormDiff(y, g.y)).toBeLessThan(1e-6);
        expect(maxNormDiff(dx, g.dx)).toBeLessThan(1e-7);
      }
      for (const g of golden.cosine) {
        const { N, C } = g, a = f32(g.a), b = f32(g.b), y = new Float32Array(N), da = new Float32Array(N * C), db = new Float32Array(N * C);
        native.cosineForward({ N, C, a, b, y });
        native.cosineBackward({ N, C, a, b, dy: f32(g.dy), da, db });
        expect(maxAbsDiff(y, g.y)).toBeLessThan(1e-6);
        expect(maxNormDiff(da, g.da)).toBeLessThan(1e-6);
        expect(maxNormDiff(db, g.db)).toBeLessThan(1e-6);
      }
      for (const g of golden.l2norm) {
        const { N, C } = g, y = new Float32Array(N * C), norm = new Float32Array(N), dx = new Float32Array(N * C);
        native.l2NormForward({ N, C, x: f32(g.x), y, norm });
        native.l2NormBackward({ N, C, y, norm, dy: f32(g.dy), dx });
        expect(maxAbsDiff(y, g.y)).toBeLessThan(1e-6);
        expect(maxNormDiff(norm, g.norm)).toBeLessThan(1e-6);
        expect(maxNormDiff(dx, g.dx)).toBeLessThan(2e-6);
      }
    });
  });

  test.each(ISAS)("MSELoss and BCEWithLogitsLoss (mean, sum, a divisor) and their backward on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.losses) {
        const loss = new Float32Array(1), dx = new Float32Array(g.n);
        const args = { n: g.n, x: f32(g.x), target: f32(g.target), divisor: g.divisor };
        lossForward(g.op)({ ...args, loss });
        lossBackward(g.op)({ ...args, dy: one(g.dy), dx });
        expect(Math.abs(loss[0] - g.loss)).toBeLessThan(1e-6 * Math.max(1, Math.abs(g.loss)));
        expect(maxNormDiff(dx, g.dx)).toBeLessThan(1e-6);
      }
    });
  });
});

describe("head ops: async and bad input", () => {
  test("the Async forms give the same bits", async () => {
    const n = 50000, x = randn(n, 1), t = randn(n, 2), C = 100, N = n / C;
    const y1 = new Float32Array(n), y2 = new Float32Array(n);
    native.unaryForward({ n, kind: "silu", x, y: y1 });
    await native.unaryForwardAsync({ n, kind: "silu", x, y: y2 });
    expect(maxAbsDiff(y1, y2)).toBe(0);
    native.unaryBackward({ n, kind: "silu", x, dy: t, dx: y1 });
    await native.unaryBackwardAsync({ n, kind: "silu", x, dy: t, dx: y2 });
    expect(maxAbsDiff(y1, y2)).toBe(0);
    const l1 = new Float32Array(1), l2 = new Float32Array(1);
    native.bceForward({ n, x, target: t, loss: l1 });
    await native.bceForwardAsync({ n, x, target: t, loss: l2 });
    expect(l2[0]).toBe(l1[0]);
    native.mseBackward({ n, x, target: t, dy: l1, dx: y1 });
    await native.mseBackwardAsync({ n, x, target: t, dy: l1, dx: y2 });
    expect(maxAbsDiff(y1, y2)).toBe(0);
    const c1 = new Float32Array(N), c2 = new Float32Array(N);
    native.cosineForward({ N, C, a: x, b: t, y: c1 });
    await native.cosineForwardAsync({ N, C, a: x, b: t, y: c2 });
    expect(maxAbsDiff(c1, c2)).toBe(0);
    await native.axpbyAsync({ n, a: x, ap: l1, y: y2 });
    native.axpby({ n, a: x, ap: l1, y: y1 });
    expect(maxAbsDiff(y1, y2)).toBe(0);
    await expect(native.dotForwardAsync({ n, x, w: t, y: new Float32Array(0) })).rejects.toThrow(TunekitError);
  });

  test("empty shapes run (the mean over no token is 0, the sum of nothing 0)", () => {
    const e = new Float32Array(0), m = new Uint8Array(0);
    native.unaryForward({ n: 0, kind: "tanh", x: e, y: e });
    native.unaryBackward({ n: 0, kind: "silu", x: e, dy: e, dx: e });
    native.copyStrided({ rows: 0, cols: 3, src: e, dst: e });
    const y = new Float32Array(6).fill(NaN);
    native.maskedMeanForward({ B: 2, T: 0, C: 3, x: e, mask: m, y });
    expect(Array.from(y)).toEqual([0, 0, 0, 0, 0, 0]);
    native.maskedMeanBackward({ B: 0, T: 4, C: 3, mask: m, dy: e, dx: e });
    native.cosineForward({ N: 0, C: 4, a: e, b: e, y: e });
    native.cosineBackward({ N: 0, C: 4, a: e, b: e, dy: e, da: e });
    native.l2NormForward({ N: 0, C: 4, x: e, y: e, norm: e });
    native.l2NormBackward({ N: 0, C: 4, y: e, norm: e, dy: e, dx: e });
    native.mseBackward({ n: 0, x: e, target: e, dy: one(1), dx: e });
    const d = one(NaN);
    native.dotForward({ n: 0, x: e, w: e, y: d });
    expect(d[0]).toBe(0);
    native.axpby({ n: 0, a: e, y: e });
  });

  const bad: [string, () => unknown, string | RegExp][] = [
    ["unary kind missing", () => native.unaryForward({ n: 1, x: f32([1]), y: f32([0]) } as never), "unaryForward: argument 'kind' is missing"],
    ["unary kind unknown", () => native.unaryForward({ n: 1, kind: "gelu" as UnaryKind, x: f32([1]), y: f32([0]) }),
      `unaryForward: argument 'kind' = "gelu" is not one of "tanh", "relu", "sigmoid", "silu"`],
    ["silu backward without x", () => native.unaryBackward({ n: 1, kind: "silu", y: f32([1]), dy: f32([1]), dx: f32([0]) }),
      "unaryBackward: argument 'x' is missing (kind 'silu' needs the forward's input x)"],
    ["tanh backward without y", () => native.unaryBackward({ n: 1, kind: "tanh", x: f32([1]), dy: f32([1]), dx: f32([0]) }),
      "unaryBackward: argument 'y' is missing (kind 'tanh' needs the forward's output y)"],
    ["unary partial overlap", () => {
      const buf = new Float32Array(4);
      native.unaryForward({ n: 3, kind: "relu", x: buf.subarray(0, 3), y: buf.subarray(1) });
    }, "unaryForward: output 'y' overlaps input 'x'; expected separate buffers"],
    ["copyStrided src short", () => native.copyStrided({ rows: 3, cols: 2, src: new Float32Array(9), srcLd: 4, dst: new Float32Array(6) }),
      "copyStrided: argument 'src' has 9 elements, expected at least 10"],
    ["copyStrided ld < cols", () => native.copyStrided({ rows: 3, cols: 2, src: new Float32Array(9), dst: new Float32Array(6), dstLd: 1 }),
      "copyStrided: argument 'dstLd' = 1 is out of range, expected 2..1099511627776"],
    ["copyStrided overlap", () => {
      const buf = new Float32Array(8);
      native.copyStrided({ rows: 2, cols: 1, src: buf, srcLd: 2, dst: buf.subarray(1), dstLd: 2 });
    }, "copyStrided: output 'dst' overlaps input 'src'; expected separate buffers"],
    ["maskedMean mask missing", () => native.maskedMeanForward({ B: 1, T: 1, C: 1, x: f32([1]), y: f32([0]) } as never),
      "maskedMeanForward: argument 'mask' is missing"],
    ["maskedMean mask type", () => native.maskedMeanBackward({ B: 1, T: 2, C: 1, mask: Int32Array.from([1, 1]) as never, dy: f32([1]), dx: f32([0, 0]) }),
      "maskedMeanBackward: argument 'mask' must be a Uint8Array or a device buffer, got an Int32Array"],
    ["maskedMean mask short", () => native.maskedMeanForward({ B: 2, T: 2, C: 1, x: new Float32Array(4), mask: new Uint8Array(3), y: new Float32Array(2) }),
      "maskedMeanForward: argument 'mask' has 3 elements, expected at least 4"],
    ["cosine y overlaps a", () => {
      const a = new Float32Array(4);
      native.cosineForward({ N: 2, C: 2, a, b: new Float32Array(4), y: a.subarray(2) });
    }, "cosineForward: output 'y' overlaps input 'a'; expected separate buffers"],
    ["cosine da is db", () => {
      const d = new Float32Array(4);
      native.cosineBackward({ N: 2, C: 2, a: new Float32Array(4), b: new Float32Array(4), dy: new Float32Array(2), da: d, db: d });
    }, "cosineBackward: output 'db' overlaps input 'da'; expected separate buffers"],
    ["l2Norm norm short", () => native.l2NormForward({ N: 2, C: 2, x: new Float32Array(4), y: new Float32Array(4), norm: new Float32Array(1) }),
      "l2NormForward: argument 'norm' has 1 elements, expected at least 2"],
    ["mse loss is a number array", () => native.mseForward({ n: 1, x: f32([1]), target: f32([1]), loss: new Float64Array(1) as never }),
      "mseForward: argument 'loss' must be a Float32Array or a device buffer, got a Float64Array"],
    ["mse loss empty", () => native.mseForward({ n: 1, x: f32([1]), target: f32([1]), loss: new Float32Array(0) }),
      "mseForward: argument 'loss' has 0 elements, expected at least 1"],
    ["bce divisor NaN", () => native.bceForward({ n: 1, x: f32([1]), target: f32([1]), divisor: NaN, loss: f32([0]) }),
      "bceForward: argument 'divisor' is NaN"],
    ["bce divisor infinite", () => native.bceForward({ n: 1, x: f32([1]), target: f32([1]), divisor: Infinity, loss: f32([0]) }),
      "bceForward: argument 'divisor' = inf is out of range, expected a finite float32"],
    ["bce backward dy missing", () => native.bceBackward({ n: 1, x: f32([1]), target: f32([1]), dx: f32([0]) } as never),
      "bceBackward: argument 'dy' is missing"],
    ["mse backward dy in dx", () => {
      const dx = new Float32Array(3);
      native.mseBackward({ n: 3, x: f32([1, 2, 3]), target: f32([1, 2, 3]), dy: dx.subarray(2), dx });
    }, "mseBackward: output 'dx' overlaps input 'dy'; expected separate buffers"],
    ["dot y overlaps w", () => {
      const w = f32([1, 2]);
      native.dotForward({ n: 2, x: f32([1, 2]), w, y: w.subarray(1) });
    }, "dotForward: output 'y' overlaps input 'w'; expected separate buffers"],
    ["axpby ap in y", () => {
      const y = new Float32Array(2);
      native.axpby({ n: 2, a: f32([1, 2]), ap: y.subarray(1), y });
    }, "axpby: output 'y' overlaps input 'ap'; expected separate buffers"],
    ["axpby alpha infinite", () => native.axpby({ n: 1, alpha: -Infinity, a: f32([1]), y: f32([0]) }),
      "axpby: argument 'alpha' = -inf is out of range, expected a finite float32"],
    ["axpby b short", () => native.axpby({ n: 2, a: f32([1, 2]), beta: 1, b: f32([1]), y: f32([0, 0]) }),
      "axpby: argument 'b' has 1 elements, expected at least 2"],
    ["scale sp in x", () => {
      const x = new Float32Array(3);
      native.scale({ n: 3, x, s: 1, sp: x.subarray(2) });
    }, "scale: output 'x' overlaps input 'sp'; expected separate buffers"],
    ["scale sp empty", () => native.scale({ n: 1, x: f32([1]), s: 1, sp: new Float32Array(0) }),
      "scale: argument 'sp' has 0 elements, expected at least 1"],
  ];
  test.each(bad)("%s: a TunekitError naming the op, the argument and what was expected", (_name, call, message) => {
    expect(call).toThrow(TunekitError);
    expect(call).toThrow(message);
  });
});

import { native } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, maxAbsDiff, maxRelDiff, loadGolden, f32, finiteDiff, pickIndices } from "./helpers";

interface Ln { y: Float64Array; mean: Float64Array; rstd: Float64Array }

// Naive float64 reference.
function lnForward(rows: number, C: number, eps: number, x: ArrayLike<number>, gamma?: ArrayLike<number>, beta?: ArrayLike<number>): Ln {
  const y = new Float64Array(rows * C), mean = new Float64Array(rows), rstd = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += x[r * C + c];
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (x[r * C + c] - m) ** 2;
    const rs = 1 / Math.sqrt(v / C + eps);
    mean[r] = m;
    rstd[r] = rs;
    for (let c = 0; c < C; c++) y[r * C + c] = (x[r * C + c] - m) * rs * (gamma ? gamma[c] : 1) + (beta ? beta[c] : 0);
  }
  return { y, mean, rstd };
}

function lnBackward(rows: number, C: number, x: ArrayLike<number>, gamma: ArrayLike<number> | undefined, mean: ArrayLike<number>, rstd: ArrayLike<number>, dy: ArrayLike<number>) {
  const dx = new Float64Array(rows * C), dgamma = new Float64Array(C), dbeta = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    let s1 = 0, s2 = 0;
    for (let c = 0; c < C; c++) {
      const i = r * C + c, xh = (x[i] - mean[r]) * rstd[r], g = dy[i] * (gamma ? gamma[c] : 1);
      s1 += g;
      s2 += g * xh;
      dgamma[c] += dy[i] * xh;
      dbeta[c] += dy[i];
    }
    for (let c = 0; c < C; c++) {
      const i = r * C + c, xh = (x[i] - mean[r]) * rstd[r], g = dy[i] * (gamma ? gamma[c] : 1);
      dx[i] = rstd[r] * (g - s1 / C - xh * (s2 / C));
    }
  }
  return { dx, dgamma, dbeta };
}

const add = (a: ArrayLike<number>, b: ArrayLike<number>) => Float64Array.from(a, (v, i) => v + b[i]);

const shapes: [number, number][] = [[1, 1], [1, 7], [7, 63], [63, 65], [65, 16], [1000, 17], [3, 1023], [65, 1000], [20, 768]];

describe.each(ISAS)("layerNorm on %s", (isa) => {
  test.each(shapes)("rows=%i C=%i forward and backward match the naive loop", (rows, C) => {
    withIsa(isa, () => {
      const n = rows * C;
      const x = randn(n, rows + C, 2), gamma = randn(C, 7), beta = randn(C, 8), dy = randn(n, 9);
      for (let i = 0; i < n; i++) x[i] += 3; // a mean far from 0
      const y = new Float32Array(n), mean = new Float32Array(rows), rstd = new Float32Array(rows);
      native.layerNormForward({ rows, C, eps: 1e-5, x, gamma, beta, y, mean, rstd });
      const want = lnForward(rows, C, 1e-5, x, gamma, beta);
      expect(maxAbsDiff(mean, want.mean)).toBeLessThan(1e-5);
      expect(maxRelDiff(rstd, want.rstd)).toBeLessThan(2e-5);
      expect(maxAbsDiff(y, want.y)).toBeLessThan(C === 1 ? 1e-5 : 2e-5 * 8);

      const dx = new Float32Array(n), dgamma0 = randn(C, 10), dbeta0 = randn(C, 11);
      const dgamma = dgamma0.slice(), dbeta = dbeta0.slice();
      native.layerNormBackward({ rows, C, x, gamma, mean, rstd, dy, dx, dgamma, dbeta });
      const wb = lnBackward(rows, C, x, gamma, mean, rstd, dy);
      const scale = Math.sqrt(rows);
      expect(maxAbsDiff(dx, wb.dx)).toBeLessThan(1e-4);
      expect(maxAbsDiff(dgamma, add(dgamma0, wb.dgamma))).toBeLessThan(2e-5 * scale + 1e-5);
      expect(maxAbsDiff(dbeta, add(dbeta0, wb.dbeta))).toBeLessThan(2e-5 * scale + 1e-5);
    });
  });

  test("gamma and beta are each optional (1 and 0)", () => {
    withIsa(isa, () => {
      const rows = 9, C = 37, n = rows * C;
      const x = randn(n, 21), gamma = randn(C, 22), beta = randn(C, 23), dy = randn(n, 24);
      for (const [g, b] of [[undefined, undefined], [gamma, undefined], [undefined, beta], [gamma, null]] as const) {
        const y = new Float32Array(n), mean = new Float32Array(rows), rstd = new Float32Array(rows);
        native.layerNormForward({ rows, C, x, gamma: g, beta: b, y, mean, rstd });
        expect(maxAbsDiff(y, lnForward(rows, C, 1e-5, x, g ?? undefined, b ?? undefined).y)).toBeLessThan(2e-5);
        const dx = new Float32Array(n);
        native.layerNormBackward({ rows, C, x, gamma: g, mean, rstd, dy, dx });
        expect(maxAbsDiff(dx, lnBackward(rows, C, x, g ?? undefined, mean, rstd, dy).dx)).toBeLessThan(1e-4);
      }
    });
  });

  test("each backward output is optional and the others do not change", () => {
    withIsa(isa, () => {
      const rows = 300, C = 70, n = rows * C; // threaded
      const x = randn(n, 31), gamma = randn(C, 32), dy = randn(n, 33);
      const y = new Float32Array(n), mean = new Float32Array(rows), rstd = new Float32Array(rows);
      native.layerNormForward({ rows, C, x, gamma, y, mean, rstd });
      const all = { dx: new Float32Array(n), dgamma: new Float32Array(C), dbeta: new Float32Array(C) };
      native.layerNormBackward({ rows, C, x, gamma, mean, rstd, dy, ...all });
      const dx = new Float32Array(n), dgamma = new Float32Array(C), dbeta = new Float32Array(C);
      native.layerNormBackward({ rows, C, x, gamma, mean, rstd, dy, dx });
      native.layerNormBackward({ rows, C, x, gamma, mean, rstd, dy, dgamma });
      native.layerNormBackward({ rows, C, x, gamma, mean, rstd, dy, dbeta });
      expect(maxAbsDiff(dx, all.dx)).toBe(0);
      expect(maxAbsDiff(dgamma, all.dgamma)).toBe(0);
      expect(maxAbsDiff(dbeta, all.dbeta)).toBe(0);
    });
  });

  test("the backward is deterministic (same bits twice, on several threads)", () => {
    withIsa(isa, () => {
      const before = native.numThreads();
      native.setNumThreads(3);
      try {
        const rows = 500, C = 100, n = rows * C;
        const x = randn(n, 41), gamma = randn(C, 42), dy = randn(n, 43);
        const y = new Float32Array(n), mean = new Float32Array(rows), rstd = new Float32Array(rows);
        native.layerNormForward({ rows, C, x, gamma, y, mean, rstd });
        const run = () => {
          const dgamma = new Float32Array(C), dbeta = new Float32Array(C);
          native.layerNormBackward({ rows, C, x, gamma, mean, rstd, dy, dgamma, dbeta });
          return [dgamma, dbeta];
        };
        const [g1, b1] = run(), [g2, b2] = run();
        expect(maxAbsDiff(g1, g2)).toBe(0);
        expect(maxAbsDiff(b1, b2)).toBe(0);
      } finally {
        native.setNumThreads(before);
      }
    });
  });

  test("dx, dgamma and dbeta match finite differences of the kernel's own forward", () => {
    withIsa(isa, () => {
      const rows = 4, C = 19, n = rows * C;
      const x = randn(n, 51), gamma = randn(C, 52), beta = randn(C, 53), w = randn(n, 54);
      const y = new Float32Array(n), mean = new Float32Array(rows), rstd = new Float32Array(rows);
      // f = Σ w·y, so dy = w.
      const f = () => {
        native.layerNormForward({ rows, C, eps: 1e-5, x, gamma, beta, y, mean, rstd });
        let s = 0;
        for (let i = 0; i < n; i++) s += w[i] * y[i];
        return s;
      };
      f();
      const dx = new Float32Array(n), dgamma = new Float32Array(C), dbeta = new Float32Array(C);
      native.layerNormBackward({ rows, C, x, gamma, mean, rstd, dy: w, dx, dgamma, dbeta });
      const ix = pickIndices(n, 12, 55), ic = pickIndices(C, 6, 56);
      const fx = finiteDiff(f, x, ix), fg = finiteDiff(f, gamma, ic), fb = finiteDiff(f, beta, ic);
      expect(maxAbsDiff(ix.map((i) => dx[i]), fx)).toBeLessThan(3e-3);
      expect(maxAbsDiff(ic.map((i) => dgamma[i]), fg)).toBeLessThan(3e-3);
      expect(maxAbsDiff(ic.map((i) => dbeta[i]), fb)).toBeLessThan(3e-3);
    });
  });
});

describe("layerNorm against PyTorch goldens", () => {
  const golden = loadGolden<{
    layernorm: { rows: number; C: number; eps: number; x: number[]; dy: number[]; y: number[]; mean: number[]; rstd: number[]; dx: number[]; gamma?: number[]; beta?: number[]; dgamma?: number[]; dbeta?: number[] }[];
  }>("layers.json");
  test.each(ISAS)("F.layer_norm and its autograd backward on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.layernorm) {
        const { rows, C } = g;
        const x = f32(g.x), gamma = g.gamma && f32(g.gamma), beta = g.beta && f32(g.beta);
        const y = new Float32Array(rows * C), mean = new Float32Array(rows), rstd = new Float32Array(rows);
        native.layerNormForward({ rows, C, eps: g.eps, x, gamma, beta, y, mean, rstd });
        expect(maxAbsDiff(y, g.y)).toBeLessThan(1e-5);
        expect(maxAbsDiff(mean, g.mean)).toBeLessThan(1e-5);
        expect(maxRelDiff(rstd, g.rstd)).toBeLessThan(1e-5);
        const dx = new Float32Array(rows * C), dgamma = new Float32Array(C), dbeta = new Float32Array(C);
        native.layerNormBackward({ rows, C, x, gamma, mean, rstd, dy: f32(g.dy), dx, dgamma, dbeta });
        expect(maxAbsDiff(dx, g.dx)).toBeLessThan(2e-5);
        if (g.dgamma && g.dbeta) {
          expect(maxAbsDiff(dgamma, g.dgamma)).toBeLessThan(2e-5);
          expect(maxAbsDiff(dbeta, g.dbeta)).toBeLessThan(2e-5);
        }
      }
    });
  });
});

describe("layerNorm async and bad input", () => {
  test("the Async forms give the same bits", async () => {
    const rows = 64, C = 300, n = rows * C;
    const x = randn(n, 61), gamma = randn(C, 62), dy = randn(n, 63);
    const y1 = new Float32Array(n), y2 = new Float32Array(n), mean = new Float32Array(rows), rstd = new Float32Array(rows);
    native.layerNormForward({ rows, C, x, gamma, y: y1, mean, rstd });
    await native.layerNormForwardAsync({ rows, C, x, gamma, y: y2, mean, rstd });
    expect(maxAbsDiff(y1, y2)).toBe(0);
    const d1 = new Float32Array(n), d2 = new Float32Array(n);
    native.layerNormBackward({ rows, C, x, gamma, mean, rstd, dy, dx: d1 });
    await native.layerNormBackwardAsync({ rows, C, x, gamma, mean, rstd, dy, dx: d2 });
    expect(maxAbsDiff(d1, d2)).toBe(0);
  });

  test("errors name the op, the argument and what was expected", () => {
    const x = new Float32Array(12), y = new Float32Array(12), mean = new Float32Array(3), rstd = new Float32Array(3);
    const fwd = (a: Partial<Parameters<typeof native.layerNormForward>[0]>) => () => native.layerNormForward({ rows: 3, C: 4, x, y, mean, rstd, ...a });
    expect(fwd({ eps: 0 })).toThrow(new TunekitError("layerNormForward: argument 'eps' = 0 is out of range, expected a finite float32 > 0"));
    expect(fwd({ eps: -1e-5 })).toThrow(/argument 'eps' = -1e-05 is out of range/);
    expect(fwd({ eps: 1e-300 })).toThrow(/argument 'eps' = 1e-300 is out of range/); // 0 as a float32
    expect(fwd({ x: new Float32Array(11) })).toThrow(new TunekitError("layerNormForward: argument 'x' has 11 elements, expected at least 12"));
    expect(fwd({ gamma: new Float32Array(3) })).toThrow(/argument 'gamma' has 3 elements, expected at least 4/);
    expect(fwd({ mean: new Float32Array(2) })).toThrow(/argument 'mean' has 2 elements, expected at least 3/);
    expect(fwd({ C: 0 })).toThrow(/argument 'C' = 0 is out of range, expected 1\.\./);
    expect(fwd({ y: x })).toThrow(new TunekitError("layerNormForward: output 'y' overlaps input 'x'; expected separate buffers"));
    expect(fwd({ rstd: mean })).toThrow(/output 'rstd' overlaps input 'mean'/);
    expect(fwd({ y: undefined })).toThrow(/argument 'y' is missing/);
    const dy = new Float32Array(12), dgamma = new Float32Array(8);
    const bwd = (a: Partial<Parameters<typeof native.layerNormBackward>[0]>) => () => native.layerNormBackward({ rows: 3, C: 4, x, mean, rstd, dy, ...a });
    expect(bwd({ dx: dy })).toThrow(/layerNormBackward: output 'dx' overlaps input 'dy'/);
    expect(bwd({ dgamma, dbeta: dgamma.subarray(2) })).toThrow(/output 'dbeta' overlaps input 'dgamma'/);
    expect(bwd({ dy: new Float32Array(4) })).toThrow(/argument 'dy' has 4 elements, expected at least 12/);
  });
});

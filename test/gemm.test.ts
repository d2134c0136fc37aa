import { native } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, maxAbsDiff, loadGolden, f32 } from "./helpers";

interface Case { M: number; N: number; K: number; transA?: boolean; transB?: boolean; alpha?: number; beta?: number; batch?: number }

// Naive reference in float64.
function reference(c: Case, A: Float32Array, B: Float32Array, C0: Float32Array): Float32Array {
  const { M, N, K } = c;
  const batch = c.batch ?? 1, alpha = c.alpha ?? 1, beta = c.beta ?? 0;
  const out = new Float32Array(C0.length);
  for (let b = 0; b < batch; b++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) {
          const a = c.transA ? A[b * M * K + k * M + i] : A[b * M * K + i * K + k];
          const bb = c.transB ? B[b * K * N + j * K + k] : B[b * K * N + k * N + j];
          s += a * bb;
        }
        const idx = b * M * N + i * N + j;
        out[idx] = alpha * s + (beta === 0 ? 0 : beta * C0[idx]);
      }
  return out;
}

const sizes = [1, 7, 63, 65];
const cases: Case[] = [];
for (const M of sizes) for (const N of [1, 17, 65]) for (const K of [1, 63, 300]) cases.push({ M, N, K });
for (const transA of [false, true]) for (const transB of [false, true]) cases.push({ M: 37, N: 70, K: 129, transA, transB, alpha: 0.5, beta: 2 });
cases.push({ M: 1000, N: 33, K: 65, transB: true });
cases.push({ M: 5, N: 1000, K: 17, beta: -1 });
cases.push({ M: 13, N: 29, K: 31, batch: 3, transA: true, alpha: 1.5, beta: 0.5 });
cases.push({ M: 300, N: 300, K: 600, batch: 2, transB: true });
// The few-rows path of a linear forward while decoding (M <= 8 rows times B stored N x K): every M, a K with
// a vector tail, beta 0 and not, and N large enough that the rows of B are split across threads.
for (const M of [1, 2, 5, 8]) cases.push({ M, N: 700, K: 77, transB: true, alpha: 0.5, beta: M % 2 ? 0 : 1.5 });
cases.push({ M: 9, N: 300, K: 64, transB: true });

describe.each(ISAS)("gemm on %s", (isa) => {
  test.each(cases)("M=$M N=$N K=$K transA=$transA transB=$transB batch=$batch matches the naive loop", (c) => {
    withIsa(isa, () => {
      const batch = c.batch ?? 1;
      const A = randn(batch * c.M * c.K, 1), B = randn(batch * c.K * c.N, 2), C0 = randn(batch * c.M * c.N, 3);
      const C = C0.slice();
      native.gemm({ ...c, A, B, C, strideA: c.M * c.K, strideB: c.K * c.N, strideC: c.M * c.N });
      const want = reference(c, A, B, C0);
      expect(maxAbsDiff(C, want)).toBeLessThan(1e-5 * Math.sqrt(c.K) * 4 + 1e-6);
    });
  });

  test("beta = 0 ignores NaN already in C", () => {
    withIsa(isa, () => {
      const A = randn(8 * 9, 4), B = randn(9 * 10, 5), C = new Float32Array(80).fill(NaN);
      native.gemm({ M: 8, N: 10, K: 9, A, B, C });
      expect(C.every(Number.isFinite)).toBe(true);
    });
  });

  test("leading dimensions address a sub-matrix", () => {
    withIsa(isa, () => {
      // A is the left 5 columns of a 6x8 matrix; C the top-left 6x4 of a 6x7 matrix.
      const Abig = randn(6 * 8, 6), B = randn(5 * 4, 7), Cbig = new Float32Array(6 * 7).fill(9);
      native.gemm({ M: 6, N: 4, K: 5, A: Abig, lda: 8, B, C: Cbig, ldc: 7 });
      const A = new Float32Array(30);
      for (let i = 0; i < 6; i++) for (let k = 0; k < 5; k++) A[i * 5 + k] = Abig[i * 8 + k];
      const want = reference({ M: 6, N: 4, K: 5 }, A, B, new Float32Array(24));
      for (let i = 0; i < 6; i++) {
        for (let j = 0; j < 4; j++) expect(Cbig[i * 7 + j]).toBeCloseTo(want[i * 4 + j], 5);
        for (let j = 4; j < 7; j++) expect(Cbig[i * 7 + j]).toBe(9); // untouched
      }
    });
  });
});

describe("gemm against PyTorch goldens", () => {
  const golden = loadGolden<{ cases: { M: number; N: number; K: number; transA: boolean; transB: boolean; alpha: number; beta: number; A: number[]; B: number[]; C: number[]; out: number[] }[] }>("gemm.json");
  test.each(ISAS)("every golden case on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.cases) {
        const C = f32(g.C);
        native.gemm({ M: g.M, N: g.N, K: g.K, transA: g.transA, transB: g.transB, alpha: g.alpha, beta: g.beta, A: f32(g.A), B: f32(g.B), C });
        expect(maxAbsDiff(C, g.out)).toBeLessThan(1e-4);
      }
    });
  });
});

describe("gemm async and bad input", () => {
  test("gemmAsync runs off the JS thread and gives the same result", async () => {
    const A = randn(200 * 300, 8), B = randn(300 * 100, 9);
    const C1 = new Float32Array(200 * 100), C2 = new Float32Array(200 * 100);
    native.gemm({ M: 200, N: 100, K: 300, A, B, C: C1 });
    await native.gemmAsync({ M: 200, N: 100, K: 300, A, B, C: C2 });
    expect(maxAbsDiff(C1, C2)).toBe(0);
  });

  test("errors name the op, the argument, what was given and what was expected", () => {
    const A = new Float32Array(6), B = new Float32Array(6), C = new Float32Array(4);
    expect(() => native.gemm({ M: 2, N: 2, K: 4, A, B, C })).toThrow(
      new TunekitError("gemm: argument 'A' has 6 elements, expected at least 8"),
    );
    expect(() => native.gemm({ M: 2, N: 2, K: 3, A, B, C: A })).toThrow(/gemm: output 'C' overlaps input 'A'/);
    expect(() => native.gemm({ M: 2, N: 2, K: 3, A, B, C, lda: 2 })).toThrow(/gemm: argument 'lda' = 2 is out of range, expected 3\.\./);
    expect(() => native.gemm({ M: -1, N: 2, K: 3, A, B, C })).toThrow(/gemm: argument 'M' = -1 is out of range/);
    expect(() => native.gemm({ M: 2.5, N: 2, K: 3, A, B, C })).toThrow(/argument 'M' must be an integer/);
    expect(() => native.gemm({ M: 2, N: 2, K: 3, A: new Float64Array(6) as unknown as Float32Array, B, C })).toThrow(
      /argument 'A' must be a Float32Array or a device buffer, got a Float64Array/,
    );
    expect(() => (native.gemm as unknown as (x: number) => void)(3)).toThrow(/gemm: expected one object of named arguments, got a number/);
  });

  test("async errors reject with TunekitError", async () => {
    await expect(native.gemmAsync({ M: 2, N: 2, K: 3, A: new Float32Array(1), B: new Float32Array(6), C: new Float32Array(4) })).rejects.toThrow(TunekitError);
  });
});

// The GEMM epilogue (bias, residual, pre, GELU applied as C is stored) against the unfused path:
// gemm, then biasAdd, add and geluForward one after the other. The epilogue runs the same float
// operations in the same order, so with beta = 0 the results are identical, bit for bit.
import { native } from "../lib/native";
import type { GemmActivation } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, maxAbsDiff } from "./helpers";

interface Case {
  M: number; N: number; K: number; transA?: boolean; transB?: boolean; alpha?: number; beta?: number; batch?: number;
  bias?: boolean; residual?: boolean; pre?: boolean; activation?: GemmActivation; precision?: "fp32" | "bf16";
}

// Edge tiles in both directions, several K blocks (KC = 256), batches, every epilogue combination.
const cases: Case[] = [
  { M: 37, N: 45, K: 300, transB: true, bias: true },
  { M: 37, N: 45, K: 300, transB: true, bias: true, activation: "gelu", pre: true },
  { M: 64, N: 96, K: 64, transB: true, bias: true, activation: "gelu_tanh", pre: true },
  { M: 50, N: 70, K: 513, transB: true, bias: true, residual: true },
  { M: 13, N: 29, K: 31, residual: true, batch: 3, transA: true },
  { M: 128, N: 768, K: 64, transB: true, bias: true, activation: "gelu" },
  { M: 7, N: 33, K: 20, bias: true, residual: true, activation: "gelu", pre: true, alpha: 0.5, beta: 1.5 },
  { M: 5, N: 9, K: 0, bias: true, activation: "gelu", beta: 0.5 },
  // the few-rows path of decoding (M <= 8, B stored N x K): the epilogue after the row dots, threads over N
  { M: 3, N: 900, K: 77, transB: true, bias: true, residual: true, activation: "gelu", pre: true, alpha: 0.5, beta: 1.5 },
  { M: 1, N: 40, K: 33, transB: true, bias: true, activation: "gelu_tanh" },
  { M: 64, N: 80, K: 96, transB: true, bias: true, activation: "gelu", pre: true, precision: "bf16" },
  { M: 40, N: 50, K: 70, transB: true, bias: true, residual: true, precision: "bf16" },
];

function run(c: Case, isa: string) {
  const batch = c.batch ?? 1, nC = batch * c.M * c.N;
  const A = randn(batch * c.M * c.K, 1), B = randn(batch * c.K * c.N, 2, 0.2), C0 = randn(nC, 3);
  const bias = randn(c.N, 4), res = randn(nC, 5);
  const act = c.activation ?? "none";
  const base = { M: c.M, N: c.N, K: c.K, A, B, transA: c.transA, transB: c.transB, alpha: c.alpha, beta: c.beta, batch, precision: c.precision };
  // unfused
  const want = C0.slice();
  native.gemm({ ...base, C: want });
  if (c.bias) for (let b = 0; b < batch; b++) native.biasAdd({ rows: c.M, C: c.N, x: want.subarray(b * c.M * c.N), bias, y: want.subarray(b * c.M * c.N) });
  if (c.residual) native.add({ n: nC, a: want, b: res, y: want });
  const wantPre = want.slice();
  if (act !== "none") native.geluForward({ n: nC, x: want, y: want, approximate: act === "gelu" ? "none" : "tanh" });
  // fused
  const got = C0.slice(), pre = c.pre ? new Float32Array(nC).fill(NaN) : null;
  native.gemm({ ...base, C: got, bias: c.bias ? bias : null, residual: c.residual ? res : null, pre, activation: act });
  return { want, got, wantPre, pre, isa };
}

describe.each(ISAS)("gemm epilogue on %s", (isa) => {
  const named = cases.map((c) => [Object.entries(c).map(([k, v]) => `${k}=${v}`).join(" "), c] as [string, Case]);
  test.each(named)("%s equals the unfused ops", (_name, c) => {
    withIsa(isa, () => {
      const { want, got, wantPre, pre } = run(c, isa);
      // beta != 0: the unfused edge tiles add beta·C in scalar code, the epilogue in a vector fma
      const tol = (c.beta ?? 0) === 0 ? 0 : 1e-5;
      expect(maxAbsDiff(got, want)).toBeLessThanOrEqual(tol);
      if (pre) expect(maxAbsDiff(pre, wantPre)).toBeLessThanOrEqual(tol);
    });
  });
});

test("the epilogue is applied once, after the last K block (K spans several blocks)", () => {
  // With a residual of ones and K = 1000 (4 K blocks), adding it per block would give +4, not +1.
  const M = 8, N = 16, K = 1000;
  const A = new Float32Array(M * K).fill(0.001), B = new Float32Array(K * N).fill(1);
  const C = new Float32Array(M * N), res = new Float32Array(M * N).fill(1);
  native.gemm({ M, N, K, A, B, C, residual: res });
  for (const v of C) expect(v).toBeCloseTo(2, 4);
});

test("epilogue buffers that overlap C, or of the wrong length, are refused by name", () => {
  const M = 4, N = 8, K = 3;
  const A = randn(M * K, 1), B = randn(K * N, 2), C = new Float32Array(M * N);
  expect(() => native.gemm({ M, N, K, A, B, C, residual: C })).toThrow(/output 'C' overlaps input 'residual'/);
  expect(() => native.gemm({ M, N, K, A, B, C, pre: C })).toThrow(/output 'pre' overlaps input 'C'/);
  expect(() => native.gemm({ M, N, K, A, B, C, bias: new Float32Array(N - 1) })).toThrow(TunekitError);
  expect(() => native.gemm({ M, N, K, A, B, C, bias: new Float32Array(N - 1) })).toThrow(/bias/);
  expect(() => native.gemm({ M, N, K, A, B, C, activation: "relu" as GemmActivation })).toThrow(/activation/);
});

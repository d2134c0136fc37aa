// bf16 GEMM (AVX512-BF16 vdpbf16ps, fp32 accumulation): against an fp64 reference on the same
// bf16-rounded operands (tight: only the fp32 accumulation differs), against fp32 (tolerance of bf16's
// 8-bit mantissa), and the fallback to fp32 where the CPU or the ISA in use has no bf16.
import { spawnSync } from "child_process";
import * as path from "path";
import { native } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { randn, maxAbsDiff, withIsa, ISAS } from "./helpers";

interface Case { M: number; N: number; K: number; transA?: boolean; transB?: boolean; alpha?: number; beta?: number; batch?: number }

/** Round to nearest even bfloat16 (what vcvtne2ps2bf16 does), kept as float. */
function bf16(x: Float32Array): Float32Array {
  const out = new Float32Array(x), u = new Uint32Array(out.buffer);
  for (let i = 0; i < u.length; i++) u[i] = ((u[i] + 0x7fff + ((u[i] >>> 16) & 1)) & 0xffff0000) >>> 0;
  return out;
}

/** fp64 reference of alpha·op(A)·op(B) + beta·C; with round, the kernel's bf16(alpha·A) and bf16(B). */
function reference(c: Case, A: Float32Array, B: Float32Array, C0: Float32Array, round: boolean): Float64Array {
  const { M, N, K } = c, batch = c.batch ?? 1, alpha = c.alpha ?? 1, beta = c.beta ?? 0;
  const a = round ? bf16(A.map((v) => Math.fround(alpha * v))) : A, b = round ? bf16(B) : B;
  const s = round ? 1 : alpha;
  const out = new Float64Array(C0.length);
  for (let bt = 0; bt < batch; bt++)
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++)
          acc += a[bt * M * K + (c.transA ? k * M + i : i * K + k)] * b[bt * K * N + (c.transB ? j * K + k : k * N + j)];
        const idx = bt * M * N + i * N + j;
        out[idx] = s * acc + (beta === 0 ? 0 : beta * C0[idx]);
      }
  return out;
}

const cases: Case[] = [
  { M: 1, N: 1, K: 1 },
  { M: 7, N: 17, K: 63 }, // odd K: the last k-pair is padded with zero
  { M: 65, N: 65, K: 300 }, // K > KC: two k blocks, beta = 1 on the second
  { M: 37, N: 70, K: 129, transA: true, alpha: 0.5, beta: 2 },
  { M: 37, N: 70, K: 129, transB: true },
  { M: 37, N: 70, K: 129, transA: true, transB: true, beta: -1 },
  { M: 300, N: 300, K: 600, batch: 2, transB: true },
  { M: 13, N: 29, K: 31, batch: 3, transA: true, alpha: 1.5, beta: 0.5 },
];

function run(c: Case, precision: "fp32" | "bf16" | undefined) {
  const batch = c.batch ?? 1;
  const A = randn(batch * c.M * c.K, 11), B = randn(batch * c.K * c.N, 12), C0 = randn(batch * c.M * c.N, 13);
  const C = C0.slice();
  native.gemm({ ...c, A, B, C, strideA: c.M * c.K, strideB: c.K * c.N, strideC: c.M * c.N, ...(precision ? { precision } : {}) });
  return { A, B, C0, C };
}


describe("bf16 GEMM", () => {
  afterEach(() => native.setMatmulPrecision("fp32"));

  if (native.bf16Available()) {
    test.each(cases)("M=$M N=$N K=$K transA=$transA transB=$transB batch=$batch: fp64 of the bf16-rounded operands, to fp32 accumulation", (c) => {
      const { A, B, C0, C } = run(c, "bf16");
      expect(maxAbsDiff(C, reference(c, A, B, C0, true))).toBeLessThan(2e-6 * c.K + 1e-5);
    });

    test.each(cases)("M=$M N=$N K=$K: within bf16's rounding of the fp32 product, and not equal to it", (c) => {
      const { A, B, C0, C } = run(c, "bf16");
      const exact = reference(c, A, B, C0, false);
      // each product carries up to 2·2^-9 relative error; random signs make the sum grow like √K
      const tol = 2 ** -7 * Math.abs(c.alpha ?? 1) * Math.sqrt(c.K) * 4;
      expect(maxAbsDiff(C, exact)).toBeLessThan(tol);
      if (c.K > 1) expect(maxAbsDiff(C, exact)).toBeGreaterThan(1e-4); // bf16 really ran
    });

    test("the vdpbf16ps kernel (TUNEKIT_AMX=0, the path of CPUs without AMX) matches the same reference", () => {
      // AMX is chosen once per process, so the other kernel runs in a child with AMX turned off.
      const c = { M: 37, N: 70, K: 129, transA: true, alpha: 0.5, beta: 2 };
      const script = `
        const a = require("node-gyp-build")(${JSON.stringify(path.join(__dirname, ".."))});
        const fill = (n, s) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 2);
        const C = fill(${c.M * c.N}, 3);
        a.gemm({ M: ${c.M}, N: ${c.N}, K: ${c.K}, transA: true, alpha: 0.5, beta: 2, A: fill(${c.M * c.K}, 1), B: fill(${c.K * c.N}, 2), C, precision: "bf16" });
        console.log(JSON.stringify(Array.from(C)));`;
      const out = spawnSync(process.execPath, ["-e", script], { env: { ...process.env, TUNEKIT_AMX: "0" }, encoding: "utf8" });
      expect(out.stderr).toBe("");
      const fill = (n: number, s: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 12.9898 + s) * 2);
      const got = new Float32Array(JSON.parse(out.stdout));
      expect(maxAbsDiff(got, reference(c, fill(c.M * c.K, 1), fill(c.K * c.N, 2), fill(c.M * c.N, 3), true))).toBeLessThan(2e-6 * c.K * 4 + 1e-5);
      expect(maxAbsDiff(got, reference(c, fill(c.M * c.K, 1), fill(c.K * c.N, 2), fill(c.M * c.N, 3), false))).toBeGreaterThan(1e-4);
    });

    test("setMatmulPrecision is the default of every call; a call's own precision wins", () => {
      const c = cases[2];
      const fp32 = run(c, "fp32").C, bf = run(c, "bf16").C;
      native.setMatmulPrecision("bf16");
      expect(native.matmulPrecision()).toBe("bf16");
      expect(maxAbsDiff(run(c, undefined).C, bf)).toBe(0);
      expect(maxAbsDiff(run(c, "fp32").C, fp32)).toBe(0);
      native.setMatmulPrecision("fp32");
      expect(maxAbsDiff(run(c, undefined).C, fp32)).toBe(0);
    });

    test("LoRA's frozen base runs in bf16 too, the adapter in fp32", () => {
      const M = 40, inF = 96, out = 80, r = 4;
      const x = randn(M * inF, 1), W = randn(out * inF, 2), A = randn(r * inF, 3), Bm = randn(out * r, 4), bias = randn(out, 5);
      const fwd = (precision: "fp32" | "bf16") => {
        const y = new Float32Array(M * out), h = new Float32Array(M * r);
        native.loraForward({ M, in: inF, out, r, x, W, bias, A, B: Bm, scale: 2, y, h, precision });
        return { y, h };
      };
      const a = fwd("fp32"), b = fwd("bf16");
      expect(maxAbsDiff(a.h, b.h)).toBe(0); // rank-r product stays fp32
      const d = maxAbsDiff(a.y, b.y);
      expect(d).toBeGreaterThan(1e-4);
      expect(d).toBeLessThan(2 ** -7 * Math.sqrt(inF) * 4);
    });
  } else {
    test("without AVX512-BF16, bf16 requests compute fp32 exactly", () => {
      const c = cases[3];
      expect(maxAbsDiff(run(c, "bf16").C, run(c, "fp32").C)).toBe(0);
      native.setMatmulPrecision("bf16");
      expect(native.matmulPrecision()).toBe("fp32");
    });
  }

  test.each(ISAS.filter((i) => i !== "avx512"))("the %s kernels have no bf16: fp32 results, matmulPrecision fp32", (isa) => {
    withIsa(isa, () => {
      native.setMatmulPrecision("bf16");
      expect(native.bf16Available()).toBe(false);
      expect(native.matmulPrecision()).toBe("fp32");
      const c = cases[3];
      expect(maxAbsDiff(run(c, undefined).C, run(c, "fp32").C)).toBe(0);
    });
  });

  test("bad precision names are refused", () => {
    expect(() => native.setMatmulPrecision("half" as "fp32")).toThrow(TunekitError);
    expect(() => native.setMatmulPrecision("half" as "fp32")).toThrow(/setMatmulPrecision: expected "fp32", "bf16" or "fp16" \(fp16: CUDA devices only\)/);
    const A = new Float32Array(4), B = new Float32Array(4), C = new Float32Array(4);
    expect(() => native.gemm({ M: 2, N: 2, K: 2, A, B, C, precision: "half" as "fp32" })).toThrow(/gemm: argument 'precision' = "half" is not one of "fp32", "bf16", "fp16"/);
  });

  test("fp16 is a device precision: a CPU GEMM asked for it fails; requested process-wide, CPU GEMMs stay fp32", () => {
    const A = Float32Array.from({ length: 4 }, (_, i) => 1 + i / 3), B = Float32Array.from({ length: 4 }, (_, i) => 2 - i / 7);
    const run = () => { const C = new Float32Array(4); native.gemm({ M: 2, N: 2, K: 2, A, B, C }); return C; };
    expect(() => native.gemm({ M: 2, N: 2, K: 2, A, B, C: new Float32Array(4), precision: "fp16" })).toThrow(/precision "fp16" runs on a CUDA device only .* on the CPU use "bf16" or "fp32"/);
    const fp32 = run();
    native.setMatmulPrecision("fp16");
    try {
      expect(native.matmulPrecision()).toBe("fp16");
      expect(run()).toEqual(fp32);
    } finally {
      native.setMatmulPrecision("fp32");
    }
  });

  test("large values keep fp32 range (bf16 has fp32's exponent)", () => {
    if (!native.bf16Available()) return expect(native.matmulPrecision()).toBe("fp32");
    const A = new Float32Array(64).fill(1e30), B = new Float32Array(64).fill(1e-30), C = new Float32Array(1);
    native.gemm({ M: 1, N: 1, K: 64, A, B, C, transB: true, precision: "bf16" });
    expect(C[0] / 64).toBeCloseTo(bf16(new Float32Array([1e30]))[0] * bf16(new Float32Array([1e-30]))[0], 2);
    expect(C[0]).toBeGreaterThan(60);
  });
});

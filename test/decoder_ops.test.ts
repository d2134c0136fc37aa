// The decoder kernels (Llama / Mistral / Qwen2 / Qwen3): rmsNorm, rope, swiglu, attention with
// grouped-query heads, a sliding window and a query offset, and attentionDecode. Each against a naive
// float64 loop (odd sizes, strided layouts, every ISA), PyTorch goldens (test/fixtures/golden_decoder_ops.py),
// finite differences of every backward, determinism across thread counts, and bad input.
import { native } from "../lib/native";
import type { AttentionForwardArgs, AttentionDecodeArgs, RopeArgs } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, rng, maxAbsDiff, loadGolden, f32, finiteDiff, pickIndices } from "./helpers";

const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) if (Number.isFinite(a[i])) m = Math.max(m, Math.abs(a[i]));
  return m;
};
/** Absolute error relative to the largest reference magnitude (float32 kernels against float64). */
function expectClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number) {
  expect(maxAbsDiff(got, want)).toBeLessThan(tol * Math.max(1, maxAbs(want)));
}
function withThreads<T>(n: number, fn: () => T): T {
  const before = native.numThreads();
  native.setNumThreads(n);
  try {
    return fn();
  } finally {
    native.setNumThreads(before);
  }
}
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

// ---- RMSNorm ------------------------------------------------------------------------------------------

/** Offset of row r in the grouped layout: group r / G at ld, row r % G inside it. */
const rowAt = (r: number, G: number, C: number, ld: number) => Math.floor(r / G) * ld + (r % G) * C;

interface Rms { rows: number; C: number; G: number; ld: number }
function rmsReference(s: Rms, eps: number, x: ArrayLike<number>, w: ArrayLike<number> | undefined, dy: ArrayLike<number>) {
  const { rows, C, G, ld } = s;
  const y = new Float64Array(rows * C), rstd = new Float64Array(rows), dx = new Float64Array(rows * C), dw = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    const o = rowAt(r, G, C, ld);
    let ss = 0;
    for (let c = 0; c < C; c++) ss += x[o + c] ** 2;
    const rs = 1 / Math.sqrt(ss / C + eps);
    rstd[r] = rs;
    let m = 0;
    for (let c = 0; c < C; c++) {
      const xh = x[o + c] * rs, g = dy[r * C + c] * (w ? w[c] : 1);
      y[r * C + c] = xh * (w ? w[c] : 1);
      m += g * xh;
      dw[c] += dy[r * C + c] * xh;
    }
    m /= C;
    for (let c = 0; c < C; c++) dx[r * C + c] = rs * (dy[r * C + c] * (w ? w[c] : 1) - x[o + c] * rs * m);
  }
  return { y, rstd, dx, dw };
}

describe.each(ISAS)("rmsNorm on %s", (isa) => {
  // (rows, C, G, ld): plain matrices of odd sizes, and heads of a packed row (Qwen3's q_norm).
  const shapes: Rms[] = [
    { rows: 1, C: 1, G: 1, ld: 1 }, { rows: 7, C: 63, G: 1, ld: 63 }, { rows: 65, C: 17, G: 1, ld: 17 },
    { rows: 3, C: 1023, G: 1, ld: 1023 }, { rows: 300, C: 100, G: 1, ld: 100 }, { rows: 12, C: 64, G: 4, ld: 448 },
    { rows: 900, C: 24, G: 9, ld: 250 },
  ];
  test.each(shapes)("rows=$rows C=$C G=$G ld=$ld: forward and backward match the naive loop", (s) => {
    withIsa(isa, () => {
      const { rows, C, G, ld } = s, n = rows * C, span = (rows / G - 1) * ld + G * C;
      const x = randn(span, rows + C, 2), w = randn(C, 7), dy = randn(n, 9);
      const y = new Float32Array(n), rstd = new Float32Array(rows);
      native.rmsNormForward({ rows, C, G, ldx: ld, eps: 1e-6, x, weight: w, y, rstd });
      const want = rmsReference(s, 1e-6, x, w, dy);
      expectClose(y, want.y, 2e-6);
      expectClose(rstd, want.rstd, 2e-6);
      // dx written into a packed gradient of the same layout; the columns between groups stay untouched.
      const dx = new Float32Array(span).fill(7), dw0 = randn(C, 10), dw = dw0.slice();
      native.rmsNormBackward({ rows, C, G, ldx: ld, lddx: ld, x, weight: w, rstd, dy, dx, dweight: dw });
      const dense = new Float32Array(n);
      for (let r = 0; r < rows; r++) dense.set(dx.subarray(rowAt(r, G, C, ld), rowAt(r, G, C, ld) + C), r * C);
      expectClose(dense, want.dx, 2e-5);
      expectClose(dw, Float64Array.from(dw0, (v, c) => v + want.dw[c]), 2e-5 * Math.sqrt(rows));
      if (ld > G * C) expect(dx[G * C]).toBe(7);
    });
  });

  test("weight is optional (1), and so are dx and dweight", () => {
    withIsa(isa, () => {
      const s: Rms = { rows: 9, C: 37, G: 1, ld: 37 }, n = 9 * 37;
      const x = randn(n, 21), dy = randn(n, 22);
      const y = new Float32Array(n), rstd = new Float32Array(9);
      native.rmsNormForward({ rows: 9, C: 37, x, y, rstd });
      const want = rmsReference(s, 1e-6, x, undefined, dy);
      expectClose(y, want.y, 2e-6);
      const dx = new Float32Array(n), dw = new Float32Array(37);
      native.rmsNormBackward({ rows: 9, C: 37, x, rstd, dy, dx });
      expectClose(dx, want.dx, 2e-5);
      native.rmsNormBackward({ rows: 9, C: 37, x, rstd, dy, dweight: dw });
      expectClose(dw, want.dw, 2e-5);
    });
  });

  test("dx and dweight match central differences of the kernel's forward", () => {
    withIsa(isa, () => {
      const rows = 4, C = 19, n = rows * C;
      const x = randn(n, 51), w = randn(C, 52), wy = randn(n, 54);
      const y = new Float32Array(n), rstd = new Float32Array(rows);
      const f = () => {
        native.rmsNormForward({ rows, C, x, weight: w, y, rstd });
        return dot(wy, y);
      };
      f();
      const dx = new Float32Array(n), dw = new Float32Array(C);
      native.rmsNormBackward({ rows, C, x, weight: w, rstd, dy: wy, dx, dweight: dw });
      const ix = pickIndices(n, 12, 55), ic = pickIndices(C, 6, 56);
      expect(maxAbsDiff(ix.map((i) => dx[i]), finiteDiff(f, x, ix))).toBeLessThan(3e-3);
      expect(maxAbsDiff(ic.map((i) => dw[i]), finiteDiff(f, w, ic))).toBeLessThan(3e-3);
    });
  });
});

describe("rmsNorm determinism and goldens", () => {
  test("dweight has the same bits on 1, 2 and 3 threads, and call to call", () => {
    const rows = 1000, C = 70, n = rows * C;
    const x = randn(n, 61), w = randn(C, 62), dy = randn(n, 63), rstd = new Float32Array(rows);
    native.rmsNormForward({ rows, C, x, weight: w, y: new Float32Array(n), rstd });
    const grads = [1, 2, 3, 3].map((t) =>
      withThreads(t, () => {
        const dw = new Float32Array(C), dx = new Float32Array(n);
        native.rmsNormBackward({ rows, C, x, weight: w, rstd, dy, dx, dweight: dw });
        return [dw, dx];
      }),
    );
    for (const [dw, dx] of grads.slice(1)) {
      expect(maxAbsDiff(dw, grads[0][0])).toBe(0);
      expect(maxAbsDiff(dx, grads[0][1])).toBe(0);
    }
  });

  const golden = loadGolden<{
    rmsnorm: { rows: number; C: number; G: number; ld: number; eps: number; x: number[]; weight: number[] | null; dy: number[]; y: number[]; rstd: number[]; dx: number[]; dweight: number[] | null }[];
  }>("decoder_ops.json");
  test.each(ISAS)("LlamaRMSNorm and its autograd backward on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.rmsnorm) {
        const { rows, C, G, ld } = g;
        const weight = g.weight ? f32(g.weight) : undefined, x = f32(g.x);
        const y = new Float32Array(rows * C), rstd = new Float32Array(rows);
        native.rmsNormForward({ rows, C, G, ldx: ld, eps: g.eps, x, weight, y, rstd });
        expectClose(y, g.y, 2e-6);
        expectClose(rstd, g.rstd, 2e-6);
        const dx = new Float32Array(rows * C), dweight = new Float32Array(C);
        native.rmsNormBackward({ rows, C, G, ldx: ld, x, weight, rstd, dy: f32(g.dy), dx, dweight: weight ? dweight : undefined });
        expectClose(dx, g.dx, 1e-5);
        if (g.dweight) expectClose(dweight, g.dweight, 1e-5);
      }
    });
  });
});

// ---- RoPE ---------------------------------------------------------------------------------------------

/** cos/sin tables (P, D/2) of the default rope: angle p·θ^(−2d/D). */
function ropeTables(P: number, D: number, theta = 10000) {
  const half = D / 2, cos = new Float32Array(P * half), sin = new Float32Array(P * half);
  for (let p = 0; p < P; p++)
    for (let d = 0; d < half; d++) {
      const a = p * Math.pow(theta, (-2 * d) / D);
      cos[p * half + d] = Math.cos(a);
      sin[p * half + d] = Math.sin(a);
    }
  return { cos, sin };
}

/** rotate_half rope of x (N tokens of H heads, token stride ld) by +θ or −θ, in float64. */
function ropeReference(a: { B: number; T: number; H: number; D: number; ld: number }, x: ArrayLike<number>, cos: ArrayLike<number>, sin: ArrayLike<number>, pos: ArrayLike<number>, inverse = false) {
  const out = Float64Array.from(x), half = a.D / 2, sg = inverse ? -1 : 1;
  for (let t = 0; t < a.B * a.T; t++)
    for (let h = 0; h < a.H; h++) {
      const o = t * a.ld + h * a.D;
      for (let d = 0; d < half; d++) {
        const c = cos[pos[t] * half + d], s = sg * sin[pos[t] * half + d], x1 = x[o + d], x2 = x[o + half + d];
        out[o + d] = x1 * c - x2 * s;
        out[o + half + d] = x2 * c + x1 * s;
      }
    }
  return out;
}

describe.each(ISAS)("rope on %s", (isa) => {
  // (B, T, H, D, extra columns per token): D crosses the vector widths; extra > 0 is a packed row.
  const shapes = [[1, 1, 1, 2, 0], [2, 5, 3, 6, 0], [1, 7, 2, 34, 5], [3, 4, 5, 130, 0], [2, 200, 7, 64, 128]] as const;
  test.each(shapes)("B=%i T=%i H=%i D=%i extra=%i: forward, backward = the naive rotation by ±θ", (B, T, H, D, extra) => {
    withIsa(isa, () => {
      const ld = H * D + extra, P = T + 9, { cos, sin } = ropeTables(P, D);
      const r = rng(B * T + D), positions = Int32Array.from({ length: B * T }, () => Math.floor(r() * P));
      const x0 = randn(B * T * ld, D + T), x = x0.slice();
      const args: RopeArgs = { B, T, H, D, P, x, ld, cos, sin, positions };
      native.ropeForward(args);
      const want = ropeReference({ B, T, H, D, ld }, x0, cos, sin, positions);
      expectClose(x, want, 1e-6);
      for (let t = 0; t < B * T; t++) for (let c = H * D; c < ld; c++) expect(x[t * ld + c]).toBe(x0[t * ld + c]);
      // The backward is the inverse rotation: it brings x back, and is the reference rotation by −θ.
      native.ropeBackward(args);
      expectClose(x, x0, 1e-6);
      const g = x0.slice();
      native.ropeBackward({ ...args, x: g });
      expectClose(g, ropeReference({ B, T, H, D, ld }, x0, cos, sin, positions, true), 1e-6);
    });
  });

  test("the backward matches central differences of Σ w·rope(x)", () => {
    withIsa(isa, () => {
      const B = 2, T = 3, H = 2, D = 10, P = 8, n = B * T * H * D, { cos, sin } = ropeTables(P, D);
      const positions = Int32Array.from([0, 3, 7, 1, 1, 6]), x = randn(n, 71), w = randn(n, 72);
      const f = () => {
        const y = x.slice();
        native.ropeForward({ B, T, H, D, P, x: y, cos, sin, positions });
        return dot(w, y);
      };
      const dx = w.slice();
      native.ropeBackward({ B, T, H, D, P, x: dx, cos, sin, positions });
      const ix = pickIndices(n, 16, 73);
      expect(maxAbsDiff(ix.map((i) => dx[i]), finiteDiff(f, x, ix))).toBeLessThan(1e-3);
    });
  });
});

describe("rope against PyTorch goldens", () => {
  const golden = loadGolden<{
    rope: { B: number; T: number; H: number; D: number; P: number; cos: number[]; sin: number[]; positions: number[]; x: number[]; dy: number[]; y: number[]; dx: number[] }[];
  }>("decoder_ops.json");
  test.each(ISAS)("apply_rotary_pos_emb (default and llama3 tables) and its autograd backward on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.rope) {
        const a = { B: g.B, T: g.T, H: g.H, D: g.D, P: g.P, cos: f32(g.cos), sin: f32(g.sin), positions: Int32Array.from(g.positions) };
        const x = f32(g.x), dy = f32(g.dy);
        native.ropeForward({ ...a, x });
        expectClose(x, g.y, 2e-6);
        native.ropeBackward({ ...a, x: dy });
        expectClose(dy, g.dx, 2e-6);
      }
    });
  });
});

// ---- SwiGLU -------------------------------------------------------------------------------------------

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

describe.each(ISAS)("swiglu on %s", (isa) => {
  test.each([[1, 1], [3, 7], [65, 17], [7, 1000], [300, 130]])("rows=%i C=%i from a fused [gate | up]: forward and backward match the naive loop", (rows, C) => {
    withIsa(isa, () => {
      // gate and up are halves of one fused projection (ld 2·C); dgate and dup halves of one fused gradient.
      const fused = randn(rows * 2 * C, rows + C, 3), dy = randn(rows * C, 5);
      const gate = fused, up = fused.subarray(C), y = new Float32Array(rows * C);
      native.swigluForward({ rows, C, gate, up, y, ldg: 2 * C, ldu: 2 * C });
      const dfused = new Float32Array(rows * 2 * C).fill(NaN);
      native.swigluBackward({ rows, C, gate, up, dy, ldg: 2 * C, ldu: 2 * C, dgate: dfused, dup: dfused.subarray(C), lddg: 2 * C, lddu: 2 * C });
      const wy = new Float64Array(rows * C), wg = new Float64Array(rows * C), wu = new Float64Array(rows * C);
      const gotG = new Float32Array(rows * C), gotU = new Float32Array(rows * C);
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < C; c++) {
          const g = fused[r * 2 * C + c], u = fused[r * 2 * C + C + c], s = sigmoid(g), i = r * C + c;
          wy[i] = g * s * u;
          wg[i] = dy[i] * u * s * (1 + g * (1 - s));
          wu[i] = dy[i] * g * s;
          gotG[i] = dfused[r * 2 * C + c];
          gotU[i] = dfused[r * 2 * C + C + c];
        }
      expectClose(y, wy, 2e-6);
      expectClose(gotG, wg, 2e-6);
      expectClose(gotU, wu, 2e-6);
    });
  });

  test("saturated gates stay finite and exact at the limits; each gradient is optional", () => {
    withIsa(isa, () => {
      const gate = f32([-100, 100, 0, -20, 30]), up = f32([2, 3, 4, 5, 6]), dy = f32([1, 1, 1, 1, 1]), y = new Float32Array(5);
      native.swigluForward({ rows: 1, C: 5, gate, up, y });
      expect(y[0]).toBeCloseTo(0, 30);
      expect(y[1]).toBe(300);
      expect(y[2]).toBe(0);
      const dgate = new Float32Array(5), dup = new Float32Array(5);
      native.swigluBackward({ rows: 1, C: 5, gate, up, dy, dgate });
      native.swigluBackward({ rows: 1, C: 5, gate, up, dy, dup });
      expect([...dgate, ...dup].every(Number.isFinite)).toBe(true);
      expect(dgate[1]).toBe(3);
      expect(dup[1]).toBe(100);
    });
  });

  test("dgate and dup match central differences of the kernel's forward", () => {
    withIsa(isa, () => {
      const rows = 3, C = 11, n = rows * C, gate = randn(n, 81, 2), up = randn(n, 82), w = randn(n, 83), y = new Float32Array(n);
      const f = () => {
        native.swigluForward({ rows, C, gate, up, y });
        return dot(w, y);
      };
      const dgate = new Float32Array(n), dup = new Float32Array(n);
      native.swigluBackward({ rows, C, gate, up, dy: w, dgate, dup });
      const ix = pickIndices(n, 12, 84);
      expect(maxAbsDiff(ix.map((i) => dgate[i]), finiteDiff(f, gate, ix))).toBeLessThan(2e-3);
      expect(maxAbsDiff(ix.map((i) => dup[i]), finiteDiff(f, up, ix))).toBeLessThan(2e-3);
    });
  });
});

describe("swiglu against PyTorch goldens", () => {
  const golden = loadGolden<{ swiglu: { rows: number; C: number; gate: number[]; up: number[]; dy: number[]; y: number[]; dgate: number[]; dup: number[] }[] }>("decoder_ops.json");
  test.each(ISAS)("silu(gate) * up and its autograd backward on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.swiglu) {
        const { rows, C } = g, y = new Float32Array(rows * C), dgate = new Float32Array(rows * C), dup = new Float32Array(rows * C);
        native.swigluForward({ rows, C, gate: f32(g.gate), up: f32(g.up), y });
        native.swigluBackward({ rows, C, gate: f32(g.gate), up: f32(g.up), dy: f32(g.dy), dgate, dup });
        expectClose(y, g.y, 2e-6);
        expectClose(dgate, g.dgate, 2e-6);
        expectClose(dup, g.dup, 2e-6);
      }
    });
  });
});

// ---- attention: grouped-query heads, sliding window, query offset ---------------------------------------

interface Att {
  B: number; H: number; Hkv: number; Tq: number; Tk: number; D: number;
  causal?: boolean; window?: number; queryOffset?: number; keyMask?: Uint8Array; scale?: number;
}
interface AttIn { q: Float32Array; k: Float32Array; v: Float32Array; dout: Float32Array }

/** Whether query i of batch row b sees key j (HF: kv_idx <= q_idx, kv_idx > q_idx − window, padding). */
function visible(p: Att, b: number, i: number, j: number) {
  const qi = (p.queryOffset ?? 0) + i;
  if (p.keyMask && p.keyMask[b * p.Tk + j] !== 1) return false;
  if (p.causal && j > qi) return false;
  return !(p.causal && p.window && j <= qi - p.window);
}

/** Materialised softmax in float64, q/o (B, Tq, H, D), k/v (B, Tk, Hkv, D); dk, dv summed over each group. */
function attReference(p: Att, x: AttIn) {
  const { B, H, Hkv, Tq, Tk, D } = p, R = H / Hkv, scale = p.scale ?? 1 / Math.sqrt(D);
  const qa = (b: number, i: number, h: number) => ((b * Tq + i) * H + h) * D;
  const ka = (b: number, j: number, g: number) => ((b * Tk + j) * Hkv + g) * D;
  const o = new Float64Array(B * Tq * H * D), lse = new Float64Array(B * H * Tq);
  const dq = new Float64Array(o.length), dk = new Float64Array(B * Tk * Hkv * D), dv = new Float64Array(dk.length);
  const P = new Float64Array(Tk), dP = new Float64Array(Tk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / R);
      for (let i = 0; i < Tq; i++) {
        let mx = -Infinity;
        for (let j = 0; j < Tk; j++) {
          P[j] = visible(p, b, i, j) ? scale * dot(x.q.subarray(qa(b, i, h), qa(b, i, h) + D), x.k.subarray(ka(b, j, g), ka(b, j, g) + D)) : -Infinity;
          mx = Math.max(mx, P[j]);
        }
        const li = (b * H + h) * Tq + i;
        if (mx === -Infinity) {
          lse[li] = -Infinity;
          continue;
        }
        let sum = 0;
        for (let j = 0; j < Tk; j++) sum += P[j] = Math.exp(P[j] - mx);
        lse[li] = mx + Math.log(sum);
        let Di = 0;
        for (let j = 0; j < Tk; j++) {
          P[j] /= sum;
          let s = 0;
          for (let d = 0; d < D; d++) {
            o[qa(b, i, h) + d] += P[j] * x.v[ka(b, j, g) + d];
            s += x.dout[qa(b, i, h) + d] * x.v[ka(b, j, g) + d];
            dv[ka(b, j, g) + d] += P[j] * x.dout[qa(b, i, h) + d];
          }
          dP[j] = s;
          Di += P[j] * s;
        }
        for (let j = 0; j < Tk; j++) {
          const dS = P[j] * (dP[j] - Di) * scale;
          for (let d = 0; d < D; d++) {
            dq[qa(b, i, h) + d] += dS * x.k[ka(b, j, g) + d];
            dk[ka(b, j, g) + d] += dS * x.q[qa(b, i, h) + d];
          }
        }
      }
    }
  return { o, lse, dq, dk, dv };
}

function attInputs(p: Att, seed: number): AttIn {
  const nq = p.B * p.Tq * p.H * p.D, nk = p.B * p.Tk * p.Hkv * p.D;
  return { q: randn(nq, seed), k: randn(nk, seed + 1), v: randn(nk, seed + 2), dout: randn(nq, seed + 3) };
}

function attRun(p: Att & { dropoutP?: number; seed?: number }, x: AttIn) {
  const o = new Float32Array(x.q.length), lse = new Float32Array(p.B * p.H * p.Tq);
  const dq = new Float32Array(x.q.length).fill(NaN), dk = new Float32Array(x.k.length).fill(NaN), dv = new Float32Array(x.k.length).fill(NaN);
  const args = { ...p, q: x.q, k: x.k, v: x.v, o, lse };
  native.attentionForward(args);
  native.attentionBackward({ ...args, dout: x.dout, dq, dk, dv });
  return { o, lse, dq, dk, dv };
}

function expectAtt(got: ReturnType<typeof attRun>, want: ReturnType<typeof attReference>, tol = 2e-5) {
  expectClose(got.o, want.o, tol);
  expect(Array.from(got.lse, (x) => x === -Infinity)).toEqual(Array.from(want.lse, (x) => x === -Infinity));
  expectClose(got.lse.map((x) => (x === -Infinity ? 0 : x)), want.lse.map((x) => (x === -Infinity ? 0 : x)), tol);
  expectClose(got.dq, want.dq, 5 * tol);
  expectClose(got.dk, want.dk, 5 * tol);
  expectClose(got.dv, want.dv, 5 * tol);
}

const mask = (B: number, Tk: number, seed: number, density = 0.7) => {
  const r = rng(seed);
  return Uint8Array.from({ length: B * Tk }, () => (r() < density ? 1 : 0));
};

// Shapes cross the query (64) and key (128) tiles; windows skip whole key tiles; offsets put the queries
// after a cache (Tk − Tq) or anywhere (chunked prefill).
const attCases: (Att & { name: string })[] = [
  { name: "GQA 2:1", B: 2, H: 4, Hkv: 2, Tq: 7, Tk: 7, D: 8 },
  { name: "MQA causal padding", B: 2, H: 3, Hkv: 1, Tq: 65, Tk: 65, D: 17, causal: true, keyMask: mask(2, 65, 3) },
  { name: "GQA window 5", B: 1, H: 6, Hkv: 2, Tq: 30, Tk: 30, D: 16, causal: true, window: 5 },
  { name: "window 50 across key tiles", B: 1, H: 2, Hkv: 1, Tq: 300, Tk: 300, D: 32, causal: true, window: 50 },
  { name: "queries at the end of the keys", B: 2, H: 4, Hkv: 2, Tq: 20, Tk: 150, D: 8, causal: true, queryOffset: 130 },
  { name: "offset + window + padding", B: 2, H: 2, Hkv: 2, Tq: 70, Tk: 260, D: 9, causal: true, queryOffset: 190, window: 100, keyMask: mask(2, 260, 5, 0.8) },
  { name: "chunked prefill: offset inside the keys", B: 1, H: 4, Hkv: 1, Tq: 40, Tk: 300, D: 64, causal: true, queryOffset: 100 },
  { name: "window 1: only the diagonal", B: 1, H: 2, Hkv: 1, Tq: 9, Tk: 9, D: 4, causal: true, window: 1 },
  { name: "window larger than the keys", B: 1, H: 2, Hkv: 2, Tq: 10, Tk: 10, D: 4, causal: true, window: 1000 },
];
const attData = new Map<string, { x: AttIn; want: ReturnType<typeof attReference> }>();
function attCase(c: Att & { name: string }) {
  let d = attData.get(c.name);
  if (!d) {
    const x = attInputs(c, c.Tq * 7 + c.Tk);
    d = { x, want: attReference(c, x) };
    attData.set(c.name, d);
  }
  return d;
}

describe.each(ISAS)("attention with grouped-query heads, windows and offsets on %s", (isa) => {
  test.each(attCases)("$name: forward and backward match the naive reference", (c) => {
    withIsa(isa, () => {
      const { x, want } = attCase(c);
      expectAtt(attRun(c, x), want);
    });
  });

  test("GQA equals MHA over repeated k, v (o, lse, dq bitwise; dk, dv the group sums), dropout included", () => {
    withIsa(isa, () => {
      const p = { B: 2, H: 6, Hkv: 2, Tq: 70, Tk: 140, D: 16, causal: true, queryOffset: 70, window: 90, dropoutP: 0.1, seed: 3 };
      const x = attInputs(p, 91), R = p.H / p.Hkv;
      const rep = (t: Float32Array) => {
        const out = new Float32Array(p.B * p.Tk * p.H * p.D);
        for (let bt = 0; bt < p.B * p.Tk; bt++)
          for (let h = 0; h < p.H; h++) out.set(t.subarray((bt * p.Hkv + Math.floor(h / R)) * p.D, (bt * p.Hkv + Math.floor(h / R) + 1) * p.D), (bt * p.H + h) * p.D);
        return out;
      };
      const gqa = attRun(p, x), mha = attRun({ ...p, Hkv: p.H }, { ...x, k: rep(x.k), v: rep(x.v) });
      expect(maxAbsDiff(gqa.o, mha.o)).toBe(0);
      expect(maxAbsDiff(gqa.lse, mha.lse)).toBe(0);
      expect(maxAbsDiff(gqa.dq, mha.dq)).toBe(0);
      const sum = (t: Float32Array) => {
        const out = new Float64Array(p.B * p.Tk * p.Hkv * p.D);
        for (let bt = 0; bt < p.B * p.Tk; bt++)
          for (let h = 0; h < p.H; h++)
            for (let d = 0; d < p.D; d++) out[(bt * p.Hkv + Math.floor(h / R)) * p.D + d] += t[(bt * p.H + h) * p.D + d];
        return out;
      };
      expectClose(gqa.dk, sum(mha.dk), 1e-5);
      expectClose(gqa.dv, sum(mha.dv), 1e-5);
    });
  });

  test("packed [q | k | v] with Hkv heads: views in, gradients into one packed buffer", () => {
    withIsa(isa, () => {
      const p: Att = { B: 2, H: 4, Hkv: 1, Tq: 33, Tk: 33, D: 8, causal: true, window: 10 };
      const { B, H, Hkv, D } = p, T = 33, QD = H * D, KD = Hkv * D, ld = QD + 2 * KD;
      const qkv = randn(B * T * ld, 15), dout = randn(B * T * QD, 16);
      const dense = (off: number, w: number) => {
        const out = new Float32Array(B * T * w);
        for (let t = 0; t < B * T; t++) out.set(qkv.subarray(t * ld + off, t * ld + off + w), t * w);
        return out;
      };
      const x: AttIn = { q: dense(0, QD), k: dense(QD, KD), v: dense(QD + KD, KD), dout };
      const o = new Float32Array(B * T * QD), lse = new Float32Array(B * H * T);
      const args = { ...p, q: qkv, k: qkv.subarray(QD), v: qkv.subarray(QD + KD), ldq: ld, ldk: ld, ldv: ld, o, lse };
      native.attentionForward(args);
      const d = new Float32Array(B * T * ld).fill(NaN);
      native.attentionBackward({ ...args, dout, dq: d, dk: d.subarray(QD), dv: d.subarray(QD + KD), lddq: ld, lddk: ld, lddv: ld });
      const ref = attRun(p, x);
      expect(maxAbsDiff(o, ref.o)).toBe(0);
      for (let t = 0; t < B * T; t++)
        for (const [off, w, want] of [[0, QD, ref.dq], [QD, KD, ref.dk], [QD + KD, KD, ref.dv]] as const)
          expect(maxAbsDiff(d.subarray(t * ld + off, t * ld + off + w), want.subarray(t * w, (t + 1) * w))).toBe(0);
      expectAtt(ref, attReference(p, x));
    });
  });

  test("backward = central differences of the kernel's forward (GQA, window, offset, padding)", () => {
    withIsa(isa, () => {
      const p: Att = { B: 1, H: 4, Hkv: 2, Tq: 5, Tk: 9, D: 5, causal: true, window: 4, queryOffset: 4, keyMask: Uint8Array.from([1, 1, 0, 1, 1, 1, 0, 1, 1]) };
      const x = attInputs(p, 17), got = attRun(p, x);
      const loss = () => {
        const o = new Float32Array(x.q.length);
        native.attentionForward({ ...p, q: x.q, k: x.k, v: x.v, o, lse: new Float32Array(p.H * p.Tq) });
        return dot(o, x.dout);
      };
      for (const [name, grad] of [["q", got.dq], ["k", got.dk], ["v", got.dv]] as const) {
        const idx = pickIndices(x[name].length, 8, name.charCodeAt(0));
        const fd = finiteDiff(loss, x[name], idx);
        idx.forEach((i, n) => expect(Math.abs(fd[n] - grad[i])).toBeLessThan(3e-3 + 1e-2 * Math.abs(grad[i])));
      }
    });
  });
});

describe("attention (GQA) threading and goldens", () => {
  test("the same bits on 1, 2 and 3 threads and call to call, and the reference's values", () => {
    // One kv head: its keys are split into parts (from the shape alone), each part's dq summed afterwards.
    const p: Att = { B: 1, H: 3, Hkv: 1, Tq: 100, Tk: 400, D: 32, causal: true, queryOffset: 300, window: 250 };
    const x = attInputs(p, 41), want = attReference(p, x);
    const runs = [1, 2, 3, 3].map((n) => withThreads(n, () => attRun(p, x)));
    expectAtt(runs[0], want);
    for (const r of runs.slice(1)) for (const k of ["o", "lse", "dq", "dk", "dv"] as const) expect(maxAbsDiff(r[k], runs[0][k])).toBe(0);
  });

  interface Golden {
    B: number; H: number; Hkv: number; Tq: number; Tk: number; D: number; causal: boolean; window: number; queryOffset: number; keyMask: number[] | null;
    q: number[]; k: number[]; v: number[]; dout: number[]; o: number[]; lse: number[]; dq: number[]; dk: number[]; dv: number[];
  }
  const golden = loadGolden<{ attention: Golden[] }>("decoder_ops.json");
  test.each(ISAS)("eager attention with repeat_kv and HF's sliding-window causal mask on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.attention) {
        const p: Att = { ...g, keyMask: g.keyMask ? Uint8Array.from(g.keyMask) : undefined };
        const got = attRun(p, { q: f32(g.q), k: f32(g.k), v: f32(g.v), dout: f32(g.dout) });
        expectClose(got.o, g.o, 2e-5);
        expectClose(got.lse, g.lse, 2e-5);
        expectClose(got.dq, g.dq, 1e-4);
        expectClose(got.dk, g.dk, 1e-4);
        expectClose(got.dv, g.dv, 1e-4);
      }
    });
  });

  test("errors name the new arguments and what was expected", () => {
    const base = (): AttentionForwardArgs => ({
      B: 1, H: 4, Hkv: 2, Tq: 3, Tk: 3, D: 2, q: new Float32Array(24), k: new Float32Array(12), v: new Float32Array(12), o: new Float32Array(24), lse: new Float32Array(12),
    });
    const fwd = (over: Record<string, unknown>) => () => native.attentionForward({ ...base(), ...over } as AttentionForwardArgs);
    expect(fwd({})).not.toThrow();
    expect(fwd({ Hkv: 3 })).toThrow(new TunekitError("attentionForward: argument 'Hkv' = 3 does not divide H = 4, expected a divisor (each kv head serves H / Hkv query heads)"));
    expect(fwd({ Hkv: 5 })).toThrow(/argument 'Hkv' = 5 is out of range, expected 1\.\.4/);
    expect(fwd({ Hkv: 0 })).toThrow(/argument 'Hkv' = 0 is out of range/);
    expect(fwd({ k: new Float32Array(11) })).toThrow(/argument 'k' has 11 elements, expected at least 12/);
    expect(fwd({ ldk: 3 })).toThrow(/argument 'ldk' = 3 is out of range, expected 4\.\./);
    expect(fwd({ window: 2 })).toThrow(new TunekitError("attentionForward: argument 'window' = 2 needs causal: true (a sliding window limits a causal mask)"));
    expect(fwd({ queryOffset: 1 })).toThrow(/argument 'queryOffset' = 1 needs causal: true/);
    expect(fwd({ causal: true, window: -1 })).toThrow(/argument 'window' = -1 is out of range/);
    const bwd = (over: Record<string, unknown>) => () =>
      native.attentionBackward({ ...base(), dout: new Float32Array(24), dq: new Float32Array(24), dk: new Float32Array(12), dv: new Float32Array(12), ...over } as never);
    expect(bwd({})).not.toThrow();
    expect(bwd({ dk: new Float32Array(11) })).toThrow(/attentionBackward: argument 'dk' has 11 elements, expected at least 12/);
    // A packed gradient [dq (8) | dk (4) | dv (4)], ld 16: dk must start at column 8 at least, dv after dk.
    const packed = new Float32Array(3 * 16);
    const views = (kOff: number, vOff: number) => ({ dq: packed, dk: packed.subarray(kOff), dv: packed.subarray(vOff), lddq: 16, lddk: 16, lddv: 16 });
    expect(bwd(views(8, 12))).not.toThrow();
    expect(bwd(views(6, 12))).toThrow(/output 'dk' overlaps output 'dq'/);
    expect(bwd(views(8, 10))).toThrow(/output 'dv' overlaps output 'dk'/);
  });
});

// ---- attentionDecode ----------------------------------------------------------------------------------

interface Dec { B: number; H: number; Hkv: number; Tk: number; Tmax: number; D: number; lengths?: Int32Array; keyMask?: Uint8Array; window?: number }

function decodeReference(p: Dec, q: ArrayLike<number>, k: ArrayLike<number>, v: ArrayLike<number>) {
  const { B, H, Hkv, Tk, Tmax, D } = p, R = H / Hkv, scale = 1 / Math.sqrt(D), o = new Float64Array(B * H * D);
  for (let b = 0; b < B; b++) {
    const n = p.lengths ? p.lengths[b] : Tk;
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / R), s: number[] = [];
      for (let j = 0; j < Tk; j++) {
        const on = j < n && (!p.window || j > n - 1 - p.window) && (!p.keyMask || p.keyMask[b * Tk + j] === 1);
        let d = 0;
        for (let e = 0; e < D; e++) d += q[(b * H + h) * D + e] * k[((b * Tmax + j) * Hkv + g) * D + e];
        s.push(on ? d * scale : -Infinity);
      }
      const mx = Math.max(...s);
      if (mx === -Infinity) continue;
      const w = s.map((x) => Math.exp(x - mx)), sum = w.reduce((a, b2) => a + b2, 0);
      for (let j = 0; j < Tk; j++)
        for (let e = 0; e < D; e++) o[(b * H + h) * D + e] += (w[j] / sum) * v[((b * Tmax + j) * Hkv + g) * D + e];
    }
  }
  return o;
}

function decodeRun(p: Dec, q: Float32Array, k: Float32Array, v: Float32Array) {
  const o = new Float32Array(p.B * p.H * p.D).fill(NaN);
  native.attentionDecode({ ...p, q, k, v, o });
  return o;
}

describe.each(ISAS)("attentionDecode on %s", (isa) => {
  const cases: (Dec & { name: string })[] = [
    { name: "one key", B: 1, H: 1, Hkv: 1, Tk: 1, Tmax: 1, D: 1 },
    { name: "B=1 Qwen2-0.5B heads, one chunk", B: 1, H: 14, Hkv: 2, Tk: 60, Tmax: 64, D: 64 },
    { name: "B=3 ragged lengths over chunks", B: 3, H: 4, Hkv: 2, Tk: 700, Tmax: 701, D: 17, lengths: Int32Array.from([700, 129, 0]) },
    { name: "left padding", B: 2, H: 6, Hkv: 3, Tk: 300, Tmax: 300, D: 8, keyMask: mask(2, 300, 7, 0.9) },
    { name: "sliding window, lengths and padding", B: 2, H: 2, Hkv: 1, Tk: 520, Tmax: 600, D: 33, lengths: Int32Array.from([520, 200]), keyMask: mask(2, 520, 8), window: 100 },
    { name: "MHA, long cache", B: 1, H: 3, Hkv: 3, Tk: 5000, Tmax: 5000, D: 24 },
  ];
  test.each(cases)("$name: matches the naive loop", (c) => {
    withIsa(isa, () => {
      const q = randn(c.B * c.H * c.D, 1), k = randn(c.B * c.Tmax * c.Hkv * c.D, 2), v = randn(k.length, 3);
      const got = decodeRun(c, q, k, v);
      expectClose(got, decodeReference(c, q, k, v), 2e-5);
      if (c.lengths?.[2] === 0) expect(got.subarray(2 * c.H * c.D).every((x) => x === 0)).toBe(true);
    });
  });

  test("the same as attentionForward with one query at the end of the keys (Tq = 1, queryOffset = Tk − 1)", () => {
    withIsa(isa, () => {
      const B = 2, H = 8, Hkv = 2, Tk = 333, D = 16;
      const q = randn(B * H * D, 4), k = randn(B * Tk * Hkv * D, 5), v = randn(k.length, 6), keyMask = mask(B, Tk, 9, 0.8);
      for (const window of [0, 64]) {
        const o = new Float32Array(B * H * D);
        native.attentionForward({ B, H, Hkv, Tq: 1, Tk, D, q, k, v, o, lse: new Float32Array(B * H), keyMask, causal: true, queryOffset: Tk - 1, window });
        expectClose(decodeRun({ B, H, Hkv, Tk, Tmax: Tk, D, keyMask, window }, q, k, v), o, 1e-5);
      }
    });
  });

  test("strided q (a token row of a packed projection), caches with token stride, o with row stride", () => {
    withIsa(isa, () => {
      const B = 2, H = 4, Hkv = 2, Tk = 90, Tmax = 100, D = 8, ldq = (H + 2 * Hkv) * D, ldk = 3 * Hkv * D, ldo = H * D + 3;
      const qp = randn(B * ldq, 11), kp = randn(B * Tmax * ldk, 12), vp = kp.subarray(Hkv * D);
      const o = new Float32Array(B * ldo).fill(5);
      native.attentionDecode({ B, H, Hkv, Tk, Tmax, D, q: qp, ldq, k: kp, ldk, v: vp, ldv: ldk, o, ldo });
      const dense = (src: Float32Array, rows: number, ld: number, w: number) => {
        const out = new Float32Array(rows * w);
        for (let r = 0; r < rows; r++) out.set(src.subarray(r * ld, r * ld + w), r * w);
        return out;
      };
      const q = dense(qp, B, ldq, H * D), k = dense(kp, B * Tmax, ldk, Hkv * D), v = dense(vp, B * Tmax, ldk, Hkv * D);
      const want = decodeRun({ B, H, Hkv, Tk, Tmax, D }, q, k, v);
      expect(maxAbsDiff(dense(o, B, ldo, H * D), want)).toBe(0);
      expect(o[H * D]).toBe(5);
    });
  });
});

describe("attentionDecode threading, goldens, async and bad input", () => {
  test("the same bits on 1, 2 and 3 threads (chunks merged in a fixed order)", () => {
    const p: Dec = { B: 1, H: 14, Hkv: 2, Tk: 2000, Tmax: 2048, D: 64 };
    const q = randn(p.H * p.D, 21), k = randn(p.Tmax * p.Hkv * p.D, 22), v = randn(k.length, 23);
    const outs = [1, 2, 3].map((n) => withThreads(n, () => decodeRun(p, q, k, v)));
    expect(maxAbsDiff(outs[1], outs[0])).toBe(0);
    expect(maxAbsDiff(outs[2], outs[0])).toBe(0);
    expectClose(outs[0], decodeReference(p, q, k, v), 2e-5);
  });

  const golden = loadGolden<{
    decode: { B: number; H: number; Hkv: number; Tk: number; Tmax: number; D: number; lengths: number[] | null; window: number; keyMask: number[] | null; q: number[]; k: number[]; v: number[]; o: number[] }[];
  }>("decoder_ops.json");
  test.each(ISAS)("PyTorch softmax(q·Kᵀ/√D)·V per (batch, head) on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.decode) {
        const p: Dec = { ...g, lengths: g.lengths ? Int32Array.from(g.lengths) : undefined, keyMask: g.keyMask ? Uint8Array.from(g.keyMask) : undefined };
        expectClose(decodeRun(p, f32(g.q), f32(g.k), f32(g.v)), g.o, 2e-5);
      }
    });
  });

  test("the Async forms give the same bits", async () => {
    const p: Dec = { B: 2, H: 4, Hkv: 1, Tk: 200, Tmax: 200, D: 16 };
    const q = randn(p.B * p.H * p.D, 31), k = randn(p.B * p.Tmax * p.D, 32), v = randn(k.length, 33);
    const o = new Float32Array(q.length);
    await native.attentionDecodeAsync({ ...p, q, k, v, o });
    expect(maxAbsDiff(o, decodeRun(p, q, k, v))).toBe(0);
    const x = randn(64, 34), y1 = new Float32Array(64), y2 = new Float32Array(64), rstd = new Float32Array(4);
    native.rmsNormForward({ rows: 4, C: 16, x, y: y1, rstd });
    await native.rmsNormForwardAsync({ rows: 4, C: 16, x, y: y2, rstd });
    expect(maxAbsDiff(y1, y2)).toBe(0);
    const dx1 = new Float32Array(64), dx2 = new Float32Array(64);
    native.rmsNormBackward({ rows: 4, C: 16, x, rstd, dy: x, dx: dx1 });
    await native.rmsNormBackwardAsync({ rows: 4, C: 16, x, rstd, dy: x, dx: dx2 });
    expect(maxAbsDiff(dx1, dx2)).toBe(0);
    const { cos, sin } = ropeTables(4, 8), positions = Int32Array.from([3, 1]), r1 = x.slice(0, 32), r2 = x.slice(0, 32);
    native.ropeForward({ B: 1, T: 2, H: 2, D: 8, P: 4, x: r1, cos, sin, positions });
    await native.ropeForwardAsync({ B: 1, T: 2, H: 2, D: 8, P: 4, x: r2, cos, sin, positions });
    expect(maxAbsDiff(r1, r2)).toBe(0);
    native.ropeBackward({ B: 1, T: 2, H: 2, D: 8, P: 4, x: r1, cos, sin, positions });
    await native.ropeBackwardAsync({ B: 1, T: 2, H: 2, D: 8, P: 4, x: r2, cos, sin, positions });
    expect(maxAbsDiff(r1, r2)).toBe(0);
    const s1 = new Float32Array(16), s2 = new Float32Array(16);
    native.swigluForward({ rows: 2, C: 8, gate: x, up: x.subarray(16), y: s1 });
    await native.swigluForwardAsync({ rows: 2, C: 8, gate: x, up: x.subarray(16), y: s2 });
    expect(maxAbsDiff(s1, s2)).toBe(0);
    native.swigluBackward({ rows: 2, C: 8, gate: x, up: x.subarray(16), dy: x.subarray(32), dgate: s1 });
    await native.swigluBackwardAsync({ rows: 2, C: 8, gate: x, up: x.subarray(16), dy: x.subarray(32), dgate: s2 });
    expect(maxAbsDiff(s1, s2)).toBe(0);
    await expect(native.attentionDecodeAsync({ ...p, q: new Float32Array(3), k, v, o })).rejects.toThrow(TunekitError);
  });

  test("attentionDecode errors name the argument and what was expected", () => {
    const base = (): AttentionDecodeArgs => ({ B: 2, H: 4, Hkv: 2, Tk: 5, Tmax: 6, D: 3, q: new Float32Array(24), k: new Float32Array(66), v: new Float32Array(66), o: new Float32Array(24) });
    const dec = (over: Record<string, unknown>) => () => native.attentionDecode({ ...base(), ...over } as AttentionDecodeArgs);
    expect(dec({})).not.toThrow();
    // (B − 1)·Tmax + Tk tokens of Hkv·D = 6 floats are read: 11·6 = 66.
    expect(dec({ k: new Float32Array(65) })).toThrow(new TunekitError("attentionDecode: argument 'k' has 65 elements, expected at least 66"));
    expect(dec({ Tmax: 4 })).toThrow(/argument 'Tmax' = 4 is out of range, expected 5\.\./);
    expect(dec({ Hkv: 3 })).toThrow(/argument 'Hkv' = 3 does not divide H = 4/);
    expect(dec({ lengths: Int32Array.from([5, 6]) })).toThrow(new TunekitError("attentionDecode: argument 'lengths'[1] = 6 is out of range, expected 0..5 (Tk)"));
    expect(dec({ lengths: Int32Array.from([-1, 0]) })).toThrow(/argument 'lengths'\[0\] = -1 is out of range/);
    expect(dec({ lengths: new Float32Array(2) })).toThrow(/argument 'lengths' must be an Int32Array or a device buffer, got a Float32Array/);
    expect(dec({ keyMask: new Uint8Array(9) })).toThrow(/argument 'keyMask' has 9 elements, expected at least 10/);
    expect(dec({ keyMask: new Uint8Array(10).fill(3) })).toThrow(/argument 'keyMask' has 3 at index 0, expected 0 \(padding\) or 1 \(attend\)/);
    expect(dec({ window: -2 })).toThrow(/argument 'window' = -2 is out of range/);
    expect(dec({ ldq: 11 })).toThrow(/argument 'ldq' = 11 is out of range, expected 12\.\./);
    expect(dec({ scale: NaN })).toThrow(/argument 'scale' is NaN/);
    const shared = new Float32Array(100);
    expect(dec({ q: shared, o: shared.subarray(10) })).toThrow(/attentionDecode: output 'o' overlaps input 'q'/);
  });
});

// ---- bad input of rmsNorm, rope, swiglu -------------------------------------------------------------------

describe("rmsNorm, rope and swiglu bad input", () => {
  test("rmsNorm errors", () => {
    const x = new Float32Array(12), y = new Float32Array(12), rstd = new Float32Array(3);
    const fwd = (a: Record<string, unknown>) => () => native.rmsNormForward({ rows: 3, C: 4, x, y, rstd, ...a } as never);
    expect(fwd({})).not.toThrow();
    expect(fwd({ eps: 0 })).toThrow(new TunekitError("rmsNormForward: argument 'eps' = 0 is out of range, expected a finite float32 > 0"));
    expect(fwd({ x: new Float32Array(11) })).toThrow(new TunekitError("rmsNormForward: argument 'x' has 11 elements, expected at least 12"));
    expect(fwd({ weight: new Float32Array(3) })).toThrow(/argument 'weight' has 3 elements, expected at least 4/);
    expect(fwd({ G: 2 })).toThrow(new TunekitError("rmsNormForward: argument 'rows' = 3 is not a multiple of G = 2, expected whole groups of G rows"));
    expect(fwd({ G: 3, ldx: 11 })).toThrow(/argument 'ldx' = 11 is out of range, expected 12\.\./);
    expect(fwd({ y: x })).toThrow(/rmsNormForward: output 'y' overlaps input 'x'; expected separate buffers/);
    expect(fwd({ rstd: undefined })).toThrow(/argument 'rstd' is missing/);
    const bwd = (a: Record<string, unknown>) => () => native.rmsNormBackward({ rows: 3, C: 4, x, rstd, dy: y, ...a } as never);
    expect(bwd({ dx: new Float32Array(12) })).not.toThrow();
    expect(bwd({ dx: y })).toThrow(/rmsNormBackward: output 'dx' overlaps input 'dy'/);
    expect(bwd({ dweight: x })).toThrow(/output 'dweight' overlaps input 'x'/);
    expect(bwd({ lddy: 2 })).toThrow(/argument 'lddy' = 2 is out of range, expected 4\.\./);
  });

  test("rope errors", () => {
    const { cos, sin } = ropeTables(4, 6);
    const base = () => ({ B: 1, T: 2, H: 2, D: 6, P: 4, x: new Float32Array(24), cos, sin, positions: Int32Array.from([0, 3]) });
    const call = (a: Record<string, unknown>) => () => native.ropeForward({ ...base(), ...a } as RopeArgs);
    expect(call({})).not.toThrow();
    expect(call({ D: 5 })).toThrow(new TunekitError("ropeForward: argument 'D' = 5 is odd, expected an even head dim (rotate_half pairs d with d + D/2)"));
    expect(call({ positions: Int32Array.from([0, 4]) })).toThrow(
      new TunekitError("ropeForward: argument 'positions'[1] = 4 is out of range, expected 0..3 (rows of the cos/sin tables)"),
    );
    expect(call({ positions: Int32Array.from([0]) })).toThrow(/argument 'positions' has 1 elements, expected at least 2/);
    expect(call({ cos: new Float32Array(11) })).toThrow(/argument 'cos' has 11 elements, expected at least 12/);
    expect(call({ ld: 11 })).toThrow(/argument 'ld' = 11 is out of range, expected 12\.\./);
    const big = new Float32Array(40);
    expect(call({ x: big, cos: big.subarray(20) })).toThrow(/ropeForward: output 'x' overlaps input 'cos'/);
    expect(() => native.ropeBackward({ ...base(), positions: Int32Array.from([-1, 0]) })).toThrow(/ropeBackward: argument 'positions'\[0\] = -1 is out of range/);
  });

  test("swiglu errors", () => {
    const g = new Float32Array(8), u = new Float32Array(8), y = new Float32Array(8);
    const fwd = (a: Record<string, unknown>) => () => native.swigluForward({ rows: 2, C: 4, gate: g, up: u, y, ...a } as never);
    expect(fwd({})).not.toThrow();
    expect(fwd({ ldg: 3 })).toThrow(new TunekitError("swigluForward: argument 'ldg' = 3 is out of range, expected 4..1099511627776"));
    expect(fwd({ ldu: 8 })).toThrow(/argument 'up' has 8 elements, expected at least 12/);
    expect(fwd({ y: u })).toThrow(/swigluForward: output 'y' overlaps input 'up'/);
    const bwd = (a: Record<string, unknown>) => () => native.swigluBackward({ rows: 2, C: 4, gate: g, up: u, dy: y, ...a } as never);
    const fused = new Float32Array(16);
    expect(bwd({ dgate: fused, dup: fused.subarray(4), lddg: 8, lddu: 8 })).not.toThrow();
    expect(bwd({ dgate: fused, dup: fused.subarray(2), lddg: 8, lddu: 8 })).toThrow(
      /swigluBackward: output 'dup' overlaps output 'dgate'; expected separate buffers or views of one packed buffer/,
    );
    expect(bwd({ dgate: y })).toThrow(/output 'dgate' overlaps input 'dy'/);
  });
});

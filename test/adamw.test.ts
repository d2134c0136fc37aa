import { native } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, maxAbsDiff, loadGolden, f32 } from "./helpers";

interface Hyper { lr: number; weightDecay?: number; beta1?: number; beta2?: number; eps?: number; gradScale?: number }

/** torch.optim.AdamW's update in float64 on (p, m, v), with the float32 gradient g. */
function adamwRef(p: Float64Array, g: Float32Array, m: Float64Array, v: Float64Array, h: Hyper, step: number): void {
  const b1 = h.beta1 ?? 0.9, b2 = h.beta2 ?? 0.999, eps = h.eps ?? 1e-8, wd = h.weightDecay ?? 0, gs = h.gradScale ?? 1;
  const bc1 = 1 - b1 ** step, bc2 = 1 - b2 ** step;
  for (let i = 0; i < p.length; i++) {
    const gi = g[i] * gs;
    p[i] *= 1 - h.lr * wd;
    m[i] = b1 * m[i] + (1 - b1) * gi;
    v[i] = b2 * v[i] + (1 - b2) * gi * gi;
    p[i] -= ((h.lr / bc1) * m[i]) / (Math.sqrt(v[i] / bc2) + eps);
  }
}

function sumSquaresRef(x: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < x.length; i++) s += x[i] * x[i];
  return s;
}

/** Test inputs are read-only to the kernels: make each once for every ISA and case. */
const inputs = new Map<string, Float32Array>();
function input(n: number, seed: number, scale = 1): Float32Array {
  const key = `${n}/${seed}/${scale}`;
  if (!inputs.has(key)) inputs.set(key, randn(n, seed, scale));
  return inputs.get(key)!;
}

/** A tensor's optimizer state: float32 for the kernel, float64 for the reference. */
function state(n: number, seed: number) {
  const p = randn(n, seed);
  return { p, m: new Float32Array(n), v: new Float32Array(n), rp: Float64Array.from(p), rm: new Float64Array(n), rv: new Float64Array(n) };
}

const hypers: Hyper[] = [
  { lr: 1e-2, weightDecay: 0.05 },
  { lr: 3e-3, weightDecay: 0, beta1: 0.8, beta2: 0.95, eps: 1e-6, gradScale: 0.25 },
  { lr: 0.1, weightDecay: 0.5, beta1: 0, beta2: 0.5, eps: 1e-3 },
];
const sizes = [1, 7, 15, 16, 17, 63, 65, 1000, 33001]; // 33001 runs on every thread

describe.each(ISAS)("adamw on %s", (isa) => {
  test.each(hypers.map((h) => [JSON.stringify(h), h] as const))("%s: 5 steps match the naive update", (_, h) => {
    withIsa(isa, () => {
      for (const n of sizes) {
        const s = state(n, n);
        for (let step = 1; step <= 5; step++) {
          const grad = input(n, 1000 * n + step);
          native.adamw({ n, param: s.p, grad, m: s.m, v: s.v, step, ...h });
          adamwRef(s.rp, grad, s.rm, s.rv, h, step);
        }
        expect(maxAbsDiff(s.p, s.rp)).toBeLessThan(2e-6);
        expect(maxAbsDiff(s.m, s.rm)).toBeLessThan(2e-6);
        expect(maxAbsDiff(s.v, s.rv)).toBeLessThan(2e-6);
      }
    });
  });

  test("gradScale is exactly the same as scaling the gradient first", () => {
    withIsa(isa, () => {
      const n = 1037, gs = 0.37;
      const a = state(n, 5), b = state(n, 5);
      for (let step = 1; step <= 3; step++) {
        const grad = randn(n, 50 + step);
        native.adamw({ n, param: a.p, grad, m: a.m, v: a.v, step, lr: 1e-2, weightDecay: 0.1, gradScale: gs });
        native.adamw({ n, param: b.p, grad: grad.map((g) => g * Math.fround(gs)), m: b.m, v: b.v, step, lr: 1e-2, weightDecay: 0.1 });
      }
      expect(maxAbsDiff(a.p, b.p)).toBe(0);
      expect(maxAbsDiff(a.m, b.m)).toBe(0);
      expect(maxAbsDiff(a.v, b.v)).toBe(0);
    });
  });

  test("an element's update does not depend on where the range starts (tail = body)", () => {
    withIsa(isa, () => {
      const n = 101, whole = state(n, 7), parts = state(n, 7), grad = randn(n, 8);
      native.adamw({ n, param: whole.p, grad, m: whole.m, v: whole.v, step: 2, lr: 1e-2, weightDecay: 0.1 });
      for (const [b, e] of [[0, 3], [3, 40], [40, 101]]) {
        native.adamw({ n: e - b, param: parts.p.subarray(b, e), grad: grad.subarray(b, e), m: parts.m.subarray(b, e), v: parts.v.subarray(b, e), step: 2, lr: 1e-2, weightDecay: 0.1 });
      }
      expect(maxAbsDiff(whole.p, parts.p)).toBe(0);
      expect(maxAbsDiff(whole.v, parts.v)).toBe(0);
    });
  });

  test("adamwMulti equals one adamw per tensor, bit for bit, with per-tensor lr and weight decay", () => {
    withIsa(isa, () => {
      const ns = [5, 0, 33, 20000, 1, 30000, 777];
      const lrs = ns.map((_, i) => 1e-3 * (i + 1)), wds = ns.map((_, i) => (i % 3) * 0.05);
      const multi = ns.map((n, i) => state(n, 10 + i)), single = ns.map((n, i) => state(n, 10 + i));
      for (let step = 1; step <= 3; step++) {
        const grads = ns.map((n, i) => input(n, 100 * step + i));
        native.adamwMulti({ params: multi.map((s) => s.p), grads, ms: multi.map((s) => s.m), vs: multi.map((s) => s.v), lrs, weightDecays: wds, step, beta2: 0.99, gradScale: 0.5 });
        ns.forEach((n, i) => {
          const s = single[i];
          native.adamw({ n, param: s.p, grad: grads[i], m: s.m, v: s.v, lr: lrs[i], weightDecay: wds[i], step, beta2: 0.99, gradScale: 0.5 });
          adamwRef(multi[i].rp, grads[i], multi[i].rm, multi[i].rv, { lr: lrs[i], weightDecay: wds[i], beta2: 0.99, gradScale: 0.5 }, step);
        });
      }
      ns.forEach((_, i) => {
        expect(maxAbsDiff(multi[i].p, single[i].p)).toBe(0);
        expect(maxAbsDiff(multi[i].m, single[i].m)).toBe(0);
        expect(maxAbsDiff(multi[i].v, single[i].v)).toBe(0);
        expect(maxAbsDiff(multi[i].p, multi[i].rp)).toBeLessThan(2e-6);
      });
    });
  });

  test("sumSquares matches a float64 sum, and does not depend on the thread count", () => {
    withIsa(isa, () => {
      for (const n of [0, 1, 7, 1023, 1024, 1025, 65536, 65537, 140001]) {
        const x = input(n, n + 3);
        const got = native.sumSquares({ n, x });
        const want = sumSquaresRef(x);
        expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-6 * want);
      }
      const x = input(140001, 140004), threads = native.numThreads();
      const a = native.sumSquares({ n: x.length, x });
      try {
        native.setNumThreads(1);
        const b = native.sumSquares({ n: x.length, x });
        native.setNumThreads(3);
        const c = native.sumSquares({ n: x.length, x });
        expect(b).toBe(a);
        expect(c).toBe(a);
      } finally {
        native.setNumThreads(threads);
      }
    });
  });

  test("gradNorm is the L2 norm of all tensors together, thread-count independent", () => {
    withIsa(isa, () => {
      const tensors = [1, 100, 0, 70000, 65536, 3, 131073].map((n, i) => input(n, 40 + i, 0.1 * (i + 1)));
      const want = Math.sqrt(tensors.reduce((s, t) => s + sumSquaresRef(t), 0));
      const got = native.gradNorm({ tensors });
      expect(Math.abs(got - want)).toBeLessThanOrEqual(1e-6 * want);
      // one tensor: the same chunks as sumSquares, so exactly its square root
      expect(native.gradNorm({ tensors: [tensors[6]] })).toBe(Math.sqrt(native.sumSquares({ n: 131073, x: tensors[6] })));
      expect(native.gradNorm({ tensors: [] })).toBe(0);
      const threads = native.numThreads();
      try {
        native.setNumThreads(1);
        expect(native.gradNorm({ tensors })).toBe(got);
        native.setNumThreads(3);
        expect(native.gradNorm({ tensors })).toBe(got);
      } finally {
        native.setNumThreads(threads);
      }
    });
  });
});

interface OptimCase {
  lrs: number[]; weightDecays: number[]; beta1: number; beta2: number; eps: number; maxNorm: number | null;
  init: number[][]; grads: number[][][]; norms: number[]; params: number[][]; m: number[][]; v: number[][];
}

describe("adamw against PyTorch goldens", () => {
  const golden = loadGolden<{ cases: OptimCase[] }>("optim.json");
  test.each(ISAS)("torch.optim.AdamW, two param groups, 3 steps (the second clipped by clip_grad_norm_) on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.cases) {
        const params = g.init.map(f32), ms = params.map((p) => new Float32Array(p.length)), vs = params.map((p) => new Float32Array(p.length));
        // the same run tensor by tensor with adamw
        const params1 = g.init.map(f32), ms1 = params.map((p) => new Float32Array(p.length)), vs1 = params.map((p) => new Float32Array(p.length));
        g.grads.forEach((stepGrads, s) => {
          const grads = stepGrads.map(f32);
          let gradScale = 1;
          if (g.maxNorm !== null) {
            const norm = native.gradNorm({ tensors: grads });
            expect(Math.abs(norm - g.norms[s])).toBeLessThan(1e-5 * g.norms[s]);
            gradScale = Math.min(1, g.maxNorm / (norm + 1e-6));
          }
          const hyper = { step: s + 1, beta1: g.beta1, beta2: g.beta2, eps: g.eps, gradScale };
          native.adamwMulti({ params, grads, ms, vs, lrs: g.lrs, weightDecays: g.weightDecays, ...hyper });
          params1.forEach((p, i) => native.adamw({ n: p.length, param: p, grad: grads[i], m: ms1[i], v: vs1[i], lr: g.lrs[i], weightDecay: g.weightDecays[i], ...hyper }));
        });
        params.forEach((p, i) => {
          expect(maxAbsDiff(p, g.params[i])).toBeLessThan(1e-5);
          expect(maxAbsDiff(params1[i], g.params[i])).toBeLessThan(1e-5);
          expect(maxAbsDiff(ms[i], g.m[i])).toBeLessThan(1e-5);
          expect(maxAbsDiff(vs[i], g.v[i])).toBeLessThan(1e-4);
        });
      }
    });
  });
});

describe("optimizer ops async and bad input", () => {
  test("the Async forms give the same results", async () => {
    const n = 50000, a = state(n, 1), b = state(n, 1), grad = randn(n, 2);
    native.adamw({ n, param: a.p, grad, m: a.m, v: a.v, step: 1, lr: 1e-3 });
    await native.adamwAsync({ n, param: b.p, grad, m: b.m, v: b.v, step: 1, lr: 1e-3 });
    expect(maxAbsDiff(a.p, b.p)).toBe(0);
    const c = state(n, 1);
    await native.adamwMultiAsync({ params: [c.p], grads: [grad], ms: [c.m], vs: [c.v], lrs: [1e-3], weightDecays: [0], step: 1 });
    expect(maxAbsDiff(a.p, c.p)).toBe(0);
    expect(await native.sumSquaresAsync({ n, x: grad })).toBe(native.sumSquares({ n, x: grad }));
    expect(await native.gradNormAsync({ tensors: [grad, a.p] })).toBe(native.gradNorm({ tensors: [grad, a.p] }));
  });

  test("native buffers from alloc() work and cannot be freed while adamwMultiAsync runs", async () => {
    const n = 100000, p = native.alloc(n), g = native.alloc(n), m = native.alloc(n), v = native.alloc(n);
    g.fill(1);
    const done = native.adamwMultiAsync({ params: [p], grads: [g], ms: [m], vs: [v], lrs: [0.5], weightDecays: [0], step: 1 });
    expect(() => native.free(m)).toThrow(/in use by an asynchronous operation/);
    await done;
    expect(p[n - 1]).toBeCloseTo(-0.5, 6);
    for (const t of [p, g, m, v]) native.free(t);
  });

  test("adamw errors name the argument, what was given and what was expected", () => {
    const x = () => new Float32Array(4);
    const ok = { n: 4, param: x(), grad: x(), m: x(), v: x(), lr: 1e-3, step: 1 };
    const err = (over: Record<string, unknown>) => () => native.adamw({ ...ok, ...over } as typeof ok);
    expect(err({ grad: new Float32Array(3) })).toThrow(new TunekitError("adamw: argument 'grad' has 3 elements, expected at least 4"));
    expect(err({ lr: -1 })).toThrow(new TunekitError("adamw: argument 'lr' = -1 is out of range, expected a finite lr >= 0"));
    expect(err({ lr: Infinity })).toThrow(/adamw: argument 'lr' = inf is out of range/);
    expect(err({ beta1: 1 })).toThrow(new TunekitError("adamw: argument 'beta1' = 1 is out of range, expected 0 <= beta1 < 1"));
    expect(err({ beta2: -0.1 })).toThrow(/adamw: argument 'beta2' = -0.1 is out of range, expected 0 <= beta2 < 1/);
    expect(err({ eps: 0 })).toThrow(new TunekitError("adamw: argument 'eps' = 0 is out of range, expected a finite eps > 0"));
    expect(err({ weightDecay: -0.5 })).toThrow(/adamw: argument 'weightDecay' = -0.5 is out of range, expected a finite value >= 0/);
    expect(err({ gradScale: NaN })).toThrow(/adamw: argument 'gradScale' is NaN/);
    expect(err({ step: 0 })).toThrow(/adamw: argument 'step' = 0 is out of range, expected 1\.\./);
    expect(err({ step: 1.5 })).toThrow(/adamw: argument 'step' must be an integer/);
    expect(err({ lr: undefined })).toThrow(new TunekitError("adamw: argument 'lr' is missing"));
    const shared = x();
    expect(err({ m: shared, v: shared })).toThrow(new TunekitError("adamw: output 'v' overlaps input 'm'; expected separate buffers"));
    expect(err({ grad: ok.param })).toThrow(/adamw: output 'param' overlaps input 'grad'/);
  });

  test("adamwMulti checks every entry, the counts and overlaps between tensors", () => {
    const x = (n = 4) => new Float32Array(n);
    const ok = () => ({ params: [x(), x(5)], grads: [x(), x(5)], ms: [x(), x(5)], vs: [x(), x(5)], lrs: [1e-3, 1e-3], weightDecays: [0, 0], step: 1 });
    const err = (over: Record<string, unknown>) => () => native.adamwMulti({ ...ok(), ...over } as ReturnType<typeof ok>);
    expect(err({ grads: [x(), x(4)] })).toThrow(new TunekitError("adamwMulti: argument 'grads[1]' has 4 elements, expected 5 (the length of 'params[1]')"));
    expect(err({ lrs: [1e-3] })).toThrow(new TunekitError("adamwMulti: argument 'lrs' has 1 entries, expected 2 (one per entry of 'params')"));
    expect(err({ ms: [x(), 3] })).toThrow(new TunekitError("adamwMulti: argument 'ms[1]' must be a Float32Array or a device buffer, got a number"));
    expect(err({ vs: x() })).toThrow(new TunekitError("adamwMulti: argument 'vs' must be an Array of Float32Arrays, got a Float32Array"));
    expect(err({ lrs: [1e-3, NaN] })).toThrow(new TunekitError("adamwMulti: argument 'lrs[1]' must be a number, got NaN"));
    expect(err({ lrs: [1e-3, "a"] })).toThrow(/adamwMulti: argument 'lrs\[1\]' must be a number, got a string/);
    expect(err({ weightDecays: [0, -1] })).toThrow(/adamwMulti: argument 'weightDecays\[1\]' = -1 is out of range/);
    const big = x(20);
    expect(err({ params: [big.subarray(0, 4), x(5)], vs: [x(), big.subarray(2, 7)] })).toThrow(
      new TunekitError("adamwMulti: output 'vs[1]' overlaps 'params[0]'; expected separate buffers"),
    );
    expect(err({ grads: [big.subarray(0, 4), x(5)], ms: [x(), big.subarray(3, 8)] })).toThrow(/adamwMulti: output 'ms\[1\]' overlaps 'grads\[0\]'/);
    // a gradient read by two tensors is fine: grads are only read
    const g = x(4);
    expect(() => native.adamwMulti({ params: [x(), x()], grads: [g, g], ms: [x(), x()], vs: [x(), x()], lrs: [1, 1], weightDecays: [0, 0], step: 1 })).not.toThrow();
  });

  test("sumSquares and gradNorm validate their input", () => {
    expect(() => native.sumSquares({ n: 5, x: new Float32Array(4) })).toThrow(new TunekitError("sumSquares: argument 'x' has 4 elements, expected at least 5"));
    expect(() => native.gradNorm({ tensors: [new Float32Array(2), new Float64Array(2) as unknown as Float32Array] })).toThrow(
      new TunekitError("gradNorm: argument 'tensors[1]' must be a Float32Array or a device buffer, got a Float64Array"),
    );
    expect(() => native.gradNorm({} as { tensors: Float32Array[] })).toThrow(new TunekitError("gradNorm: argument 'tensors' is missing"));
  });

  test("async errors reject with TunekitError", async () => {
    await expect(native.adamwMultiAsync({ params: [new Float32Array(2)], grads: [], ms: [], vs: [], lrs: [], weightDecays: [], step: 1 })).rejects.toThrow(TunekitError);
  });
});

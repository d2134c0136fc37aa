import { native } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, rng, maxAbsDiff, loadGolden, f32, finiteDiff, pickIndices } from "./helpers";

interface Opts { ignoreIndex?: number; divisor?: number; gradScale?: number }

// Naive float64 reference: log-softmax + NLL, PyTorch's mean over rows not ignored (0 when none).
function reference(N: number, V: number, logits: ArrayLike<number>, targets: ArrayLike<number>, o: Opts = {}) {
  const ignore = o.ignoreIndex ?? -100, gs = o.gradScale ?? 1;
  const rowLoss = new Float64Array(N), dlogits = new Float64Array(N * V);
  let count = 0, total = 0;
  for (let r = 0; r < N; r++) if (targets[r] !== ignore) count++;
  const div = (o.divisor ?? 0) > 0 ? o.divisor! : count;
  for (let r = 0; r < N; r++) {
    const t = targets[r];
    if (t === ignore) continue;
    let m = -Infinity;
    for (let v = 0; v < V; v++) m = Math.max(m, logits[r * V + v]);
    let s = 0;
    for (let v = 0; v < V; v++) s += Math.exp(logits[r * V + v] - m);
    rowLoss[r] = m + Math.log(s) - logits[r * V + t];
    total += rowLoss[r];
    for (let v = 0; v < V; v++) dlogits[r * V + v] = ((Math.exp(logits[r * V + v] - m) / s - (v === t ? 1 : 0)) * gs) / div;
  }
  return { loss: div > 0 ? total / div : 0, count, rowLoss, dlogits };
}

function targetsFor(N: number, V: number, seed: number, ignoreIndex = -100, ignoreEvery = 0): Int32Array {
  const r = rng(seed);
  return Int32Array.from({ length: N }, (_, i) => (ignoreEvery && i % ignoreEvery === 1 ? ignoreIndex : Math.floor(r() * V)));
}

const shapes: [number, number][] = [[1, 1], [1, 7], [7, 63], [65, 65], [3, 1000], [20, 1023], [1000, 17], [40, 1100]];

describe.each(ISAS)("crossEntropy on %s", (isa) => {
  test.each(shapes)("N=%i V=%i loss, row losses and dlogits match the naive loop", (N, V) => {
    withIsa(isa, () => {
      const logits = randn(N * V, N + V, 3), targets = targetsFor(N, V, N, -100, 3);
      const opts: Opts[] = [{}, { divisor: 10, gradScale: 0.5 }, { ignoreIndex: 0, gradScale: 3 }];
      for (const o of opts) {
        // ignoreIndex 0: the rows ignored above now say 0, and so do the rows whose class is 0.
        const t = o.ignoreIndex === 0 ? targets.map((v) => (v === -100 ? 0 : v)) : targets;
        const want = reference(N, V, logits, t, o);
        const dlogits = new Float32Array(N * V).fill(NaN), rowLoss = new Float32Array(N).fill(NaN);
        const got = native.crossEntropy({ N, V, logits, targets: t, dlogits, rowLoss, ...o });
        expect(got.count).toBe(want.count);
        expect(Math.abs(got.loss - want.loss)).toBeLessThan(2e-6 * Math.max(1, want.loss));
        expect(maxAbsDiff(rowLoss, want.rowLoss)).toBeLessThan(5e-6);
        expect(maxAbsDiff(dlogits, want.dlogits)).toBeLessThan(1e-6);
        // Without the optional outputs: the same loss.
        expect(native.crossEntropy({ N, V, logits, targets: t, ...o })).toEqual(got);
      }
    });
  });

  test("dlogits may be logits itself (in place)", () => {
    withIsa(isa, () => {
      const N = 33, V = 301, logits = randn(N * V, 11), targets = targetsFor(N, V, 12, -100, 4);
      const separate = new Float32Array(N * V);
      const a = native.crossEntropy({ N, V, logits, targets, dlogits: separate, gradScale: 2 });
      const inPlace = logits.slice();
      const b = native.crossEntropy({ N, V, logits: inPlace, targets, dlogits: inPlace, gradScale: 2 });
      expect(b).toEqual(a);
      expect(maxAbsDiff(inPlace, separate)).toBe(0);
    });
  });

  test("stable for huge and -inf logits; all rows ignored gives 0 (not NaN)", () => {
    withIsa(isa, () => {
      const N = 3, V = 40, logits = randn(N * V, 13, 1e4);
      logits[5] = -Infinity;
      logits[V + 7] = -Infinity;
      const targets = Int32Array.from([1, 2, 39]);
      const want = reference(N, V, logits, targets);
      const dlogits = new Float32Array(N * V);
      const got = native.crossEntropy({ N, V, logits, targets, dlogits });
      expect(Number.isFinite(got.loss)).toBe(true);
      expect(Math.abs(got.loss - want.loss)).toBeLessThan(1e-6 * want.loss + 1e-3);
      expect(maxAbsDiff(dlogits, want.dlogits)).toBeLessThan(1e-6);
      const none = native.crossEntropy({ N, V, logits, targets: Int32Array.from([-100, -100, -100]), dlogits });
      expect(none).toEqual({ loss: 0, count: 0 });
      expect(dlogits.every((v) => v === 0)).toBe(true);
      expect(native.crossEntropy({ N: 0, V, logits, targets })).toEqual({ loss: 0, count: 0 });
    });
  });

  test("the loss has the same bits on 1 and 3 threads", () => {
    withIsa(isa, () => {
      const N = 64, V = 500, logits = randn(N * V, 14), targets = targetsFor(N, V, 15);
      const before = native.numThreads();
      const run = (t: number) => {
        native.setNumThreads(t);
        const d = new Float32Array(N * V);
        return { r: native.crossEntropy({ N, V, logits, targets, dlogits: d }), d };
      };
      try {
        const one = run(1), three = run(3);
        expect(three.r).toEqual(one.r);
        expect(maxAbsDiff(one.d, three.d)).toBe(0);
      } finally {
        native.setNumThreads(before);
      }
    });
  });

  test("dlogits matches finite differences of the kernel's loss", () => {
    withIsa(isa, () => {
      const N = 5, V = 23, logits = randn(N * V, 16, 2), targets = targetsFor(N, V, 17, -100, 4);
      for (const o of [{}, { divisor: 3, gradScale: 0.7 }] as Opts[]) {
        const dlogits = new Float32Array(N * V);
        native.crossEntropy({ N, V, logits, targets, dlogits, ...o });
        const f = () => native.crossEntropy({ N, V, logits, targets, ...o }).loss * (o.gradScale ?? 1);
        const idx = pickIndices(N * V, 25, 18);
        expect(maxAbsDiff(idx.map((i) => dlogits[i]), finiteDiff(f, logits, idx))).toBeLessThan(5e-4);
      }
    });
  });
});

describe("crossEntropy against PyTorch goldens", () => {
  const golden = loadGolden<{
    crossEntropy: { N: number; V: number; ignoreIndex: number; divisor: number; gradScale: number; logits: number[]; targets: number[]; loss: number; rowLoss: number[]; dlogits: number[] }[];
  }>("layers.json");
  test.each(ISAS)("F.cross_entropy (mean, sum, ignore_index) and its gradient on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.crossEntropy) {
        const dlogits = new Float32Array(g.N * g.V), rowLoss = new Float32Array(g.N);
        const r = native.crossEntropy({ N: g.N, V: g.V, logits: f32(g.logits), targets: Int32Array.from(g.targets), ignoreIndex: g.ignoreIndex, divisor: g.divisor, gradScale: g.gradScale, dlogits, rowLoss });
        expect(Math.abs(r.loss - g.loss)).toBeLessThan(1e-5 * Math.max(1, g.loss));
        expect(maxAbsDiff(rowLoss, g.rowLoss)).toBeLessThan(2e-5);
        expect(maxAbsDiff(dlogits, g.dlogits)).toBeLessThan(1e-6);
        expect(r.count).toBe(g.targets.filter((t) => t !== g.ignoreIndex).length);
      }
    });
  });
});

describe("crossEntropy async and bad input", () => {
  test("crossEntropyAsync resolves to the same {loss, count} and gradient", async () => {
    const N = 40, V = 1000, logits = randn(N * V, 21), targets = targetsFor(N, V, 22, -100, 5);
    const d1 = new Float32Array(N * V), d2 = new Float32Array(N * V);
    const a = native.crossEntropy({ N, V, logits, targets, dlogits: d1 });
    const b = await native.crossEntropyAsync({ N, V, logits, targets, dlogits: d2 });
    expect(b).toEqual(a);
    expect(maxAbsDiff(d1, d2)).toBe(0);
  });

  test("async errors reject with TunekitError", async () => {
    const bad = { N: 2, V: 3, logits: new Float32Array(6), targets: Int32Array.from([0, 3]) };
    await expect(native.crossEntropyAsync(bad)).rejects.toThrow(new TunekitError("crossEntropy: argument 'targets'[1] = 3 is out of range, expected 0..2 or ignoreIndex -100"));
  });

  test("errors name the op, the argument and what was expected", () => {
    const logits = new Float32Array(12), targets = Int32Array.from([0, 3, -100]);
    const call = (a: Partial<Parameters<typeof native.crossEntropy>[0]>) => () => native.crossEntropy({ N: 3, V: 4, logits, targets, ...a });
    expect(call({ targets: Int32Array.from([0, 4, 1]) })).toThrow(
      new TunekitError("crossEntropy: argument 'targets'[1] = 4 is out of range, expected 0..3 or ignoreIndex -100"),
    );
    expect(call({ targets: Int32Array.from([0, 1, -100]), ignoreIndex: -1 })).toThrow(/argument 'targets'\[2\] = -100 is out of range, expected 0\.\.3 or ignoreIndex -1/);
    expect(call({ targets: Float32Array.from([0, 1, 2]) as unknown as Int32Array })).toThrow(/argument 'targets' must be an Int32Array or a device buffer, got a Float32Array/);
    expect(call({ targets: Int32Array.from([0, 1]) })).toThrow(/argument 'targets' has 2 elements, expected at least 3/);
    expect(call({ logits: new Float32Array(11) })).toThrow(/argument 'logits' has 11 elements, expected at least 12/);
    expect(call({ V: 0 })).toThrow(/argument 'V' = 0 is out of range, expected 1\.\./);
    expect(call({ dlogits: logits.subarray(1) })).toThrow(new TunekitError("crossEntropy: argument 'dlogits' has 11 elements, expected at least 12"));
    const big = new Float32Array(13);
    expect(call({ logits: big.subarray(0, 12), dlogits: big.subarray(1, 13) })).toThrow(/output 'dlogits' overlaps input 'logits'/);
    expect(call({ rowLoss: logits.subarray(0, 3) })).toThrow(/output 'rowLoss' overlaps input 'logits'/);
    expect(call({ gradScale: Infinity })).toThrow(/argument 'gradScale' = inf is out of range, expected a finite number/);
    expect(call({ ignoreIndex: 2 ** 31 })).toThrow(/argument 'ignoreIndex' = 2147483648 is out of range/);
  });
});

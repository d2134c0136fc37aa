// geluForward/Backward, biasAdd, biasBackward, add, scale.
import { native } from "../lib/native";
import type { GeluApproximate } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, maxAbsDiff, loadGolden, f32, finiteDiff } from "./helpers";

// erf in float64 to ~1e-15: Taylor series below 3, asymptotic erfc series above.
function erf(x: number): number {
  const a = Math.abs(x);
  let r: number;
  if (a < 3) {
    let term = a, sum = a;
    for (let n = 1; n < 100 && Math.abs(term) > 1e-17 * Math.abs(sum); n++) {
      term *= (-a * a) / n;
      sum += term / (2 * n + 1);
    }
    r = (2 / Math.sqrt(Math.PI)) * sum;
  } else {
    let term = 1, sum = 1;
    for (let n = 1; n < 12; n++) {
      term *= -(2 * n - 1) / (2 * a * a);
      sum += term;
    }
    r = 1 - (Math.exp(-a * a) / (a * Math.sqrt(Math.PI))) * sum;
  }
  return x < 0 ? -r : r;
}

const K = Math.sqrt(2 / Math.PI), KAPPA = 0.044715;
function gelu(x: number, approx: GeluApproximate): number {
  return approx === "tanh" ? 0.5 * x * (1 + Math.tanh(K * (x + KAPPA * x ** 3))) : 0.5 * x * (1 + erf(x / Math.SQRT2));
}
function geluGrad(x: number, approx: GeluApproximate): number {
  if (approx === "tanh") {
    const t = Math.tanh(K * (x + KAPPA * x ** 3));
    return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * K * (1 + 3 * KAPPA * x * x);
  }
  return 0.5 * (1 + erf(x / Math.SQRT2)) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
}

/** max over i of |got - want| / (1 + |x|): the kernels' erf/tanh are good to a few 1e-7 absolute. */
function maxScaledDiff(got: ArrayLike<number>, want: ArrayLike<number>, x: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]) / (1 + Math.abs(x[i]));
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

const sizes = [1, 7, 63, 65, 1000, 1023, 40000];
const modes: GeluApproximate[] = ["none", "tanh"];

describe.each(ISAS)("element-wise ops on %s", (isa) => {
  describe.each(modes)("gelu approximate=%s", (approximate) => {
    test.each(sizes)("n=%i forward and backward match the naive loop", (n) => {
      withIsa(isa, () => {
        const x = randn(n, n, 3), dy = randn(n, n + 1);
        if (n > 10) (x[0] = 0), (x[1] = -12), (x[2] = 12), (x[3] = 1e-7), (x[4] = -40);
        const y = new Float32Array(n), dx = new Float32Array(n);
        native.geluForward({ n, x, y, approximate });
        native.geluBackward({ n, x, dy, dx, approximate });
        expect(maxScaledDiff(y, Array.from(x, (v) => gelu(v, approximate)), x)).toBeLessThan(1e-6);
        expect(maxScaledDiff(dx, Array.from(x, (v, i) => dy[i] * geluGrad(v, approximate)), x)).toBeLessThan(2e-6);
      });
    });

    test("relative accuracy near 0 (where gelu(x) ~ x/2)", () => {
      withIsa(isa, () => {
        const x = f32([1e-3, -1e-3, 1e-5, -3e-6, 1e-8, 2e-30]), y = new Float32Array(6);
        native.geluForward({ n: 6, x, y, approximate });
        for (let i = 0; i < 6; i++) expect(Math.abs(y[i] - gelu(x[i], approximate))).toBeLessThan(1e-5 * Math.abs(gelu(x[i], approximate)));
      });
    });

    test("backward matches finite differences of the kernel's forward; in place works", () => {
      withIsa(isa, () => {
        const n = 101;
        const x = randn(n, 71, 2), w = randn(n, 72), y = new Float32Array(n);
        const f = () => {
          native.geluForward({ n, x, y, approximate });
          let s = 0;
          for (let i = 0; i < n; i++) s += w[i] * y[i];
          return s;
        };
        const dx = new Float32Array(n);
        native.geluBackward({ n, x, dy: w, dx, approximate });
        const idx = Array.from({ length: 25 }, (_, i) => i * 4);
        expect(maxAbsDiff(idx.map((i) => dx[i]), finiteDiff(f, x, idx))).toBeLessThan(2e-3);
        // In place: y = x and dx = dy are allowed.
        const xi = x.slice(), di = w.slice();
        native.geluBackward({ n, x, dy: di, dx: di, approximate });
        expect(maxAbsDiff(di, dx)).toBe(0);
        native.geluForward({ n, x: xi, y: xi, approximate });
        native.geluForward({ n, x, y, approximate });
        expect(maxAbsDiff(xi, y)).toBe(0);
      });
    });
  });

  test("NaN in gives NaN out (not a clamped finite value)", () => {
    withIsa(isa, () => {
      for (const approximate of modes) {
        const x = f32([NaN, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, NaN]), y = new Float32Array(17), dx = new Float32Array(17);
        native.geluForward({ n: 17, x, y, approximate });
        native.geluBackward({ n: 17, x, dy: new Float32Array(17).fill(1), dx, approximate });
        expect([y[0], y[16], dx[0], dx[16]].every(Number.isNaN)).toBe(true);
        expect(y.slice(1, 16).every(Number.isFinite)).toBe(true);
      }
    });
  });

  test.each([[1, 1], [7, 17], [65, 63], [1000, 65], [3, 1023], [100, 1000]])("biasAdd and biasBackward rows=%i C=%i", (rows, C) => {
    withIsa(isa, () => {
      const n = rows * C, x = randn(n, 81), bias = randn(C, 82), dy = randn(n, 83);
      const y = new Float32Array(n);
      native.biasAdd({ rows, C, x, bias, y });
      expect(maxAbsDiff(y, Array.from(x, (v, i) => Math.fround(v + bias[i % C])))).toBe(0);
      const xi = x.slice();
      native.biasAdd({ rows, C, x: xi, bias, y: xi }); // in place
      expect(maxAbsDiff(xi, y)).toBe(0);
      const dbias0 = randn(C, 84), dbias = dbias0.slice();
      native.biasBackward({ rows, C, dy, dbias });
      const want = Array.from(dbias0, (v, c) => {
        let s = 0;
        for (let r = 0; r < rows; r++) s += dy[r * C + c];
        return v + s;
      });
      expect(maxAbsDiff(dbias, want)).toBeLessThan(1e-6 * rows + 1e-6);
    });
  });

  test("biasBackward gives the same bits on 1 and 3 threads", () => {
    withIsa(isa, () => {
      const rows = 700, C = 333, dy = randn(rows * C, 91);
      const before = native.numThreads();
      const run = (t: number) => {
        native.setNumThreads(t);
        const d = new Float32Array(C);
        native.biasBackward({ rows, C, dy, dbias: d });
        return d;
      };
      try {
        expect(maxAbsDiff(run(1), run(3))).toBe(0);
      } finally {
        native.setNumThreads(before);
      }
    });
  });

  test.each(sizes)("add and scale n=%i, in place too", (n) => {
    withIsa(isa, () => {
      const a = randn(n, 101), b = randn(n, 102), y = new Float32Array(n);
      native.add({ n, a, b, y });
      const want = Array.from(a, (v, i) => Math.fround(v + b[i]));
      expect(maxAbsDiff(y, want)).toBe(0);
      const a2 = a.slice(), b2 = b.slice();
      native.add({ n, a: a2, b, y: a2 });
      native.add({ n, a, b: b2, y: b2 });
      expect(maxAbsDiff(a2, want)).toBe(0);
      expect(maxAbsDiff(b2, want)).toBe(0);
      native.scale({ n, x: a2, s: -0.75 });
      expect(maxAbsDiff(a2, want.map((v) => Math.fround(v * Math.fround(-0.75))))).toBe(0);
    });
  });
});

describe("gelu against PyTorch goldens", () => {
  const golden = loadGolden<{ gelu: { approximate: GeluApproximate; x: number[]; dy: number[]; y: number[]; dx: number[] }[] }>("layers.json");
  test.each(ISAS)("F.gelu (none and tanh) and its autograd backward on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.gelu) {
        const n = g.x.length, x = f32(g.x), y = new Float32Array(n), dx = new Float32Array(n);
        native.geluForward({ n, x, y, approximate: g.approximate });
        native.geluBackward({ n, x, dy: f32(g.dy), dx, approximate: g.approximate });
        expect(maxScaledDiff(y, g.y, x)).toBeLessThan(1e-6);
        expect(maxScaledDiff(dx, g.dx, x)).toBeLessThan(2e-6);
      }
    });
  });
});

describe("element-wise async and bad input", () => {
  test("the Async forms give the same bits", async () => {
    const n = 50000, x = randn(n, 111), dy = randn(n, 112);
    const y1 = new Float32Array(n), y2 = new Float32Array(n);
    native.geluForward({ n, x, y: y1 });
    await native.geluForwardAsync({ n, x, y: y2 });
    expect(maxAbsDiff(y1, y2)).toBe(0);
    native.geluBackward({ n, x, dy, dx: y1, approximate: "tanh" });
    await native.geluBackwardAsync({ n, x, dy, dx: y2, approximate: "tanh" });
    expect(maxAbsDiff(y1, y2)).toBe(0);
    const d1 = new Float32Array(500), d2 = new Float32Array(500);
    native.biasBackward({ rows: 100, C: 500, dy: x, dbias: d1 });
    await native.biasBackwardAsync({ rows: 100, C: 500, dy: x, dbias: d2 });
    expect(maxAbsDiff(d1, d2)).toBe(0);
    const s1 = x.slice(), s2 = x.slice();
    native.scale({ n, x: s1, s: 3 });
    await native.scaleAsync({ n, x: s2, s: 3 });
    expect(maxAbsDiff(s1, s2)).toBe(0);
    native.add({ n, a: x, b: dy, y: s1 });
    await native.addAsync({ n, a: x, b: dy, y: s2 });
    expect(maxAbsDiff(s1, s2)).toBe(0);
    native.biasAdd({ rows: 100, C: 500, x, bias: d1, y: s1 });
    await native.biasAddAsync({ rows: 100, C: 500, x, bias: d1, y: s2 });
    expect(maxAbsDiff(s1, s2)).toBe(0);
  });

  test("errors name the op, the argument and what was expected", () => {
    const x = new Float32Array(16), y = new Float32Array(16);
    expect(() => native.geluForward({ n: 16, x, y, approximate: "fast" as GeluApproximate })).toThrow(
      new TunekitError('geluForward: argument \'approximate\' = "fast" is not one of "none", "tanh"'),
    );
    expect(() => native.geluForward({ n: 16, x, y, approximate: 1 as unknown as GeluApproximate })).toThrow(
      /geluForward: argument 'approximate' must be one of "none", "tanh", got a number/,
    );
    expect(() => native.geluForward({ n: 17, x, y })).toThrow(new TunekitError("geluForward: argument 'x' has 16 elements, expected at least 17"));
    expect(() => native.geluForward({ n: 8, x, y: x.subarray(1) })).toThrow(
      new TunekitError("geluForward: output 'y' overlaps input 'x'; expected separate buffers"),
    );
    expect(() => native.geluBackward({ n: 8, x, dy: y, dx: y.subarray(4) })).toThrow(/geluBackward: output 'dx' overlaps input 'dy'/);
    expect(() => native.biasAdd({ rows: 4, C: 4, x, bias: y, y })).toThrow(/biasAdd: output 'y' overlaps input 'bias'/);
    expect(() => native.biasAdd({ rows: 4, C: 4, x, bias: new Float32Array(3), y })).toThrow(/biasAdd: argument 'bias' has 3 elements, expected at least 4/);
    expect(() => native.biasBackward({ rows: 2, C: 8, dy: x, dbias: x })).toThrow(/biasBackward: output 'dbias' overlaps input 'dy'/);
    expect(() => native.biasBackward({ rows: 2, C: 0, dy: x, dbias: y })).toThrow(/biasBackward: argument 'C' = 0 is out of range/);
    expect(() => native.add({ n: 8, a: x, b: y, y: x.subarray(2) })).toThrow(/add: output 'y' overlaps input 'a'/);
    expect(() => native.scale({ n: 4, x, s: NaN })).toThrow(/scale: argument 's' is NaN/);
    expect(() => native.scale({ n: 4, x } as never)).toThrow(/scale: argument 's' is missing/);
  });
});

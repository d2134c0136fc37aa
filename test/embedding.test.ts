import { native } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, rng, maxAbsDiff, loadGolden, f32 } from "./helpers";

function idsFor(N: number, V: number, seed: number): Int32Array {
  const r = rng(seed);
  // Few distinct ids so the backward has to add many rows into the same table row.
  const distinct = Math.max(1, Math.min(V, Math.ceil(N / 4)));
  return Int32Array.from({ length: N }, () => Math.floor(r() * distinct) * Math.max(1, Math.floor(V / distinct)) % V);
}

// Naive references: forward gather in order; backward scatter-add in float32, ids in order (the
// order the kernel promises, so the result is exact).
function forwardRef(N: number, C: number, ids: Int32Array, table: Float32Array): Float32Array {
  const out = new Float32Array(N * C);
  for (let i = 0; i < N; i++) out.set(table.subarray(ids[i] * C, ids[i] * C + C), i * C);
  return out;
}
function backwardRef(N: number, C: number, ids: Int32Array, dout: Float32Array, dtable0: Float32Array): Float32Array {
  const d = dtable0.slice();
  for (let i = 0; i < N; i++) for (let c = 0; c < C; c++) d[ids[i] * C + c] = Math.fround(d[ids[i] * C + c] + dout[i * C + c]);
  return d;
}

const shapes: [number, number, number][] = [[1, 1, 1], [7, 5, 7], [63, 10, 63], [65, 100, 65], [1000, 50, 17], [20, 30, 1023], [100, 40, 768]];

describe.each(ISAS)("embedding on %s", (isa) => {
  test.each(shapes)("N=%i V=%i C=%i forward gathers and backward scatter-adds in id order", (N, V, C) => {
    withIsa(isa, () => {
      const ids = idsFor(N, V, N + C), table = randn(V * C, V), out = new Float32Array(N * C).fill(NaN);
      native.embeddingForward({ N, C, V, ids, table, out });
      expect(maxAbsDiff(out, forwardRef(N, C, ids, table))).toBe(0);
      const dout = randn(N * C, N), dtable0 = randn(V * C, 7), dtable = dtable0.slice();
      native.embeddingBackward({ N, C, V, ids, dout, dtable });
      expect(maxAbsDiff(dtable, backwardRef(N, C, ids, dout, dtable0))).toBe(0);
    });
  });

  test("the backward has the same bits on 1 and 3 threads", () => {
    withIsa(isa, () => {
      const N = 300, V = 20, C = 333, ids = idsFor(N, V, 1), dout = randn(N * C, 2), before = native.numThreads();
      const run = (t: number) => {
        native.setNumThreads(t);
        const d = new Float32Array(V * C);
        native.embeddingBackward({ N, C, V, ids, dout, dtable: d });
        return d;
      };
      try {
        expect(maxAbsDiff(run(1), run(3))).toBe(0);
      } finally {
        native.setNumThreads(before);
      }
    });
  });
});

describe("embedding against PyTorch goldens", () => {
  const golden = loadGolden<{ embedding: { N: number; V: number; C: number; ids: number[]; table: number[]; out: number[]; dout: number[]; dtable: number[] }[] }>("layers.json");
  test.each(ISAS)("F.embedding and its autograd backward on %s", (isa) => {
    withIsa(isa, () => {
      for (const g of golden.embedding) {
        const { N, V, C } = g, ids = Int32Array.from(g.ids), out = new Float32Array(N * C), dtable = new Float32Array(V * C);
        native.embeddingForward({ N, C, V, ids, table: f32(g.table), out });
        expect(maxAbsDiff(out, f32(g.out))).toBe(0);
        native.embeddingBackward({ N, C, V, ids, dout: f32(g.dout), dtable });
        expect(maxAbsDiff(dtable, g.dtable)).toBeLessThan(1e-6);
      }
    });
  });
});

describe("embedding async and bad input", () => {
  test("the Async forms give the same bits", async () => {
    const N = 200, V = 50, C = 256, ids = idsFor(N, V, 3), table = randn(V * C, 4), dout = randn(N * C, 5);
    const o1 = new Float32Array(N * C), o2 = new Float32Array(N * C), d1 = new Float32Array(V * C), d2 = new Float32Array(V * C);
    native.embeddingForward({ N, C, V, ids, table, out: o1 });
    await native.embeddingForwardAsync({ N, C, V, ids, table, out: o2 });
    native.embeddingBackward({ N, C, V, ids, dout, dtable: d1 });
    await native.embeddingBackwardAsync({ N, C, V, ids, dout, dtable: d2 });
    expect(maxAbsDiff(o1, o2)).toBe(0);
    expect(maxAbsDiff(d1, d2)).toBe(0);
  });

  test("errors name the op, the argument, the first bad id and its position", () => {
    const table = new Float32Array(12), out = new Float32Array(6);
    const fwd = (a: Partial<Parameters<typeof native.embeddingForward>[0]>) => () =>
      native.embeddingForward({ N: 3, C: 2, V: 6, ids: Int32Array.from([0, 5, 1]), table, out, ...a });
    expect(fwd({ ids: Int32Array.from([0, 6, 7]) })).toThrow(new TunekitError("embeddingForward: argument 'ids'[1] = 6 is out of range, expected 0..5"));
    expect(fwd({ ids: Int32Array.from([0, 1, -1]) })).toThrow(/embeddingForward: argument 'ids'\[2\] = -1 is out of range, expected 0\.\.5/);
    expect(fwd({ ids: Int32Array.from([0, 1]) })).toThrow(/argument 'ids' has 2 elements, expected at least 3/);
    expect(fwd({ table: new Float32Array(11) })).toThrow(/argument 'table' has 11 elements, expected at least 12/);
    expect(fwd({ out: table })).toThrow(new TunekitError("embeddingForward: output 'out' overlaps input 'table'; expected separate buffers"));
    expect(fwd({ V: 0 })).toThrow(/argument 'V' = 0 is out of range, expected 1\.\.2147483647/);
    const dout = new Float32Array(6), dtable = new Float32Array(12);
    const bwd = (a: Partial<Parameters<typeof native.embeddingBackward>[0]>) => () =>
      native.embeddingBackward({ N: 3, C: 2, V: 6, ids: Int32Array.from([0, 5, 1]), dout, dtable, ...a });
    expect(bwd({ ids: Int32Array.from([9, 1, 2]) })).toThrow(new TunekitError("embeddingBackward: argument 'ids'[0] = 9 is out of range, expected 0..5"));
    expect(bwd({ dtable: dout })).toThrow(/argument 'dtable' has 6 elements, expected at least 12/);
    expect(bwd({ dout: dtable.subarray(0, 6) })).toThrow(/embeddingBackward: output 'dtable' overlaps input 'dout'/);
  });
});

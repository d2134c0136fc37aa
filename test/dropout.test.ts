import { native } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, maxAbsDiff } from "./helpers";

// Philox 4x32-10 (Salmon et al. 2011), written independently of native/cpu/philox.h.
const M0 = 0xd2511f53, M1 = 0xcd9e8d57, W0 = 0x9e3779b9, W1 = 0xbb67ae85;
/** High 32 bits of the 64-bit product of two uint32 (the low ones are Math.imul). */
function mulhi(a: number, b: number): number {
  const al = a & 0xffff, ah = a >>> 16, bl = b & 0xffff, bh = b >>> 16;
  const lh = al * bh, hl = ah * bl;
  const mid = ((al * bl) >>> 16) + (lh & 0xffff) + (hl & 0xffff);
  return (ah * bh + Math.floor(lh / 65536) + Math.floor(hl / 65536) + Math.floor(mid / 65536)) >>> 0;
}
function philox(ctr: number[], key: number[]): number[] {
  let c0 = ctr[0], c1 = ctr[1], c2 = ctr[2], c3 = ctr[3], k0 = key[0], k1 = key[1];
  for (let round = 0; round < 10; round++) {
    const hi0 = mulhi(M0, c0), lo0 = Math.imul(M0, c0) >>> 0, hi1 = mulhi(M1, c2), lo1 = Math.imul(M1, c2) >>> 0;
    c0 = (hi1 ^ c1 ^ k0) >>> 0;
    c1 = lo1;
    c2 = (hi0 ^ c3 ^ k1) >>> 0;
    c3 = lo0;
    k0 = (k0 + W0) >>> 0;
    k1 = (k1 + W1) >>> 0;
  }
  return [c0, c1, c2, c3];
}
const TWO32 = 2 ** 32;
/** Uniforms of elements [0, n) of (seed, offset): element e is lane (offset+e) % 4 of the block at
 *  counter (offset+e) >> 2 (as two words, then two zero words), keyed by seed (two words). */
function uniforms(seed: number, offset: number, n: number): Float64Array {
  const u = new Float64Array(n), key = [seed % TWO32, Math.floor(seed / TWO32)];
  let block: number[] = [], counter = -1;
  for (let e = 0; e < n; e++) {
    const i = offset + e, c = Math.floor(i / 4);
    if (c !== counter) (counter = c), (block = philox([c % TWO32, Math.floor(c / TWO32), 0, 0], key));
    u[e] = (block[i % 4] >>> 8) * 2 ** -24;
  }
  return u;
}
function dropoutRef(x: Float32Array, p: number, seed: number, offset: number): Float32Array {
  const pf = Math.fround(p), s = Math.fround(1 / Math.fround(1 - pf)), u = uniforms(seed, offset, x.length);
  return Float32Array.from(x, (v, e) => (u[e] >= pf ? Math.fround(v * s) : 0));
}
const refs = new Map<string, Float32Array>(); // the reference of each case, shared by the ISAs

test("the JS Philox reproduces the Random123 known-answer vectors", () => {
  expect(philox([0, 0, 0, 0], [0, 0])).toEqual([0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8]);
  expect(philox([0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], [0xffffffff, 0xffffffff])).toEqual([0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd]);
  expect(philox([0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344], [0xa4093822, 0x299f31d0])).toEqual([0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1]);
});

describe.each(ISAS)("dropout on %s", (isa) => {
  const cases: [number, number, number, number][] = [
    // n, p, seed, offset: odd sizes, lanes not aligned to 4, seeds and counters past 32 bits
    [1, 0.5, 1, 0], [7, 0.1, 42, 3], [63, 0.25, 0x123456789ab, 5], [65, 0.9, 7, 2 ** 34 + 3], [1000, 0.5, 2 ** 53 - 1, 1], [1023, 0.3, 99, 1000], [20000, 0.2, 5, 17],
  ];
  test.each(cases)("n=%i p=%f seed=%i offset=%i: exactly the JS Philox mask and scale", (n, p, seed, offset) => {
    withIsa(isa, () => {
      const x = randn(n, n), y = new Float32Array(n), key = `${n} ${p} ${seed} ${offset}`;
      if (!refs.has(key)) refs.set(key, dropoutRef(x, p, seed, offset));
      native.dropout({ n, x, y, p, seed, offset });
      expect(maxAbsDiff(y, refs.get(key)!)).toBe(0);
    });
  });

  test("keeps about 1-p of the elements; same (seed, offset) repeats; other offsets and seeds differ", () => {
    withIsa(isa, () => {
      const n = 100000, x = new Float32Array(n).fill(1);
      for (const p of [0.1, 0.5, 0.8]) {
        const y = new Float32Array(n);
        native.dropout({ n, x, y, p, seed: 1234, offset: 0 });
        let k = 0, sum = 0, bad = 0;
        const s = Math.fround(1 / Math.fround(1 - Math.fround(p)));
        for (const v of y) (k += v !== 0 ? 1 : 0), (sum += v), (bad += v === 0 || v === s ? 0 : 1);
        const kept = k / n;
        expect(Math.abs(kept - (1 - p))).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / n));
        expect(bad).toBe(0);
        expect(Math.abs(sum / n - 1)).toBeLessThan(0.03); // E[y] = x: the scale keeps the mean
      }
      const run = (seed: number, offset: number) => {
        const y = new Float32Array(1000);
        native.dropout({ n: 1000, x: x.subarray(0, 1000), y, p: 0.5, seed, offset });
        return y;
      };
      expect(maxAbsDiff(run(9, 100), run(9, 100))).toBe(0);
      expect(maxAbsDiff(run(9, 100), run(9, 101))).toBeGreaterThan(0);
      expect(maxAbsDiff(run(9, 100), run(10, 100))).toBeGreaterThan(0);
      // Element e uses counter offset + e: a call at offset o + k continues the one at o.
      const whole = run(9, 100), tail = new Float32Array(990);
      native.dropout({ n: 990, x: x.subarray(0, 990), y: tail, p: 0.5, seed: 9, offset: 110 });
      expect(maxAbsDiff(tail, whole.subarray(10))).toBe(0);
    });
  });

  test("the same call on dy is the backward (same mask), in place works, p = 0 copies", () => {
    withIsa(isa, () => {
      const n = 3001, x = randn(n, 5), dy = randn(n, 6), y = new Float32Array(n), dx = new Float32Array(n);
      native.dropout({ n, x, y, p: 0.4, seed: 77, offset: 12 });
      native.dropout({ n, x: dy, y: dx, p: 0.4, seed: 77, offset: 12 });
      const s = Math.fround(1 / Math.fround(1 - Math.fround(0.4)));
      let wrong = 0, dropped = 0;
      for (let i = 0; i < n; i++) {
        if ((y[i] === 0) !== (dx[i] === 0) || (dx[i] !== 0 && dx[i] !== Math.fround(dy[i] * s))) wrong++;
        dropped += dx[i] === 0 ? 1 : 0;
      }
      expect(wrong).toBe(0);
      expect(dropped).toBeGreaterThan(n * 0.3);
      const inPlace = dy.slice();
      native.dropout({ n, x: inPlace, y: inPlace, p: 0.4, seed: 77, offset: 12 });
      expect(maxAbsDiff(inPlace, dx)).toBe(0);
      const copy = new Float32Array(n);
      native.dropout({ n, x, y: copy, p: 0, seed: 77, offset: 12 });
      expect(maxAbsDiff(copy, x)).toBe(0);
    });
  });

  test("the mask does not depend on the thread count", () => {
    withIsa(isa, () => {
      const n = 30001, x = randn(n, 8), before = native.numThreads();
      const run = (t: number) => {
        native.setNumThreads(t);
        const y = new Float32Array(n);
        native.dropout({ n, x, y, p: 0.3, seed: 3, offset: 1 });
        return y;
      };
      try {
        expect(maxAbsDiff(run(1), run(3))).toBe(0);
      } finally {
        native.setNumThreads(before);
      }
    });
  });
});

describe("dropout async and bad input", () => {
  test("dropoutAsync gives the same bits", async () => {
    const n = 70000, x = randn(n, 9), y1 = new Float32Array(n), y2 = new Float32Array(n);
    native.dropout({ n, x, y: y1, p: 0.1, seed: 1, offset: 2 });
    await native.dropoutAsync({ n, x, y: y2, p: 0.1, seed: 1, offset: 2 });
    expect(maxAbsDiff(y1, y2)).toBe(0);
  });

  test("errors name the op, the argument and what was expected", () => {
    const x = new Float32Array(8), y = new Float32Array(8);
    const call = (a: Partial<Parameters<typeof native.dropout>[0]>) => () => native.dropout({ n: 8, x, y, p: 0.5, seed: 1, offset: 0, ...a });
    expect(call({ p: 1 })).toThrow(new TunekitError("dropout: argument 'p' = 1 is out of range, expected 0 <= p < 1"));
    expect(call({ p: -0.1 })).toThrow(/dropout: argument 'p' = -0.1 is out of range/);
    expect(call({ p: 0.99999999 })).toThrow(/argument 'p' = 0.99999999 is out of range/); // 1 as a float32
    expect(call({ seed: -1 })).toThrow(/dropout: argument 'seed' = -1 is out of range, expected 0\.\.9007199254740991/);
    expect(call({ offset: 1.5 })).toThrow(/dropout: argument 'offset' must be an integer/);
    expect(call({ y: x.subarray(1) })).toThrow(/dropout: argument 'y' has 7 elements, expected at least 8/);
    expect(call({ n: 4, y: x.subarray(2) })).toThrow(new TunekitError("dropout: output 'y' overlaps input 'x'; expected separate buffers"));
  });
});

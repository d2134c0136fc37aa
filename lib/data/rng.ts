// Seeded randomness for the data side (shuffling, splits, MLM masking): xoshiro128** seeded through
// splitmix32, so the same seed gives the same batches on every machine and Node version (Math.random
// cannot be seeded). Streams for (seed, epoch) or (seed, step) are derived with mixSeed, so a resumed
// run can re-create the stream of any epoch or step without replaying the earlier ones.
import { TunekitError } from "../errors";

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

/** One 32-bit seed from a seed and further integers (epoch, step, rank...). */
export function mixSeed(seed: number, ...parts: number[]): number {
  const st = { s: seed | 0 };
  let h = splitmix32(st);
  for (const p of parts) {
    st.s = (h ^ Math.imul(p | 0, 0x27d4eb2d) ^ Math.floor(p / 0x100000000)) | 0;
    h = splitmix32(st);
  }
  return h;
}

export function checkSeed(seed: unknown, where: string): number {
  if (typeof seed !== "number" || !Number.isSafeInteger(seed)) {
    throw new TunekitError(`${where}: seed must be a safe integer, got ${JSON.stringify(seed)}`);
  }
  return seed;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  constructor(seed: number) {
    // The high bits of a seed above 2^32 matter too.
    const st = { s: (seed | 0) ^ Math.imul(Math.floor(seed / 0x100000000) | 0, 0x9e3779b1) };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.d = 1;
  }

  /** Uniform 32-bit unsigned integer (xoshiro128**). */
  nextU32(): number {
    const r = Math.imul(this.rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = this.rotl(this.d, 11);
    return r;
  }

  /** Uniform in [0, 1) with 32 random bits. */
  float(): number {
    return this.nextU32() / 0x100000000;
  }

  /** Uniform integer in [0, n), unbiased (rejection of the last partial range). n <= 2^32. */
  int(n: number): number {
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Fisher–Yates, in place. */
  shuffle<T>(xs: T[]): T[] {
    for (let i = xs.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = xs[i];
      xs[i] = xs[j];
      xs[j] = t;
    }
    return xs;
  }

  private rotl(x: number, k: number): number {
    return (x << k) | (x >>> (32 - k));
  }
}

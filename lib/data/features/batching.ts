// Batches, seeded: the same seed gives the same order on every machine. Epoch e of a shuffled
// run uses mixSeed(seed, e), so a resumed run re-creates any epoch's order without replaying the others.
// With worldSize > 1 each rank takes every worldSize-th item of the (shuffled) order, padded to equal
// counts by wrapping around, as PyTorch's DistributedSampler does.
import { TunekitError } from "../../errors";
import { Rng, mixSeed, checkSeed } from "../rng";

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

// Train / validation splits, seeded: stratifiedSplit, and the file loaders' split (a validation file, or a
// seeded split of the training file, stratified where there are classes), the same on every machine.
import { DatasetError, TunekitError } from "../../errors";
import { Rng, checkSeed } from "../rng";
import { show } from "./read";

export const DEFAULT_SEED = 42;

/** validation: a fraction in [0, 1) (0: no validation set), a count >= 1, or a file path. */
export function checkValidation(v: unknown, where: string): number | string {
  if (v === undefined) return 0.1;
  if (typeof v === "string" && v !== "") return v;
  if (typeof v === "number" && ((v >= 0 && v < 1) || (Number.isInteger(v) && v >= 1))) return v;
  throw new TunekitError(`${where}: validation must be a fraction in [0, 1), a count >= 1 or the path of a validation file, got ${show(v)}`);
}

export function checkSeedOption(seed: unknown, where: string): number {
  return seed === undefined ? DEFAULT_SEED : checkSeed(seed, where);
}

/**
 * Splits `items` (in file order) into train and validation by `validation` (a fraction or a count),
 * stratified by `classOf` (a constant for a plain random split); both parts keep the file order.
 */
export function splitItems<T>(items: T[], validation: number, seed: number, file: string, classOf: (x: T) => string): { train: T[]; validation: T[] } {
  if (validation === 0) return { train: items, validation: [] };
  if (items.length < 2) {
    throw new DatasetError(`${file}: only ${items.length} example, too few to split off a validation set; pass validation: 0 or a validation file`);
  }
  if (validation >= items.length) {
    throw new DatasetError(`${file}: validation count ${validation} leaves no training examples (${items.length} in all); expected a count below ${items.length}`);
  }
  return stratifiedSplit(items, { validation, seed, labelOf: classOf });
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

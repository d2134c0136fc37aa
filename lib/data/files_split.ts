// The train / validation split of the file loaders: a validation file, or a seeded (stratified where
// there are classes) split of the training file, so the same seed gives the same split everywhere.
import { TunekitError } from "../errors";
import { DatasetError } from "./tasks/readers";
import { stratifiedSplit } from "./tasks/batching";
import { checkSeed } from "./tasks/rng";
import { show } from "./files_read";

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

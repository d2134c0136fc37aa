// Label values as files hold them (strings in CSV, numbers or strings in JSON/Parquet) → label names,
// shared by the text and the token datasets. Classes are named by strings everywhere (the keys of a
// config's label2id); the names seen in the data are sorted (numerically when every name is an
// integer, as run_glue sorts them), or fixed by the caller's list in id order.
import { DatasetError, TunekitError } from "../../errors";
import { listNames, show } from "./read";

const INTEGER = /^[+-]?\d+$/;
const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;

/** A finite number from a number or a numeric string; undefined otherwise. */
export function asNumber(v: unknown): number | undefined {
  if (typeof v === "number") return Number.isFinite(v) ? v : undefined;
  if (typeof v === "string" && NUMBER.test(v.trim())) return Number(v.trim());
  return undefined;
}

/** The class name of one value (string, number or boolean), or undefined when it cannot name a class. */
export function labelName(v: unknown): string | undefined {
  if (typeof v === "string") {
    const s = v.trim();
    if (s === "") return undefined;
    return INTEGER.test(s) ? String(Number(s)) : s; // "01" and 1 name the same class as "1"
  }
  if (typeof v === "number") return Number.isFinite(v) ? String(v) : undefined;
  if (typeof v === "boolean") return String(v);
  return undefined;
}

/** Sorted set of names: numerically when every one is an integer, else by code unit. */
export function sortedNames(names: Iterable<string>): string[] {
  const all = [...new Set(names)];
  if (all.every((s) => INTEGER.test(s))) return all.sort((a, b) => Number(a) - Number(b));
  return all.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
}

export function checkLabelList(labels: unknown, where: string): string[] | undefined {
  if (labels === undefined) return undefined;
  if (!Array.isArray(labels) || labels.length === 0 || labels.some((l) => typeof l !== "string" || l === "")) {
    throw new TunekitError(`${where}: labels must be a non-empty array of label names in id order, got ${show(labels)}`);
  }
  const dup = labels.find((l, i) => labels.indexOf(l) !== i);
  if (dup !== undefined) throw new TunekitError(`${where}: labels lists ${JSON.stringify(dup)} twice; expected distinct names`);
  return [...labels] as string[];
}

/**
 * Resolves names against a fixed list (id order). A name not in the list is an error naming the value,
 * file:line and the allowed labels — except an integer id in range when no allowed name is itself an
 * integer, which is taken as that id (a 0/1 file against a checkpoint's ["NEGATIVE", "POSITIVE"]).
 */
export class FixedLabels {
  private readonly index: Map<string, number>;
  private readonly idsAllowed: boolean;
  constructor(readonly names: string[]) {
    this.index = new Map(names.map((n, i) => [n, i]));
    this.idsAllowed = !names.some((n) => INTEGER.test(n));
  }
  resolve(name: string, file: string, line: number): string {
    if (this.index.has(name)) return name;
    if (this.idsAllowed && INTEGER.test(name)) {
      const id = Number(name);
      if (id >= 0 && id < this.names.length) return this.names[id];
    }
    throw new DatasetError(`${file}:${line}: label ${JSON.stringify(name)} is not one of the ${this.names.length} allowed labels (${listNames(this.names)})${this.idsAllowed ? ` nor a label id 0..${this.names.length - 1}` : ""}`);
  }
}

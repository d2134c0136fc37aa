// label ↔ id maps built from the data, as transformers' examples do (run_glue / run_ner: the sorted set of
// the labels seen), or checked against a map the caller gives (e.g. the one in a checkpoint's config).
import { TunekitError } from "../../errors";
import type { LabelValue } from "../files/examples";

export interface LabelMap {
  /** label (as a string, the config.json key) → id */
  label2id: Record<string, number>;
  /** id → label name */
  id2label: Record<number, string>;
}

/** The sorted set of `values` → ids 0..n-1 (numbers sorted numerically, strings by code unit). */
export function buildLabelMap(values: Iterable<LabelValue>, where = "buildLabelMap"): LabelMap {
  const seen = new Set<LabelValue>();
  let kind: "string" | "number" | null = null;
  for (const v of values) {
    const k = typeof v;
    if ((k !== "string" && k !== "number") || (k === "number" && !Number.isFinite(v))) {
      throw new TunekitError(`${where}: labels must be strings or finite numbers, got ${JSON.stringify(v)}`);
    }
    if (kind !== null && k !== kind) throw new TunekitError(`${where}: labels mix strings and numbers (${JSON.stringify(v)}); use one type`);
    kind = k as "string" | "number";
    seen.add(v);
  }
  if (seen.size === 0) throw new TunekitError(`${where}: no labels in the data`);
  const sorted = [...seen].sort((a, b) => (kind === "number" ? (a as number) - (b as number) : a < b ? -1 : a > b ? 1 : 0));
  const label2id: Record<string, number> = {};
  const id2label: Record<number, string> = {};
  sorted.forEach((v, i) => {
    // defineProperty: a label "__proto__" is an own key, not the object's prototype.
    Object.defineProperty(label2id, String(v), { value: i, enumerable: true, writable: true, configurable: true });
    id2label[i] = String(v);
  });
  return { label2id, id2label };
}

/** Checks a caller's label2id (ids 0..n-1, each once) and returns it with its inverse. */
export function checkLabelMap(label2id: Record<string, number>, where: string): LabelMap {
  if (label2id === null || typeof label2id !== "object") throw new TunekitError(`${where}: label2id must be an object of label → id`);
  const entries = Object.entries(label2id);
  const id2label: Record<number, string> = {};
  for (const [k, v] of entries) {
    if (!Number.isInteger(v) || v < 0 || v >= entries.length || id2label[v] !== undefined) {
      throw new TunekitError(`${where}: label2id must map its ${entries.length} labels to the ids 0..${entries.length - 1}, each once; got ${JSON.stringify(k)} → ${v}`);
    }
    id2label[v] = k;
  }
  return { label2id: { ...label2id }, id2label };
}

export function labelId(map: LabelMap, value: LabelValue, where: string): number {
  // Own keys only: a label "constructor" or "toString" must not find Object.prototype's.
  const id = Object.prototype.hasOwnProperty.call(map.label2id, String(value)) ? map.label2id[String(value)] : undefined;
  if (id === undefined) {
    throw new TunekitError(`${where}: label ${JSON.stringify(value)} is not in label2id (${Object.keys(map.label2id).slice(0, 20).join(", ")})`);
  }
  return id;
}

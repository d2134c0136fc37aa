// Typed access to scripts/synthetic.cjs (the data the reliability scripts train on).
import type { TaskBatch } from "../lib/models/heads";

export interface Example { ids: number[]; label: number }
// eslint-disable-next-line @typescript-eslint/no-var-requires
const s = require("../scripts/synthetic.cjs") as {
  examples(n: number, o?: { seed?: number; minLen?: number; lengths?: number }): Example[];
  collate(f: Example[]): TaskBatch;
};
export const examples = s.examples;
export const collate = s.collate;

/**
 * The same data for the embedded models/brown-bert (8,192 tokens): its [CLS] (2) and [SEP] (3) around the
 * other ids folded into its vocabulary past the 5 special tokens.
 */
export function brownExamples(n: number, o?: { seed?: number; minLen?: number; lengths?: number }): Example[] {
  return s.examples(n, o).map(({ ids, label }) => ({ ids: [2, ...ids.slice(1, -1).map((id) => 5 + (id % 8187)), 3], label }));
}

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

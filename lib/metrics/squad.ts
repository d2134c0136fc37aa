// Extractive QA: exact match and token F1 as the official SQuAD v1.1 evaluate script.
import type { Metric, MetricValues } from "./metric";
import { fail } from "./metric";

const PUNCTUATION = new Set("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"); // Python's string.punctuation (ASCII only)
// Python's \b(a|an|the)\b on str: word characters are Unicode letters, numbers and "_" (JS \b is ASCII-only).
const ARTICLES = /(?<![\p{L}\p{N}_])(?:a|an|the)(?![\p{L}\p{N}_])/gu;
// Python's str.split(): JS \s without U+FEFF, plus U+001C..U+001F and U+0085.
const PY_WHITESPACE = /[\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

function pySplit(s: string): string[] {
  return s.split(PY_WHITESPACE).filter((t) => t.length > 0);
}

/** normalize_answer of the SQuAD v1.1 script: lower case, drop ASCII punctuation, then articles, fix whitespace. */
export function normalizeAnswer(s: string): string {
  let noPunct = "";
  for (const ch of s.toLowerCase()) if (!PUNCTUATION.has(ch)) noPunct += ch;
  return pySplit(noPunct.replace(ARTICLES, " ")).join(" ");
}

function tokenF1(prediction: string[], truth: string[]): number {
  const counts = new Map<string, number>();
  for (const t of truth) counts.set(t, (counts.get(t) ?? 0) + 1);
  let same = 0;
  for (const t of prediction) {
    const c = counts.get(t) ?? 0;
    if (c > 0) {
      same++;
      counts.set(t, c - 1);
    }
  }
  if (same === 0) return 0;
  const precision = same / prediction.length, recall = same / truth.length;
  return (2 * precision * recall) / (precision + recall);
}

/** One question: exact match (0/1) and token F1 (0..1), each the max over the ground truths. */
export function squadScores(prediction: string, groundTruths: readonly string[]): { exactMatch: number; f1: number } {
  if (groundTruths.length === 0) fail("squadScores", "a question needs at least one ground-truth answer");
  const p = normalizeAnswer(prediction);
  const pTokens = pySplit(p);
  let exactMatch = 0, f1 = 0;
  for (const g of groundTruths) {
    const n = normalizeAnswer(g);
    if (n === p) exactMatch = 1;
    f1 = Math.max(f1, tokenF1(pTokens, pySplit(n)));
  }
  return { exactMatch, f1 };
}

/** Extractive QA as the official SQuAD v1.1 evaluate script: compute() gives exact_match and f1 in percent (0..100). */
export class SquadMetric implements Metric<[readonly string[], readonly (readonly string[])[]]> {
  private n = 0;
  private em = 0;
  private f1 = 0;

  /** predictions: one answer text per question; references: the ground-truth answer texts of each question. */
  update(predictions: readonly string[], references: readonly (readonly string[])[]): void {
    const where = "SquadMetric.update";
    if (predictions.length !== references.length) fail(where, `${predictions.length} predictions for ${references.length} questions`);
    for (let i = 0; i < references.length; i++) if (references[i].length === 0) fail(where, `question ${i} has no ground-truth answer`);
    for (let i = 0; i < predictions.length; i++) {
      const s = squadScores(predictions[i], references[i]);
      this.em += s.exactMatch;
      this.f1 += s.f1;
    }
    this.n += predictions.length;
  }

  reset(): void {
    this.n = this.em = this.f1 = 0;
  }

  compute(): MetricValues {
    if (this.n === 0) fail("SquadMetric.compute", "no questions were given to update()");
    return { exact_match: (100 * this.em) / this.n, f1: (100 * this.f1) / this.n };
  }
}

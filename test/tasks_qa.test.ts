// Extractive QA: answer positions, collation, post-processing checks and SQuAD EM / F1 on small examples
// (test/fixtures/data/squad_small.json, the embedded brown-bert's tokenizer); on the real SQuAD v1.1 part a
// (5,696 questions, ../shared) with the real bert-tiny-mlm tokenizer: answer token positions for every
// window, overflow windows with stride, post-processing of logits back to answer text, gold spans scoring 100.
import * as path from "path";
import { AutoTokenizer, Tokenizer } from "../lib/data/tokenizer";
import { readSquad } from "../lib/data/files";
import type { QaExample } from "../lib/data/files";
import { qaFeatures, postprocessQa, squadMetrics, collate } from "../lib/data/features";
import type { QaFeature } from "../lib/data/features";
import { Rng } from "../lib/data/rng";
import { normalizeAnswer } from "../lib/metrics";
import { TunekitError } from "../lib/errors";
import { describeShared, sharedDir, modelDir } from "./shared";
import { BROWN_BERT, FIXTURES } from "./helpers";

describe("extractive QA on small examples", () => {
  let tok: Tokenizer;
  let examples: QaExample[];
  let features: QaFeature[];

  beforeAll(async () => {
    tok = await AutoTokenizer.fromPretrained(BROWN_BERT);
    examples = readSquad(path.join(FIXTURES, "data", "squad_small.json"));
    features = await qaFeatures(tok, examples, { maxLength: 384, docStride: 128 });
  });

  test("answers with surrounding whitespace, answers outside every window, unanswered examples", async () => {
    const context = "The Denver Broncos beat the Carolina Panthers in Super Bowl 50.";
    const ex = (id: string, text: string, at: number): QaExample => ({ id, title: "t", context, question: "Who won?", answers: [{ text, answerStart: at }] });
    const [padded, plain, none] = await qaFeatures(tok, [ex("p", " Denver Broncos ", 3), ex("q", "Denver Broncos", 4), { ...ex("n", "", 0), answers: [] }]);
    expect([padded.startPosition, padded.endPosition]).toEqual([plain.startPosition, plain.endPosition]);
    expect(context.slice(plain.contextOffsets[plain.startPosition!]![0], plain.contextOffsets[plain.endPosition!]![1])).toBe("Denver Broncos");
    expect(none.startPosition).toBeUndefined();
    expect(none.exampleId).toBe("n");
    // A window too short for the answer: CLS in all windows.
    const far = await qaFeatures(tok, [ex("f", "Super Bowl 50", context.indexOf("Super"))], { maxLength: 12, docStride: 2 });
    expect(far.length).toBeGreaterThan(1);
    expect(far.filter((f) => f.startPosition! > 0).length).toBeGreaterThan(0);
    const tiny = await qaFeatures(tok, [ex("g", "Denver Broncos beat the Carolina Panthers", 4)], { maxLength: 12, docStride: 2 });
    expect(tiny.every((f) => f.startPosition === 0 && f.endPosition === 0)).toBe(true);
    // A question that leaves no room for the context is named.
    await expect(qaFeatures(tok, [ex("ok", "Denver", 4), { ...ex("long", "Denver", 4), question: "why ".repeat(40) }], { maxLength: 32, docStride: 4 }))
      .rejects.toThrow(/qaFeatures: example 1 \(id long\): /);
    await expect(qaFeatures(tok, [ex("a", "Denver", 4)], { docStride: -1 })).rejects.toThrow("qaFeatures: docStride must be an integer >= 0, got -1");
  });

  test("collated QA batches keep start / end positions and pad the rest", () => {
    const some = features; // the 5 questions of squad_small.json
    const b = collate(some, { padId: tok.padTokenId!, padToMultipleOf: 8 });
    const T = Math.ceil(Math.max(...some.map((f) => f.inputIds.length)) / 8) * 8;
    expect(new Set(some.map((f) => f.inputIds.length)).size).toBeGreaterThan(1); // rows of different lengths
    expect([b.batchSize, b.seqLen, b.inputIds.length, b.tokenTypeIds!.length]).toEqual([5, T, 5 * T, 5 * T]);
    expect(Array.from(b.startPositions!)).toEqual(some.map((f) => f.startPosition));
    expect(Array.from(b.endPositions!)).toEqual(some.map((f) => f.endPosition));
    expect(b.labels).toBeUndefined();
  });

  test("post-processing: no valid span, mismatched inputs", () => {
    const e = examples[0];
    const f = features[0];
    const T = f.inputIds.length;
    // Only the question tokens score: every candidate is invalid.
    const s = new Float32Array(T).fill(-50);
    const en = new Float32Array(T).fill(-50);
    const nb = 3;
    for (let t = 1; t <= nb; t++) { s[t] = 10; en[t] = 10; }
    expect(postprocessQa([e], [f], [s], [en], { nBest: nb })).toEqual([{ id: e.id, text: "", start: -1, end: -1, score: -Infinity }]);
    expect(() => postprocessQa([e], [f], [s], [])).toThrow(TunekitError);
    expect(() => postprocessQa([e], [f], [s.subarray(0, 3)], [en])).toThrow(`postprocessQa: feature 0 has ${T} tokens but its logit rows have 3 and ${T} values`);
    expect(() => postprocessQa([examples[1]], [f], [s], [en])).toThrow(`postprocessQa: feature 0 belongs to example 0 (id ${e.id}), which is not at that index of the examples given`);
    expect(() => postprocessQa([e], [f], [s], [en], { nBest: 0 })).toThrow("postprocessQa: nBest must be an integer >= 1, got 0");
  });

  test("SQuAD metrics: official normalisation; the gold spans score 100", () => {
    expect(normalizeAnswer("The  Denver Broncos!")).toBe("denver broncos");
    expect(normalizeAnswer("an apple, a pear")).toBe("apple pear");
    expect(normalizeAnswer("théatre")).toBe("théatre"); // "the" inside a word stays
    const ex = [{ id: "1", title: "", context: "", question: "", answers: [{ text: "Denver Broncos", answerStart: 0 }, { text: "Broncos", answerStart: 7 }] }];
    expect(squadMetrics(ex, [{ id: "1", text: "the Denver Broncos" }])).toEqual({ exactMatch: 100, f1: 100 });
    const m = squadMetrics(ex, [{ id: "1", text: "Denver" }]);
    expect(m.exactMatch).toBe(0);
    expect(m.f1).toBeCloseTo(100 * (2 * 1 * 0.5) / 1.5, 10); // precision 1, recall 1/2 against "Denver Broncos"
    expect(squadMetrics(examples, examples.map((e) => ({ id: e.id, text: e.answers[0].text })))).toEqual({ exactMatch: 100, f1: 100 });
    expect(() => squadMetrics(ex, [])).toThrow("squadMetrics: no prediction for example 1");
  });
});

describeShared("extractive QA on SQuAD v1.1 part a (../shared/data, bert-tiny-mlm's tokenizer)", () => {
  const notes: string[] = [];
  afterAll(() => console.log(`tasks_qa (this machine, one run):\n${notes.join("\n")}`));
  let tok: Tokenizer;
  let examples: QaExample[];
  let features: QaFeature[];

  beforeAll(async () => {
    tok = await AutoTokenizer.fromPretrained(modelDir("bert-tiny-mlm"));
    examples = readSquad(path.join(sharedDir(), "data", "squad_v1.1", "dev-v1.1-part-a.json"));
    const t0 = Date.now();
    features = await qaFeatures(tok, examples, { maxLength: 384, docStride: 128 });
    notes.push(`qaFeatures, all ${examples.length} questions (384 / 128): ${features.length} windows in ${Date.now() - t0} ms`);
  });

  test("every question: windows of <= 384 tokens, [CLS] question [SEP] context [SEP], answer positions through the offsets", () => {
    expect(examples.length).toBe(5696);
    // Each example's windows come in order; 175 extra windows on this tokenizer (long contexts).
    expect(features.map((f) => f.exampleIndex).filter((x, i, a) => i > 0 && x < a[i - 1])).toEqual([]);
    expect(new Set(features.map((f) => f.exampleIndex)).size).toBe(5696);
    expect(features.length).toBe(5871);
    const cls = tok.clsTokenId!;
    const sep = tok.sepTokenId!;
    let windowsWithAnswer = 0;
    let exactText = 0;
    const examplesFound = new Set<number>();
    const problems: string[] = [];
    for (const f of features) {
      const e = examples[f.exampleIndex];
      const ids = Array.from(f.inputIds);
      const T = ids.length;
      const ctx = f.contextOffsets.map((o, t) => (o === null ? -1 : t)).filter((t) => t >= 0);
      const firstSep = ids.indexOf(sep);
      if (T > 384 || ids[0] !== cls || ids[T - 1] !== sep || ctx[0] !== firstSep + 1 || ctx[ctx.length - 1] !== T - 2 || ctx.length !== T - firstSep - 2) {
        problems.push(`${e.id}: layout`);
        continue;
      }
      // token type 1 exactly on the context and the final [SEP]
      if (f.tokenTypeIds!.some((y, t) => y !== (t > firstSep ? 1 : 0))) problems.push(`${e.id}: token types`);
      const a = e.answers[0];
      const s = a.answerStart;
      const end = s + a.text.length;
      const inside = f.contextOffsets[ctx[0]]![0] <= s && f.contextOffsets[ctx[ctx.length - 1]]![1] >= end;
      if (!inside) {
        if (f.startPosition !== 0 || f.endPosition !== 0) problems.push(`${e.id}: answer outside the window but positions ${f.startPosition}, ${f.endPosition}`);
        continue;
      }
      windowsWithAnswer++;
      examplesFound.add(f.exampleIndex);
      // Reference: the first and last context tokens overlapping the answer's characters.
      const overlap = ctx.filter((t) => f.contextOffsets[t]![1] > s && f.contextOffsets[t]![0] < end);
      if (f.startPosition !== overlap[0] || f.endPosition !== overlap[overlap.length - 1]) {
        problems.push(`${e.id}: positions ${f.startPosition}..${f.endPosition}, expected ${overlap[0]}..${overlap[overlap.length - 1]}`);
        continue;
      }
      const cs = f.contextOffsets[f.startPosition!]![0];
      const ce = f.contextOffsets[f.endPosition!]![1];
      if (e.context.slice(cs, ce) === a.text) {
        exactText++;
        continue;
      }
      // Decoding gives more than the answer only when the answer starts or ends inside a word piece
      // ("gold" of "golden"): then no token span can give it exactly.
      const startsAtToken = ctx.some((t) => f.contextOffsets[t]![0] === s);
      const endsAtToken = ctx.some((t) => f.contextOffsets[t]![1] === end);
      if ((startsAtToken && endsAtToken) || !(cs <= s && ce >= end)) problems.push(`${e.id}: decoded ${JSON.stringify(e.context.slice(cs, ce))} for ${JSON.stringify(a.text)}`);
    }
    expect(problems).toEqual([]);
    expect(examplesFound.size).toBe(5696); // at 384 / 128 every answer lies inside some window
    expect(windowsWithAnswer).toBe(5732);
    // 5705 / 5732 = 99.53% of the windows give back the answer text exactly; the other 27 cut a word piece.
    expect(exactText).toBe(5705);
    notes.push(`windows holding the answer: ${windowsWithAnswer}; decoded to the exact answer text: ${exactText} (${(100 * exactText / windowsWithAnswer).toFixed(2)}%)`);
  });

  test("long contexts give several windows that share docStride context tokens and cover the context", async () => {
    // The 30 longest contexts, with small windows so that each gives many.
    const long = [...examples].sort((x, y) => y.context.length - x.context.length || (x.id < y.id ? -1 : 1)).slice(0, 30);
    const maxLength = 96;
    const docStride = 32;
    const feats = await qaFeatures(tok, long, { maxLength, docStride });
    const full = await tok.encodeBatch(long.map((e) => [e.question.trimStart(), e.context] as [string, string]), {});
    let windows = 0;
    long.forEach((e, k) => {
      const mine = feats.filter((f) => f.exampleIndex === k);
      windows += mine.length;
      expect(mine.length).toBeGreaterThan(3);
      const qLen = full.sequence_ids[k].filter((s) => s === 0).length;
      const ctxIds = full.input_ids[k].filter((_, t) => full.sequence_ids[k][t] === 1);
      const ctxOffsets = full.offset_mapping[k].filter((_, t) => full.sequence_ids[k][t] === 1);
      const parts = mine.map((f) => Array.from(f.inputIds).slice(qLen + 2, -1));
      mine.forEach((f, i) => {
        expect(f.inputIds.length).toBeLessThanOrEqual(maxLength);
        if (i < mine.length - 1) expect(f.inputIds.length).toBe(maxLength);
        expect(Array.from(f.inputIds).slice(0, qLen + 2)).toEqual(Array.from(full.input_ids[k]).slice(0, qLen + 2)); // the question in every window
        if (i > 0) expect(parts[i].slice(0, docStride)).toEqual(parts[i - 1].slice(-docStride));
      });
      expect([...parts[0], ...parts.slice(1).flatMap((p) => p.slice(docStride))]).toEqual(ctxIds);
      // Offsets of each window's context tokens are those of the untruncated encoding.
      const offs = mine.flatMap((f, i) => f.contextOffsets.filter((o) => o !== null).slice(i === 0 ? 0 : docStride));
      expect(offs).toEqual(ctxOffsets);
      // The answer is labelled in the windows that hold it, CLS elsewhere, and at least one holds it.
      const a = e.answers[0];
      let holders = 0;
      for (const f of mine) {
        const c = f.contextOffsets.filter((o): o is [number, number] => o !== null);
        const inside = c[0][0] <= a.answerStart && c[c.length - 1][1] >= a.answerStart + a.text.length;
        if (!inside) { expect([f.startPosition, f.endPosition]).toEqual([0, 0]); continue; }
        holders++;
        expect(f.startPosition).toBeGreaterThan(0);
        const span = e.context.slice(f.contextOffsets[f.startPosition!]![0], f.contextOffsets[f.endPosition!]![1]);
        expect(normalizeAnswer(span)).toContain(normalizeAnswer(a.text));
      }
      expect(holders).toBeGreaterThan(0);
    });
    notes.push(`30 longest contexts at 96 / 32: ${windows} windows`);
  });

  test("post-processing picks the planted span from synthetic logits, across windows and against a brute force", async () => {
    const subset = examples.filter((_, i) => i % 40 === 0); // 143 questions
    const feats = await qaFeatures(tok, subset, { maxLength: 128, docStride: 48 });
    const rng = new Rng(7);
    const noise = (n: number) => Float32Array.from({ length: n }, () => rng.float() * 2 - 1);
    const starts = feats.map((f) => noise(f.inputIds.length + 5)); // longer rows, as from a padded batch
    const ends = feats.map((f) => noise(f.inputIds.length + 5));
    // Plant the gold span (+10 each) in the windows that hold it, and traps that must lose: a huge start on a
    // question token, a span too long (> maxAnswerLength), and end before start.
    feats.forEach((f, i) => {
      starts[i][1] = 100; // question token: not context
      ends[i][f.inputIds.length + 2] = 100; // padding
      if (f.startPosition! > 0) {
        starts[i][f.startPosition!] += 10;
        ends[i][f.endPosition!] += 10;
        const ctx = f.contextOffsets.map((o, t) => (o === null ? -1 : t)).filter((t) => t >= 0);
        if (f.startPosition! - ctx[0] > 3) ends[i][f.startPosition! - 2] += 9.5; // end before the planted start
      }
    });
    const preds = postprocessQa(subset, feats, starts, ends, { nBest: 20, maxAnswerLength: 30 });
    expect(preds.map((p) => p.id)).toEqual(subset.map((e) => e.id));
    let right = 0;
    subset.forEach((e, k) => {
      const gold = feats.find((f) => f.exampleIndex === k && f.startPosition! > 0)!;
      const s = gold.contextOffsets[gold.startPosition!]![0];
      const en = gold.contextOffsets[gold.endPosition!]![1];
      if (preds[k].start === s && preds[k].end === en && preds[k].text === e.context.slice(s, en)) right++;
    });
    expect(right).toBe(subset.length);

    // Brute force over every valid (start, end) of every window: with nBest covering all tokens it must agree.
    const plain = feats.map((f) => noise(f.inputIds.length));
    const plainEnd = feats.map((f) => noise(f.inputIds.length));
    const all = postprocessQa(subset, feats, plain, plainEnd, { nBest: 1000, maxAnswerLength: 30 });
    const top20 = postprocessQa(subset, feats, plain, plainEnd, { nBest: 20, maxAnswerLength: 30 });
    subset.forEach((e, k) => {
      let best = { score: -Infinity, start: -1, end: -1 };
      feats.forEach((f, i) => {
        if (f.exampleIndex !== k) return;
        for (let a = 0; a < f.contextOffsets.length; a++) {
          for (let b = a; b < Math.min(a + 30, f.contextOffsets.length); b++) {
            if (f.contextOffsets[a] === null || f.contextOffsets[b] === null) continue;
            const sc = plain[i][a] + plainEnd[i][b];
            if (sc > best.score) best = { score: sc, start: f.contextOffsets[a]![0], end: f.contextOffsets[b]![1] };
          }
        }
      });
      expect([all[k].start, all[k].end]).toEqual([best.start, best.end]);
      expect(all[k].score).toBeCloseTo(best.score, 5);
      expect(all[k].text).toBe(e.context.slice(best.start, best.end));
      expect(top20[k].score).toBeLessThanOrEqual(best.score + 1e-6);
    });
  });

  test("the gold spans of every question score 100", () => {
    expect(squadMetrics(examples, examples.map((e) => ({ id: e.id, text: e.answers[1]?.text ?? e.answers[0].text })))).toEqual({ exactMatch: 100, f1: 100 });
  });
});

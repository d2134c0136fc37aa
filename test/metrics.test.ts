// Metrics: hand-worked cases, goldens from test/fixtures/golden_metrics.py (reference definitions of
// scikit-learn, seqeval, the SQuAD v1.1 script and scipy on real CoNLL-2003 / SST-2 / SQuAD / STS-B data),
// streaming in batches = one batch, edge cases and bad input.
import * as fs from "fs";
import * as path from "path";
import {
  ClassificationMetric, MultiLabelMetric, EntityMetric, SquadMetric, RegressionMetric, MostConfidentErrors,
  mostConfidentErrors, argmax, getEntities, tagsFromIds, normalizeAnswer, squadScores, pearson, spearman,
  averageRanks, Metric, MetricValues,
} from "../lib/metrics";
import { TunekitError } from "../lib/errors";

type Report = Record<string, number | number[][]>;
interface TagSet { tags: string[]; references: string[]; predictions: string[]; seqeval: Report }
const G = JSON.parse(fs.readFileSync(path.join(__dirname, "fixtures", "metrics.json"), "utf8")) as {
  conll: TagSet & { tokens: Report };
  soup: TagSet & { entities: [string, number, number][] };
  multilabel: { types: string[]; targets: number[][]; logits: number[][]; result: Report };
  sst2: { labels: number[]; logits: number[][]; predictions: number[]; result: Report; result_pos0: Report;
    errors: { k: number; count: number; rows: number[][] } };
  squad: { predictions: string[]; references: string[][]; result: Report; per_example: number[][]; normalized: [string, string][] };
  stsb: { labels: number[]; predictions: number[]; result: Report; ranks: number[] };
};

const decode = (s: TagSet, which: "references" | "predictions") => s[which].map((seq) => [...seq].map((c) => s.tags[c.charCodeAt(0) - 97]));

/** Same keys, numbers within tol (matrices exactly). */
function expectReport(got: MetricValues, want: Report, tol = 1e-12) {
  expect(Object.keys(got).sort()).toEqual(Object.keys(want).sort());
  for (const [k, v] of Object.entries(want)) {
    if (Array.isArray(v)) expect(got[k]).toEqual(v);
    else if (Number.isNaN(v)) expect(got[k]).toBeNaN();
    else if (Math.abs((got[k] as number) - v) > tol) throw new Error(`${k}: got ${got[k]}, want ${v}`);
  }
}

/** Calls feed(start, end) over [0, n) in uneven batches. */
function inBatches(n: number, sizes: number[], feed: (start: number, end: number) => void) {
  let at = 0;
  for (let b = 0; at < n; b++) {
    const e = Math.min(n, at + sizes[b % sizes.length]);
    feed(at, e);
    at = e;
  }
}

const errorMessage = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(TunekitError);
    return (e as Error).message;
  }
  throw new Error("did not throw");
};

describe("ClassificationMetric", () => {
  test("hand-worked binary case", () => {
    const m = new ClassificationMetric({ numLabels: 2 });
    m.update([0, 1, 1, 0, 1], [0, 1, 0, 0, 0]);
    // label 1: tp 1, fp 2, fn 0; label 0: tp 2, fp 0, fn 2; supports 4 and 1
    expectReport(m.compute(), {
      accuracy: 3 / 5, precision: 1 / 3, recall: 1, f1: 0.5,
      macro_precision: 2 / 3, macro_recall: 0.75, macro_f1: 7 / 12,
      weighted_precision: 13 / 15, weighted_recall: 0.6, weighted_f1: 19 / 30,
      confusion_matrix: [[2, 2], [0, 1]],
    }, 1e-15);
    const neg = new ClassificationMetric({ numLabels: 2, positiveLabel: 0 });
    neg.update([0, 1, 1, 0, 1], [0, 1, 0, 0, 0]);
    expect([neg.compute().precision, neg.compute().recall, neg.compute().f1]).toEqual([1, 0.5, 2 / 3]);
  });

  test("no positive predictions: precision 0, not NaN (zero_division=0)", () => {
    const m = new ClassificationMetric({ numLabels: 2 });
    m.update([0, 0, 0], [1, 0, 1]);
    const r = m.compute();
    expect([r.precision, r.recall, r.f1]).toEqual([0, 0, 0]);
    expect(r.macro_precision).toBeCloseTo((1 / 3 + 0) / 2, 15);
    const none = new ClassificationMetric({ numLabels: 2 });
    none.update([0, 0], [0, 0]); // label 1 never occurs: averages run over label 0 only
    expectReport(none.compute(), {
      accuracy: 1, precision: 0, recall: 0, f1: 0, macro_precision: 1, macro_recall: 1, macro_f1: 1,
      weighted_precision: 1, weighted_recall: 1, weighted_f1: 1, confusion_matrix: [[2, 0], [0, 0]],
    });
  });

  test("multi-class: labels never seen are left out of the averages; ignoreIndex is skipped", () => {
    const m = new ClassificationMetric({ numLabels: 4 });
    m.update([0, 2, 1, 1, -3], [0, 1, 1, 2, -100]);
    // label 0: P1 R1 F1; label 1: tp1 pred2 act2 → .5 .5 .5; label 2: tp0 pred1 act1 → 0; label 3 absent
    const r = m.compute();
    expect(r.precision).toBeUndefined();
    expect(r.macro_f1).toBeCloseTo(1.5 / 3, 15);
    expect(r.weighted_recall).toBeCloseTo((1 + 0.5 * 2 + 0) / 4, 15);
    expect(r.accuracy).toBe(0.5);
    expect((r.confusion_matrix as number[][])[3]).toEqual([0, 0, 0, 0]);
  });

  test("CoNLL-2003 valid tokens as 9-class classification (golden), in batches = one batch", () => {
    const tags = G.conll.tags;
    const ids = (w: "references" | "predictions") => Int32Array.from(decode(G.conll, w).flat().map((t) => tags.indexOf(t)));
    const y = ids("references"), p = ids("predictions");
    const one = new ClassificationMetric({ numLabels: 9, positiveLabel: 1 });
    one.update(p, y);
    expectReport(one.compute(), G.conll.tokens);
    const many = new ClassificationMetric({ numLabels: 9, positiveLabel: 1 });
    inBatches(y.length, [1, 977, 5000, 33], (s, e) => many.update(p.subarray(s, e), y.subarray(s, e)));
    expect(many.compute()).toEqual(one.compute());
    many.reset();
    many.update([3], [3]);
    expect(many.compute().accuracy).toBe(1);
  });

  test("SST-2 dev from logits: argmax (first index on ties) and metrics match the golden", () => {
    const logits = Float64Array.from(G.sst2.logits.flat());
    expect(G.sst2.logits[5]).toEqual([0.25, 0.25]);
    expect(Array.from(argmax(logits, 2))).toEqual(G.sst2.predictions);
    const m = new ClassificationMetric({ numLabels: 2 });
    inBatches(G.sst2.labels.length, [32, 7], (s, e) => m.updateLogits(logits.subarray(2 * s, 2 * e), G.sst2.labels.slice(s, e)));
    expectReport(m.compute(), G.sst2.result);
    const m0 = new ClassificationMetric({ numLabels: 2, positiveLabel: 0 });
    m0.updateLogits(logits, G.sst2.labels);
    expectReport(m0.compute(), G.sst2.result_pos0);
  });

  test("bad input is refused and leaves the counts untouched", () => {
    const m = new ClassificationMetric({ numLabels: 3 });
    m.update([1], [1]);
    expect(errorMessage(() => m.update([0, 1], [0, 3]))).toBe("ClassificationMetric.update: label 3 at 1 is not in [0, 3) or -100");
    expect(errorMessage(() => m.update([0, 1.5], [0, 1]))).toBe("ClassificationMetric.update: prediction 1.5 at 1 is not in [0, 3)");
    expect(errorMessage(() => m.update([0], [0, 1]))).toBe("ClassificationMetric.update: 1 predictions for 2 labels");
    expect(errorMessage(() => m.updateLogits([0, 1, 2, 3], [0, 1]))).toBe("ClassificationMetric.updateLogits: logits length 4 != 2 labels x 3");
    expect(errorMessage(() => m.updateLogits([0, NaN, 2], [0]))).toBe("argmax: logits contain NaN (row 0, column 1)");
    expect(m.compute().confusion_matrix).toEqual([[0, 0, 0], [0, 1, 0], [0, 0, 0]]);
    const strict = new ClassificationMetric({ numLabels: 2, ignoreIndex: null });
    expect(errorMessage(() => strict.update([0], [-100]))).toBe("ClassificationMetric.update: label -100 at 0 is not in [0, 2)");
    expect(errorMessage(() => new ClassificationMetric({ numLabels: 1 }))).toBe("ClassificationMetric: numLabels must be an integer >= 2, got 1");
    expect(errorMessage(() => new ClassificationMetric({ numLabels: 3, positiveLabel: 3 }))).toBe("ClassificationMetric: positiveLabel must be an integer in [0, 3), got 3");
    expect(errorMessage(() => new ClassificationMetric({ numLabels: 2 }).compute())).toBe("ClassificationMetric.compute: no examples were given to update()");
    expect(errorMessage(() => argmax([1, 2, 3], 2))).toBe("argmax: logits length 3 is not a multiple of numLabels 2");
    expect(Array.from(argmax([-Infinity, -Infinity, 1, Infinity], 2))).toEqual([0, 1]);
  });
});

describe("MultiLabelMetric", () => {
  test("hand-worked case; sigmoid(0) = 0.5 is not > 0.5", () => {
    const m = new MultiLabelMetric({ numLabels: 3 });
    m.update([2, -1, 0.1, -3, 4, -0.2], [1, 0, 0, 0, 1, 1]);
    // predicted [[1,0,1],[0,1,0]]: micro tp 2 of 3 predicted, 3 actual; label 2: tp 0
    expectReport(m.compute(), {
      subset_accuracy: 0, micro_precision: 2 / 3, micro_recall: 2 / 3, micro_f1: 2 / 3,
      macro_precision: 2 / 3, macro_recall: 2 / 3, macro_f1: 2 / 3,
    }, 1e-15);
    const z = new MultiLabelMetric({ numLabels: 2 });
    z.update([0, 1e-9], [0, 1]);
    expect(z.compute().subset_accuracy).toBe(1);
    const pr = new MultiLabelMetric({ numLabels: 2, scores: "probabilities", threshold: 0.3 });
    pr.update([0.31, 0.3], [1, 0]);
    expect(pr.compute().subset_accuracy).toBe(1);
    const none = new MultiLabelMetric({ numLabels: 2 });
    none.update([-1, -1], [0, 0]); // nothing predicted, nothing true: 0 by zero_division, exact match 1
    expect(none.compute()).toEqual({ subset_accuracy: 1, micro_precision: 0, micro_recall: 0, micro_f1: 0, macro_precision: 0, macro_recall: 0, macro_f1: 0 });
  });

  test("CoNLL sentences → entity types present (golden), in batches = one batch", () => {
    const s = Float64Array.from(G.multilabel.logits.flat()), t = Uint8Array.from(G.multilabel.targets.flat());
    const one = new MultiLabelMetric({ numLabels: 4 });
    one.update(s, t);
    expectReport(one.compute(), G.multilabel.result);
    const many = new MultiLabelMetric({ numLabels: 4 });
    inBatches(t.length / 4, [3, 100, 1], (a, b) => many.update(s.subarray(4 * a, 4 * b), t.subarray(4 * a, 4 * b)));
    expect(many.compute()).toEqual(one.compute());
  });

  test("bad input", () => {
    const m = new MultiLabelMetric({ numLabels: 2 });
    expect(errorMessage(() => m.update([1, 2, 3], [1, 0, 1]))).toBe("MultiLabelMetric.update: logits length 3 is not a multiple of numLabels 2");
    expect(errorMessage(() => m.update([1, 2], [1, 2]))).toBe("MultiLabelMetric.update: target 2 at 1 is not 0 or 1");
    expect(errorMessage(() => m.update([1, NaN], [1, 0]))).toBe("MultiLabelMetric.update: scores contain NaN at 1");
    expect(errorMessage(() => new MultiLabelMetric({ numLabels: 2, threshold: 1 }))).toBe("MultiLabelMetric: threshold must be in [0, 1), got 1");
    expect(errorMessage(() => m.compute())).toBe("MultiLabelMetric.compute: no examples were given to update()");
  });
});

describe("entities (seqeval default mode)", () => {
  test("chunk rules: I- after O or after another type starts a chunk; IOBES; bare tags", () => {
    const e = (tags: string[]) => getEntities(tags).map((x) => `${x.type}:${x.start}-${x.end}`);
    expect(e(["B-PER", "I-PER", "O", "I-LOC", "I-LOC", "B-LOC", "I-ORG"])).toEqual(["PER:0-1", "LOC:3-4", "LOC:5-5", "ORG:6-6"]);
    expect(e(["B-PER", "I-LOC", "I-LOC"])).toEqual(["PER:0-0", "LOC:1-2"]);
    expect(e(["I-MISC", "B-MISC", "I-MISC"])).toEqual(["MISC:0-0", "MISC:1-2"]); // IOB1-style
    expect(e(["S-A", "B-B", "E-B", "E-B", "I-B"])).toEqual(["A:0-0", "B:1-2", "B:3-3", "B:4-4"]);
    expect(e(["B", "I", "O", "I-X"])).toEqual(["_:0-1", "X:3-3"]);
    expect(e([])).toEqual([]);
  });

  test("seqeval README example: per-type and micro scores", () => {
    const m = new EntityMetric();
    m.update(
      [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]],
      [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]],
    );
    expectReport(m.compute(), {
      precision: 0.5, recall: 0.5, f1: 0.5, accuracy: 8 / 10,
      MISC_precision: 0, MISC_recall: 0, MISC_f1: 0, MISC_support: 1,
      PER_precision: 1, PER_recall: 1, PER_f1: 1, PER_support: 1,
    }, 0);
  });

  test("no predicted entities: precision 0, not NaN; a type only predicted has support 0", () => {
    const m = new EntityMetric();
    m.update([["O", "O", "B-X"]], [["B-PER", "O", "O"]]);
    const r = m.compute();
    expect([r.precision, r.recall, r.f1, r.PER_precision, r.X_recall, r.X_support]).toEqual([0, 0, 0, 0, 0, 0]);
  });

  test("CoNLL-2003 valid with perturbed predictions: golden, in batches = one batch", () => {
    const ref = decode(G.conll, "references"), pred = decode(G.conll, "predictions");
    expect(ref.length).toBe(3250);
    expect(ref.flat().length).toBe(51362);
    const one = new EntityMetric();
    one.update(pred, ref);
    expectReport(one.compute(), G.conll.seqeval);
    const many = new EntityMetric();
    inBatches(ref.length, [32, 1, 500], (s, e) => many.update(pred.slice(s, e), ref.slice(s, e)));
    expect(many.compute()).toEqual(one.compute());
  });

  test("IOBES tag soup: entities and scores match the reference get_entities", () => {
    const ref = decode(G.soup, "references"), pred = decode(G.soup, "predictions");
    const flat: [string, number, number][] = [];
    let offset = 0; // seqeval joins sentences with an "O" between them
    for (const s of ref) {
      for (const x of getEntities(s)) flat.push([x.type, x.start + offset, x.end + offset]);
      offset += s.length + 1;
    }
    expect(flat).toEqual(G.soup.entities);
    const m = new EntityMetric();
    m.update(pred, ref);
    expectReport(m.compute(), G.soup.seqeval);
  });

  test("tagsFromIds drops ignored positions as HF run_ner", () => {
    const id2tag = ["O", "B-PER", "I-PER"];
    const out = tagsFromIds([0, 1, 2, 2, 0, 0, 1, 1], [-100, 1, 2, -100, -100, 0, 2, -100], 4, id2tag);
    expect(out).toEqual({ predictions: [["B-PER", "I-PER"], ["O", "B-PER"]], references: [["B-PER", "I-PER"], ["O", "I-PER"]] });
    expect(errorMessage(() => tagsFromIds([0, 5], [0, 0], 2, id2tag))).toBe("tagsFromIds: prediction 5 at 1 is not in [0, 3)");
    expect(errorMessage(() => tagsFromIds([0, 0, 0], [0, 0, 0], 2, id2tag))).toBe("tagsFromIds: length 3 is not a multiple of seqLen 2");
  });

  test("bad input is refused before counting", () => {
    const m = new EntityMetric();
    expect(errorMessage(() => m.update([["O"], ["O", "B-X"]], [["O"], ["O"]]))).toBe("EntityMetric.update: sequence 1: 2 predicted tags for 1 reference tags");
    expect(errorMessage(() => m.update([["O", "PER"]], [["O", "O"]]))).toBe('EntityMetric.update: predictions[0]: tag "PER" at 1 is not O, B-<type>, I-<type>, E-<type> or S-<type>');
    expect(errorMessage(() => m.update([["O"]], [["O"], ["O"]]))).toBe("EntityMetric.update: 1 predicted sequences for 2 references");
    expect(errorMessage(() => getEntities(["B-X", "X-B"]))).toBe('getEntities: tag "X-B" at 1 is not O, B-<type>, I-<type>, E-<type> or S-<type>');
    expect(errorMessage(() => m.compute())).toBe("EntityMetric.compute: no tags were given to update()");
  });
});

describe("SQuAD v1.1", () => {
  test("normalizeAnswer matches the official script (Python outputs), Unicode word boundaries and whitespace", () => {
    for (const [raw, want] of G.squad.normalized) expect(normalizeAnswer(raw)).toBe(want);
    expect(normalizeAnswer("The  Quick, brown fox!")).toBe("quick brown fox");
    expect(normalizeAnswer("théa")).toBe("théa"); // é is a word character for Python's \b
    expect(normalizeAnswer("x\ufeffy")).toBe("x\ufeffy"); // U+FEFF is not whitespace to str.split()
    expect(normalizeAnswer("a\ufeffb")).toBe("\ufeffb"); // ... nor a word character: "a" is an article
    expect(normalizeAnswer("x\u0085y\u001cz")).toBe("x y z");
  });

  test("hand-worked exact match and token F1 (max over ground truths, token multiplicity)", () => {
    expect(squadScores("the Denver Broncos", ["Denver Broncos"])).toEqual({ exactMatch: 1, f1: 1 });
    expect(squadScores("Denver Broncos team", ["Carolina", "Denver Broncos"]).f1).toBeCloseTo(0.8, 15);
    expect(squadScores("x y y", ["y z"]).f1).toBeCloseTo(0.4, 15); // common {y: 1}: P 1/3, R 1/2
    expect(squadScores("", [""])).toEqual({ exactMatch: 1, f1: 0 }); // as the script: no common token → 0
    const m = new SquadMetric();
    m.update(["Denver Broncos", "1990"], [["denver broncos"], ["in 1991"]]);
    expect(m.compute()).toEqual({ exact_match: 50, f1: 50 });
  });

  test("700 SQuAD dev questions with perturbed predictions: per question and totals match the golden", () => {
    const { predictions: p, references: r } = G.squad;
    p.forEach((q, i) => {
      const s = squadScores(q, r[i]);
      expect([s.exactMatch, s.f1]).toEqual(G.squad.per_example[i]);
    });
    const m = new SquadMetric();
    inBatches(p.length, [64, 5], (s, e) => m.update(p.slice(s, e), r.slice(s, e)));
    expectReport(m.compute(), G.squad.result);
  });

  test("bad input", () => {
    const m = new SquadMetric();
    expect(errorMessage(() => m.update(["a"], [[]]))).toBe("SquadMetric.update: question 0 has no ground-truth answer");
    expect(errorMessage(() => m.update(["a"], []))).toBe("SquadMetric.update: 1 predictions for 0 questions");
    expect(errorMessage(() => m.compute())).toBe("SquadMetric.compute: no questions were given to update()");
  });
});

describe("regression / similarity", () => {
  test("hand-worked Pearson, Spearman, MSE; average ranks for ties", () => {
    const m = new RegressionMetric();
    m.update([1, 2, 3], [1, 3, 2]);
    expectReport(m.compute(), { pearson: 0.5, spearman: 0.5, mse: 2 / 3 }, 1e-15);
    expect(Array.from(averageRanks([10, 20, 10, 30, 20, 20]))).toEqual([1.5, 4, 1.5, 6, 4, 4]);
    expect(spearman([1, 2, 3, 4], [1, 4, 9, 16])).toBeCloseTo(1, 15);
    expect(pearson([1, 2, 3], [3, 2, 1])).toBeCloseTo(-1, 15);
    expect(pearson([1, 2, 3], [2, 4, 6.000000000000001])).toBeLessThanOrEqual(1); // clipped to [-1, 1]
  });

  test("constant input: correlations are NaN (as scipy), MSE is still defined", () => {
    const m = new RegressionMetric();
    m.update([0.1, 0.1, 0.1], [1, 2, 3]);
    const r = m.compute();
    expect(r.pearson).toBeNaN();
    expect(r.spearman).toBeNaN();
    expect(r.mse).toBeCloseTo((0.81 + 3.61 + 8.41) / 3, 14);
    expect(pearson([5], [2])).toBeNaN();
  });

  test("STS-B dev with noisy predictions (golden), in batches = one batch, reset", () => {
    const { predictions: p, labels: y } = G.stsb;
    expect(y.length).toBe(1500);
    expect(Array.from(averageRanks(p.slice(0, 40)))).toEqual(G.stsb.ranks);
    const m = new RegressionMetric();
    m.update([100], [-100]);
    m.reset();
    inBatches(y.length, [700, 1, 33], (s, e) => m.update(p.slice(s, e), y.slice(s, e)));
    expectReport(m.compute(), G.stsb.result);
    const one = new RegressionMetric();
    one.update(p, y);
    expect(one.compute()).toEqual(m.compute());
  });

  test("bad input", () => {
    const m = new RegressionMetric();
    expect(errorMessage(() => m.update([1, NaN], [1, 2]))).toBe("RegressionMetric.update: prediction NaN at 1 is not finite");
    expect(errorMessage(() => m.update([1], [Infinity]))).toBe("RegressionMetric.update: label Infinity at 0 is not finite");
    expect(errorMessage(() => m.update([1], [1, 2]))).toBe("RegressionMetric.update: 1 predictions for 2 labels");
    expect(errorMessage(() => m.compute())).toBe("RegressionMetric.compute: no examples were given to update()");
  });
});

describe("mostConfidentErrors", () => {
  test("SST-2 dev logits: the top-10 confident errors match the golden, in batches = one batch", () => {
    const logits = Float64Array.from(G.sst2.logits.flat()), y = G.sst2.labels;
    const one = mostConfidentErrors(G.sst2.errors.k, 2);
    one.update(logits, y);
    const many = mostConfidentErrors(G.sst2.errors.k, 2);
    inBatches(y.length, [50, 3], (s, e) => many.update(logits.subarray(2 * s, 2 * e), y.slice(s, e)));
    for (const m of [one, many]) {
      const r = m.compute();
      expect([r.error_count, r.count]).toEqual([G.sst2.errors.count, y.length]);
      const rows = r.errors as number[][];
      expect(rows.map((x) => x.slice(0, 3))).toEqual(G.sst2.errors.rows.map((x) => x.slice(0, 3)));
      rows.forEach((x, i) => expect(Math.abs(x[3] - G.sst2.errors.rows[i][3])).toBeLessThan(1e-14));
    }
  });

  test("ties keep the earlier example; ignored labels still advance the index; reset", () => {
    const m = new MostConfidentErrors(2, 3);
    // rows: 0 right, 1 wrong (conf c), 2 ignored, 3 wrong (same logits as 1), 4 wrong and more confident
    m.update([5, 0, 0, 0, 2, 0, 0, 0, 9, 0, 2, 0, 0, 0, 7], [0, 0, -100, 2, 1]);
    const c = 1 / (2 + Math.exp(2)) * Math.exp(2);
    const e = m.errors();
    expect(e.map((x) => [x.index, x.label, x.predicted])).toEqual([[4, 1, 2], [1, 0, 1]]);
    expect(e[1].confidence).toBeCloseTo(c, 15);
    expect(m.compute().count).toBe(4);
    expect(m.compute().error_count).toBe(3);
    m.reset();
    expect(m.compute()).toEqual({ errors: [], error_count: 0, count: 0 });
    expect(errorMessage(() => mostConfidentErrors(0, 2))).toBe("MostConfidentErrors: k must be an integer >= 1, got 0");
    expect(errorMessage(() => m.update([1, 2, 3], [3]))).toBe("MostConfidentErrors.update: label 3 at 0 is not in [0, 3)");
  });
});

// CLI flags a user of the API has: the length a model trained with is saved with it and used by eval /
// predict, --doc-stride for QA, and --task similarity (a bi-encoder on 0-5 scored pairs, saved as a
// sentence-transformers folder) through train, eval and predict.
import * as fs from "fs";
import * as path from "path";
import { fx, json, scratch, tunekit, expectUserError, writePairs } from "./cli_helpers";

const tmp = scratch("cli-tasks");
const quick = ["--max-steps", "2", "--batch-size", "4", "--no-progress", "--no-report"];
const readJson = (f: string) => JSON.parse(fs.readFileSync(f, "utf8"));

describe("the length a model was trained with", () => {
  const out = path.join(tmp, "short");
  const long = "a long review that goes on and on about the acting, the music, the story, the camera work, the sets and the ending, which is the best part of the film by far";
  beforeAll(() => json(tmp, ["train", "--data", fx("reviews.csv"), "--validation", "0.3", "--max-length", "12", "--out", out, ...quick]));

  test("is tokenizer_config.json's model_max_length (what HF's tokenizer truncates to)", () => {
    expect(readJson(path.join(out, "tokenizer_config.json")).model_max_length).toBe(12);
  });

  test("eval and predict use it unless --max-length says otherwise", () => {
    const e = json(tmp, ["eval", "--model", out, "--data", fx("reviews.csv")]);
    expect(e.maxLength).toBe(12);
    expect(json(tmp, ["eval", "--model", out, "--data", fx("reviews.csv"), "--max-length", "12"]).metrics).toEqual(e.metrics);
    expect(json(tmp, ["eval", "--model", out, "--data", fx("reviews.csv"), "--max-length", "64"]).maxLength).toBe(64);
    const score = (extra: string[]) => json(tmp, ["predict", "--model", out, long, ...extra])[0].scores[0].score;
    expect(score([])).toBe(score(["--max-length", "12"]));
    expect(score([])).not.toBe(score(["--max-length", "64"]));
  });
});

describe("--doc-stride (the API's qaFeatures docStride)", () => {
  test("sets the overlap of QA windows in train, eval and predict", () => {
    // Contexts of ~50 words: several 32-token windows each.
    const squad = path.join(tmp, "long_squad.json");
    const paragraphs = ["Paris", "Berlin", "Madrid", "Vienna", "Rome", "Lisbon"].map((city, i) => {
      const lead = `${city} is a city in Europe with many old streets, parks, bridges, museums, markets and churches that visitors like to see in spring and summer. `;
      const context = `${lead}About ${i + 2} million people live in ${city}, and many more arrive every year by train, by car and by plane from other countries.`;
      return { context, qas: [{ id: `q${i}`, question: `How many people live in ${city}?`, answers: [{ text: `${i + 2} million`, answer_start: lead.length + "About ".length }] }] };
    });
    fs.writeFileSync(squad, JSON.stringify({ version: "1.1", data: [{ title: "Cities", paragraphs }] }));
    const args = (stride: string, out: string) => ["train", "--task", "qa", "--data", squad, "--validation", "0.4", "--max-length", "32", "--doc-stride", stride, "--out", out, ...quick];
    const few = json(tmp, args("2", path.join(tmp, "qa-2"))), many = json(tmp, args("16", path.join(tmp, "qa-16")));
    expect(many.features.train).toBeGreaterThan(few.features.train);   // more overlap, more windows
    const windows = (stride: string) => json(tmp, ["eval", "--model", path.join(tmp, "qa-2"), "--data", squad, "--doc-stride", stride]).examples;
    expect(windows("16")).toBeGreaterThan(windows("2"));
    const questions = path.join(tmp, "questions.jsonl");
    fs.writeFileSync(questions, JSON.stringify({ question: "How long is the Nile?", context: "The Nile is a river in Africa. It is about 6,650 km long and flows north into the Mediterranean Sea through Egypt." }) + "\n");
    expect(json(tmp, ["predict", "--model", path.join(tmp, "qa-2"), "--data", questions, "--doc-stride", "8"])[0]).toHaveProperty("answer");
    expectUserError(tunekit(tmp, "train", "--task", "qa", "--data", fx("squad_small.json"), "--max-length", "32", "--doc-stride", "32"), /--doc-stride 32 must be smaller than --max-length 32/);
  });
});

describe("--task similarity (AutoSentenceEncoder + sentencePairFeatures + similarity)", () => {
  const pairs = path.join(tmp, "stsb.csv");
  const out = path.join(tmp, "sts");
  let trained: Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  beforeAll(() => {
    writePairs(pairs);
    trained = json(tmp, ["train", "--task", "similarity", "--data", pairs, "--validation", "0.3", "--max-length", "16", "--out", out, ...quick]);
  });

  test("train reports Spearman and Pearson of the cosine against the score, and saves a sentence-transformers folder", () => {
    expect(trained.metric).toBe("spearman");
    for (const m of ["pearson", "spearman", "loss"]) expect(Number.isFinite(trained.metrics[m])).toBe(true);
    expect(readJson(path.join(out, "config.json")).architectures).toEqual(["BertModel"]);
    expect(readJson(path.join(out, "modules.json")).map((m: { type: string }) => m.type)).toEqual(["sentence_transformers.models.Transformer", "sentence_transformers.models.Pooling"]);
    expect(readJson(path.join(out, "1_Pooling", "config.json"))).toMatchObject({ word_embedding_dimension: 128, pooling_mode_mean_tokens: true, pooling_mode_cls_token: false });
    expect(readJson(path.join(out, "sentence_bert_config.json")).max_seq_length).toBe(16);
    expect(readJson(path.join(out, "tokenizer_config.json")).model_max_length).toBe(16);
  });

  test("eval recognises the encoder and scores a file of pairs", () => {
    const e = json(tmp, ["eval", "--model", out, "--data", pairs]);
    expect(e.examples).toBe(24);
    expect(Object.keys(e.metrics).sort()).toEqual(["loss", "pearson", "spearman"]);
    expect(Math.abs(e.metrics.spearman)).toBeLessThanOrEqual(1);
  });

  test("predict: cosine similarity of pairs from arguments or --data", () => {
    const p = json(tmp, ["predict", "--model", out, "a triumph", "a dull mess", "I loved it", "superb acting"]);
    expect(p.map((r: { sentence1: string; sentence2: string }) => [r.sentence1, r.sentence2])).toEqual([["a triumph", "a dull mess"], ["I loved it", "superb acting"]]);
    for (const r of p as { similarity: number }[]) expect(Math.abs(r.similarity)).toBeLessThanOrEqual(1 + 1e-6);
    const fromFile = json(tmp, ["predict", "--model", out, "--data", pairs]);
    expect(fromFile).toHaveLength(24);
    const again = json(tmp, ["predict", "--model", out, fromFile[0].sentence1, fromFile[0].sentence2]);
    expect(again[0].similarity).toBeCloseTo(fromFile[0].similarity, 6);
    expectUserError(tunekit(tmp, "predict", "--model", out, "one", "two", "three"), /compares pairs: give an even number of texts/);
  });

  test("--pooling cls is trained, saved and used by eval", () => {
    const cls = path.join(tmp, "sts-cls");
    json(tmp, ["train", "--task", "similarity", "--pooling", "cls", "--data", pairs, "--validation", "0.3", "--max-length", "16", "--out", cls, ...quick]);
    expect(readJson(path.join(cls, "1_Pooling", "config.json"))).toMatchObject({ pooling_mode_mean_tokens: false, pooling_mode_cls_token: true });
    const mean = json(tmp, ["eval", "--model", out, "--data", pairs]).metrics, first = json(tmp, ["eval", "--model", cls, "--data", pairs]).metrics;
    expect(first.loss).not.toBe(mean.loss);
  });

  test("--method auto picks LoRA, not a frozen body (an encoder has no head); --method frozen is refused", () => {
    const auto = json(tmp, ["train", "--task", "similarity", "--method", "auto", "--data", pairs, "--validation", "0.3", "--max-length", "16", "--out", path.join(tmp, "sts-auto"), ...quick]);
    expect(auto.method.method).toBe("lora");
    expect(auto.trainable).toBeLessThan(auto.parameters / 5);
    expect(json(tmp, ["embed", "--model", path.join(tmp, "sts-auto"), "a triumph"])[0].embedding).toHaveLength(128);
    expectUserError(tunekit(tmp, "train", "--task", "similarity", "--method", "frozen", "--data", pairs), /--method frozen: a sentence encoder has no head/);
  });

  test("bad input: no pairs, or scores off the 0-5 scale", () => {
    expectUserError(tunekit(tmp, "train", "--task", "similarity", "--data", fx("scores.csv")), /needs sentence pairs; give --text-pair/);
    const off = path.join(tmp, "off.csv");
    fs.writeFileSync(off, "sentence1,sentence2,score\n" + Array.from({ length: 10 }, (_, i) => `a ${i},b ${i},${i}`).join("\n") + "\n");
    expectUserError(tunekit(tmp, "train", "--task", "similarity", "--data", off, "--out", path.join(tmp, "never")), /has score \d; --task similarity expects scores in \[0, 5\]/);
  });
});

describe("token classification with a byte-level BPE model", () => {
  test("trains and saves with add_prefix_space (HF's run_ner.py), so raw text is encoded as the words were", () => {
    const model = path.join(__dirname, "fixtures", "models", "roberta-tiny-random");
    expect(readJson(path.join(model, "tokenizer_config.json")).add_prefix_space ?? false).toBe(false);
    const out = path.join(tmp, "ner-roberta");
    json(tmp, ["train", "--task", "token-classification", "--model", model, "--data", fx("ner.conll"), "--validation", "0.3", "--out", out, ...quick]);
    expect(readJson(path.join(out, "tokenizer_config.json")).add_prefix_space).toBe(true);
  });
});

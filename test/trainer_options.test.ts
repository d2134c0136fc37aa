// Trainer details a user of HF's Trainer expects, on the embedded model: adam_beta1 / adam_beta2 /
// adam_epsilon (validated, used, recorded in checkpoints under TrainingArguments' names), the data
// order of an epoch (the exact permutation resume depends on), and a resume that checks
// trainer_state.json field by field instead of trusting it.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModelForSequenceClassification } from "../lib/models/auto";
import { ModelForSequenceClassification, TaskBatch } from "../lib/models/heads";
import { EMBEDDED_MODEL } from "../lib/models/embedded";
import { Trainer, TrainerOptions, permutation } from "../lib/train/trainer";
import { TunekitError } from "../lib/errors";
import { rng } from "./helpers";

interface Example { id: number; ids: number[]; label: number }

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-trainer-options-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

const r = rng(3);
const data: Example[] = Array.from({ length: 10 }, (_, id) => ({
  id, label: id % 2, ids: [2, ...Array.from({ length: 4 + (id % 5) }, () => 5 + Math.floor(r() * 8000)), 3],
}));

function collate(f: Example[]): TaskBatch {
  const T = Math.max(...f.map((e) => e.ids.length));
  const inputIds = new Int32Array(f.length * T), attentionMask = new Uint8Array(f.length * T);
  f.forEach((e, b) => e.ids.forEach((id, t) => { inputIds[b * T + t] = id; attentionMask[b * T + t] = 1; }));
  return { inputIds, attentionMask, batchSize: f.length, seqLen: T, labels: Int32Array.from(f.map((e) => e.label)) };
}

const load = () => AutoModelForSequenceClassification.fromPretrained(EMBEDDED_MODEL, { warn: null, numLabels: 2 });
const opts = (model: ModelForSequenceClassification, o: Partial<TrainerOptions<Example, TaskBatch>> = {}): TrainerOptions<Example, TaskBatch> =>
  ({ model, train: data, collate, learningRate: 1e-3, epochs: 1, batchSize: 4, progress: false, seed: 7, ...o });
const weights = (m: ModelForSequenceClassification) => new Map([...m.namedParameters()].map(([n, p]) => [n, Float32Array.from(p.toHost())]));
const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const sameWeights = (a: ModelForSequenceClassification, b: ModelForSequenceClassification) => {
  const wb = weights(b);
  return [...weights(a)].every(([n, w]) => sameBits(w, wb.get(n)!));
};

describe("AdamW's betas and epsilon as Trainer options (HF adam_beta1 / adam_beta2 / adam_epsilon)", () => {
  test("defaults are HF's; given values reach the optimizer and change the update", async () => {
    const model = await load();
    const t = new Trainer(opts(model));
    expect([t.optimizer.beta1, t.optimizer.beta2, t.optimizer.eps]).toEqual([0.9, 0.999, 1e-8]);
    const a = await load(), b = await load(), c = await load();
    const custom = { adamBeta1: 0.5, adamBeta2: 0.9, adamEpsilon: 1e-3 };
    const ta = new Trainer(opts(a, { ...custom, maxSteps: 2 }));
    expect([ta.optimizer.beta1, ta.optimizer.beta2, ta.optimizer.eps]).toEqual([0.5, 0.9, 1e-3]);
    await ta.train();
    await new Trainer(opts(b, { maxSteps: 2 })).train();
    await new Trainer(opts(c, { ...custom, maxSteps: 2 })).train();
    expect(sameWeights(a, b)).toBe(false);
    expect(sameWeights(a, c)).toBe(true);
  });

  test("out-of-range values are refused before training, naming the option", async () => {
    const model = await load();
    const bad: [Partial<TrainerOptions<Example, TaskBatch>>, RegExp][] = [
      [{ adamBeta1: 1 }, /Trainer: adamBeta1 must be in \[0, 1\), got 1/],
      [{ adamBeta1: -0.1 }, /adamBeta1 must be in \[0, 1\), got -0.1/],
      [{ adamBeta2: 1.5 }, /adamBeta2 must be in \[0, 1\), got 1.5/],
      [{ adamBeta2: NaN }, /adamBeta2 must be in \[0, 1\), got NaN/],
      [{ adamEpsilon: 0 }, /adamEpsilon must be > 0, got 0/],
      [{ adamEpsilon: "1e-8" as never }, /adamEpsilon must be > 0, got "1e-8"/],
      [{ warmupRatio: 2 }, /warmupRatio must be in \[0, 1\], got 2/],
    ];
    for (const [o, msg] of bad) {
      expect(() => new Trainer(opts(model, o))).toThrow(TunekitError);
      expect(() => new Trainer(opts(model, o))).toThrow(msg);
    }
    // An option given as undefined takes its default.
    expect(new Trainer(opts(model, { adamBeta1: undefined, epochs: undefined })).o.epochs).toBe(3);
  });

  test("a checkpoint records them in trainer_state.json under TrainingArguments' names", async () => {
    const dir = path.join(tmp, "record");
    await new Trainer(opts(await load(), { adamBeta1: 0.8, adamBeta2: 0.99, adamEpsilon: 1e-6, maxSteps: 2, saveSteps: 2, outputDir: dir })).train();
    const st = JSON.parse(fs.readFileSync(path.join(dir, "checkpoint-2", "trainer_state.json"), "utf8"));
    expect(st.training_args).toMatchObject({
      adam_beta1: 0.8, adam_beta2: 0.99, adam_epsilon: 1e-6, learning_rate: 1e-3, per_device_train_batch_size: 4,
      gradient_accumulation_steps: 1, max_steps: 2, seed: 7, lr_scheduler_type: "linear",
    });
  });
});

describe("the data order", () => {
  test("each epoch is the seeded permutation of (seed, epoch), cut into micro-batches in order", async () => {
    const seen: number[][] = [];
    const spy = (f: Example[]) => (seen.push(f.map((e) => e.id)), collate(f));
    await new Trainer(opts(await load(), { collate: spy, epochs: 2, seed: 11 })).train();
    const expected: number[][] = [];
    for (const epoch of [0, 1]) {
      const order = permutation(data.length, 11 * 1000003 + epoch);
      for (let i = 0; i < order.length; i += 4) expected.push(order.slice(i, i + 4));
    }
    expect(seen).toEqual(expected);
  });

  test("resume in the middle of an epoch ends bit-identical to the uninterrupted run", async () => {
    const dir = path.join(tmp, "resume");
    const full = await load(), first = await load(), resumed = await load();
    await new Trainer(opts(full, { epochs: 2 })).train();
    await new Trainer(opts(first, { epochs: 2, saveSteps: 2, outputDir: dir })).train();
    await new Trainer(opts(resumed, { epochs: 2, resumeFrom: path.join(dir, "checkpoint-2") })).train();
    expect(sameWeights(resumed, full)).toBe(true);
  });
});

describe("resume checks trainer_state.json instead of trusting it", () => {
  const source = path.join(tmp, "source");
  beforeAll(async () => {
    await new Trainer(opts(await load(), { maxSteps: 2, saveSteps: 2, outputDir: source, lossScaling: { initScale: 1024 } })).train();
  });

  /** A copy of the checkpoint whose trainer_state.json went through edit (an object edit or raw text). */
  function damaged(name: string, edit: ((st: Record<string, any>) => void) | string): string { // eslint-disable-line @typescript-eslint/no-explicit-any
    const dir = path.join(tmp, name);
    fs.cpSync(path.join(source, "checkpoint-2"), dir, { recursive: true });
    const file = path.join(dir, "trainer_state.json");
    if (typeof edit === "string") fs.writeFileSync(file, edit);
    else {
      const st = JSON.parse(fs.readFileSync(file, "utf8"));
      edit(st);
      fs.writeFileSync(file, JSON.stringify(st));
    }
    return dir;
  }

  const cases: [string, ((st: Record<string, any>) => void) | string, RegExp][] = [ // eslint-disable-line @typescript-eslint/no-explicit-any
    ["step-string", (st) => (st.step = "2"), /field "step" is "2"; expected an integer >= 0/],
    ["step-missing", (st) => delete st.step, /field "step" is missing; expected an integer >= 0/],
    ["epoch-negative", (st) => (st.epoch = -1), /field "epoch" is -1; expected an integer >= 0/],
    ["gen-fraction", (st) => (st.genOffset = 1.5), /field "genOffset" is 1.5; expected an integer >= 0/],
    ["best-step-after-step", (st) => (st.bestStep = 9), /field "bestStep" is 9; expected an integer in 0..2 \(step\) or null/],
    ["best-metric-string", (st) => (st.bestMetric = "0.5"), /field "bestMetric" is "0.5"; expected a finite number or null/],
    ["history-not-array", (st) => (st.history = {}), /field "history" is \{\}; expected an array of evaluation records/],
    ["optimizer-step", (st) => (st.optimizerStep = 3), /field "optimizerStep" is 3; expected an integer in 0..2/],
    ["loss-scale", (st) => (st.lossScaler = { scale: -1, growthTracker: 0 }), /field "lossScaler.scale" is -1; expected a finite number > 0/],
    ["beta1", (st) => (st.training_args.adam_beta1 = 1.5), /field "training_args.adam_beta1" is 1.5; expected a number in \[0, 1\)/],
    ["epsilon", (st) => (st.training_args.adam_epsilon = "1e-8"), /field "training_args.adam_epsilon" is "1e-8"; expected a number > 0/],
    ["batch-in-epoch", (st) => (st.batchInEpoch = 99), /field "batchInEpoch" is 99; expected an integer in 0..3 \(micro-batches per epoch/],
    ["not-json", '{"step": 2,', /trainer_state\.json: not valid JSON/],
    ["array", "[]", /trainer_state\.json: expected a JSON object, got \[\]/],
    ["deep", `{"step": 2, "history": ${"[".repeat(100_000)}${"]".repeat(100_000)}}`, /trainer_state\.json: JSON nests deeper than 512 levels/],
  ];

  test.each(cases)("%s: a TunekitError names the file, the field and what was expected", async (name, edit, msg) => {
    const dir = damaged(name, edit);
    const model = await load();
    const before = weights(model);
    let error: unknown;
    try {
      new Trainer(opts(model, { resumeFrom: dir, lossScaling: true }));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(TunekitError);
    expect((error as Error).message).toContain(path.join(dir, "trainer_state.json"));
    expect((error as Error).message).toMatch(msg);
    const wb = weights(model);
    expect([...before].every(([n, w]) => sameBits(w, wb.get(n)!))).toBe(true);  // nothing loaded from a bad checkpoint
  });

  test("a different training argument resumes with a warning naming it (HF's compare_trainer_and_checkpoint_args)", async () => {
    const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
    try {
      new Trainer(opts(await load(), { resumeFrom: path.join(source, "checkpoint-2"), adamBeta2: 0.98, maxSteps: 2 }));
      expect(warn.mock.calls.map((c) => c[0]).join("\n")).toMatch(/training argument adam_beta2 is 0\.98 here but 0\.999 in the checkpoint/);
      expect(warn).toHaveBeenCalledTimes(1);
    } finally {
      warn.mockRestore();
    }
  });
});

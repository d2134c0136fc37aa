// The Trainer as a loop with callbacks (HF's TrainerCallback / TrainerControl), on the embedded model:
// the events and their order, a callback steering the loop through the control flags, early stopping
// and the best model as callbacks (also across a resume), the older `events` option, train() yielding
// to the event loop between steps, the bf16 precision staying with its run (a pipeline awaited
// between bf16 steps, a concurrent fp32 run), and the device option.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModelForSequenceClassification } from "../lib/models/auto";
import { ModelForSequenceClassification, TaskBatch } from "../lib/models/heads";
import { EMBEDDED_MODEL } from "../lib/models/embedded";
import { AutoTokenizer } from "../lib/data/tokenizer";
import { classify } from "../lib/pipeline";
import { native } from "../lib/native";
import { Trainer, TrainerOptions } from "../lib/train/trainer";
import { TrainerControl, TrainerCallback, TRAINER_EVENTS, EarlyStoppingCallback, DefaultFlowCallback } from "../lib/train/callbacks";
import { ProgressCallback } from "../lib/train/progress";
import { checkpointProblem } from "../lib/train/checkpoints";
import { TunekitError } from "../lib/errors";
import { rng, sst2Head } from "./helpers";

interface Example { ids: number[]; label: number }
type Opts = Partial<TrainerOptions<Example, TaskBatch>>;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-callbacks-"));
afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));
let dirs = 0;
const freshDir = () => path.join(tmp, `run-${dirs++}`);

const r = rng(11);
const data: Example[] = Array.from({ length: 10 }, (_, id) => ({
  label: id % 2, ids: [2, ...Array.from({ length: 4 + (id % 5) }, () => 5 + Math.floor(r() * 8000)), 3],
}));

function collate(f: Example[]): TaskBatch {
  const T = Math.max(...f.map((e) => e.ids.length));
  const inputIds = new Int32Array(f.length * T), attentionMask = new Uint8Array(f.length * T);
  f.forEach((e, b) => e.ids.forEach((id, t) => { inputIds[b * T + t] = id; attentionMask[b * T + t] = 1; }));
  return { inputIds, attentionMask, batchSize: f.length, seqLen: T, labels: Int32Array.from(f.map((e) => e.label)) };
}

const load = () => AutoModelForSequenceClassification.fromPretrained(EMBEDDED_MODEL, { warn: null, numLabels: 2 });
const opts = (model: ModelForSequenceClassification, o: Opts = {}): TrainerOptions<Example, TaskBatch> =>
  ({ model, train: data, collate, learningRate: 1e-3, epochs: 1, batchSize: 4, progress: false, seed: 7, ...o });
const weights = (m: ModelForSequenceClassification) => new Map([...m.namedParameters()].map(([n, p]) => [n, Float32Array.from(p.toHost())]));
const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const sameWeights = (a: Map<string, Float32Array>, b: Map<string, Float32Array>) => [...a].every(([n, w]) => sameBits(w, b.get(n)!));

/** A callback that does `fn` at `event` of step `step` (state.step as the event sees it). */
const at = (event: keyof TrainerCallback, step: number, fn: (c: TrainerControl) => TrainerControl | void): TrainerCallback =>
  ({ [event]: (_a: unknown, s: { step: number }, c: TrainerControl) => (s.step === step ? fn(c) : undefined) });

describe("the events", () => {
  test("fire in HF's order (gradient accumulation, steps evaluation, saves), with the state and the default flow's flags", async () => {
    const seen: string[] = [];
    const flags: Record<number, string> = {};
    const recorder: TrainerCallback = Object.fromEntries(TRAINER_EVENTS.map((e) => [e, (_a: unknown, s: { step: number }, c: TrainerControl, kw: { logs?: Record<string, unknown> }) => {
      seen.push(`${e}:${s.step}${e === "onLog" ? (typeof kw.logs?.loss === "number" ? ":train" : ":eval") : ""}`);
      if (e === "onStepEnd") flags[s.step] = Object.entries(c).filter(([, v]) => v).map(([k]) => k).join(",");
    }]));
    // 10 rows, batch 2, accumulation 2: micro-batches 2 + 2 + 1, so steps 1 and 2 have a substep and step 3 none.
    const t = new Trainer(opts(await load(), { batchSize: 2, gradientAccumulationSteps: 2, eval: data.slice(0, 4), evalStrategy: "steps", evalSteps: 2,
      saveSteps: 3, outputDir: freshDir(), callbacks: [recorder] }));
    expect(seen).toEqual(["onInitEnd:0"]);
    await t.train();
    const step = (n: number, substep: boolean) => [`onStepBegin:${n - 1}`, ...(substep ? [`onSubstepEnd:${n - 1}`] : []), `onPreOptimizerStep:${n - 1}`,
      `onOptimizerStep:${n - 1}`, `onStepEnd:${n}`, `onLog:${n}:train`];
    expect(seen).toEqual([
      "onInitEnd:0", "onTrainBegin:0", "onEpochBegin:0",
      ...step(1, true),
      ...step(2, true), "onLog:2:eval", "onEvaluate:2",
      ...step(3, false), "onSave:3",
      "onEpochEnd:3", "onTrainEnd:3",
    ]);
    expect(flags).toEqual({ 1: "shouldLog", 2: "shouldEvaluate,shouldLog", 3: "shouldTrainingStop,shouldSave,shouldLog" });
  });

  test("an epoch evaluation comes after onEpochEnd, whose state counts the epoch; the events option gets its old payloads", async () => {
    const seen: string[] = [];
    const events = {
      onStep: (s: { step: number; gradNorm: number; lr: number; loss: number }) => seen.push(`step ${s.step} ${[s.gradNorm, s.lr, s.loss].every(Number.isFinite)}`),
      onEvaluate: (s: { step: number; epoch: number; metrics: { loss?: unknown } }) => seen.push(`eval ${s.step} ${s.epoch} ${typeof s.metrics.loss}`),
      onEpochEnd: (s: { epoch: number }) => seen.push(`epoch ${s.epoch} ended`),
      onSave: (s: { step: number; dir: string }) => seen.push(`save ${s.step} ${path.basename(s.dir)}`),
    };
    const epochs: number[] = [];
    await new Trainer(opts(await load(), { epochs: 2, eval: data.slice(0, 4), saveSteps: 3, outputDir: freshDir(), events,
      callbacks: [{ onEpochEnd: (_a, s) => void epochs.push(s.epoch) }] })).train();
    expect(seen).toEqual(["step 1 true", "step 2 true", "step 3 true", "save 3 checkpoint-3", "epoch 0 ended", "eval 3 1 number",
      "step 4 true", "step 5 true", "step 6 true", "save 6 checkpoint-6", "epoch 1 ended", "eval 6 2 number"]);
    expect(epochs).toEqual([1, 2]);
  });
});

describe("a callback steers the loop through TrainerControl", () => {
  test("shouldTrainingStop, shouldEvaluate, shouldSave, shouldLog, shouldEpochStop, and a returned control", async () => {
    const log = path.join(freshDir(), "log.jsonl"), out = freshDir();
    const evaluated: number[] = [];
    const t = new Trainer(opts(await load(), {
      epochs: 3, eval: data.slice(0, 4), evalStrategy: "no", outputDir: out, logFile: log,
      callbacks: [
        at("onStepEnd", 1, (c) => { c.shouldEvaluate = true; }),
        at("onStepEnd", 2, (c) => { c.shouldSave = true; c.shouldLog = false; }),
        at("onStepEnd", 4, (c) => { c.shouldEpochStop = true; }), // epoch 2 (steps 4-6) ends after step 4
        at("onStepEnd", 6, () => Object.assign(new TrainerControl(), { shouldTrainingStop: true, shouldLog: true })),
        { onEvaluate: (_a, s, _c, kw) => void evaluated.push(s.step, kw.metrics!.loss as number) },
      ],
    }));
    const res = await t.train();
    expect([res.steps, res.epochs]).toEqual([6, 2]);
    expect(evaluated.length).toBe(2);
    expect(evaluated[0]).toBe(1);
    expect(res.history).toEqual([expect.objectContaining({ step: 1, eval_loss: evaluated[1] })]);
    expect(fs.readdirSync(out)).toEqual(["checkpoint-2"]);
    expect(checkpointProblem(path.join(out, "checkpoint-2"))).toBeNull();
    const steps = fs.readFileSync(log, "utf8").trim().split("\n").map((l) => JSON.parse(l)).filter((rec) => "loss" in rec).map((rec) => rec.step);
    expect(steps).toEqual([1, 3, 4, 5, 6]);
  });

  test("what the control asks for and cannot be done is a TunekitError naming the missing option", async () => {
    await expect(new Trainer(opts(await load(), { callbacks: [at("onStepEnd", 1, (c) => { c.shouldEvaluate = true; })] })).train())
      .rejects.toThrow(/control.shouldEvaluate is set, but there is no eval set/);
    await expect(new Trainer(opts(await load(), { callbacks: [at("onStepEnd", 1, (c) => { c.shouldSave = true; })] })).train())
      .rejects.toThrow(/control.shouldSave is set, but there is no outputDir/);
  });

  test("a misspelt event or an async callback is refused, naming it", async () => {
    const model = await load();
    expect(() => new Trainer(opts(model, { callbacks: [{ onStep: () => undefined } as TrainerCallback] }))).toThrow(TunekitError);
    expect(() => new Trainer(opts(model, { callbacks: [{ on_step_end: () => undefined } as TrainerCallback] }))).toThrow(/on_step_end, which is no Trainer event; the events are onInitEnd/);
    class Typo { onEpochEnded() { return undefined; } }
    expect(() => new Trainer(opts(model)).addCallback(Typo as never)).toThrow(/callback Typo has onEpochEnded/);
    const t = new Trainer(opts(model, { callbacks: [{ onStepEnd: async () => undefined }] as never }));
    await expect(t.train()).rejects.toThrow(/onStepEnd returned a Promise; callbacks run synchronously/);
  });

  test("addCallback / popCallback / removeCallback take an instance or a class, as HF's", async () => {
    const t = new Trainer(opts(await load(), { progress: true, earlyStoppingPatience: 1 }));
    const names = () => t.callbackHandler.callbacks.map((c) => c.constructor.name);
    expect(names()).toEqual(["DefaultFlowCallback", "ProgressCallback", "EarlyStoppingCallback"]);
    t.removeCallback(ProgressCallback);
    const mine = { onStepEnd: () => undefined };
    t.addCallback(mine);
    t.addCallback(DefaultFlowCallback);
    expect(names()).toEqual(["DefaultFlowCallback", "EarlyStoppingCallback", "Object", "DefaultFlowCallback"]);
    expect(t.popCallback(mine)).toBe(mine);
    expect(t.popCallback(mine)).toBeNull();
    expect(t.popCallback(EarlyStoppingCallback)).toBeInstanceOf(EarlyStoppingCallback);
    expect(names()).toEqual(["DefaultFlowCallback", "DefaultFlowCallback"]);
  });
});

describe("early stopping and the best model as callbacks", () => {
  // A metric by step, through a callback: best at step 2, then worse for two evaluations.
  const score: Record<number, number> = { 1: 1, 2: 3, 3: 2, 4: 2.5, 5: 1, 6: 0.5 };
  const scored = (o: Opts = {}): Opts => {
    let step = 0;
    return {
      maxSteps: 6, batchSize: 2, eval: data.slice(0, 2), evalStrategy: "steps", evalSteps: 1, metricForBestModel: "score", greaterIsBetter: true,
      evaluator: () => ({ update: () => undefined, compute: () => ({ score: score[step] }) }),
      ...o, callbacks: [{ onStepEnd: (_a, s) => void (step = s.step) }, ...(o.callbacks ?? [])],
    };
  };

  test("earlyStoppingPatience and an EarlyStoppingCallback stop at the same step with the same weights", async () => {
    const a = await load(), b = await load(), c = await load();
    const ra = await new Trainer(opts(a, scored({ earlyStoppingPatience: 2 }))).train();
    const rb = await new Trainer(opts(b, scored({ callbacks: [new EarlyStoppingCallback(2)] }))).train();
    const rc = await new Trainer(opts(c, scored())).train();
    expect([ra.steps, ra.bestStep, ra.bestMetric]).toEqual([4, 2, 3]);
    expect([rb.steps, rb.bestStep, rb.bestMetric]).toEqual([4, 2, 3]);
    expect(rc.steps).toBe(6);
    expect(sameWeights(weights(a), weights(b))).toBe(true);
    expect(() => new EarlyStoppingCallback(1.5)).toThrow(/earlyStoppingPatience must be an integer >= 0, got 1.5/);
  });

  test("loadBestModelAtEnd restores the best step's weights, also when the run resumed after the best was saved", async () => {
    const atBest = new Map<string, Float32Array>();
    const keep: TrainerCallback = { onStepEnd: (_a, s, _c, kw) => { if (s.step === 2) for (const [n, p] of kw.model.namedParameters()) atBest.set(n, Float32Array.from(p.toHost())); } };
    const full = await load();
    await new Trainer(opts(full, scored({ loadBestModelAtEnd: true, callbacks: [keep] }))).train();
    expect(atBest.size).toBeGreaterThan(0);
    expect(sameWeights(atBest, weights(full))).toBe(true);
    const out = freshDir();
    await new Trainer(opts(await load(), scored({ loadBestModelAtEnd: true, saveSteps: 3, outputDir: out }))).train();
    expect(fs.existsSync(path.join(out, "checkpoint-3", "best.safetensors"))).toBe(true);
    const resumed = await load();
    const r2 = await new Trainer(opts(resumed, scored({ loadBestModelAtEnd: true, resumeFrom: path.join(out, "checkpoint-3") }))).train();
    expect([r2.bestStep, r2.bestMetric]).toEqual([2, 3]);
    expect(sameWeights(weights(resumed), weights(full))).toBe(true);
  });
});

describe("train() shares the event loop", () => {
  test("a timer fires between training steps", async () => {
    const t = new Trainer(opts(await load(), { maxSteps: 6, batchSize: 2 }));
    const fired: number[] = [];
    const timer = setInterval(() => fired.push(t.state.step), 0);
    try {
      await t.train();
    } finally {
      clearInterval(timer);
    }
    expect(fired.some((s) => s > 0 && s < 6)).toBe(true);
  });

  test("two runs awaited together interleave step by step and each ends as it does alone, an fp32 one bit for bit beside a bf16 one", async () => {
    const aloneA = await load(), aloneB = await load();
    const oa: Opts = { maxSteps: 5, batchSize: 2, seed: 3 }, ob: Opts = { maxSteps: 5, batchSize: 4, seed: 9, bf16: true, scheduler: "cosine" };
    await new Trainer(opts(aloneA, oa)).train();
    await new Trainer(opts(aloneB, ob)).train();
    const a = await load(), b = await load();
    const order: string[] = [];
    const tag = (name: string): TrainerCallback => ({ onStepEnd: (_a, s) => void order.push(`${name}${s.step}`) });
    await Promise.all([new Trainer(opts(a, { ...oa, callbacks: [tag("A")] })).train(), new Trainer(opts(b, { ...ob, callbacks: [tag("B")] })).train()]);
    expect(order.slice(0, 4)).toEqual(["A1", "B1", "A2", "B2"]);
    expect(sameWeights(weights(a), weights(aloneA))).toBe(true);
    expect(sameWeights(weights(b), weights(aloneB))).toBe(true);
  });

  (native.bf16Available() ? test : test.skip)("classify awaited between bf16 training steps gives exactly the fp32 result", async () => {
    const tok = await AutoTokenizer.fromPretrained(EMBEDDED_MODEL);
    const clf = await load();
    clf.eval();
    const texts = sst2Head(8).map((row) => row.text);
    native.setMatmulPrecision("fp32");
    const fp32 = await classify(clf, tok, texts);
    native.setMatmulPrecision("bf16");
    const bf16 = await classify(clf, tok, texts);
    native.setMatmulPrecision("fp32");
    expect(bf16).not.toEqual(fp32); // what a leaked precision would show

    const t = new Trainer(opts(await load(), { maxSteps: 8, batchSize: 2, bf16: true }));
    let done = false;
    const training = t.train().finally(() => { done = true; });
    const between: number[] = [], got: unknown[] = [];
    while (!done) {
      const before = t.state.step;
      got.push(await classify(clf, tok, texts));
      if (before > 0 && t.state.step < 8) between.push(before);
    }
    expect((await training).precision).toBe("bf16");
    expect(between.length).toBeGreaterThan(0);
    for (const g of got) expect(g).toEqual(fp32);
    expect(native.matmulPrecision()).toBe("fp32");
  });
});

describe("the device option", () => {
  test('"cpu" trains as without it; "cuda" without the CUDA backend and unknown devices are refused, naming what is missing', async () => {
    const a = await load(), b = await load();
    await new Trainer(opts(a, { maxSteps: 2 })).train();
    await new Trainer(opts(b, { maxSteps: 2, device: "cpu" })).train();
    expect(sameWeights(weights(a), weights(b))).toBe(true);
    const c = await load();
    if (native.cudaAvailable()) {
      new Trainer(opts(c, { device: "cuda" }));
      expect(c.device).toBe("cuda");
    } else {
      expect(() => new Trainer(opts(c, { device: "cuda" }))).toThrow(/Trainer: device "cuda" needs the CUDA backend, which is not available \(.*libtunekit_cuda\.so.*\); point TUNEKIT_CUDA_LIB at/);
      expect(c.device).toBe("cpu");
    }
    expect(() => new Trainer(opts(c, { device: "tpu" as never }))).toThrow(/Trainer: device: got "tpu", expected "cpu" or "cuda"/);
  });
});

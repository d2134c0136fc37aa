// Isolation: nothing one training run, one thread or one failing call leaves behind changes another.
// Two Trainers interleaved step by step equal each run alone; models in worker_threads (each loading
// the addon; the native thread pool is shared by the process) equal the main thread bit for bit; the
// pool survives an exception thrown on one of its threads; terminating a worker with async native
// work in flight does not take the process down. Workers run the compiled dist/ (built by `npm test`'s
// pretest, as the CLI tests use it).
import * as fs from "fs";
import * as path from "path";
import { spawnSync } from "child_process";
import { Worker } from "worker_threads";
import { AutoModelForSequenceClassification } from "../lib/models/auto";
import { ModelForSequenceClassification, TaskBatch } from "../lib/models/heads";
import { Trainer, TrainerOptions } from "../lib/train/trainer";
import { noGrad } from "../lib/tensor/autograd";
import { native } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { BROWN_BERT } from "./helpers";
import { Example, brownExamples as examples, collate } from "./synthetic";

const root = path.resolve(__dirname, "..");
const dist = path.join(root, "dist");
const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

const weights = (m: ModelForSequenceClassification) => new Map([...m.namedParameters()].map(([n, p]) => [n, Float32Array.from(p.toHost())]));
function expectSameWeights(a: Map<string, Float32Array>, b: Map<string, Float32Array>): void {
  expect([...a.keys()]).toEqual([...b.keys()]);
  for (const [n, w] of a) expect([n, sameBits(w, b.get(n)!)]).toEqual([n, true]);
}

/** Runs `code` in a worker (CommonJS, `dist` and `workerData` in scope) and resolves with its one message. */
function inWorker<T>(code: string, data: unknown): Promise<T> {
  return new Promise((resolve, reject) => {
    const w = new Worker(`const { parentPort, workerData } = require("worker_threads"); const dist = ${JSON.stringify(dist)};\n(async () => { ${code} })().then((r) => parentPort.postMessage(r), (e) => { throw e; });`, { eval: true, workerData: data });
    w.once("message", (m) => { resolve(m as T); void w.terminate(); });
    w.once("error", reject);
  });
}

describe("native thread pool", () => {
  test("an exception on a pool thread becomes an error, and the pool keeps working", () => {
    const n = native.numThreads() * 64;
    for (const bad of [0, n - 1, Math.floor(n / 2)]) {
      expect(() => native._poolThrowTest(n, bad)).toThrow(TunekitError);
      expect(() => native._poolThrowTest(n, bad)).toThrow(new RegExp(`_poolThrowTest: item ${bad} failed on pool thread \\d+`));
      expect(native._poolThrowTest(n, -1)).toBe(n);  // next call: every item done
    }
  });

  test("bad shapes are refused (sync and async) and the next call is right", async () => {
    const M = 33, N = 17, K = 9;
    const A = Float32Array.from({ length: M * K }, (_, i) => (i % 7) - 3), B = Float32Array.from({ length: K * N }, (_, i) => (i % 5) - 2);
    const ref = new Float32Array(M * N);
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) { let s = 0; for (let k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j]; ref[i * N + j] = s; }
    expect(() => native.gemm({ M, N, K: K + 1, A, B, C: new Float32Array(M * N) })).toThrow(/gemm: argument 'A' has 297 elements, expected at least 330/);
    await expect(native.gemmAsync({ M: M + 1, N, K, A, B, C: new Float32Array(M * N) })).rejects.toThrow(/argument 'A' has 297 elements/);
    const C = new Float32Array(M * N), D = new Float32Array(M * N);
    native.gemm({ M, N, K, A, B, C });
    await native.gemmAsync({ M, N, K, A, B, C: D });
    expect(Array.from(C)).toEqual(Array.from(ref));
    expect(Array.from(D)).toEqual(Array.from(ref));
  });

  test("terminating workers with async native work in flight does not abort the process", () => {
    // Used to die with "terminate called after throwing an instance of 'Napi::Error'" (SIGABRT): the
    // completion ran while the worker's env was torn down. Run in a child so a regression cannot take jest down.
    const script = `
      const { Worker } = require("worker_threads");
      const code = \`
        const { native } = require(${JSON.stringify(path.join(dist, "native.js"))});
        const n = 384, A = native.alloc(n * n), B = native.alloc(n * n);
        for (let i = 0; i < 12; i++) native.gemmAsync({ M: n, N: n, K: n, A, B, C: native.alloc(n * n) }).catch(() => {});
        require("worker_threads").parentPort.postMessage("busy");
        setInterval(() => {}, 1000);\`;
      let left = 6;
      for (let i = 0; i < 6; i++) {
        const w = new Worker(code, { eval: true });
        w.on("message", () => setTimeout(() => w.terminate().then(() => { if (--left === 0) console.log("alive after 6 terminations"); }), i * 3));
      }`;
    const r = spawnSync(process.execPath, ["-e", script], { encoding: "utf8", timeout: 120_000 });
    expect({ status: r.status, signal: r.signal, out: r.stdout.trim(), err: r.stderr.trim() }).toEqual({ status: 0, signal: null, out: "alive after 6 terminations", err: "" });
  });
});

describe("isolation of training runs and threads (the embedded brown-bert)", () => {
  const load = () => AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { warn: null, numLabels: 2 });
  const optsA = (model: ModelForSequenceClassification, o: Partial<TrainerOptions<Example, TaskBatch>> = {}): TrainerOptions<Example, TaskBatch> =>
    ({ model, train: examples(40, { seed: 1, minLen: 4, lengths: 9 }), collate, learningRate: 1e-3, batchSize: 8, maxSteps: 7, seed: 5, progress: false, ...o });
  const optsB = (model: ModelForSequenceClassification, o: Partial<TrainerOptions<Example, TaskBatch>> = {}): TrainerOptions<Example, TaskBatch> =>
    ({ model, train: examples(24, { seed: 2, minLen: 4, lengths: 9 }), collate, learningRate: 3e-4, batchSize: 4, gradientAccumulationSteps: 2, maxSteps: 7, seed: 9, scheduler: "cosine", warmupSteps: 2, weightDecay: 0.01, progress: false, ...o });

  beforeAll(() => {
    if (!fs.existsSync(path.join(dist, "models", "auto.js"))) throw new Error(`${dist} is missing: run \`npx tsc -p .\` (npm test does it first)`);
  });

  test("two Trainers interleaved step by step give the same weights as each alone", async () => {
    const aloneA = await load(), aloneB = await load();
    await new Trainer(optsA(aloneA)).train();
    await new Trainer(optsB(aloneB)).train();

    // Interleave: after each step of A, B runs exactly one step. train() runs its first step
    // synchronously (it yields only after a step); B's onStep pauses it by throwing, and the next train()
    // call continues from B's state. Dropout is on in both: their generators and buffers must not mix.
    const a = await load(), b = await load();
    class Pause extends Error {}
    let bSteps = 0;
    const tb = new Trainer(optsB(b, { events: { onStep: () => { bSteps++; throw new Pause(); } } }));
    const order: string[] = [];
    const paused: Promise<unknown>[] = [];
    const ta = new Trainer(optsA(a, { events: { onStep: ({ step }) => {
      order.push(`A${step}`);
      paused.push(tb.train().catch((e) => { if (!(e instanceof Pause)) throw e; }));
      order.push(`B${bSteps}`);
    } } }));
    await ta.train();
    await Promise.all(paused);
    expect(order.slice(0, 6)).toEqual(["A1", "B1", "A2", "B2", "A3", "B3"]);
    expectSameWeights(weights(a), weights(aloneA));
    expectSameWeights(weights(b), weights(aloneB));
  });

  test("a model in worker_threads gives the main thread's logits bit for bit, also with two workers at once", async () => {
    const batch = collate(examples(6, { seed: 3 }));
    const model = await load();
    model.eval();
    const main = noGrad(() => Float32Array.from(model.forward(batch).logits.toHost()));
    const code = `
      const { AutoModelForSequenceClassification } = require(dist + "/models/auto.js");
      const { noGrad } = require(dist + "/tensor/autograd.js");
      const m = await AutoModelForSequenceClassification.fromPretrained(workerData.dir, { warn: null, numLabels: 2 });
      m.eval();
      const out = [];
      for (let i = 0; i < 5; i++) out.push(noGrad(() => Array.from(m.forward(workerData.batch).logits.toHost())));
      return out;`;
    const data = { dir: BROWN_BERT, batch };
    const [w1, w2] = await Promise.all([inWorker<number[][]>(code, data), inWorker<number[][]>(code, data)]);
    for (const rep of [...w1, ...w2]) expect(sameBits(Float32Array.from(rep), main)).toBe(true);
  });

  test("training in two workers at once equals training on the main thread", async () => {
    const model = await load();
    await new Trainer(optsA(model, { maxSteps: 4 })).train();
    const code = `
      const { AutoModelForSequenceClassification } = require(dist + "/models/auto.js");
      const { Trainer } = require(dist + "/train/trainer.js");
      const m = await AutoModelForSequenceClassification.fromPretrained(workerData.dir, { warn: null, numLabels: 2 });
      const { collate } = require(workerData.synthetic);
      await new Trainer({ model: m, train: workerData.train, collate, learningRate: 1e-3, batchSize: 8, maxSteps: 4, seed: 5, progress: false }).train();
      return [...m.namedParameters()].map(([n, p]) => [n, Array.from(p.toHost())]);`;
    const data = { dir: BROWN_BERT, train: examples(40, { seed: 1, minLen: 4, lengths: 9 }), synthetic: path.join(root, "scripts", "synthetic.cjs") };
    const results = await Promise.all([inWorker<[string, number[]][]>(code, data), inWorker<[string, number[]][]>(code, data)]);
    const main = weights(model);
    for (const r of results) expectSameWeights(new Map(r.map(([n, w]) => [n, Float32Array.from(w)])), main);
  });
});

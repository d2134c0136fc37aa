// Trainer mechanics on a small slice of real data (the first 64 SST-2 train rows, committed in test/fixtures,
// with the pre-trained embedded brown-bert): loss falls,
// gradient accumulation equals one large batch, frozen weights stay bit-identical and cost no
// gradient or optimizer memory, resume equals an uninterrupted run, runs are reproducible.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModelForSequenceClassification } from "../lib/models/auto";
import { ModelForSequenceClassification, TaskBatch } from "../lib/models/heads";
import { AutoTokenizer, Tokenizer } from "../lib/data/tokenizer";
import { Trainer, TrainerOptions } from "../lib/train/trainer";
import { trainableCount } from "../lib/train/strategies";
import { noGrad } from "../lib/tensor/autograd";
import { BROWN_BERT, sst2Head } from "./helpers";

interface Example { ids: number[]; label: number }
const quiet = { warn: null };
const noDropout = { hiddenDropout: 0, attentionDropout: 0, classifierDropout: 0, embeddingDropout: 0 };
const sameBits = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function collate(f: Example[]): TaskBatch {
  const T = Math.max(...f.map((e) => e.ids.length));
  const inputIds = new Int32Array(f.length * T), attentionMask = new Uint8Array(f.length * T);
  f.forEach((e, b) => e.ids.forEach((id, t) => { inputIds[b * T + t] = id; attentionMask[b * T + t] = 1; }));
  return { inputIds, attentionMask, batchSize: f.length, seqLen: T, labels: Int32Array.from(f.map((e) => e.label)) };
}

async function sst2(n: number, tok: Tokenizer): Promise<Example[]> {
  const rows = sst2Head(n);
  const enc = await tok.encodeBatch(rows.map((r) => r.text), { truncation: true, maxLength: 32 });
  return rows.map((r, i) => ({ ids: enc.input_ids[i], label: r.label }));
}

const weights = (m: ModelForSequenceClassification) => new Map([...m.namedParameters()].map(([n, p]) => [n, Float32Array.from(p.toHost())]));

describe("Trainer on an SST-2 slice", () => {
  let tok: Tokenizer;
  let data: Example[];
  const load = (extra = {}) => AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 2, ...extra });
  const opts = (model: ModelForSequenceClassification, o: Partial<TrainerOptions<Example, TaskBatch>> = {}): TrainerOptions<Example, TaskBatch> =>
    ({ model, train: data, collate, learningRate: 1e-3, epochs: 1, batchSize: 8, progress: false, seed: 7, ...o });

  beforeAll(async () => {
    tok = await AutoTokenizer.fromPretrained(BROWN_BERT);
    data = await sst2(64, tok);
  });

  test("loss falls on a real batch", async () => {
    const model = await load();
    const batch = collate(data.slice(0, 16));
    const loss0 = noGrad(() => model.forward(batch).loss!.item());
    await new Trainer(opts(model, { train: data.slice(0, 16), epochs: 12, batchSize: 16, maxGradNorm: 0 })).train();
    const loss1 = noGrad(() => model.forward(batch).loss!.item());
    expect(loss1).toBeLessThan(loss0 * 0.5);
  });

  test("gradient accumulation gives the update of one large batch, with uneven ignored labels", async () => {
    // Labels −100 on some examples: micro-batches have different counts, the trap HF fell into.
    const train = data.slice(0, 16).map((e, i) => ({ ...e, label: i % 3 === 0 && i < 8 ? -100 : e.label }));
    const a = await load({ config: noDropout }), b = await load({ config: noDropout }), c = await load({ config: noDropout });
    // adamEpsilon 1e-6 (HF's default 1e-8): Adam's first step is lr·g/(|g| + eps), which for a gradient
    // element near eps turns float rounding of the summation order (batch 16 and batch 4 take different
    // GEMM paths) into a step of a sizeable fraction of lr; eps 1e-6 keeps the comparison well conditioned.
    const eps = { adamEpsilon: 1e-6 };
    await new Trainer(opts(a, { train, batchSize: 16, maxSteps: 1, ...eps })).train();
    await new Trainer(opts(b, { train, batchSize: 4, gradientAccumulationSteps: 4, maxSteps: 1, ...eps })).train();
    // Control: each micro-batch normalised by its own count (the old HF behaviour).
    const f = c.forward.bind(c);
    c.forward = (x) => f(x, {});
    await new Trainer(opts(c, { train, batchSize: 4, gradientAccumulationSteps: 4, maxSteps: 1, ...eps })).train();
    const diff = (x: ModelForSequenceClassification) => {
      const wa = weights(a);
      let worst = 0;
      for (const [n, w] of weights(x)) {
        const v = wa.get(n)!;
        for (let i = 0; i < w.length; i++) worst = Math.max(worst, Math.abs(w[i] - v[i]));
      }
      return worst;
    };
    // Float rounding of the summation order may move a weight by a small fraction of lr (1e-3), a wrong
    // normalisation by a large one.
    expect(diff(b)).toBeLessThan(1e-5);
    expect(diff(c)).toBeGreaterThan(1e-4);
  });

  test("a frozen body stays bit-identical and has no gradient buffers or optimizer state", async () => {
    const model = await load();
    const before = weights(model);
    const trainer = new Trainer(opts(model, { freeze: { body: true }, maxSteps: 4 }));
    const r = await trainer.train();
    // brown-bert is an MLM checkpoint without a pooler: the fresh pooler trains with the head (freeze's rule).
    const head = new Set(["classifier.weight", "classifier.bias", "bert.pooler.dense.weight", "bert.pooler.dense.bias"]);
    expect(new Set(model.loadReport!.initialized)).toEqual(head);
    for (const [n, p] of model.namedParameters()) {
      if (head.has(n)) {
        expect(sameBits(p.toHost(), before.get(n)!)).toBe(false);
      } else {
        expect([n, sameBits(p.toHost(), before.get(n)!), p.grad]).toEqual([n, true, null]);
      }
    }
    expect(r.trainableParameters).toBe(128 * 2 + 2 + 128 * 128 + 128);
    expect(trainer.optimizer.stateBytes).toBe((128 * 2 + 2 + 128 * 128 + 128) * 4 * 2);
  });

  test("resume from a checkpoint equals the uninterrupted run bit for bit", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-resume-"));
    const full = await load();
    await new Trainer(opts(full, { maxSteps: 6, batchSize: 8 })).train();
    const first = await load();
    await new Trainer(opts(first, { maxSteps: 6, batchSize: 8, saveSteps: 3, outputDir: dir })).train();
    const resumed = await load();
    await new Trainer(opts(resumed, { maxSteps: 6, batchSize: 8, resumeFrom: path.join(dir, "checkpoint-3") })).train();
    const wf = weights(full);
    for (const [n, w] of weights(resumed)) expect([n, sameBits(w, wf.get(n)!)]).toEqual([n, true]);
    for (const [n, w] of weights(first)) expect([n, sameBits(w, wf.get(n)!)]).toEqual([n, true]);
    expect(fs.existsSync(path.join(dir, "checkpoint-6", "trainer_state.json"))).toBe(true);
  });

  test("saved → loaded gives identical predictions; LR groups follow HF (no decay on bias/LayerNorm)", async () => {
    const model = await load();
    const trainer = new Trainer(opts(model, { maxSteps: 2, weightDecay: 0.01 }));
    await trainer.train();
    const decayed = trainer.optimizer.groups.filter((g) => g.weightDecay > 0).flatMap((g) => g.names);
    expect(decayed).toContain("bert.encoder.layer.0.attention.self.query.weight");
    expect(decayed.some((n) => n.endsWith(".bias") || n.includes("LayerNorm"))).toBe(false);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-saved-"));
    model.savePretrained(dir);
    const again = await AutoModelForSequenceClassification.fromPretrained(dir, quiet);
    const batch = collate(data.slice(0, 8));
    const [x, y] = noGrad(() => [model.forward(batch).logits, again.forward(batch).logits]);
    expect(sameBits(x.toHost(), y.toHost())).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8")).architectures).toEqual(["BertForSequenceClassification"]);
  });

  test("discriminative learning rates: lr·ξ^(L−l), head at the full rate", async () => {
    const model = await load();
    const trainer = new Trainer(opts(model, { layerDecay: 0.5, learningRate: 1e-3 }));
    const lrOf = (name: string) => trainer.optimizer.groups.find((g) => g.names.includes(name))!.lr;
    // 4 layers: the top one (l = L) at lr, then halving down to the embeddings (l = 0).
    expect(lrOf("classifier.weight")).toBeCloseTo(1e-3, 12);
    expect(lrOf("bert.encoder.layer.3.output.dense.weight")).toBeCloseTo(1e-3, 12);
    expect(lrOf("bert.encoder.layer.2.output.dense.weight")).toBeCloseTo(5e-4, 12);
    expect(lrOf("bert.encoder.layer.0.output.dense.weight")).toBeCloseTo(1.25e-4, 12);
    expect(lrOf("bert.embeddings.word_embeddings.weight")).toBeCloseTo(6.25e-5, 12);
    expect(trainableCount(model)).toBeGreaterThan(0);
  });

  test("a non-finite loss skips the step (weights untouched) or stops training, naming the step", async () => {
    const model = await load();
    const w = [...model.namedParameters()].find(([n]) => n === "classifier.weight")![1];
    w.toHost()[0] = NaN;
    const before = weights(model);
    const warn = jest.spyOn(console, "warn").mockImplementation(() => undefined);
    const r = await new Trainer(opts(model, { maxSteps: 2 })).train();
    expect(r.skippedSteps).toBe(2);
    expect(warn.mock.calls[0][0]).toMatch(/step 1 skipped: non-finite loss NaN/);
    warn.mockRestore();
    for (const [n, v] of weights(model)) expect([n, sameBits(v, before.get(n)!)]).toEqual([n, true]);
    await expect(new Trainer(opts(model, { maxSteps: 2, onNonFinite: "stop" })).train()).rejects.toThrow(/step 1: non-finite loss NaN; stopping/);
  });

  test("the same seed gives bit-identical weights (dropout on)", async () => {
    const a = await load(), b = await load();
    await new Trainer(opts(a, { maxSteps: 3 })).train();
    await new Trainer(opts(b, { maxSteps: 3 })).train();
    const wb = weights(b);
    for (const [n, w] of weights(a)) expect([n, sameBits(w, wb.get(n)!)]).toEqual([n, true]);
  });
});

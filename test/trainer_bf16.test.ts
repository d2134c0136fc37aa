// Trainer's bf16 option on a real slice (SST-2's first 48 train rows, the pre-trained embedded brown-bert): the products run in bf16
// where the CPU can (close to, not equal to, the fp32 run), the caller's precision is restored after
// train() and evaluate(), and a wrong option value is refused.
import { native } from "../lib/native";
import { AutoModelForSequenceClassification } from "../lib/models/auto";
import { TaskBatch } from "../lib/models/heads";
import { AutoTokenizer } from "../lib/data/tokenizer";
import { Trainer } from "../lib/train/trainer";
import { TunekitError } from "../lib/errors";
import { BROWN_BERT, sst2Head } from "./helpers";

interface Example { ids: number[]; label: number }

function collate(f: Example[]): TaskBatch {
  const T = Math.max(...f.map((e) => e.ids.length));
  const inputIds = new Int32Array(f.length * T), attentionMask = new Uint8Array(f.length * T);
  f.forEach((e, b) => e.ids.forEach((id, t) => { inputIds[b * T + t] = id; attentionMask[b * T + t] = 1; }));
  return { inputIds, attentionMask, batchSize: f.length, seqLen: T, labels: Int32Array.from(f.map((e) => e.label)) };
}

describe("Trainer bf16 option", () => {
  let data: Example[];
  beforeAll(async () => {
    const tok = await AutoTokenizer.fromPretrained(BROWN_BERT);
    const rows = sst2Head(48);
    const enc = await tok.encodeBatch(rows.map((r) => r.text), { truncation: true, maxLength: 32 });
    data = rows.map((r, i) => ({ ids: enc.input_ids[i], label: r.label }));
  });
  afterEach(() => native.setMatmulPrecision("fp32"));

  const run = async (bf16: boolean) => {
    const model = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { warn: null, numLabels: 2 });
    const trainer = new Trainer({ model, train: data, eval: data.slice(0, 16), collate, learningRate: 1e-3, epochs: 1, batchSize: 8, progress: false, seed: 7, bf16 });
    const r = await trainer.train();
    return { r, evalLoss: trainer.evaluate().loss as number, weight: Float32Array.from([...model.namedParameters()].find(([n]) => n.endsWith("layer.0.attention.self.query.weight"))![1].toHost()) };
  };

  test("bf16 trains close to fp32, not bit-equal, and says which precision ran", async () => {
    const a = await run(false), b = await run(true);
    expect(a.r.precision).toBe("fp32");
    expect(b.r.precision).toBe(native.bf16Available() ? "bf16" : "fp32");
    expect(Math.abs(a.r.trainLoss - b.r.trainLoss)).toBeLessThan(0.02);
    expect(Math.abs(a.evalLoss - b.evalLoss)).toBeLessThan(0.02);
    let d = 0;
    for (let i = 0; i < a.weight.length; i++) d = Math.max(d, Math.abs(a.weight[i] - b.weight[i]));
    if (native.bf16Available()) expect(d).toBeGreaterThan(0);
    else expect(d).toBe(0);
    expect(d).toBeLessThan(5e-3); // 6 steps at lr 1e-3: AdamW moves a weight at most ~6e-3
  });

  test("train() and evaluate() restore the caller's precision", async () => {
    native.setMatmulPrecision("fp32");
    await run(true);
    expect(native.matmulPrecision()).toBe("fp32");
    native.setMatmulPrecision("bf16");
    await run(false);
    expect(native.matmulPrecision()).toBe(native.bf16Available() ? "bf16" : "fp32");
  });

  test("a non-boolean bf16 is refused", async () => {
    const model = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { warn: null, numLabels: 2 });
    expect(() => new Trainer({ model, train: data, collate, bf16: "yes" as unknown as boolean })).toThrow(TunekitError);
    expect(() => new Trainer({ model, train: data, collate, bf16: "yes" as unknown as boolean })).toThrow(/bf16 must be true or false/);
  });
});

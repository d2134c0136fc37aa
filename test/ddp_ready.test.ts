// The backward's onLeafReady (what data-parallel training launches gradient buckets on): every
// parameter a backward reaches is reported exactly once, and only when its gradient is final, also for
// a weight used twice (GPT-2's tied wte / lm_head) and one used by many nodes (BERT's embeddings).
import { AutoModelForSequenceClassification, AutoModelForCausalLM } from "../lib/models/auto";
import { backward } from "../lib/tensor/autograd";
import { tidy } from "../lib/tensor/tensor";
import type { Tensor } from "../lib/tensor/tensor";
import { BROWN_BERT, fixtureModel } from "./helpers";

type Model = { namedParameters(): Iterable<[string, Tensor]>; forward(b: object): { loss?: Tensor } };

function check(model: Model, batch: object): void {
  const seen = new Map<Tensor, Float32Array>();
  const reported: Tensor[] = [];
  tidy(() => {
    const loss = model.forward(batch).loss!;
    backward(loss, undefined, (leaf) => {
      reported.push(leaf);
      seen.set(leaf, Float32Array.from(leaf.grad!.toHost()));
    });
  });
  const params = new Set([...model.namedParameters()].map(([, p]) => p));
  expect(reported.length).toBe(new Set(reported).size); // once each
  expect(new Set(reported)).toEqual(new Set([...params].filter((p) => p.gradTouched))); // every one reached
  for (const [p, atReport] of seen) expect(Buffer.from(atReport.buffer).equals(Buffer.from(Float32Array.from(p.grad!.toHost()).buffer))).toBe(true);
}

test("BERT classifier: each parameter reported once, with its final gradient", async () => {
  const model = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { warn: null, numLabels: 2 });
  const T = 6, B = 2;
  check(model as unknown as Model, { inputIds: Int32Array.from({ length: B * T }, (_, i) => 100 + i), attentionMask: new Uint8Array(B * T).fill(1), batchSize: B, seqLen: T, labels: Int32Array.of(0, 1) });
});

test("GPT-2 with tied embeddings: wte reported once, after both of its uses", async () => {
  const model = await AutoModelForCausalLM.fromPretrained(fixtureModel("gpt2-tiny-random"), { warn: null });
  const T = 5, B = 2;
  const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7) % 50);
  check(model as unknown as Model, { inputIds: ids, attentionMask: new Uint8Array(B * T).fill(1), batchSize: B, seqLen: T, labels: ids });
});

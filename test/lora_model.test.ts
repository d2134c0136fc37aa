// LoRA on a BERT, a GPT-2 and a DistilBERT (the embedded models/brown-bert, the small random checkpoints of
// test/fixtures/models): which layers are adapted, what stays frozen (and gets no gradient
// buffer), that an untrained adapter changes nothing, that training it lowers the loss, and that
// merge / unmerge / mergeAndUnload keep the function; plus the op's gradients against a composition
// of plain ops, with dropout.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModel, AutoModelForMaskedLM, AutoModelForCausalLM } from "../lib/models/auto";
import { PreTrainedModel } from "../lib/models/pretrained";
import { ModelInputs } from "../lib/models/inputs";
import { AutoTokenizer } from "../lib/data/tokenizer";
import { readSafetensors } from "../lib/io/safetensors";
import { Linear } from "../lib/nn/layers";
import { Parameter } from "../lib/nn/module";
import { Tensor } from "../lib/tensor/tensor";
import * as ops from "../lib/tensor/ops";
import { noGrad } from "../lib/tensor/autograd";
import { TunekitError } from "../lib/errors";
import { applyLora, mergeAdapter, unmergeAdapter, mergeAndUnload, unloadAdapter, isLoraModel, loraSummary, LoraOptions, LoraSummary } from "../lib/peft/lora";
import { LoraLinear, loraLinear } from "../lib/peft/lora_linear";
import { timings } from "./shared";
import { BROWN_BERT, fixtureModel, maxAbsDiff, randn, sst2Head } from "./helpers";

const quiet = { warn: null };
type Out = { lastHiddenState: Tensor; logits?: Tensor; loss?: Tensor };
const fwd = (m: PreTrainedModel, x: ModelInputs & { labels?: Int32Array }) => (m as unknown as { forward(x: ModelInputs): Out }).forward(x);
/** Outputs in eval mode without a graph: hidden states, every row's first 256 logits (JS loops over whole
 *  vocabulary-wide rows are slow under jest), all logits as bytes for exact comparisons, and the loss. */
const evalOut = (m: PreTrainedModel, x: ModelInputs & { labels?: Int32Array }) =>
  noGrad(() => {
    const o = fwd(m.eval(), x);
    const L = o.logits?.toHost(), V = o.logits?.shape[o.logits.shape.length - 1] ?? 0;
    const rows = L ? L.length / V : 0, logits = new Float32Array(rows * 256);
    for (let r = 0; r < rows; r++) logits.set(L!.subarray(r * V, r * V + 256), r * 256);
    return { h: o.lastHiddenState.toHost().slice(), logits: L ? logits : undefined, bytes: L ? Buffer.from(L.slice().buffer) : undefined, loss: o.loss?.item() };
  });
const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};
/** Max difference relative to the reference's largest magnitude (at least 1). */
const relMax = (a: Float32Array, b: Float32Array) => maxAbsDiff(a, b) / Math.max(1, maxAbs(b));
const trainable = (m: PreTrainedModel) => [...m.namedParameters()].filter(([, p]) => p.requiresGrad).map(([n]) => n);
const loraLayers = (m: PreTrainedModel) => [...m.namedModules()].filter(([, x]) => x instanceof LoraLinear) as [string, LoraLinear][];
const sum = (ns: number[]) => ns.reduce((a, b) => a + b, 0);

/** A few SST-2 sentences as a batch. */
const sentences = (n: number): string[] => sst2Head(n).map((r) => r.text.trim());
const MODELS = { bert: BROWN_BERT, gpt2: fixtureModel("gpt2-tiny-random"), distilbert: fixtureModel("distilbert-tiny-random") };
const GPT2_EOS = 556;

async function mlmBatch(dir: string) {
  const tok = await AutoTokenizer.fromPretrained(dir);
  const enc = await tok.encodeBatch(sentences(3), { padding: true, truncation: true, maxLength: 20 });
  const B = enc.input_ids.length, T = enc.input_ids[0].length, mask = tok.specialTokenId("mask_token")!;
  const ids = Int32Array.from(enc.input_ids.flat()), labels = new Int32Array(B * T).fill(-100);
  // Mask every 5th real token (not [CLS]/[SEP]/padding), as a fixed MLM batch.
  enc.special_tokens_mask.flat().forEach((s, i) => {
    if (!s && i % 5 === 2) {
      labels[i] = ids[i];
      ids[i] = mask;
    }
  });
  return { inputIds: ids, attentionMask: enc.attention_mask.flat(), batchSize: B, seqLen: T, labels };
}

async function clmBatch(dir: string) {
  const tok = await AutoTokenizer.fromPretrained(dir);
  const rows = await Promise.all(sentences(3).map(async (s) => (await tok.encode(s)).input_ids.slice(0, 14)));
  const T = Math.max(...rows.map((r) => r.length)), B = rows.length;
  const ids = new Int32Array(B * T).fill(GPT2_EOS), labels = new Int32Array(B * T).fill(-100), mask: number[] = new Array(B * T).fill(0);
  rows.forEach((r, b) => r.forEach((id, t) => {
    ids[b * T + t] = id;
    labels[b * T + t] = id;
    mask[b * T + t] = 1;
  }));
  return { inputIds: ids, attentionMask: mask, batchSize: B, seqLen: T, labels };
}

/** Plain SGD on the trainable parameters; returns whether every frozen parameter stayed without a gradient buffer. */
function sgdSteps(m: PreTrainedModel, x: ModelInputs & { labels?: Int32Array }, steps: number, lr: number): boolean {
  let frozenClean = true;
  m.train();
  for (let s = 0; s < steps; s++) {
    const loss = fwd(m, x).loss!;
    loss.backward();
    for (const p of m.parameters()) {
      if (!p.requiresGrad) {
        frozenClean &&= p.grad === null;
        continue;
      }
      for (let i = 0; i < p.size; i++) p.toHost()[i] -= lr * p.grad!.toHost()[i];
    }
    m.zeroGrad();
  }
  m.eval();
  return frozenClean;
}

describe("LoRA on a BERT, a GPT-2 and a DistilBERT", () => {
  const time = timings("LoRA models");
  // Loaded once; each test leaves them plain again (unloadAdapter restores the exact base model).
  type Batch = ModelInputs & { labels: Int32Array };
  const models: Record<string, { m: PreTrainedModel; x: Batch }> = {};
  beforeAll(async () => {
    const load = async (name: keyof typeof MODELS, kind: "mlm" | "clm" | "base") => {
      const dir = MODELS[name];
      const auto = kind === "mlm" ? AutoModelForMaskedLM : kind === "clm" ? AutoModelForCausalLM : AutoModel;
      models[name] = { m: await time(`${name}: load`, () => auto.fromPretrained(dir, quiet)), x: kind === "clm" ? await clmBatch(dir) : await mlmBatch(dir) };
    };
    await load("bert", "mlm");
    await load("gpt2", "clm");
    await load("distilbert", "base");
  });
  const withLora = <T>(m: PreTrainedModel, opts: LoraOptions, fn: () => T): T => {
    applyLora(m, opts);
    try {
      return fn();
    } finally {
      if (isLoraModel(m)) unloadAdapter(m);
    }
  };

  test.each([
    ["bert", {}, [0, 1, 2, 3].flatMap((i) => [`bert.encoder.layer.${i}.attention.self.query`, `bert.encoder.layer.${i}.attention.self.value`]), 128, 128],
    ["gpt2", {}, ["transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"], 16, 48],
    ["distilbert", { targetModules: ["q_lin", "v_lin"] }, ["transformer.layer.0.attention.q_lin", "transformer.layer.0.attention.v_lin", "transformer.layer.1.attention.q_lin", "transformer.layer.1.attention.v_lin"], 16, 16],
  ] as const)("%s: targets, frozen rest, zero-init adapter leaves outputs unchanged, frozen params get no gradient", (name, opts, layers, inF, outF) => {
    const { m, x } = models[name];
    const before = evalOut(m, x);
    const r = 4;
    applyLora(m, { r, alpha: 8, dropout: 0.1, ...(opts as LoraOptions) });
    const summary = loraSummary(m);
    expect(summary.layers).toEqual([...layers]);
    expect(loraLayers(m).map(([n]) => n)).toEqual([...layers]);
    // Only the factors train: r·in + out·r per layer.
    expect(trainable(m)).toEqual(layers.flatMap((l) => [`${l}.lora_A.weight`, `${l}.lora_B.weight`]));
    expect(summary.trainableParameters).toBe(layers.length * (r * inF + outF * r));
    expect(summary.totalParameters).toBe(sum(m.parameters().map((p) => p.size)));
    for (const [, l] of loraLayers(m)) {
      expect(l.scaling).toBe(2);
      const A = l.lora_A.weight.toHost(), bound = 1 / Math.sqrt(inF), N = A.length;
      expect(maxAbs(A)).toBeLessThanOrEqual(bound);
      // Uniform on ±bound, within 4 standard deviations of the estimates: the mean's is bound/√(3N), that of
      // mean(A²)/(bound²/3) is √(0.8/N).
      const mean = sum(Array.from(A)) / N, variance = sum(Array.from(A, (v) => v * v)) / N;
      expect(Math.abs(mean)).toBeLessThan((4 * bound) / Math.sqrt(3 * N));
      expect(Math.abs(variance / (bound * bound / 3) - 1)).toBeLessThan(4 * Math.sqrt(0.8 / N));
      expect(l.lora_B.weight.toHost().every((v) => v === 0)).toBe(true);
    }
    // Different layers get different A.
    const [a0, a1] = loraLayers(m);
    expect(maxAbsDiff(a0[1].lora_A.weight.toHost(), a1[1].lora_A.weight.toHost())).toBeGreaterThan(0.01);
    // B = 0: the adapted model computes exactly what the base did (the fused kernel adds s·h·Bᵀ = 0).
    const after = evalOut(m, x);
    expect(Buffer.from(after.h.buffer).equals(Buffer.from(before.h.buffer))).toBe(true);
    if (before.bytes) expect(after.bytes!.equals(before.bytes)).toBe(true);

    // One training step (dropout on): only the factors get gradient buffers; with B = 0, dA = 0 and dB ≠ 0.
    m.train();
    const o = fwd(m, x);
    const loss = o.loss ?? ops.weightedSum(o.lastHiddenState, randn(o.lastHiddenState.size, 7));
    time(`${name}: forward + backward, LoRA`, () => loss.backward());
    const withGrad = [...m.namedParameters()].filter(([, p]) => p.grad !== null).map(([n]) => n);
    expect(withGrad).toEqual(trainable(m));
    for (const [, l] of loraLayers(m)) {
      expect(l.lora_A.weight.grad!.toHost().every((v) => v === 0)).toBe(true);
      expect(maxAbs(l.lora_B.weight.grad!.toHost())).toBeGreaterThan(0);
    }
    // unloadAdapter gives the base model back, bit for bit, with every parameter trainable again.
    unloadAdapter(m);
    expect(isLoraModel(m)).toBe(false);
    expect(m.parameters().every((p) => p.requiresGrad && p.grad === null)).toBe(true);
    expect(maxAbsDiff(evalOut(m, x).h, before.h)).toBe(0);
  });

  test("bias and modulesToSave choose what else trains; rank/alpha patterns and rsLoRA set the scaling", () => {
    const { m } = models.bert;
    const count = <T>(opts: LoraOptions, fn: (s: LoraSummary) => T): T => withLora(m, { r: 2, ...opts }, () => fn(loraSummary(m)));
    const lora = 8 * (2 * 128 + 128 * 2); // query and value of 4 layers
    const biases = [...m.namedParameters()].filter(([n]) => n.includes("bias"));
    expect(biases.length).toBe(36); // embeddings LN, 8 per layer, cls: transform dense + LN, decoder bias
    count({ bias: "all" }, (s) => expect(s.trainableParameters).toBe(lora + sum(biases.map(([, p]) => p.size))));
    count({ bias: "lora_only" }, (s) => {
      expect(trainable(m).filter((n) => n.endsWith(".bias"))).toEqual(s.layers.map((l) => `${l}.bias`));
      expect(s.trainableParameters).toBe(lora + 8 * 128);
    });
    count({ modulesToSave: ["transform"] }, (s) => {
      expect(s.modulesToSave).toEqual(["cls.predictions.transform"]);
      expect(trainable(m).filter((n) => !n.includes("lora_"))).toEqual([
        "cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
        "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
      ]);
    });
    count({ r: 4, alpha: 16, rankPattern: { "layer.1.attention.self.value": 2 }, alphaPattern: { query: 8 } }, () =>
      expect(loraLayers(m).map(([n, l]) => [n.slice(19), l.r, l.scaling])).toEqual([
        ["0.attention.self.query", 4, 2], ["0.attention.self.value", 4, 4], ["1.attention.self.query", 4, 2], ["1.attention.self.value", 2, 8],
        ["2.attention.self.query", 4, 2], ["2.attention.self.value", 4, 4], ["3.attention.self.query", 4, 2], ["3.attention.self.value", 4, 4],
      ]));
    count({ r: 16, alpha: 8, useRslora: true, targetModules: "bert\\.encoder\\.layer\\.0\\..*(key|dense)" }, (s) => {
      expect(s.layers).toEqual(["bert.encoder.layer.0.attention.self.key", "bert.encoder.layer.0.attention.output.dense", "bert.encoder.layer.0.intermediate.dense", "bert.encoder.layer.0.output.dense"]);
      expect(loraLayers(m)[0][1].scaling).toBe(2);
    });
    count({ targetModules: ["dense"], excludeModules: ["output.dense", "cls.predictions.transform.dense"] }, (s) =>
      expect(s.layers).toEqual([0, 1, 2, 3].map((i) => `bert.encoder.layer.${i}.intermediate.dense`)));
  });

  test("a Linear used directly (not through its parent's field) is adapted too: DistilBERT's vocab_transform", async () => {
    const dir = MODELS.distilbert;
    const m = await AutoModelForMaskedLM.fromPretrained(dir, quiet);
    const x = await mlmBatch(dir);
    const base = evalOut(m, x);
    applyLora(m, { targetModules: ["vocab_transform"] });
    const [[name, l]] = loraLayers(m);
    expect(name).toBe("vocab_transform");
    l.lora_B.weight.toHost().set(randn(l.lora_B.weight.size, 5, 0.5));
    // The head reaches vocab_transform through a closure; the adapter must still take part.
    expect(relMax(evalOut(m, x).logits!, base.logits!)).toBeGreaterThan(1e-3);
    unloadAdapter(m);
    expect(evalOut(m, x).bytes!.equals(base.bytes!)).toBe(true);
  });

  test("target names are checked before anything changes, with the valid names in the message", () => {
    const bert = models.bert.m, distil = models.distilbert.m;
    const valid = "valid Linear layer names in this model: dense, key, query, value";
    expect(() => applyLora(bert, { targetModules: ["query", "q_lin"] })).toThrow(new RegExp(`target module 'q_lin' matches no module of this model; ${valid}`));
    expect(() => applyLora(bert, { targetModules: ["LayerNorm"] as never })).toThrow(/'LayerNorm' matches 'bert\.embeddings\.LayerNorm', a LayerNorm; LoRA adapts Linear layers only/);
    expect(() => applyLora(bert, { targetModules: "encoder\\.layer\\.9\\..*" })).toThrow(/the pattern .* selects no module; valid Linear layer names/);
    expect(() => applyLora(bert, { targetModules: ".*attention.self" })).toThrow(/select 'bert\.encoder\.layer\.0\.attention\.self', a BertSelfAttention; LoRA adapts Linear layers only/);
    expect(() => applyLora(bert, { r: 0 })).toThrow(/r = 0, expected a positive integer/);
    expect(() => applyLora(bert, { dropout: 1 })).toThrow(/dropout = 1, expected 0 <= dropout < 1/);
    expect(() => applyLora(bert, { modulesToSave: ["classifer"] })).toThrow(/modulesToSave entry 'classifer' matches no module/);
    expect(() => applyLora(bert, { modelType: "gpt2" } as LoraOptions)).toThrow(/options\.modelType is 'gpt2' but the model is a bert model/);
    expect(() => applyLora(bert, { targetModules: ["dense"], modulesToSave: ["transform"] })).toThrow(/'cls\.predictions\.transform\.dense' is both a LoRA target and part of 'cls\.predictions\.transform'/);
    // Nothing was changed by the failed calls.
    expect(isLoraModel(bert)).toBe(false);
    expect(bert.parameters().every((p) => p.requiresGrad)).toBe(true);
    expect(() => applyLora(distil)).toThrow(new TunekitError('applyLora: PEFT has no default target modules for distilbert; pass targetModules, e.g. ["q_lin", "v_lin"] (the attention query and value projections)'));
    applyLora(bert);
    expect(() => applyLora(bert)).toThrow(/already has LoRA adapters/);
    expect(() => mergeAdapter(distil)).toThrow(/mergeAdapter: the model has no LoRA adapters; call applyLora/);
    expect(loraSummary(bert).config.targetModules).toEqual(["query", "value"]);
    unloadAdapter(bert);
  });

  test("target names are typed per architecture", () => {
    // Compile-time checks (ts-jest type-checks this file): a name of another architecture is an error.
    const ok: LoraOptions<"bert"> = { targetModules: ["query", "attention.self.value", "bert.pooler.dense"] };
    // @ts-expect-error q_lin is a DistilBERT layer, not a BERT one
    const wrong: LoraOptions<"bert"> = { targetModules: ["q_lin"] };
    // @ts-expect-error not a Linear layer name of any supported architecture
    const typo: LoraOptions = { targetModules: ["qeury"] };
    const gpt: LoraOptions<"gpt2"> = { modelType: "gpt2", targetModules: ["c_attn", "mlp.c_proj"] };
    expect([ok, wrong, typo, gpt].length).toBe(4);
  });

  test("training lowers the MLM loss; merged = unmerged; unmerge restores W; mergeAndUnload saves a plain checkpoint", async () => {
    // The last test of the shared BERT: mergeAndUnload changes its weights for good.
    const dir = MODELS.bert;
    const { m, x } = models.bert;
    applyLora(m, { r: 8, alpha: 16, dropout: 0.05, seed: 3 });
    const W0 = loraLayers(m).map(([, l]) => l.weight.toHost().slice());
    const loss0 = evalOut(m, x).loss!;
    expect(time("bert: 20 SGD steps on the LoRA factors", () => sgdSteps(m, x, 20, 0.5))).toBe(true);
    const trained = evalOut(m, x);
    expect(trained.loss!).toBeLessThan(0.8 * loss0);
    // The base weights never moved.
    loraLayers(m).forEach(([, l], i) => expect(maxAbsDiff(l.weight.toHost(), W0[i])).toBe(0));

    mergeAdapter(m);
    expect(loraLayers(m).every(([, l]) => l.merged)).toBe(true);
    const merged = evalOut(m, x);
    expect(maxAbsDiff(merged.h, trained.h)).toBeLessThan(1e-5);
    expect(relMax(merged.logits!, trained.logits!)).toBeLessThan(1e-5);
    // A merged adapter cannot train: its factors would silently get no gradient.
    m.train();
    expect(() => fwd(m, x)).toThrow(/is merged into its base weight.*unmergeAdapter\(model\) before training/);
    m.eval();
    mergeAdapter(m); // idempotent
    unmergeAdapter(m);
    loraLayers(m).forEach(([, l], i) => expect(maxAbsDiff(l.weight.toHost(), W0[i])).toBeLessThan(1e-6));
    expect(maxAbsDiff(evalOut(m, x).h, trained.h)).toBeLessThan(1e-5);

    const plain = mergeAndUnload(m);
    expect(plain).toBe(m);
    expect(isLoraModel(m)).toBe(false);
    expect(loraLayers(m)).toEqual([]);
    const q = [...m.namedModules()].find(([n]) => n === "bert.encoder.layer.0.attention.self.query")![1] as Linear;
    expect(q).toBeInstanceOf(Linear);
    expect(q.adapter).toBeNull();
    expect(m.parameters().every((p) => p.requiresGrad)).toBe(true); // as before applyLora
    const unloaded = evalOut(m, x);
    expect(unloaded.bytes!.equals(merged.bytes!)).toBe(true);
    const out = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-lora-"));
    m.savePretrained(out);
    const keys = [...readSafetensors(path.join(out, "model.safetensors")).tensors.keys()].sort();
    expect(keys).toEqual([...readSafetensors(path.join(dir, "model.safetensors")).tensors.keys()].filter((k) => !k.startsWith("bert.pooler.")).sort());
    const again = await AutoModelForMaskedLM.fromPretrained(out, quiet);
    expect(evalOut(again, x).bytes!.equals(merged.bytes!)).toBe(true);
  });

  test("training lowers the causal-LM loss of GPT-2 (LoRA on the Conv1D c_attn, rsLoRA); merge keeps the logits", async () => {
    const { m, x } = models.gpt2;
    const s = applyLora(m, { r: 4, alpha: 8, useRslora: true, targetModules: ["c_attn", "mlp.c_proj"] });
    expect(s.layers).toEqual(["transformer.h.0.attn.c_attn", "transformer.h.0.mlp.c_proj", "transformer.h.1.attn.c_attn", "transformer.h.1.mlp.c_proj"]);
    expect(loraLayers(m).map(([, l]) => [l.lora_A.weight.shape, l.lora_B.weight.shape, l.scaling])).toEqual([
      [[4, 16], [48, 4], 4], [[4, 64], [16, 4], 4], [[4, 16], [48, 4], 4], [[4, 64], [16, 4], 4],
    ]);
    const loss0 = evalOut(m, x).loss!;
    expect(time("gpt2: 6 SGD steps on the LoRA factors", () => sgdSteps(m, x, 6, 1))).toBe(true);
    const trained = evalOut(m, x);
    expect(trained.loss!).toBeLessThan(loss0 - 0.3); // random weights: 6.51 → 5.98
    mergeAdapter(m);
    const merged = evalOut(m, x);
    expect(relMax(merged.logits!, trained.logits!)).toBeLessThan(1e-5);
    expect(Math.abs(merged.loss! - trained.loss!)).toBeLessThan(1e-5);
  });
});

describe("loraLinear op", () => {
  // Reference: the same function composed of plain differentiable ops, with the same dropout mask
  // (ops.dropout and the LoRA kernel both use Philox element m·in + i of (seed, offset)).
  test.each([[0], [0.3]])("forward and gradients (x, A, B, bias) match a composition of plain ops, dropout p = %s", (p) => {
    const M = 7, inF = 19, outF = 11, r = 3, s = 1.75;
    const param = (shape: number[], seed: number, scale: number) => {
      const t = new Parameter(shape);
      t.toHost().set(randn(t.size, seed, scale));
      return t;
    };
    const W = param([outF, inF], 1, 0.3), b = param([outF], 2, 0.1), A = param([r, inF], 3, 0.3), B = param([outF, r], 4, 0.3);
    W.requiresGrad = false;
    const x0 = randn(M * inF, 5), gy = randn(M * outF, 6);
    const leaf = () => Tensor.from([M, inF], x0);
    // dx flows through an op upstream of the LoRA layer, as for every adapted layer after the first.
    const run = (Bm: Parameter, f: (x: Tensor) => Tensor) => {
      const xl = new Parameter([M, inF]);
      xl.toHost().set(x0);
      const y = f(ops.add(xl, Tensor.from([M, inF], new Float32Array(M * inF))));
      const out = y.toHost().slice();
      ops.weightedSum(y, gy).backward();
      const grads = [xl, A, Bm, b].map((t) => t.grad!.toHost().slice());
      [A, Bm, b].forEach((t) => (t.grad = null));
      return { out, grads };
    };
    const got = run(B, (x) => loraLinear(x, W, b, A, B, { scale: s, dropoutP: p, training: true, gen: new ops.Generator(9, 40), name: "t" }));
    const sB = param([outF, r], 4, 0.3);
    sB.toHost().set(B.toHost().map((v) => v * s));
    const ref = run(sB, (x) => ops.add(ops.linear(x, W, b), ops.linear(ops.linear(ops.dropout(x, p, true, new ops.Generator(9, 40)), A, null), sB, null)));
    expect(maxAbsDiff(got.out, ref.out)).toBeLessThan(1e-5);
    const [dx, dA, dB, db] = got.grads, [rdx, rdA, rdsB, rdb] = ref.grads;
    expect(maxAbsDiff(dx, rdx)).toBeLessThan(1e-5);
    expect(maxAbsDiff(dA, rdA)).toBeLessThan(1e-5);
    expect(maxAbsDiff(dB, rdsB.map((v) => v * s))).toBeLessThan(1e-4);
    expect(maxAbsDiff(db, rdb)).toBeLessThan(1e-5);
    if (p > 0) {
      // Dropout really acts in training and not in eval; each call takes fresh Philox counters.
      const gen = new ops.Generator(9, 0);
      const t1 = loraLinear(leaf(), W, b, A, B, { scale: s, dropoutP: p, training: true, gen, name: "t" });
      expect(gen.offset).toBe(Math.ceil((M * inF) / 4) * 4);
      const e = loraLinear(leaf(), W, b, A, B, { scale: s, dropoutP: p, training: false, gen, name: "t" });
      expect(gen.offset).toBe(Math.ceil((M * inF) / 4) * 4);
      expect(maxAbsDiff(t1.toHost(), e.toHost())).toBeGreaterThan(1e-3);
    }
  });

  test("the base weight may not require a gradient; shapes are checked", () => {
    const W = new Parameter([4, 3]), A = new Parameter([2, 3]), B = new Parameter([4, 2]);
    const o = { scale: 1, dropoutP: 0, training: false, gen: new ops.Generator(1), name: "enc.q" };
    expect(() => loraLinear(Tensor.from([1, 3], [1, 2, 3]), W, null, A, B, o)).toThrow(/LoRA layer 'enc\.q': the base weight requires a gradient, but LoRA keeps it frozen/);
    W.requiresGrad = false;
    expect(() => loraLinear(Tensor.from([1, 2], [1, 2]), W, null, A, B, o)).toThrow(/LoRA layer 'enc\.q': got input \[1, 2\], expected last dim 3/);
    expect(() => loraLinear(Tensor.from([1, 3], [1, 2, 3]), W, null, new Parameter([2, 4]), B, o)).toThrow(/lora_A \[2, 4\] and lora_B \[4, 2\] do not fit the base weight \[4, 3\]/);
    expect(noGrad(() => loraLinear(Tensor.from([1, 3], [1, 2, 3]), W, null, A, B, o)).shape).toEqual([1, 4]);
  });
});

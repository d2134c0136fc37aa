// bf16 storage for frozen weights (issue 18): the kernels that read a weight (gemm's B, LoRA's W, the
// embedding table) take it as bf16 on every ISA and give exactly what float32 weights holding the same
// (rounded) values give; fromPretrained(dir, { dtype: "bf16" }) keeps the body's matrices at 2 bytes a
// parameter and computes the rounded f32 model's logits; LoRA trains on such a base; every other use of a
// bf16 buffer, and any attempt to train a bf16 weight, is a clear TunekitError.
import { spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { native } from "../lib/native";
import { TunekitError } from "../lib/errors";
import { AutoModelForMaskedLM, AutoModelForCausalLM, AutoModelForSequenceClassification } from "../lib/models/auto";
import { PreTrainedModel } from "../lib/models/pretrained";
import { ModelInputs } from "../lib/models/inputs";
import { TaskBatch } from "../lib/models/heads";
import { AutoTokenizer } from "../lib/data/tokenizer";
import { readSafetensors } from "../lib/io/safetensors";
import { Tensor } from "../lib/tensor/tensor";
import { Storage } from "../lib/tensor/storage";
import * as ops from "../lib/tensor/ops";
import { noGrad } from "../lib/tensor/autograd";
import { Parameter } from "../lib/nn/module";
import { AdamW, paramGroups } from "../lib/train/optimizer";
import { Trainer } from "../lib/train/trainer";
import { applyLora, mergeAndUnload } from "../lib/peft/lora";
import { saveAdapter, loadAdapter } from "../lib/peft/adapter_files";
import { BROWN_BERT, ISAS, fixtureModel, maxAbsDiff, randn, sst2Head, withIsa } from "./helpers";

const quiet = { warn: null };
const GPT2 = fixtureModel("gpt2-tiny-random");
const FROZEN = /full fine-tuning needs fp32 weights: load with dtype f32, or train with LoRA \/ a frozen body/;
const ONLY_WEIGHTS = /bf16 storage is only accepted for a weight/;

/** x as bf16 (round to nearest even, the addon's convert), and those values widened back to float32. */
function bf16(x: Float32Array): { h: Uint16Array; r: Float32Array } {
  const h = new Uint16Array(x.length), r = new Float32Array(x.length);
  native.copy({ src: x, dst: h });
  native.copy({ src: h, dst: r });
  return { h, r };
}
const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const precisions = () => (native.bf16Available() ? ["fp32", "bf16"] as const : ["fp32"] as const);

describe("kernels read bf16 weights exactly as float32 weights holding the rounded values, on every ISA", () => {
  // [transA, transB, M, N, K, batch, pad]: pad widens every leading dimension (sub-matrices of wider ones)
  const GEMMS: [boolean, boolean, number, number, number, number, number][] = [
    [false, true, 37, 70, 130, 1, 0], // the linear forward: x·Wᵀ
    [false, false, 300, 33, 65, 1, 0], // the linear backward: dY·W
    [true, true, 5, 129, 257, 1, 3],
    [true, false, 64, 64, 600, 1, 0], // K past one cache block
    [false, true, 40, 35, 21, 3, 2], // batched, strided
    [false, false, 1, 1, 1, 1, 0],
    [false, true, 3, 500, 77, 1, 5], // a decoding step: a few rows times the weight, read in place (padded ldb)
  ];
  test.each(ISAS)("gemm with a bf16 B (%s): bit-equal to float32 B, fp32 and bf16 products, sync and async", async (isa) => {
    for (const [transA, transB, M, N, K, batch, pad] of GEMMS) {
      const lda = (transA ? M : K) + pad, ldb = (transB ? K : N) + pad, ldc = N + pad;
      const strideA = (transA ? K : M) * lda, strideB = (transB ? N : K) * ldb, strideC = M * ldc;
      const A = randn(strideA * batch, 1), { h: B16, r: Br } = bf16(randn(strideB * batch, 2));
      const C0 = randn(strideC * batch, 3);
      for (const precision of precisions()) {
        const args = { M, N, K, transA, transB, lda, ldb, ldc, batch, strideA, strideB, strideC, alpha: 0.75, beta: 0.5, precision };
        const want = withIsa(isa, () => {
          const C = C0.slice();
          native.gemm({ ...args, A, B: Br, C });
          return C;
        });
        const got = withIsa(isa, () => {
          const C = C0.slice();
          native.gemm({ ...args, A, B: B16, C });
          return C;
        });
        expect([isa, transA, transB, M, N, K, precision, same(got, want)]).toEqual([isa, transA, transB, M, N, K, precision, true]);
        const before = native.isa();
        native.setIsa(isa);
        try {
          const C = C0.slice();
          await native.gemmAsync({ ...args, A, B: B16, C });
          expect(same(C, want)).toBe(true);
        } finally {
          native.setIsa(before);
        }
      }
    }
    // A bf16 weight that is a view into a larger bf16 buffer (an arena slot).
    const { h: big, r: bigR } = bf16(randn(3 * 40 + 7, 4));
    const A = randn(5 * 8, 5);
    const ref = new Float32Array(5 * 15), got = new Float32Array(5 * 15);
    withIsa(isa, () => {
      native.gemm({ M: 5, N: 15, K: 8, A, B: bigR.subarray(7, 7 + 120), C: ref, transB: true });
      native.gemm({ M: 5, N: 15, K: 8, A, B: native.view(big, 7, 120), C: got, transB: true });
    });
    expect(same(got, ref)).toBe(true);
  });

  test.each(ISAS)("embeddingForward with a bf16 table (%s): the rows widened, bit for bit", (isa) => {
    for (const [N, C, V] of [[300, 37, 20], [7, 128, 1000], [3, 5, 2]]) {
      const { h, r } = bf16(randn(V * C, 6, 3));
      const ids = Int32Array.from({ length: N }, (_, i) => (i * i + 3 * i) % V);
      const want = new Float32Array(N * C), got = new Float32Array(N * C).fill(NaN);
      withIsa(isa, () => {
        native.embeddingForward({ N, C, V, ids, table: r, out: want });
        native.embeddingForward({ N, C, V, ids, table: h, out: got });
      });
      expect(same(got, want)).toBe(true);
    }
  });

  test.each(ISAS)("loraForward / loraBackward with a bf16 W (%s): every output bit-equal to a float32 W", (isa) => {
    for (const [M, inF, outF, r, p, bias] of [[17, 40, 30, 4, 0.1, true], [70, 130, 65, 8, 0, false]] as const) {
      const x = randn(M * inF, 7), { h: W16, r: Wr } = bf16(randn(outF * inF, 8, 0.2));
      const A = randn(r * inF, 9, 0.2), B = randn(outF * r, 10, 0.2), b = bias ? randn(outF, 11) : null, dy = randn(M * outF, 12);
      const run = (W: Float32Array | Uint16Array, precision: "fp32" | "bf16") => withIsa(isa, () => {
        const common = { M, in: inF, out: outF, r, x, W, A, B, scale: 2, dropoutP: p, seed: 5, offset: 3, precision };
        const y = new Float32Array(M * outF), h = new Float32Array(M * r);
        native.loraForward({ ...common, bias: b, y, h });
        const dx = new Float32Array(M * inF), dA = new Float32Array(r * inF), dB = new Float32Array(outF * r), dbias = b ? new Float32Array(outF) : null;
        native.loraBackward({ ...common, h, dy, dx, dA, dB, dbias });
        return [y, h, dx, dA, dB, dbias ?? new Float32Array(0)];
      });
      for (const precision of precisions()) {
        const want = run(Wr, precision), got = run(W16, precision);
        got.forEach((g, i) => expect([isa, M, precision, i, same(g, want[i])]).toEqual([isa, M, precision, i, true]));
      }
    }
  });

  test("a bf16 buffer anywhere but a weight operand is refused, naming the argument", () => {
    const f = (n: number) => new Float32Array(n), u = (n: number) => new Uint16Array(n);
    const refuse = (fn: () => unknown, arg: string) => {
      expect(fn).toThrow(TunekitError);
      expect(fn).toThrow(new RegExp(`argument '${arg}' must be a Float32Array or a device buffer, got a Uint16Array \\(bf16\\); ` + ONLY_WEIGHTS.source));
    };
    refuse(() => native.gemm({ M: 2, N: 2, K: 2, A: u(4), B: f(4), C: f(4) }), "A");
    refuse(() => native.gemm({ M: 2, N: 2, K: 2, A: f(4), B: u(4), C: u(4) }), "C");
    refuse(() => native.embeddingForward({ N: 1, C: 2, V: 2, ids: Int32Array.from([1]), table: u(4), out: u(2) }), "out");
    refuse(() => native.embeddingBackward({ N: 1, C: 2, V: 2, ids: Int32Array.from([1]), dout: f(2), dtable: u(4) }), "dtable");
    const lora = { M: 1, in: 2, out: 2, r: 1, x: f(2), W: u(4), A: f(2), B: f(2), scale: 1, y: f(2), h: f(1) };
    refuse(() => native.loraForward({ ...lora, A: u(2) }), "A");
    refuse(() => native.loraForward({ ...lora, bias: u(2) }), "bias");
    refuse(() => native.loraBackward({ ...lora, dy: f(2), dA: f(2), dB: u(2) }), "dB");
    refuse(() => native.adamw({ n: 2, param: u(2), grad: f(2), m: f(2), v: f(2), lr: 0.1, step: 1 }), "param");
    refuse(() => native.layerNormForward({ rows: 1, C: 2, x: f(2), gamma: u(2), y: f(2), mean: f(1), rstd: f(1) }), "gamma");
    refuse(() => native.biasAdd({ rows: 1, C: 2, x: f(2), bias: u(2), y: f(2) }), "bias");
    // A weight of the wrong size or type is still refused as before.
    expect(() => native.loraForward({ ...lora, W: u(3) })).toThrow(/argument 'W' has 3 elements, expected 4 \(\[out, in\] = \[2, 2\]\)/);
    expect(() => native.gemm({ M: 2, N: 2, K: 2, A: f(4), B: new Int32Array(4), C: f(4) }))
      .toThrow(/argument 'B' must be a Float32Array, a Uint16Array \(bf16\) or a device buffer, got an Int32Array/);
  });
});

describe("ops over bf16 weights", () => {
  test("linear with a frozen bf16 weight: forward and dX as with the rounded float32 weight; no dW", () => {
    const { h, r } = bf16(randn(6 * 10, 21, 0.3));
    const W16 = new Parameter([6, 10], new Storage("cpu", "bf16", h, h.length, "view"));
    const W32 = new Parameter([6, 10], new Storage("cpu", "f32", r, r.length, "view"));
    const b = new Parameter([6]);
    b.copyFrom(randn(6, 22));
    W16.requiresGrad = W32.requiresGrad = false;
    const grads = (W: Parameter) => {
      const x = Tensor.from([3, 4, 10], randn(120, 23));
      x.requiresGrad = true;
      const y = ops.linear(x, W, b);
      const out = Float32Array.from(y.toHost());
      ops.weightedSum(y, randn(y.size, 24)).backward();
      const g = [out, Float32Array.from(x.grad!.toHost()), Float32Array.from(b.grad!.toHost())];
      b.grad = null;
      return g;
    };
    const want = grads(W32), got = grads(W16);
    got.forEach((g, i) => expect(same(g, want[i])).toBe(true));
    expect(W16.grad).toBeNull();
  });

  test("a bf16 weight or table that requires grad fails its backward clearly", () => {
    const { h } = bf16(randn(12, 25));
    const W = new Parameter([3, 4], new Storage("cpu", "bf16", h, h.length, "view"));
    const x = Tensor.from([2, 4], randn(8, 26));
    const y = ops.linear(x, W, null, "encoder.query");
    expect(() => ops.weightedSum(y, randn(6, 27)).backward()).toThrow(TunekitError);
    const y2 = ops.linear(x, W, null, "encoder.query");
    expect(() => ops.weightedSum(y2, randn(6, 27)).backward()).toThrow(/Linear 'encoder.query': the weight is stored as bf16 and requires grad; full fine-tuning needs fp32/);
    const e = ops.embedding(Int32Array.from([0, 2]), [2], W);
    expect(() => ops.weightedSum(e, randn(8, 28)).backward()).toThrow(FROZEN);
    // Without a gradient asked for, the same weight serves inference.
    expect(noGrad(() => ops.linear(x, W, null).shape)).toEqual([2, 3]);
  });
});

/** The 2-D body weights the checkpoint held (the ones dtype "bf16" keeps in bf16), and the rest. */
function split(m: PreTrainedModel): { matrices: [string, Parameter][]; rest: [string, Parameter][] } {
  const body = new Set(m.body.parameters()), fresh = new Set(m.loadReport?.initialized ?? []);
  const isMatrix = (n: string, p: Parameter) => body.has(p) && p.shape.length === 2 && !fresh.has(m.fullName(n)) && !n.includes(".lora_");
  const all = [...m.namedParameters()];
  return { matrices: all.filter(([n, p]) => isMatrix(n, p)), rest: all.filter(([n, p]) => !isMatrix(n, p)) };
}

/** Rounds the body matrices of an f32 model to bf16 values in place (the reference for a bf16 load). */
function roundMatrices(m: PreTrainedModel): void {
  for (const [, p] of split(m).matrices) p.copyFrom(bf16(Float32Array.from(p.toHost())).r);
}

/** n SST-2 sentences cut to the shortest one's length (at most 24 tokens): a batch without padding. */
async function mlmInputs(dir: string, n = 4): Promise<ModelInputs> {
  const tok = await AutoTokenizer.fromPretrained(dir);
  const rows = await Promise.all(sst2Head(n).map(async (r) => (await tok.encode(r.text)).input_ids));
  const T = Math.min(24, ...rows.map((r) => r.length));
  return { inputIds: Int32Array.from(rows.flatMap((r) => r.slice(0, T))), batchSize: n, seqLen: T };
}
const logitsOf = (m: PreTrainedModel, x: ModelInputs) =>
  noGrad(() => Float32Array.from((m as unknown as { forward(x: ModelInputs): { logits: Tensor } }).forward(x).logits.toHost()));

describe("fromPretrained(dir, { dtype: 'bf16' })", () => {
  test.each([
    ["BERT (brown-bert, masked LM, tied decoder)", BROWN_BERT, AutoModelForMaskedLM],
    ["GPT-2 (gpt2-tiny-random, causal LM, lm_head = wte)", GPT2, AutoModelForCausalLM],
  ] as const)("%s: body matrices bf16, the rest f32; logits equal the rounded f32 model's on every ISA, close to the f32 model's", async (_, dir, Auto) => {
    const m16 = await Auto.fromPretrained(dir, { ...quiet, dtype: "bf16" });
    const m32 = await Auto.fromPretrained(dir, quiet);
    const { matrices, rest } = split(m16);
    expect(matrices.length).toBeGreaterThanOrEqual(10);
    expect(matrices.every(([, p]) => p.dtype === "bf16" && p.storage.bytes === 2 * p.size)).toBe(true);
    expect(rest.every(([, p]) => p.dtype === "f32")).toBe(true);
    expect(rest.some(([n]) => n.endsWith("LayerNorm.weight") || n.endsWith("ln_f.weight"))).toBe(true);
    const x = await mlmInputs(dir);
    const full = logitsOf(m32, x);
    roundMatrices(m32);
    for (const isa of ISAS)
      for (const precision of precisions()) {
        native.setMatmulPrecision(precision);
        try {
          const [got, want] = withIsa(isa, () => [logitsOf(m16, x), logitsOf(m32, x)]);
          expect([isa, precision, same(got, want)]).toEqual([isa, precision, true]);
        } finally {
          native.setMatmulPrecision("fp32");
        }
      }
    // Against the unrounded float32 model: bf16 weights (8 bits of mantissa) move the logits a little.
    const got = logitsOf(m16, x);
    let scale = 0;
    for (const v of full) scale = Math.max(scale, Math.abs(v));
    expect(maxAbsDiff(got, full) / scale).toBeLessThan(0.03);
    expect(maxAbsDiff(got, full)).toBeGreaterThan(0);
  });

  test("the base costs 2 bytes a parameter (native.memoryStats before/after loading); f32 costs 4", () => {
    // A fresh process (the compiled dist/, as isolation.test.ts), so no other test's garbage is collected
    // between the readings; gc() before each one.
    const script = `
      const { native, AutoModelForSequenceClassification } = require(${JSON.stringify(path.join(__dirname, "..", "dist", "index.js"))});
      const bytes = () => { global.gc(); return native.memoryStats().bytes; };
      (async () => {
        const b0 = bytes();
        const m16 = await AutoModelForSequenceClassification.fromPretrained(${JSON.stringify(BROWN_BERT)}, { warn: null, numLabels: 2, dtype: "bf16" });
        const b1 = bytes();
        const m32 = await AutoModelForSequenceClassification.fromPretrained(${JSON.stringify(BROWN_BERT)}, { warn: null, numLabels: 2 });
        const b2 = bytes();
        let nMat = 0, nRest = 0;
        for (const p of m16.parameters()) if (p.dtype === "bf16") nMat += p.size; else nRest += p.size;
        process.stdout.write(JSON.stringify({ b0, b1, b2, nMat, nRest, f32: m32.parameters().every((p) => p.dtype === "f32") }));
      })();`;
    const r = spawnSync(process.execPath, ["--expose-gc", "-e", script], { encoding: "utf8", timeout: 120000 });
    expect(r.stderr).toBe("");
    const { b0, b1, b2, nMat, nRest, f32 } = JSON.parse(r.stdout);
    expect(nMat / (nMat + nRest)).toBeGreaterThan(0.97); // the body's matrices are nearly all of a BERT
    expect(b1 - b0).toBe(2 * nMat + 4 * nRest);
    expect(b2 - b1).toBe(4 * (nMat + nRest));
    expect(f32).toBe(true);
  });

  test("a dtype other than f32 / bf16 is refused", async () => {
    await expect(AutoModelForMaskedLM.fromPretrained(BROWN_BERT, { ...quiet, dtype: "fp16" as "bf16" })).rejects.toThrow(
      /fromPretrained: dtype must be "f32" or "bf16" \(HF's torch_dtype float32 \/ bfloat16\), got "fp16"/);
  });

  test("Module.to packs one arena per dtype and keeps every value", async () => {
    const m = await AutoModelForMaskedLM.fromPretrained(BROWN_BERT, { ...quiet, dtype: "bf16" });
    const x = await mlmInputs(BROWN_BERT, 2);
    const before = logitsOf(m, x);
    m.to("cpu");
    expect(m.arenas.map((a) => a.storage.dtype).sort()).toEqual(["bf16", "f32"]);
    const { matrices, rest } = split(m);
    const bf = m.arenas.find((a) => a.storage.dtype === "bf16")!;
    expect(bf.length).toBe(matrices.reduce((s, [, p]) => s + p.size, 0));
    expect(m.arenas.find((a) => a.storage.dtype === "f32")!.length).toBe(rest.reduce((s, [, p]) => s + p.size, 0));
    expect(matrices.every(([, p]) => p.storage.origin === "view" && p.dtype === "bf16")).toBe(true);
    expect(same(logitsOf(m, x), before)).toBe(true);
  });
});

interface Example { ids: number[]; label: number }
function collate(f: Example[]): TaskBatch {
  const T = Math.max(...f.map((e) => e.ids.length));
  const inputIds = new Int32Array(f.length * T), attentionMask = new Uint8Array(f.length * T);
  f.forEach((e, b) => e.ids.forEach((id, t) => { inputIds[b * T + t] = id; attentionMask[b * T + t] = 1; }));
  return { inputIds, attentionMask, batchSize: f.length, seqLen: T, labels: Int32Array.from(f.map((e) => e.label)) };
}

describe("training on a bf16 base", () => {
  let data: Example[];
  let tmp: string;
  beforeAll(async () => {
    const tok = await AutoTokenizer.fromPretrained(BROWN_BERT);
    const rows = sst2Head(48);
    const enc = await tok.encodeBatch(rows.map((r) => r.text), { truncation: true, maxLength: 32 });
    data = rows.map((r, i) => ({ ids: enc.input_ids[i], label: r.label }));
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-bf16w-"));
  });
  afterAll(() => fs.rmSync(tmp, { recursive: true, force: true }));

  /** LoRA (query, value) + the head on 48 SST-2 rows, 4 epochs: the loss before and after, the model. */
  const loraRun = async (base: "bf16" | "f32 rounded") => {
    const model = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 2, dtype: base === "bf16" ? "bf16" : "f32" });
    if (base !== "bf16") roundMatrices(model);
    applyLora(model, { r: 8, alpha: 16, targetModules: ["query", "value"] });
    const trainer = new Trainer({ model, train: data, eval: data, collate, learningRate: 1e-2, epochs: 4, batchSize: 8, progress: false, seed: 3 });
    const before = trainer.evaluate().loss as number;
    await trainer.train();
    return { model, before, after: trainer.evaluate().loss as number };
  };

  test("LoRA learns on a bf16 base exactly as on the rounded f32 base; the base stays bf16 and bit-identical; PEFT files round-trip", async () => {
    const { model, before, after } = await loraRun("bf16");
    const { matrices } = split(model);
    const lora = [...model.namedParameters()].filter(([n]) => n.includes("lora_"));
    expect(lora.length).toBe(16);
    expect(lora.every(([, p]) => p.dtype === "f32" && p.requiresGrad)).toBe(true);
    expect([...model.namedParameters()].filter(([, p]) => p.requiresGrad).every(([, p]) => p.dtype === "f32")).toBe(true);
    expect(before).toBeGreaterThan(0.68);
    expect(after).toBeLessThan(0.6);
    // The same run over float32 weights holding the same values: the same losses and adapters, bit for bit.
    const ref = await loraRun("f32 rounded");
    expect([ref.before, ref.after]).toEqual([before, after]);
    const refParams = new Map(ref.model.namedParameters());
    for (const [n, p] of lora) expect([n, same(p.toHost(), refParams.get(n)!.toHost())]).toEqual([n, true]);
    const fresh = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 2, dtype: "bf16" });
    const bits = (p: Parameter) => Buffer.from(new Uint8Array((p.storage.handle as Uint16Array).buffer, (p.storage.handle as Uint16Array).byteOffset, 2 * p.size));
    const baseBits = split(fresh).matrices.map(([, p]) => bits(p));
    // The base never changed: same dtype, same bits, 2 bytes a parameter.
    matrices.forEach(([n, p], i) => {
      expect([n, p.dtype, p.storage.bytes]).toEqual([n, "bf16", 2 * p.size]);
      expect([n, bits(p).equals(baseBits[i])]).toEqual([n, true]);
    });
    // saveAdapter / loadAdapter onto another bf16 base: the same predictions.
    const x = collate(data.slice(0, 8));
    const want = logitsOf(model, x);
    saveAdapter(model, path.join(tmp, "adapter"));
    const other = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 2, dtype: "bf16" });
    loadAdapter(other, path.join(tmp, "adapter"));
    expect(same(logitsOf(other, x), want)).toBe(true);
  });

  test("mergeAndUnload on a bf16 base merges in f32 and rounds once to bf16; savePretrained writes BF16 by default", async () => {
    const model = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 2, dtype: "bf16" });
    applyLora(model, { r: 4, alpha: 8, targetModules: ["query"] });
    const layer = [...model.namedParameters()];
    const get = (n: string) => layer.find(([k]) => k === n)![1];
    const q = "bert.encoder.layer.1.attention.self.query";
    get(`${q}.lora_B.weight`).copyFrom(randn(128 * 4, 31, 0.05));
    const W0 = Float32Array.from(get(`${q}.weight`).toHost()), A = get(`${q}.lora_A.weight`).toHost(), B = get(`${q}.lora_B.weight`).toHost();
    const x = collate(data.slice(0, 8));
    const unmerged = logitsOf(model, x);
    mergeAndUnload(model);
    const W = get(`${q}.weight`);
    expect(W.dtype).toBe("bf16");
    // Reference: W0 + 2·B·A in float64, rounded to bf16. The kernel sums in float32 first, so a value may
    // land one bf16 step away where float32 and float64 round to different sides of a tie.
    const ref = new Float32Array(W0.length);
    for (let o = 0; o < 128; o++)
      for (let i = 0; i < 128; i++) {
        let d = 0;
        for (let k = 0; k < 4; k++) d += B[o * 4 + k] * A[k * 128 + i];
        ref[o * 128 + i] = W0[o * 128 + i] + 2 * d;
      }
    const want = bf16(ref).r, got = W.toHost();
    let steps = 0;
    for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) {
      steps++;
      expect(Math.abs(got[i] - want[i])).toBeLessThanOrEqual(Math.abs(want[i]) / 128);
    }
    expect(steps).toBeLessThan(want.length / 100);
    expect(same(got, W0)).toBe(false);
    expect(maxAbsDiff(logitsOf(model, x), unmerged)).toBeLessThan(0.02);
    // Saved in BF16 (config says bfloat16): the bf16 weights bit for bit; reloading as bf16 gives the same model.
    const dir = path.join(tmp, "merged");
    await model.savePretrained(dir);
    const file = readSafetensors(path.join(dir, "model.safetensors"));
    expect(new Set([...file.tensors.values()].map((t) => t.dtype))).toEqual(new Set(["BF16"]));
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, "config.json"), "utf8"));
    expect([cfg.dtype, cfg.torch_dtype]).toEqual(["bfloat16", "bfloat16"]);
    expect(same(file.tensors.get(`${q}.weight`)!.data as Float32Array, Float32Array.from(W.toHost()))).toBe(true);
    const back = await AutoModelForSequenceClassification.fromPretrained(dir, { ...quiet, dtype: "bf16" });
    expect(same(Float32Array.from(split(back).matrices.find(([n]) => n === `${q}.weight`)![1].toHost()), Float32Array.from(W.toHost()))).toBe(true);
    // F32 on request: every value exact.
    await model.savePretrained(path.join(tmp, "merged-f32"), { dtype: "F32" });
    expect(JSON.parse(fs.readFileSync(path.join(tmp, "merged-f32", "config.json"), "utf8")).torch_dtype).toBe("float32");
  });

  test("a checkpoint of LoRA training on a bf16 base resumes into the same run; the base stays bf16", async () => {
    // The resumed run starts from other lora_A values (another seed): only the checkpoint makes it the same run.
    const run = async (outputDir: string, resumeFrom?: string) => {
      const model = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 2, dtype: "bf16" });
      applyLora(model, { r: 4, alpha: 8, targetModules: ["query", "value"], seed: resumeFrom ? 99 : 1 });
      const trainer = new Trainer({ model, train: data.slice(0, 32), collate, learningRate: 1e-2, maxSteps: 6, batchSize: 8, progress: false, seed: 3, outputDir, saveSteps: 3, resumeFrom });
      await trainer.train();
      return model;
    };
    const full = await run(path.join(tmp, "run-full"));
    const resumed = await run(path.join(tmp, "run-resumed"), path.join(tmp, "run-full", "checkpoint-3"));
    const want = new Map(full.namedParameters());
    for (const [n, p] of resumed.namedParameters()) {
      expect([n, p.dtype]).toEqual([n, want.get(n)!.dtype]);
      expect([n, same(Float32Array.from(p.toHost()), Float32Array.from(want.get(n)!.toHost()))]).toEqual([n, true]);
    }
    expect(split(resumed).matrices.every(([, p]) => p.dtype === "bf16")).toBe(true);
  });

  test("full fine-tuning of a bf16 model is refused at the Trainer / optimizer", async () => {
    const model = await AutoModelForSequenceClassification.fromPretrained(BROWN_BERT, { ...quiet, numLabels: 2, dtype: "bf16" });
    const make = () => new Trainer({ model, train: data, collate, epochs: 1, progress: false });
    expect(make).toThrow(TunekitError);
    expect(make).toThrow(/AdamW: parameter 'bert.embeddings.word_embeddings.weight' is stored as bf16 and requires grad; full fine-tuning needs fp32 weights/);
    expect(() => new AdamW(paramGroups(model, { lr: 1e-3 }))).toThrow(FROZEN);
    expect(() => new Trainer({ model, train: data, collate, epochs: 1, progress: false, gradualUnfreezing: true })).toThrow(FROZEN);
    // A frozen body trains (only the f32 head).
    const r = await new Trainer({ model, train: data.slice(0, 16), collate, epochs: 1, batchSize: 8, progress: false, freeze: { body: true } }).train();
    expect(Number.isFinite(r.trainLoss)).toBe(true);
    expect(split(model).matrices.every(([, p]) => p.dtype === "bf16" && p.grad === null)).toBe(true);
  });
});

// On the device: in a process of its own with TUNEKIT_CUDA_LIB (the library is opened once per process), as
// test/device.test.ts; without a GPU that library is the emulator build of cuda/*.cu (npm run build:cuda-emu).
const emulator = path.join(__dirname, "..", "build-cuda-emu", "plain", "libtunekit_cuda.so");
const cudaLib = process.env.TUNEKIT_CUDA_LIB || emulator;
const haveCuda = fs.existsSync(cudaLib);
const cudaReason = `no CUDA library at ${cudaLib}: run npm run build:cuda-emu (the emulator build) or set TUNEKIT_CUDA_LIB`;
(haveCuda || process.env.CI ? describe : describe.skip)(haveCuda ? "bf16 weights on the device (CUDA backend)" : `bf16 weights on the device [skipped: ${cudaReason}]`, () => {
  const script = `
    const dist = ${JSON.stringify(path.join(__dirname, "..", "dist"))};
    const { native, AutoModelForSequenceClassification, applyLora } = require(dist);
    const { noGrad } = require(dist + "/tensor/autograd.js");
    const { AdamW, paramGroups } = require(dist + "/train/optimizer.js");
    const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
    const batch = { inputIds: Int32Array.from([2, 100, 200, 300, 3, 2, 150, 250, 3, 0]), attentionMask: Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 0]), batchSize: 2, seqLen: 5, labels: Int32Array.from([0, 1]) };
    const load = () => AutoModelForSequenceClassification.fromPretrained(${JSON.stringify(BROWN_BERT)}, { warn: null, numLabels: 2, dtype: "bf16" });
    const logits = (m) => noGrad(() => Array.from(m.forward(batch).logits.toHost()));
    const lora = async (device) => {  // two AdamW steps of LoRA (query, value) + head on the bf16 base
      const m = await load();
      applyLora(m, { r: 4, alpha: 8, targetModules: ["query", "value"] });
      m.to(device).train();
      const opt = new AdamW(paramGroups(m, { lr: 1e-2 })), losses = [];
      for (let s = 0; s < 2; s++) {
        const o = m.forward(batch);
        losses.push(o.loss.item());
        o.loss.backward();
        opt.update(1);
        opt.zeroGrad();
      }
      const bf16 = [...m.namedParameters()].filter(([, p]) => p.dtype === "bf16");
      return { losses, bf16: bf16.length, onDevice: bf16.every(([, p]) => p.device === device), lora: [...m.namedParameters()].filter(([n]) => n.includes("lora_B")).map(([, p]) => Array.from(p.toHost())) };
    };
    (async () => {
      if (!native.cudaAvailable()) throw new Error(native.cudaInfo().reason);
      const m = await load();
      const cpu = logits(m);
      m.to("cuda");
      const arenas = m.arenas.map((a) => a.storage.dtype + "@" + a.storage.device).sort();
      const cuda = logits(m);
      native.setMatmulPrecision("bf16");  // the tensor-core GEMM reads the bf16 weights as stored
      const cores = logits(m);
      native.setMatmulPrecision("fp32");
      const a = await lora("cpu"), b = await lora("cuda");
      const loraDiff = Math.max(...a.lora.map((w, i) => maxDiff(w, b.lora[i])));
      process.stdout.write(JSON.stringify({ arenas, scale: Math.max(...cpu.map(Math.abs)), fp32: maxDiff(cuda, cpu), cores: maxDiff(cores, cpu), lossesCpu: a.losses, lossesCuda: b.losses, bf16: b.bf16, onDevice: b.onDevice, loraDiff }));
    })().catch((e) => { process.stdout.write(JSON.stringify({ error: String(e) })); });`;
  type R = { error?: string; arenas: string[]; scale: number; fp32: number; cores: number; lossesCpu: number[]; lossesCuda: number[]; bf16: number; onDevice: boolean; loraDiff: number };
  let r: R;
  beforeAll(() => {
    if (!haveCuda) throw new Error(`${cudaReason} (CI must build it)`);
    const c = spawnSync(process.execPath, ["-e", script], { env: { ...process.env, TUNEKIT_CUDA_LIB: cudaLib }, encoding: "utf8", timeout: 600_000 });
    r = JSON.parse(c.stdout || JSON.stringify({ error: c.stderr }));
    if (r.error) throw new Error(r.error);
  }, 660_000);

  test("a bf16 model moved to the device keeps a bf16 and an f32 arena there and gives the CPU's logits", () => {
    expect(r.arenas).toEqual(["bf16@cuda", "f32@cuda"]);
    expect(r.scale).toBeGreaterThan(0);
    expect(r.fp32).toBeLessThan(1e-4 * r.scale);
    // bf16 products: the activations are rounded to bf16 for the tensor cores, so close, not equal
    expect(r.cores).toBeLessThan(2e-2 * r.scale);
    expect(r.cores).toBeGreaterThan(r.fp32);
  });
  test("LoRA steps on a bf16 base on the device equal the CPU's; the base stays bf16 there", () => {
    expect(r.bf16).toBeGreaterThan(20);
    expect(r.onDevice).toBe(true);
    r.lossesCuda.forEach((v, i) => expect(Math.abs(v - r.lossesCpu[i])).toBeLessThan(1e-5));
    expect(r.loraDiff).toBeLessThan(1e-4);
  });
});

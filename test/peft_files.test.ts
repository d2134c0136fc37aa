// PEFT adapter files: what saveAdapter writes is byte-for-byte what Python's json.dumps writes for
// peft v0.10's 24 config keys, with PEFT's tensor names and shapes; save → load reproduces the model
// exactly; adapters made in Python (peft 0.21-style config) load and give the outputs plain torch
// computed (test/fixtures/golden_peft.py); bad adapter directories fail with one clear error each and
// leave the model untouched. Models: the embedded models/brown-bert and test/fixtures/models/gpt2-tiny-random;
// the Python-made adapters of test/fixtures/peft fit bert-tiny's shapes, so they go on a random model of its
// config (test/fixtures/configs) where only the file handling counts, and on the real bert-tiny-mlm and
// gpt2-small-random of ../shared where the outputs are compared with PyTorch's.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModel, AutoModelForMaskedLM, AutoModelForCausalLM } from "../lib/models/auto";
import { PreTrainedModel, configFrom } from "../lib/models/pretrained";
import type { ModelConfig } from "../lib/models/config";
import { ModelInputs } from "../lib/models/inputs";
import { Linear } from "../lib/nn/layers";
import { Generator } from "../lib/tensor/ops";
import { Tensor } from "../lib/tensor/tensor";
import { noGrad } from "../lib/tensor/autograd";
import { readSafetensors, saveSafetensors } from "../lib/io/safetensors";
import type { StateDict } from "../lib/io/dtypes";
import { CheckpointError } from "../lib/errors";
import { applyLora, isLoraModel, loraSummary, LoraOptions } from "../lib/peft/lora";
import { LoraLinear } from "../lib/peft/lora_linear";
import { saveAdapter, loadAdapter } from "../lib/peft/adapter_files";
import { modelDir, testShared } from "./shared";
import { BROWN_BERT, FIXTURES as FIXTURE_DIR, fixtureModel, maxAbsDiff, randn } from "./helpers";

const quiet = { warn: null };
const FIXTURES = path.join(FIXTURE_DIR, "peft");
const BERT_TINY_CONFIG = path.join(FIXTURE_DIR, "configs", "bert-tiny-mlm.json");
const GPT2 = fixtureModel("gpt2-tiny-random");
const golden = JSON.parse(fs.readFileSync(path.join(FIXTURES, "golden.json"), "utf8"));
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-peft-"));
const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** BertForSequenceClassification as transformers builds it (pooler → dropout → classifier), for the head tests. */
class BertSeqCls extends PreTrainedModel {
  readonly architecture: string = "BertForSequenceClassification";
  readonly classifier: Linear;
  constructor(config: ModelConfig) {
    super(config, false, new Generator(42), true);
    this.classifier = this.child("classifier", new Linear(config.hiddenSize, 2, true, "classifier"));
  }
  forward(x: ModelInputs) {
    const o = this.body.forward(x);
    return { ...o, logits: this.classifier.forward(o.poolerOutput!) };
  }
}
/**
 * Random weights in bert-tiny's shapes (its config.json, the vocabulary cut to 8,192 rows: no adapter touches the
 * embeddings), saved once to a directory: initialising a model is slow under jest, loading one is not.
 */
let bertTinyRandom: string;
beforeAll(async () => {
  bertTinyRandom = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-peft-bert-tiny-"));
  await new BertSeqCls(configFrom(BERT_TINY_CONFIG, { vocabSize: 8192 })).initAll(42).savePretrained(bertTinyRandom);
});
/** On `dir`'s weights (a new classifier when `dir` has none; cls.* unused); by default bert-tiny's shapes, random. */
function seqCls(dir = bertTinyRandom): BertSeqCls {
  const m = new BertSeqCls(configFrom(dir));
  m.loadWeights(dir, quiet);
  return m.eval();
}

type Out = { lastHiddenState: Tensor; poolerOutput?: Tensor; logits?: Tensor; loss?: Tensor };
const run = (m: PreTrainedModel, x: ModelInputs & { labels?: Int32Array }) =>
  noGrad(() => (m.eval() as unknown as { forward(x: ModelInputs): Out }).forward(x));
// Ids valid in brown-bert's vocabulary (8,192) and bert-tiny's; [CLS] … [SEP] padding.
const bertX = { inputIds: Int32Array.from([2, 2009, 1005, 1055, 1037, 5951, 3, 0, 2, 6314, 1998, 5405, 3, 0, 0, 0]), attentionMask: [1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 0, 0, 0], batchSize: 2, seqLen: 8 };
const gptX = { inputIds: Int32Array.from([39, 68, 297, 78, 476]), batchSize: 1, seqLen: 5 };

/** Gives every LoRA factor (and trainable bias / head) non-trivial values, as training would. */
function perturb(m: PreTrainedModel, seed: number) {
  let k = seed;
  for (const p of m.parameters()) {
    if (!p.requiresGrad) continue;
    const noise = randn(p.size, k++, 0.05);
    for (let i = 0; i < p.size; i++) p.toHost()[i] += noise[i];
  }
}

const fromGolden = (g: { input_ids: number[][]; attention_mask: number[][] }) => ({
  inputIds: Int32Array.from(g.input_ids.flat()), attentionMask: g.attention_mask.flat(), batchSize: g.input_ids.length, seqLen: g.input_ids[0].length,
});

function copyDir(src: string): string {
  const d = tmp();
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(d, f));
  return d;
}
const editConfig = (dir: string, edit: (c: Record<string, unknown>) => void) => {
  const f = path.join(dir, "adapter_config.json"), c = JSON.parse(fs.readFileSync(f, "utf8"));
  edit(c);
  fs.writeFileSync(f, JSON.stringify(c));
};
const editTensors = (dir: string, edit: (t: StateDict) => void) => {
  const f = path.join(dir, "adapter_model.safetensors"), t = readSafetensors(f).tensors;
  edit(t);
  saveSafetensors(f, t);
};

describe("PEFT adapter files", () => {
  test("saveAdapter writes Python's exact adapter_config.json (v0.10 keys) and PEFT's tensor names", async () => {
    const gpt = await AutoModelForCausalLM.fromPretrained(GPT2, quiet);
    applyLora(gpt, { r: 8, alpha: 16 });
    const d1 = tmp();
    expect(saveAdapter(gpt, d1, { baseModelNameOrPath: "gpt2-small-random" })).toEqual([path.join(d1, "adapter_model.safetensors"), path.join(d1, "adapter_config.json")]);
    expect(fs.readFileSync(path.join(d1, "adapter_config.json"), "utf8")).toBe(golden.v010_config_text.gpt2_clm);
    const st = readSafetensors(path.join(d1, "adapter_model.safetensors"));
    expect(st.metadata).toEqual({ format: "pt" });
    // Conv1D c_attn: A [r, in], B [out, r], as for a Linear (HF_FORMATS §3).
    expect([...st.tensors].map(([k, t]) => [k, t.shape])).toEqual([0, 1].flatMap((i) => [
      [`base_model.model.transformer.h.${i}.attn.c_attn.lora_A.weight`, [8, 16]],
      [`base_model.model.transformer.h.${i}.attn.c_attn.lora_B.weight`, [48, 8]],
    ]));

    // Task-less model: auto_mapping names the class; non-ASCII path, tiny float, float alpha, rsLoRA, lora_only bias.
    const mlm = await AutoModelForMaskedLM.fromPretrained(BROWN_BERT, quiet);
    applyLora(mlm, { r: 2, alpha: 12.5, dropout: 1e-5, targetModules: ["query", "attention.self.key"], bias: "lora_only", useRslora: true });
    const d2 = tmp();
    saveAdapter(mlm, d2, { baseModelNameOrPath: "/tmp/modèles/bert-tiny" });
    expect(fs.readFileSync(path.join(d2, "adapter_config.json"), "utf8")).toBe(golden.v010_config_text.bert_mlm);
    const keys = [...readSafetensors(path.join(d2, "adapter_model.safetensors")).tensors.keys()];
    expect(keys).toEqual([0, 1, 2, 3].flatMap((i) => ["key", "query"].flatMap((n) => ["base_layer.bias", "lora_A.weight", "lora_B.weight"].map((s) => `base_model.model.bert.encoder.layer.${i}.attention.self.${n}.${s}`))));
    // By default base_model_name_or_path is the directory the model was loaded from.
    saveAdapter(mlm, d2);
    expect(JSON.parse(fs.readFileSync(path.join(d2, "adapter_config.json"), "utf8")).base_model_name_or_path).toBe(BROWN_BERT);
  });

  testShared("Python-made adapters on bert-tiny-mlm and gpt2-small-random reproduce plain torch's outputs (BERT seq-cls head, GPT-2 Conv1D)", async () => {
    const g = golden.bert;
    const m = seqCls(modelDir("bert-tiny-mlm"));
    const s = loadAdapter(m, path.join(FIXTURES, "bert-tiny-seqcls-lora"));
    expect(s.layers).toEqual(Object.keys(g.scaling));
    expect(s.modulesToSave).toEqual(["classifier"]);
    expect(s.config.taskType).toBe("SEQ_CLS");
    expect([...m.namedModules()].filter(([, l]) => l instanceof LoraLinear).map(([n, l]) => [n, (l as LoraLinear).scaling])).toEqual(Object.entries(g.scaling));
    // Inference mode, as PEFT loads by default: nothing trains.
    expect(s.trainableParameters).toBe(0);
    const o = run(m, fromGolden(g));
    expect(maxAbsDiff(o.lastHiddenState.toHost(), g.last_hidden_state)).toBeLessThan(1e-4);
    expect(maxAbsDiff(o.poolerOutput!.toHost(), g.pooled)).toBeLessThan(1e-4);
    expect(maxAbsDiff(o.logits!.toHost(), g.logits)).toBeLessThan(1e-4);
    // Re-saved, the tensors are the fixture's and the config is what Python writes for it.
    const d = tmp();
    saveAdapter(m, d, { baseModelNameOrPath: "bert-tiny-mlm" });
    expect(fs.readFileSync(path.join(d, "adapter_config.json"), "utf8")).toBe(golden.v010_config_text.bert_seqcls);
    const mine = readSafetensors(path.join(d, "adapter_model.safetensors")).tensors, theirs = readSafetensors(path.join(FIXTURES, "bert-tiny-seqcls-lora", "adapter_model.safetensors")).tensors;
    expect([...mine.keys()].sort()).toEqual([...theirs.keys()].sort());
    for (const [k, t] of theirs) expect([k, bits(mine.get(k)!.data as Float32Array).equals(bits(t.data as Float32Array))]).toEqual([k, true]);

    const gg = golden.gpt2;
    const gpt = await AutoModelForCausalLM.fromPretrained(modelDir("gpt2-small-random"), quiet);
    const gs = loadAdapter(gpt, path.join(FIXTURES, "gpt2-clm-lora"), { trainable: true });
    expect(gs.layers).toEqual(Object.keys(gg.scaling));
    expect(gs.trainableParameters).toBe(2 * (4 * 128 + 384 * 4) + 2 * (4 * 512 + 128 * 4));
    const x = fromGolden(gg);
    const labels = Int32Array.from(gg.input_ids.flat().map((id: number, i: number) => (x.attentionMask[i] ? id : -100)));
    const go = run(gpt, { ...x, labels });
    expect(maxAbsDiff(go.lastHiddenState.toHost(), gg.last_hidden_state)).toBeLessThan(1e-4);
    expect(Math.abs(go.loss!.item() - gg.lm_loss)).toBeLessThan(1e-4);
    const V = go.logits!.shape[2], first16 = new Float32Array(x.batchSize * x.seqLen * 16);
    for (let r = 0; r < x.batchSize * x.seqLen; r++) first16.set(go.logits!.toHost().subarray(r * V, r * V + 16), r * 16);
    expect(maxAbsDiff(first16, gg.logits_first16)).toBeLessThan(1e-4);
  });

  test.each([
    ["BERT MLM, bias all (tied decoder bias alias included), excluded modules", "bert-mlm", { bias: "all", r: 4, targetModules: ["query", "dense"], excludeModules: ["attention.output.dense", "transform.dense"] }],
    ["GPT-2 LM, a Conv1D module saved whole (modules_to_save), lora_only bias", "gpt2", { bias: "lora_only", modulesToSave: ["h.1.mlp.c_fc"] }],
    ["BERT seq-cls head, rsLoRA, regex target", "seqcls", { useRslora: true, r: 4, targetModules: ".*layer\\.1\\..*(query|key|value)" }],
  ] as const)("save → load round trip is exact: %s", async (_label, which, opts) => {
    const make = async () => (which === "seqcls" ? seqCls(BROWN_BERT) : which === "bert-mlm" ? await AutoModelForMaskedLM.fromPretrained(BROWN_BERT, quiet) : await AutoModelForCausalLM.fromPretrained(GPT2, quiet));
    const x = which === "gpt2" ? gptX : bertX;
    const a = await make();
    applyLora(a, opts as LoraOptions);
    perturb(a, 11);
    const trainableA = [...a.namedParameters()].filter(([, p]) => p.requiresGrad).map(([n]) => n);
    const d = tmp();
    saveAdapter(a, d);
    const file = readSafetensors(path.join(d, "adapter_model.safetensors")).tensors;
    if (which === "bert-mlm") {
      // exclude_modules is not a v0.10 key: the adapted layers are listed by full name instead.
      expect(JSON.parse(fs.readFileSync(path.join(d, "adapter_config.json"), "utf8")).target_modules).toEqual(loraSummary(a).layers);
      expect(loraSummary(a).layers.map((n) => n.slice(19))).toEqual([0, 1, 2, 3].flatMap((i) => [`${i}.attention.self.query`, `${i}.intermediate.dense`, `${i}.output.dense`]));
      expect(file.has("base_model.model.bert.encoder.layer.0.attention.self.query.base_layer.bias")).toBe(true);
      expect(file.has("base_model.model.bert.embeddings.LayerNorm.bias")).toBe(true);
      expect(bits(file.get("base_model.model.cls.predictions.decoder.bias")!.data as Float32Array).equals(bits(file.get("base_model.model.cls.predictions.bias")!.data as Float32Array))).toBe(true);
    }
    if (which === "gpt2") {
      // GPT-2's c_fc is a Conv1D: saved [in, out] like its checkpoint, i.e. our [out, in] transposed.
      const t = file.get("base_model.model.transformer.h.1.mlp.c_fc.weight")!, w = [...a.namedParameters()].find(([n]) => n === "transformer.h.1.mlp.c_fc.weight")![1];
      expect(t.shape).toEqual([16, 64]);
      expect([t.data[1], t.data[64]]).toEqual([w.toHost()[16], w.toHost()[1]]);
      expect(file.has("base_model.model.transformer.h.0.attn.c_attn.base_layer.bias")).toBe(true);
    }
    if (which === "seqcls") expect([...file.keys()].filter((k) => !k.includes("lora_"))).toEqual(["base_model.model.classifier.bias", "base_model.model.classifier.weight"]);
    const b = await make();
    const s = loadAdapter(b, d, { trainable: true });
    expect([...b.namedParameters()].filter(([, p]) => p.requiresGrad).map(([n]) => n)).toEqual(trainableA);
    expect(s.trainableParameters).toBe(loraSummary(a).trainableParameters);
    const [oa, ob] = [run(a, x), run(b, x)];
    expect(bits(ob.lastHiddenState.toHost()).equals(bits(oa.lastHiddenState.toHost()))).toBe(true);
    if (oa.logits) expect(bits(ob.logits!.toHost()).equals(bits(oa.logits.toHost()))).toBe(true);
  });

  test("a head is found by its name when the task is not one PEFT knows", () => {
    class MultipleChoice extends BertSeqCls {
      override readonly architecture = "BertForMultipleChoice";
    }
    const m = new MultipleChoice(configFrom(BROWN_BERT));
    m.loadWeights(BROWN_BERT, quiet);
    const s = applyLora(m, {});
    expect([s.config.taskType, s.modulesToSave, s.config.modulesToSave]).toEqual([null, ["classifier"], ["classifier"]]);
    const d = tmp();
    saveAdapter(m, d);
    const c = JSON.parse(fs.readFileSync(path.join(d, "adapter_config.json"), "utf8"));
    expect([c.task_type, c.modules_to_save, c.auto_mapping]).toEqual([null, ["classifier"], { base_model_class: "BertForMultipleChoice", parent_library: "transformers.models.bert.modeling_bert" }]);
    expect(Object.keys(c)).toHaveLength(24);
  });

  test("bad adapter directories: one clear error each, and the model is left as it was", async () => {
    const m = seqCls();
    const src = path.join(FIXTURES, "bert-tiny-seqcls-lora");
    const fails = (dir: string, re: RegExp) => {
      expect(() => loadAdapter(m, dir)).toThrow(re);
      expect(isLoraModel(m)).toBe(false);
      expect(m.parameters().every((p) => p.requiresGrad)).toBe(true);
    };
    fails(tmp(), /no adapter_config\.json \(not a PEFT adapter directory\?\)/);
    let d = copyDir(src);
    fs.writeFileSync(path.join(d, "adapter_config.json"), "{ not json");
    fails(d, /adapter_config\.json: not valid JSON/);
    d = copyDir(src);
    editConfig(d, (c) => (c.peft_type = "IA3"));
    fails(d, /peft_type is "IA3"; tunekit loads LoRA adapters only/);
    d = copyDir(src);
    editConfig(d, (c) => delete c.peft_type);
    fails(d, /has no peft_type; not a PEFT adapter config/);
    d = copyDir(src);
    editConfig(d, (c) => (c.use_dora = true));
    fails(d, /uses DoRA \(use_dora\) = true, which tunekit does not implement/);
    d = copyDir(src);
    editConfig(d, (c) => (c.init_lora_weights = "pissa"));
    fails(d, /init_lora_weights = "pissa" rewrites the base weights/);
    d = copyDir(src);
    editConfig(d, (c) => (c.velora_config = { rank: 2 }));
    fails(d, /uses velora_config \(a LoRA variant tunekit does not implement\)/);
    d = copyDir(src);
    editConfig(d, (c) => (c.r = 0));
    fails(d, /r = 0, expected a positive integer/);
    d = copyDir(src);
    editConfig(d, (c) => (c.target_modules = ["q_lin"]));
    fails(d, /loadAdapter\(.*adapter_config\.json\): target module 'q_lin' matches no module of this model; valid Linear layer names in this model: classifier, dense, key, query, value/);
    d = copyDir(src);
    fs.rmSync(path.join(d, "adapter_model.safetensors"));
    fails(d, /no adapter_model\.safetensors \(or adapter_model\.bin\) next to adapter_config\.json/);
    d = copyDir(src);
    editTensors(d, (t) => t.delete("base_model.model.bert.encoder.layer.1.attention.self.value.lora_B.weight"));
    fails(d, /does not fit this BertForSequenceClassification \(adapter task_type SEQ_CLS\); missing 1 adapter keys: base_model\.model\.bert\.encoder\.layer\.1\.attention\.self\.value\.lora_B\.weight$/);
    d = copyDir(src);
    editTensors(d, (t) => t.set("base_model.model.bert.encoder.layer.0.attention.self.key.lora_A.weight", { dtype: "F32", shape: [4, 128], data: new Float32Array(512) }));
    fails(d, /unexpected 1 keys: base_model\.model\.bert\.encoder\.layer\.0\.attention\.self\.key\.lora_A\.weight/);
    d = copyDir(src);
    editTensors(d, (t) => t.set("bert.encoder.layer.0.attention.self.query.lora_A.weight", t.get("base_model.model.bert.encoder.layer.0.attention.self.query.lora_A.weight")!));
    fails(d, /keys must start with 'base_model\.model\.' as PEFT saves them; found bert\.encoder\.layer\.0\.attention\.self\.query\.lora_A\.weight/);
    d = copyDir(src);
    editConfig(d, (c) => (c.r = 8));
    fails(d, /adapter_model\.safetensors: weight 'base_model\.model\.bert\.encoder\.layer\.0\.attention\.self\.query\.lora_A\.weight' has shape \[4, 128\], expected \[8, 128\]/);
    d = copyDir(src);
    editTensors(d, (t) => t.set("base_model.model.classifier.bias", { dtype: "I32", shape: [2], data: new Int32Array(2) }));
    fails(d, /adapter_model\.safetensors: weight 'base_model\.model\.classifier\.bias' is stored as I32; expected a floating-point tensor/);
    // The right adapter on the wrong class: the message says which way round.
    const body = await AutoModel.fromPretrained(bertTinyRandom, quiet);
    expect(() => loadAdapter(body, src)).toThrow(/missing 8 adapter keys: base_model\.model\.encoder\.layer\.0\.attention\.self\.query\.lora_A\.weight.*unexpected 10 keys: .*the adapter was saved on a model with a head \(keys under 'bert\.'\)/);
    expect(isLoraModel(body)).toBe(false);
    // Errors are CheckpointErrors (a TunekitError), and a good load still works afterwards.
    expect(() => loadAdapter(m, tmp())).toThrow(CheckpointError);
    loadAdapter(m, src);
    expect(() => loadAdapter(m, src)).toThrow(/already has LoRA adapters/);
  });

  test("tolerated: unknown config keys, peft 0.10's bias='all' module copies, old GPT-2 mask buffers; adapter_model.bin", async () => {
    const a = seqCls();
    applyLora(a, { bias: "all" });
    perturb(a, 3);
    const d = tmp();
    saveAdapter(a, d);
    editConfig(d, (c) => Object.assign(c, { peft_version: "0.99.0", some_future_flag: { x: 1 }, exclude_modules: null, lora_bias: false }));
    // peft 0.10 with bias="all" also wrote the wrapped head's copies under their wrapper names.
    editTensors(d, (t) => {
      const bias = t.get("base_model.model.classifier.bias")!;
      t.set("base_model.model.classifier.original_module.bias", bias);
      t.set("base_model.model.classifier.modules_to_save.bias", bias);
    });
    const b = seqCls();
    loadAdapter(b, d);
    expect(bits(run(b, bertX).logits!.toHost()).equals(bits(run(a, bertX).logits!.toHost()))).toBe(true);

    // Older peft saved adapter_model.bin (torch.save); the same adapter loads from it.
    const fromBin = seqCls(), fromSt = seqCls();
    loadAdapter(fromBin, path.join(FIXTURES, "bert-tiny-seqcls-lora-bin"));
    loadAdapter(fromSt, path.join(FIXTURES, "bert-tiny-seqcls-lora"));
    expect(bits(run(fromBin, bertX).logits!.toHost()).equals(bits(run(fromSt, bertX).logits!.toHost()))).toBe(true);

    const g = await AutoModelForCausalLM.fromPretrained(GPT2, quiet);
    applyLora(g, { bias: "all", targetModules: ["c_proj"] });
    perturb(g, 5);
    const dg = tmp();
    saveAdapter(g, dg);
    editTensors(dg, (t) => t.set("base_model.model.transformer.h.0.attn.masked_bias", { dtype: "F32", shape: [], data: Float32Array.from([-1e4]) }));
    const g2 = await AutoModelForCausalLM.fromPretrained(GPT2, quiet);
    loadAdapter(g2, dg);
    expect(bits(run(g2, gptX).logits!.toHost()).equals(bits(run(g, gptX).logits!.toHost()))).toBe(true);
  });
});

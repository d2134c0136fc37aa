// Each architecture's spec (lib/models/<arch>/) against the models it builds: the names it declares
// (Linear leaves for LoRA, norms for weight decay, the layer list, tied and transposed checkpoint keys,
// HF class names) are the ones the modules really have, for every head; the one loader round-trips every
// head's state dict and checks a whole file before copying any of it; and no file outside lib/models/<arch>/
// and the registry branches on a model type.
import * as fs from "fs";
import * as path from "path";
import { parseConfig } from "../lib/models/config_json";
import type { ModelConfig } from "../lib/models/config";
import {
  AutoModel, AutoModelForMaskedLM, AutoModelForCausalLM, AutoModelForSequenceClassification,
  AutoModelForTokenClassification, AutoModelForQuestionAnswering, AutoSentenceEncoder,
} from "../lib/models/auto";
import type { PreTrainedModel } from "../lib/models/pretrained";
import { ARCHITECTURES, SUPPORTED_MODEL_TYPES, ModelType, specFor } from "../lib/models/registry";
import { layerIndex, noWeightDecay } from "../lib/models/param_rules";
import { isTransposed } from "../lib/models/checkpoint_keys";
import { Module } from "../lib/nn/module";
import { Linear, LayerNorm, RMSNorm } from "../lib/nn/layers";
import { ModuleList } from "../lib/nn/containers";
import { CheckpointError } from "../lib/errors";

const SMALL: Record<ModelType, Record<string, unknown>> = {
  bert: { model_type: "bert", vocab_size: 100, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 64 },
  roberta: { model_type: "roberta", vocab_size: 100, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 64, max_position_embeddings: 66, type_vocab_size: 1 },
  distilbert: { model_type: "distilbert", vocab_size: 100, dim: 32, n_layers: 2, n_heads: 4, hidden_dim: 64, max_position_embeddings: 64 },
  gpt2: { model_type: "gpt2", vocab_size: 100, n_embd: 32, n_layer: 2, n_head: 4, n_positions: 64 },
  // The decoders: an untied lm_head (Llama's default) with every bias, a tied one, q/k norms.
  llama: { model_type: "llama", vocab_size: 100, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64, max_position_embeddings: 64, attention_bias: true, mlp_bias: true },
  mistral: { model_type: "mistral", vocab_size: 100, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 1, intermediate_size: 64, max_position_embeddings: 64, sliding_window: 8 },
  qwen2: { model_type: "qwen2", vocab_size: 100, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64, max_position_embeddings: 64, tie_word_embeddings: true },
  qwen3: { model_type: "qwen3", vocab_size: 100, hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, intermediate_size: 64, max_position_embeddings: 64, tie_word_embeddings: false },
};
const config = (t: ModelType): ModelConfig => parseConfig(SMALL[t]);

/** Every model class this architecture has, as HF names it (classes) and built from a small config. */
function models(t: ModelType, seed = 1): [string, PreTrainedModel][] {
  const c = config(t), spec = specFor(t), o = { seed, numLabels: 3 };
  const out: [string, PreTrainedModel][] = [
    ["base", AutoModel.fromConfig(c, o)],
    ["sequenceClassification", AutoModelForSequenceClassification.fromConfig(c, o)],
  ];
  if (spec.classes.tokenClassification) out.push(["tokenClassification", AutoModelForTokenClassification.fromConfig(c, o)]);
  if (spec.classes.questionAnswering) out.push(["questionAnswering", AutoModelForQuestionAnswering.fromConfig(c, o)]);
  if (spec.classes.maskedLM) out.push(["maskedLM", AutoModelForMaskedLM.fromConfig(c, o)]);
  if (spec.classes.causalLM) out.push(["causalLM", AutoModelForCausalLM.fromConfig(c, o)]);
  return out;
}
const leaf = (name: string) => name.slice(name.lastIndexOf(".") + 1);

describe("the registry", () => {
  test("each model type's spec says it is that type; SUPPORTED_MODEL_TYPES lists them all", () => {
    expect(Object.entries(ARCHITECTURES).map(([k, s]) => [k, s.modelType])).toEqual(Object.keys(ARCHITECTURES).map((k) => [k, k]));
    expect(SUPPORTED_MODEL_TYPES).toEqual(["bert", "distilbert", "roberta", "gpt2", "llama", "mistral", "qwen2", "qwen3"]);
    expect(() => specFor("t5")).toThrow("unsupported model_type 't5'; tunekit supports bert, distilbert, roberta, gpt2, llama, mistral, qwen2, qwen3");
  });
  test("AutoModelFor* refuses an LM head the architecture lacks, naming the one it has", () => {
    expect(() => AutoModelForCausalLM.fromConfig(config("bert"))).toThrow("bert has no causal-LM head; use AutoModelForMaskedLM");
    expect(() => AutoModelForMaskedLM.fromConfig(config("gpt2"))).toThrow("gpt2 has no masked-LM head; use AutoModelForCausalLM");
    expect(() => AutoModelForMaskedLM.fromConfig(config("llama"))).toThrow("llama has no masked-LM head; use AutoModelForCausalLM");
    expect(() => AutoModelForQuestionAnswering.fromConfig(config("mistral"))).toThrow("mistral has no question-answering head in tunekit");
  });
});

describe.each(SUPPORTED_MODEL_TYPES.map((t) => [t]))("%s spec", (t) => {
  const spec = specFor(t);
  const all = models(t);

  test("HF class names: each model is its spec's class; the body sits under the spec's prefix", () => {
    for (const [kind, m] of all) {
      expect([kind, m.architecture]).toEqual([kind, spec.classes[kind as keyof typeof spec.classes]]);
      const names = [...m.namedParameters()].map(([n]) => n);
      if (!m.isBase) expect(names.filter((n) => n.startsWith(`${spec.prefix}.`)).length).toBe([...m.body.namedParameters()].length);
    }
  });

  test("lora.linear is exactly the leaf names of the Linear layers over all its models; the defaults are among them", () => {
    const leaves = new Set<string>();
    // With the other tie_word_embeddings too: an untied lm_head is a Linear (Llama family), a tied one is not.
    const c = config(t), flipped = spec.classes.causalLM ? [AutoModelForCausalLM.fromConfig({ ...c, tieWordEmbeddings: !c.tieWordEmbeddings })] : [];
    for (const m of [...all.map(([, m]) => m), ...flipped])
      for (const [n, mod] of m.namedModules()) if (mod instanceof Linear) leaves.add(leaf(n));
    expect([...spec.lora.linear].sort()).toEqual([...leaves].sort());
    for (const n of [...(spec.lora.defaultTargets ?? []), ...spec.lora.queryValue]) expect(spec.lora.linear).toContain(n);
  });

  test("no weight decay by name = HF's rule by type: biases and every LayerNorm / RMSNorm parameter, nothing else", () => {
    for (const [kind, m] of all) {
      const byType = new Set<string>();
      for (const [n, mod] of m.namedModules()) if (mod instanceof LayerNorm || mod instanceof RMSNorm) for (const [p] of mod.namedParameters(n)) byType.add(p);
      const names = [...m.namedParameters()].map(([n]) => n);
      const want = names.filter((n) => byType.has(n) || n.endsWith(".bias"));
      expect([kind, names.filter((n) => noWeightDecay(spec, n))]).toEqual([kind, want]);
    }
  });

  test("the layer pattern: layer i's parameters are layer i + 1, the embeddings 0, nothing else in the body a layer", () => {
    for (const [kind, m] of all) {
      const prefix = m.isBase ? "" : `${spec.prefix}.`;
      const list = [...m.body.namedModules()].find(([n]) => n === spec.layers.list)?.[1];
      expect(list).toBeInstanceOf(ModuleList);
      const want = new Map<string, number | null>();
      for (const [n] of m.body.namedParameters()) want.set(prefix + n, spec.layers.embeddings.some((e) => n.startsWith(`${e}.`)) ? 0 : null);
      (list as ModuleList<Module>).items.forEach((layer, i) => {
        for (const [n] of layer.namedParameters(`${spec.layers.list}.${i}`)) want.set(prefix + n, i + 1);
      });
      expect([kind, [...want.keys()].map((n) => [n, layerIndex(spec, n)])]).toEqual([kind, [...want]]);
      expect(Math.max(...[...want.values()].map((l) => l ?? 0))).toBe(m.body.numLayers);
    }
  });

  test("checkpoint keys: every transposed suffix, tied target and optional module names something real", () => {
    const keys = new Set(all.flatMap(([, m]) => [...m.namedParameters()].map(([n]) => m.fullName(n))));
    for (const s of spec.checkpoint.transposed) expect([...keys].some((k) => k.endsWith(`.${s}`))).toBe(true);
    for (const target of Object.values(spec.checkpoint.tied)) expect(keys).toContain(target);
    for (const o of spec.checkpoint.optional) expect([...keys].some((k) => k.startsWith(`${spec.prefix}.${o}.`))).toBe(true);
  });

  test("every head's state dict loads back through loadStateDict, the spec's tied copies and buffers dropped", () => {
    const fresh = models(t, 2);
    for (const [kind, a] of all) {
      const b = fresh.find(([k]) => k === kind)![1];
      const file = new Map(a.stateDict());
      // Transposed weights are [in, out] in the file.
      for (const [n, p] of a.namedParameters()) if (isTransposed(spec, n)) expect(file.get(n)!.shape).toEqual([p.shape[1], p.shape[0]]);
      const one = { dtype: "F32" as const, shape: [1], data: new Float32Array(1) };
      // A tied key the model holds as a parameter of its own (an untied lm_head) is a weight, not a copy.
      for (const k of Object.keys(spec.checkpoint.tied)) if (!file.has(k)) file.set(k, one);
      for (const k of spec.checkpoint.buffers) file.set(`${spec.prefix}.${k}`, one);
      expect([kind, b.loadStateDict(file, "test")]).toEqual([kind, { missing: [], unexpected: [] }]);
      const values = (m: PreTrainedModel) => [...m.namedParameters()].map(([n, p]) => [n, Array.from(p.toHost())]);
      expect([kind, values(b)]).toEqual([kind, values(a)]);
    }
  });
});

test("loadStateDict checks the whole file before copying: a bad last tensor leaves the model as it was", () => {
  const m = AutoModelForSequenceClassification.fromConfig(config("gpt2"), { seed: 1, numLabels: 2 });
  const src = AutoModelForSequenceClassification.fromConfig(config("gpt2"), { seed: 2, numLabels: 2 }).stateDict();
  const before = [...m.namedParameters()].map(([, p]) => Float32Array.from(p.toHost()));
  const changed = () => [...m.namedParameters()].filter(([, p], i) => !p.toHost().every((v, j) => v === before[i][j])).map(([n]) => n);
  const bad = new Map([...src]);
  bad.set("score.weight", { dtype: "F32", shape: [3, 32], data: new Float32Array(96) });
  expect(() => m.loadStateDict(bad, "bad.safetensors")).toThrow(new CheckpointError("bad.safetensors: weight 'score.weight' has shape [3, 32], expected [2, 32] for this model"));
  expect(changed()).toEqual([]);
  bad.delete("score.weight");
  expect(() => m.loadStateDict(bad, "bad.safetensors")).toThrow("bad.safetensors: required weight 'score.weight' is missing");
  // A Conv1D weight is checked in the file's layout, [in, out].
  const t = src.get("transformer.h.0.attn.c_attn.weight")!;
  expect(t.shape).toEqual([32, 96]);
  bad.set("score.weight", src.get("score.weight")!);
  bad.set("transformer.h.0.attn.c_attn.weight", { ...t, shape: [96, 32] });
  expect(() => m.loadStateDict(bad, "bad.safetensors")).toThrow("bad.safetensors: weight 'transformer.h.0.attn.c_attn.weight' has shape [96, 32], expected [32, 96] for this model");
});

test("no file outside lib/models/<arch>/ and the registry branches on a model type", () => {
  const root = path.join(__dirname, "..", "lib");
  const files: string[] = [];
  const walk = (d: string) => fs.readdirSync(d, { withFileTypes: true }).forEach((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : e.name.endsWith(".ts") && files.push(path.join(d, e.name))));
  walk(root);
  const archDirs = SUPPORTED_MODEL_TYPES.map((t) => path.join(root, "models", t) + path.sep);
  // Allowed: the tokenizer's own families (BertTokenizer, GPT2Tokenizer, RobertaTokenizer) and the CLI's
  // choice of a BERT for pre-training from scratch.
  const allowed = [path.join(root, "data") + path.sep, path.join(root, "cli", "commands", "pretrain.ts")];
  const literal = new RegExp(`modelType\\s*[!=]==\\s*"|"(${SUPPORTED_MODEL_TYPES.join("|")})"`);
  const hits = files
    .filter((f) => !archDirs.some((d) => f.startsWith(d)) && !allowed.some((a) => f.startsWith(a)))
    .flatMap((f) => fs.readFileSync(f, "utf8").split("\n").map((line, i) => [path.relative(root, f), i + 1, line] as const))
    .filter(([, , line]) => literal.test(line.replace(/\/\/.*$|\/\*\*.*|^\s*\*.*/, "")));
  expect(hits).toEqual([]);
});

// Old main matched layers on ".h.N." only, so a bare GPT2Model's "h.0.…" had no layer: freezing the bottom
// layers froze nothing, and layer-wise LR gave every layer the top rate. Public API only.
test("a bare GPT-2 body's layers h.N are layers: freeze, layer-wise LR and gradual unfreezing see them", () => {
  const { AutoModel: Auto, freeze, unfreezeTop, paramGroups, layerOf } = require("../lib/index") as typeof import("../lib/index");
  const m = Auto.fromConfig(parseConfig(SMALL.gpt2));
  expect(layerOf("h.0.attn.c_attn.weight", 2)).toBe(1);
  freeze(m, { layers: 1 });
  const frozen = [...m.namedParameters()].filter(([, p]) => !p.requiresGrad).map(([n]) => n);
  expect(frozen.length).toBe(12);
  expect(frozen.every((n) => n.startsWith("h.0."))).toBe(true);
  unfreezeTop(m, 1);
  expect([...m.namedParameters()].filter(([, p]) => p.requiresGrad).every(([n]) => n.startsWith("h.1.") || n.startsWith("ln_f."))).toBe(true);
  unfreezeTop(m, 3);
  const lrOf = new Map(paramGroups(m, { lr: 1, layerDecay: 0.5 }).flatMap((g) => g.names.map((n) => [n, g.lr] as const)));
  expect([lrOf.get("wte.weight"), lrOf.get("h.0.mlp.c_fc.weight"), lrOf.get("h.1.mlp.c_fc.weight"), lrOf.get("ln_f.weight")]).toEqual([0.25, 0.5, 1, 1]);
});

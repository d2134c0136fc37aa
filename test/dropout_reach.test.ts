// Every dropout of every architecture × head is a registered child under Hugging Face's name, follows
// train()/eval(), zeroes its own fraction p in training (and nothing in eval), and is driven by the
// config key HF reads for it. Small random configs built here; nothing from ../shared.
import { parseConfig } from "../lib/models/config_json";
import type { ModelConfig, ModelType } from "../lib/models/config";
import {
  AutoModel, AutoModelForMaskedLM, AutoModelForCausalLM, AutoModelForSequenceClassification,
  AutoModelForTokenClassification, AutoModelForQuestionAnswering, AutoSentenceEncoder,
} from "../lib/models/auto";
import type { PreTrainedModel } from "../lib/models/pretrained";
import type { ModelInputs } from "../lib/models/inputs";
import { Module } from "../lib/nn/module";
import { Dropout, Linear } from "../lib/nn/layers";
import * as ops from "../lib/tensor/ops";
import { Tensor, tidy } from "../lib/tensor/tensor";
import { noGrad } from "../lib/tensor/autograd";
import { TunekitError } from "../lib/errors";
import { applyLora } from "../lib/peft/lora";
import { LoraLinear } from "../lib/peft/lora_linear";
import { rng, randn } from "./helpers";

const DECODERS: ModelType[] = ["llama", "mistral", "qwen2", "qwen3"];
const ARCHS: ModelType[] = ["bert", "roberta", "distilbert", "gpt2", ...DECODERS];
const SMALL: Record<ModelType, Record<string, unknown>> = {
  bert: { model_type: "bert", vocab_size: 100, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, max_position_embeddings: 64 },
  roberta: { model_type: "roberta", vocab_size: 100, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, intermediate_size: 128, max_position_embeddings: 66, type_vocab_size: 1 },
  distilbert: { model_type: "distilbert", vocab_size: 100, dim: 64, n_layers: 2, n_heads: 4, hidden_dim: 128, max_position_embeddings: 64 },
  gpt2: { model_type: "gpt2", vocab_size: 100, n_embd: 64, n_layer: 2, n_head: 4, n_positions: 64 },
  llama: { model_type: "llama", vocab_size: 100, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 128, max_position_embeddings: 64 },
  mistral: { model_type: "mistral", vocab_size: 100, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 128, max_position_embeddings: 64, sliding_window: 6 },
  qwen2: { model_type: "qwen2", vocab_size: 100, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 128, max_position_embeddings: 64, tie_word_embeddings: true },
  qwen3: { model_type: "qwen3", vocab_size: 100, hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, head_dim: 16, intermediate_size: 128, max_position_embeddings: 64 },
};
const LAYERS = 2;

/** The ModelConfig fields that set a dropout probability. */
type Kind = "embeddingDropout" | "hiddenDropout" | "attentionDropout" | "classifierDropout" | "qaDropout";
const KINDS: Kind[] = ["embeddingDropout", "hiddenDropout", "attentionDropout", "classifierDropout", "qaDropout"];
/** A different p per kind, so a module driven by the wrong field is caught. */
const P: Record<Kind, number> = { embeddingDropout: 0.1, hiddenDropout: 0.2, attentionDropout: 0.3, classifierDropout: 0.4, qaDropout: 0.5 };
const ATTENTION_SITES = /(attention\.self\.dropout|attention\.dropout|attn\.attn_dropout|self_attn\.attention_dropout)$/;

interface Head {
  name: string;
  archs: ModelType[];
  make(c: ModelConfig): PreTrainedModel;
  /** The forward pass's output values (logits, or the hidden states of a bare body). */
  run(m: PreTrainedModel, x: ModelInputs): Tensor[];
  /** HF's head dropouts: module name → the field that sets its p. */
  sites(arch: ModelType): Record<string, Kind>;
}
type Fwd = { forward(x: ModelInputs): { logits: Tensor } };
const logits = (m: PreTrainedModel, x: ModelInputs) => [(m as unknown as Fwd).forward(x).logits];
const ALL = ARCHS;
const ENCODERS_AND_GPT2 = ARCHS.filter((a) => !DECODERS.includes(a));
const HEADS: Head[] = [
  {
    name: "AutoModel", archs: ALL, make: (c) => AutoModel.fromConfig(c), sites: () => ({}),
    run: (m, x) => {
      const o = (m as unknown as { forward(x: ModelInputs): { lastHiddenState: Tensor; poolerOutput?: Tensor } }).forward(x);
      return o.poolerOutput ? [o.lastHiddenState, o.poolerOutput] : [o.lastHiddenState];
    },
  },
  { name: "MaskedLM", archs: ["bert", "roberta", "distilbert"], make: (c) => AutoModelForMaskedLM.fromConfig(c), run: logits, sites: () => ({}) },
  { name: "CausalLM", archs: ["gpt2", ...DECODERS], make: (c) => AutoModelForCausalLM.fromConfig(c), run: logits, sites: () => ({}) },
  ...([["single-label", { numLabels: 3 }], ["regression", { numLabels: 1 }], ["multi-label", { numLabels: 3, problemType: "multi_label_classification" as const }]] as const).map(
    ([kind, opts]): Head => ({
      name: `SequenceClassification (${kind})`, archs: ALL, make: (c) => AutoModelForSequenceClassification.fromConfig(c, opts), run: logits,
      // HF: BertForSequenceClassification.dropout, RobertaClassificationHead (classifier.dropout),
      // DistilBertForSequenceClassification.dropout (seq_classif_dropout); GPT-2's score has none.
      // The Llama family's score has none either.
      sites: (a) => (({ bert: { dropout: "classifierDropout" }, roberta: { "classifier.dropout": "classifierDropout" }, distilbert: { dropout: "classifierDropout" } }) as Partial<Record<ModelType, Record<string, Kind>>>)[a] ?? {},
    }),
  ),
  {
    name: "TokenClassification", archs: ALL, make: (c) => AutoModelForTokenClassification.fromConfig(c, { numLabels: 5 }), run: logits,
    // HF: DistilBertForTokenClassification uses config.dropout (tunekit's hiddenDropout); the others classifier_dropout.
    sites: (a) => ({ dropout: a === "distilbert" ? "hiddenDropout" : "classifierDropout" }),
  },
  {
    name: "QuestionAnswering", archs: ENCODERS_AND_GPT2, make: (c) => AutoModelForQuestionAnswering.fromConfig(c), run: logits,
    sites: (a): Record<string, Kind> => (a === "distilbert" ? { dropout: "qaDropout" } : {}),
  },
  {
    name: "AutoSentenceEncoder", archs: ALL, make: (c) => AutoSentenceEncoder.fromConfig(c, { pooling: "mean" }), sites: () => ({}),
    run: (m, x) => [(m as unknown as { embed(x: ModelInputs): Tensor }).embed(x)],
  },
];
const CASES = HEADS.flatMap((h) => h.archs.map((a) => [a, h.name, h] as [ModelType, string, Head]));

/** HF's body dropouts under the body's prefix ("" for a bare body, as HF's BertModel names them). */
function bodySites(arch: ModelType, prefix: string): Record<string, Kind> {
  const s: Record<string, Kind> = {};
  // The Llama family: attention_dropout on the attention probabilities, nothing else (no embedding dropout).
  if (DECODERS.includes(arch)) {
    for (let i = 0; i < LAYERS; i++) s[`${prefix}layers.${i}.self_attn.attention_dropout`] = "attentionDropout";
    return s;
  }
  for (let i = 0; i < LAYERS; i++) {
    if (arch === "bert" || arch === "roberta") {
      s[`${prefix}encoder.layer.${i}.attention.self.dropout`] = "attentionDropout";
      s[`${prefix}encoder.layer.${i}.attention.output.dropout`] = "hiddenDropout";
      s[`${prefix}encoder.layer.${i}.output.dropout`] = "hiddenDropout";
    } else if (arch === "distilbert") {
      s[`${prefix}transformer.layer.${i}.attention.dropout`] = "attentionDropout";
      s[`${prefix}transformer.layer.${i}.ffn.dropout`] = "hiddenDropout";
    } else {
      s[`${prefix}h.${i}.attn.attn_dropout`] = "attentionDropout";
      s[`${prefix}h.${i}.attn.resid_dropout`] = "hiddenDropout";
      s[`${prefix}h.${i}.mlp.dropout`] = "hiddenDropout";
    }
  }
  s[arch === "gpt2" ? `${prefix}drop` : `${prefix}embeddings.dropout`] = "embeddingDropout";
  return s;
}

function expectedSites(model: PreTrainedModel, head: Head): Record<string, Kind> {
  const arch = model.config.modelType;
  return { ...bodySites(arch, model.isBase ? "" : `${model.prefix}.`), ...head.sites(arch) };
}

function config(arch: ModelType, p: Partial<Record<Kind, number>>): ModelConfig {
  return { ...parseConfig(SMALL[arch]), ...Object.fromEntries(KINDS.map((k) => [k, p[k] ?? 0])) } as ModelConfig;
}

const B = 4, T = 16;
function inputs(arch: ModelType, seed = 1): ModelInputs {
  const r = rng(seed), pad = arch === "roberta" ? 1 : 0;
  const inputIds = Int32Array.from({ length: B * T }, () => 3 + Math.floor(r() * 90));
  // The last row is padded after 10 tokens (GPT-2 reads its last real token there).
  const attentionMask = Int32Array.from({ length: B * T }, (_, i) => (i >= (B - 1) * T + 10 ? 0 : 1));
  for (let i = 0; i < B * T; i++) if (!attentionMask[i]) inputIds[i] = pad;
  return { inputIds, attentionMask, batchSize: B, seqLen: T };
}

/** The output values of one forward pass, copied out (no graph kept). */
function outputs(m: PreTrainedModel, head: Head, x: ModelInputs): Float32Array[] {
  let out: Float32Array[] = [];
  noGrad(() => tidy(() => void (out = head.run(m, x).map((t) => Float32Array.from(t.toHost())))));
  return out;
}
const same = (a: Float32Array[], b: Float32Array[]) => a.length === b.length && a.every((x, i) => x.length === b[i].length && x.every((v, j) => Object.is(v, b[i][j])));

/**
 * Every Module reachable through the fields of `root` (and arrays in them), named by the field path:
 * the test's own walk, independent of the child registry, so an unregistered module is found too.
 */
function modulesByFields(root: Module): Map<Module, string> {
  const out = new Map<Module, string>();
  const visit = (m: Module, path: string) => {
    if (out.has(m)) return;
    out.set(m, path);
    for (const [k, v] of Object.entries(m)) {
      const held = v instanceof Module ? [v] : Array.isArray(v) ? v.filter((e) => e instanceof Module) : [];
      held.forEach((c: Module, i) => visit(c, `${path}${path ? "." : ""}${k}${Array.isArray(v) ? `[${i}]` : ""}`));
    }
  };
  visit(root, "");
  return out;
}

const dropoutNames = (m: Module) => new Map([...m.namedModules()].filter(([, d]) => d instanceof Dropout).map(([n, d]) => [d as Dropout, n]));

afterEach(() => jest.restoreAllMocks());

describe.each(CASES)("%s %s", (arch, _name, head) => {
  test("(a) every dropout is a child under HF's name with its config's p; train() and eval() reach every module", () => {
    const model = head.make(config(arch, P));
    const all = [...modulesByFields(model).entries(), ...[...model.namedModules()].map(([n, m]) => [m, n] as [Module, string])];
    for (const on of [true, false, true]) {
      if (on) model.train();
      else model.eval();
      const stale = all.filter(([m]) => m.training !== on).map(([, n]) => n);
      expect({ training: on, stale }).toEqual({ training: on, stale: [] });
    }
    const want = expectedSites(model, head);
    const got = [...dropoutNames(model)].map(([d, n]) => [n, d.p]).sort();
    expect(got).toEqual(Object.entries(want).map(([n, k]) => [n, P[k]]).sort());
  });

  test("(b) each dropout zeroes about its own p in train mode, nothing in eval mode", () => {
    const model = head.make(config(arch, P));
    const want = expectedSites(model, head);
    const names = dropoutNames(model);
    const tally = new Map<string, { zeroed: number; n: number }>();
    const attention: number[] = [];
    const forward = Dropout.prototype.forward;
    jest.spyOn(Dropout.prototype, "forward").mockImplementation(function (this: Dropout, x: Tensor) {
      const y = forward.call(this, x);
      const name = names.get(this) ?? `unregistered Dropout(p = ${this.p})`;
      const t = tally.get(name) ?? { zeroed: 0, n: 0 };
      for (let i = 0; i < x.size; i++) if (x.toHost()[i] !== 0) (t.n++, (t.zeroed += y.toHost()[i] === 0 ? 1 : 0));
      tally.set(name, t);
      return y;
    });
    // Attention-probability dropout runs inside the fused kernel: check the rate the kernel is given.
    const attend = ops.attention;
    jest.spyOn(ops, "attention").mockImplementation((...a: Parameters<typeof ops.attention>) => {
      attention.push(a[6].training ? a[6].dropoutP : 0);
      return attend(...a);
    });
    const RUNS = 4;
    const fused = Object.keys(want).filter((n) => ATTENTION_SITES.test(n));
    for (const on of [true, false]) {
      tally.clear();
      attention.length = 0;
      if (on) model.train();
      else model.eval();
      for (let r = 0; r < RUNS; r++) outputs(model, head, inputs(arch, r + 1));
      // Each expected site ran and zeroed within 5 standard deviations of its p (exactly 0 in eval); a
      // dropout that ran under no registered name, or a site that never ran, is reported too.
      const sites = new Set([...Object.keys(want).filter((n) => !fused.includes(n)), ...tally.keys()]);
      const off = [...sites].map((n) => ({ n, p: on ? P[want[n]] : 0, zeroed: tally.has(n) ? tally.get(n)!.zeroed / tally.get(n)!.n : NaN, of: tally.get(n)?.n ?? 0 }))
        .filter((r) => !(Math.abs(r.zeroed - r.p) <= 5 * Math.sqrt((r.p * (1 - r.p)) / r.of)))
        .map((r) => ({ ...r, zeroed: +r.zeroed.toFixed(3) }));
      expect({ training: on, off }).toEqual({ training: on, off: [] });
      expect(attention).toEqual(new Array(RUNS * fused.length).fill(on ? P.attentionDropout : 0));
    }
  });

  test("(c) each kind of dropout changes train-mode outputs exactly when this head has it; eval is deterministic", () => {
    const x = inputs(arch);
    const got: Record<string, object> = {}, want: Record<string, object> = {};
    for (const kind of KINDS) {
      // Only this kind's p is non-zero.
      const model = head.make(config(arch, { [kind]: 0.3 }));
      const used = Object.values(expectedSites(model, head)).includes(kind);
      const e1 = outputs(model, head, x), offset = model.gen.offset;
      const evalRepeats = same(e1, outputs(model, head, x)) && model.gen.offset === offset;
      model.train();
      const trainDiffers = !same(outputs(model, head, x), e1);
      model.eval();
      const evalAfterTrain = same(outputs(model, head, x), e1);
      got[kind] = { evalRepeats, trainDiffers, evalAfterTrain };
      want[kind] = { evalRepeats: true, trainDiffers: used, evalAfterTrain: true };
    }
    expect(got).toEqual(want);
  });
});

describe("config keys drive the dropouts as in transformers", () => {
  const ps = (m: PreTrainedModel) => Object.fromEntries([...dropoutNames(m)].map(([d, n]) => [n, d.p]));
  const build = (json: Record<string, unknown>, make: (c: ModelConfig) => PreTrainedModel) => ps(make(parseConfig(json)));
  const seq = (c: ModelConfig) => AutoModelForSequenceClassification.fromConfig(c);
  const tok = (c: ModelConfig) => AutoModelForTokenClassification.fromConfig(c);
  const qa = (c: ModelConfig) => AutoModelForQuestionAnswering.fromConfig(c);

  test("BERT / RoBERTa: hidden_dropout_prob (embeddings, self-output, output), attention_probs_dropout_prob, classifier_dropout ?? hidden_dropout_prob", () => {
    for (const arch of ["bert", "roberta"] as const) {
      const json = { ...SMALL[arch], hidden_dropout_prob: 0.15, attention_probs_dropout_prob: 0.25 };
      const p = build(json, seq);
      const cls = arch === "bert" ? "dropout" : "classifier.dropout";
      expect(p).toMatchObject({ [`${arch}.embeddings.dropout`]: 0.15, [`${arch}.encoder.layer.1.attention.self.dropout`]: 0.25, [`${arch}.encoder.layer.1.attention.output.dropout`]: 0.15, [`${arch}.encoder.layer.1.output.dropout`]: 0.15, [cls]: 0.15 });
      expect(build({ ...json, classifier_dropout: 0.35 }, seq)[cls]).toBe(0.35);
      expect(build({ ...json, classifier_dropout: 0.35 }, tok).dropout).toBe(0.35);
      expect(build(json, tok).dropout).toBe(0.15);
      expect(build(json, qa).dropout).toBeUndefined(); // BertForQuestionAnswering has no dropout
    }
  });

  test("DistilBERT: dropout (embeddings, ffn, token head), attention_dropout, seq_classif_dropout, qa_dropout", () => {
    const json = { ...SMALL.distilbert, dropout: 0.15, attention_dropout: 0.25, seq_classif_dropout: 0.35, qa_dropout: 0.45 };
    expect(build(json, seq)).toEqual({ "distilbert.embeddings.dropout": 0.15, "distilbert.transformer.layer.0.attention.dropout": 0.25, "distilbert.transformer.layer.0.ffn.dropout": 0.15, "distilbert.transformer.layer.1.attention.dropout": 0.25, "distilbert.transformer.layer.1.ffn.dropout": 0.15, dropout: 0.35 });
    expect(build(json, tok).dropout).toBe(0.15);
    expect(build(json, qa).dropout).toBe(0.45);
  });

  test("GPT-2: embd_pdrop (drop), attn_pdrop, resid_pdrop (resid_dropout, mlp), token head classifier_dropout ?? hidden_dropout ?? 0.1", () => {
    const json = { ...SMALL.gpt2, embd_pdrop: 0.15, attn_pdrop: 0.25, resid_pdrop: 0.35 };
    expect(build(json, seq)).toEqual({ "transformer.drop": 0.15, "transformer.h.0.attn.attn_dropout": 0.25, "transformer.h.0.attn.resid_dropout": 0.35, "transformer.h.0.mlp.dropout": 0.35, "transformer.h.1.attn.attn_dropout": 0.25, "transformer.h.1.attn.resid_dropout": 0.35, "transformer.h.1.mlp.dropout": 0.35 });
    expect(build(json, tok).dropout).toBe(0.1);
    expect(build({ ...json, hidden_dropout: 0.4 }, tok).dropout).toBe(0.4);
    expect(build({ ...json, hidden_dropout: 0.4, classifier_dropout: 0.45 }, tok).dropout).toBe(0.45);
    expect(build({ ...json, summary_first_dropout: 0.5 }, qa).dropout).toBeUndefined(); // only GPT2DoubleHeadsModel reads it
  });
});

test("Llama family: attention_dropout drives self_attn.attention_dropout; the token head classifier_dropout ?? hidden_dropout ?? 0.1", () => {
  for (const arch of DECODERS) {
    const c = parseConfig({ ...SMALL[arch], attention_dropout: 0.25 });
    const body = { "model.layers.0.self_attn.attention_dropout": 0.25, "model.layers.1.self_attn.attention_dropout": 0.25 };
    const ps = (m: PreTrainedModel) => Object.fromEntries([...dropoutNames(m)].map(([d, n]) => [n, d.p]));
    for (const m of [AutoModelForCausalLM.fromConfig(c), AutoModelForSequenceClassification.fromConfig(c)]) expect([arch, ps(m)]).toEqual([arch, body]);
    expect([arch, ps(AutoModelForTokenClassification.fromConfig(c))]).toEqual([arch, { ...body, dropout: 0.1 }]);
    expect(ps(AutoModelForTokenClassification.fromConfig(parseConfig({ ...SMALL[arch], hidden_dropout: 0.4 }))).dropout).toBe(0.4);
    expect(ps(AutoModelForTokenClassification.fromConfig(parseConfig({ ...SMALL[arch], hidden_dropout: 0.4, classifier_dropout: 0.45 }))).dropout).toBe(0.45);
  }
});

describe("an unreachable module is caught", () => {
  const ctx = { gen: new ops.Generator(1) };
  class Block extends Module {
    readonly dense = this.child("dense", new Linear(4, 4));
    readonly stray = new Dropout(0.5, ctx);
  }
  class Net extends Module {
    readonly layers: Block[];
    constructor() {
      super();
      this.layers = [this.child("first", new Block())];
    }
  }

  test("train() and eval() throw, naming the field that holds an unregistered module", () => {
    const msg = "module 'first.stray' (Dropout) is held in a field but not registered as a child, so train()/eval() cannot reach it; register it with this.child(\"stray\", …)";
    expect(() => new Net().train()).toThrow(new TunekitError(msg));
    expect(() => new Net().eval()).toThrow(new TunekitError(msg));
  });

  test("a Dropout no parent registered refuses to run (e.g. one captured in a closure)", () => {
    const d = new Dropout(0.5, ctx);
    const x = new Tensor([8], randn(8, 3));
    expect(() => d.forward(x)).toThrow(new TunekitError("Dropout(p = 0.5) is not registered as a child of a module, so train()/eval() cannot reach it; create it with this.child(\"dropout\", new Dropout(…))"));
  });

  test("a module held but owned elsewhere (a tied embedding) passes; so does LoRA's wrapped Linear, and LoRA's dropout follows train()/eval()", () => {
    const model = AutoModelForSequenceClassification.fromConfig(config("bert", {}));
    applyLora(model, { r: 4, dropout: 0.5 });
    const loras = [...model.namedModules()].filter(([, m]) => m instanceof LoraLinear).map(([, m]) => m as LoraLinear);
    expect(loras.length).toBe(2 * LAYERS);
    for (const l of loras) l.lora_B.weight.toHost().set(randn(l.lora_B.weight.size, 7, 0.5)); // B = 0 would hide the branch
    const x = inputs("bert"), run = () => outputs(model, HEADS.find((h) => h.name.startsWith("SequenceClassification"))!, x);
    const e = run();
    model.train();
    expect(loras.every((l) => l.training)).toBe(true);
    expect(same(run(), e)).toBe(false); // every other dropout is 0: only LoRA's acts
    model.eval();
    expect(loras.every((l) => !l.training)).toBe(true);
    expect(same(run(), e)).toBe(true);
    const mlm = AutoModelForMaskedLM.fromConfig(config("bert", {}));
    expect(() => mlm.train().eval()).not.toThrow();
  });
});

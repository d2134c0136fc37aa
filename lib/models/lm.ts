// The base models and the language-model heads (continued / domain-adaptive pre-training).
import { Tensor } from "../tensor/tensor";
import * as ops from "../tensor/ops";
import { Module, Parameter } from "../nn/module";
import { Linear, LayerNorm } from "../nn/layers";
import { ModelConfig, geluMode } from "./config";
import { ModelInputs } from "./inputs";
import { PreTrainedModel } from "./pretrained";
import { BertModel, EncoderOutput } from "./bert";
import { BertOnlyMLMHead } from "./lm_heads";
import type { ForwardOptions } from "./heads";

function labelled(labels: Int32Array): number {
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== -100) n++;
  return n;
}

const ARCH: Record<ModelConfig["modelType"], { base: string; mlm?: string; clm?: string }> = {
  bert: { base: "BertModel", mlm: "BertForMaskedLM" },
  roberta: { base: "RobertaModel", mlm: "RobertaForMaskedLM" },
  distilbert: { base: "DistilBertModel", mlm: "DistilBertForMaskedLM" },
  gpt2: { base: "GPT2Model", clm: "GPT2LMHeadModel" },
};

/** BertModel / RobertaModel / DistilBertModel / GPT2Model: the body alone (feature extraction). */
export class BaseModel extends PreTrainedModel {
  readonly architecture: string;
  constructor(config: ModelConfig, gen = new ops.Generator(42)) {
    super(config, true, gen, true);
    this.architecture = ARCH[config.modelType].base;
  }
  forward(x: ModelInputs): EncoderOutput {
    return this.body.forward(x);
  }
}

/** RoBERTa's lm_head: dense → GELU → layer_norm → decoder tied to the word embeddings (+ bias). */
class RobertaLMHead extends Module {
  readonly dense: Linear;
  readonly layer_norm: LayerNorm;
  readonly bias: Parameter;
  constructor(readonly c: ModelConfig, readonly tied: Parameter) {
    super();
    this.dense = this.child("dense", new Linear(c.hiddenSize, c.hiddenSize, true, "lm_head.dense"));
    this.layer_norm = this.child("layer_norm", new LayerNorm(c.hiddenSize, c.layerNormEps, "lm_head.layer_norm"));
    this.bias = this.param("bias", [c.vocabSize]);
  }
  forward(h: Tensor): Tensor {
    return ops.linear(this.layer_norm.forward(ops.gelu(this.dense.forward(h), geluMode(this.c))), this.tied, this.bias, "lm_head.decoder (tied)");
  }
}

/** DistilBERT's vocab_projector keeps only its bias; its weight is the word embeddings. */
class TiedProjector extends Module {
  readonly bias: Parameter;
  constructor(vocab: number) {
    super();
    this.bias = this.param("bias", [vocab]);
  }
}

export interface LMOutput extends EncoderOutput {
  /** (B, T, V) */
  logits: Tensor;
  loss?: Tensor;
}

/** BertForMaskedLM / RobertaForMaskedLM / DistilBertForMaskedLM. Labels: −100 where not masked. */
export class ModelForMaskedLM extends PreTrainedModel {
  readonly architecture: string;
  private readonly head: (h: Tensor) => Tensor;
  constructor(config: ModelConfig, gen = new ops.Generator(42)) {
    super(config, false, gen, false);
    const arch = ARCH[config.modelType].mlm;
    if (!arch) throw new Error(`${config.modelType} has no masked-LM head; use AutoModelForCausalLM`);
    this.architecture = arch;
    const c = config;
    const words = (this.body as BertModel).embeddings.word_embeddings.weight;
    if (c.modelType === "bert") {
      const cls = this.child("cls", new BertOnlyMLMHead(c, (this.body as BertModel).embeddings.word_embeddings));
      this.head = (h) => cls.forward(h);
    } else if (c.modelType === "roberta") {
      const lm = this.child("lm_head", new RobertaLMHead(c, words));
      this.head = (h) => lm.forward(h);
    } else {
      const transform = this.child("vocab_transform", new Linear(c.hiddenSize, c.hiddenSize, true, "vocab_transform"));
      const norm = this.child("vocab_layer_norm", new LayerNorm(c.hiddenSize, 1e-12, "vocab_layer_norm"));
      const proj = this.child("vocab_projector", new TiedProjector(c.vocabSize));
      this.head = (h) => ops.linear(norm.forward(ops.gelu(transform.forward(h), geluMode(c))), words, proj.bias, "vocab_projector (tied)");
    }
  }
  forward(x: ModelInputs & { labels?: Int32Array }, opts: ForwardOptions = {}): LMOutput {
    const out = this.body.forward(x);
    if (x.labels && opts.lossOnly && labelled(x.labels) > 0) {
      const rows = new Int32Array(labelled(x.labels));
      for (let i = 0, k = 0; i < x.labels.length; i++) if (x.labels[i] !== -100) rows[k++] = i;
      const logits = this.head(ops.gatherRows(out.lastHiddenState, rows));
      const targets = Int32Array.from(rows, (i) => x.labels![i]);
      return { ...out, logits, loss: ops.crossEntropy(logits, targets, { divisor: opts.lossDivisor }) };
    }
    const logits = this.head(out.lastHiddenState);
    const loss = x.labels ? ops.crossEntropy(logits, x.labels, { divisor: opts.lossDivisor }) : undefined;
    return { ...out, logits, loss };
  }
  /** The loss is a mean over masked tokens (labels ≠ −100). */
  lossCount(x: { labels?: Int32Array }): number {
    return x.labels ? labelled(x.labels) : 0;
  }
}

/** GPT2LMHeadModel: logits = h·wteᵀ; labels are the input ids (shifted inside, −100 ignored). */
export class ModelForCausalLM extends PreTrainedModel {
  readonly architecture = "GPT2LMHeadModel";
  constructor(config: ModelConfig, gen = new ops.Generator(42)) {
    super(config, false, gen, false);
    if (config.modelType !== "gpt2") throw new Error(`${config.modelType} has no causal-LM head; use AutoModelForMaskedLM`);
  }
  forward(x: ModelInputs & { labels?: Int32Array }, opts: ForwardOptions = {}): LMOutput {
    const out = this.body.forward(x);
    const wte = (this.body as unknown as { wte: { weight: Parameter } }).wte.weight;
    const logits = ops.linear(out.lastHiddenState, wte, null, "lm_head (tied to wte)");
    let loss: Tensor | undefined;
    if (x.labels) {
      // HF shifts inside: position t predicts token t+1. The last position of each row predicts nothing.
      const { batchSize: B, seqLen: T } = x;
      const shifted = new Int32Array(B * T).fill(-100);
      for (let b = 0; b < B; b++) for (let t = 0; t + 1 < T; t++) shifted[b * T + t] = x.labels[b * T + t + 1];
      loss = ops.crossEntropy(logits, shifted, { divisor: opts.lossDivisor });
    }
    return { ...out, logits, loss };
  }
  /** The loss is a mean over predicted tokens: labels ≠ −100 after the shift (each row's first label predicts nothing). */
  lossCount(x: ModelInputs & { labels?: Int32Array }): number {
    if (!x.labels) return 0;
    let n = 0;
    for (let b = 0; b < x.batchSize; b++) for (let t = 1; t < x.seqLen; t++) if (x.labels[b * x.seqLen + t] !== -100) n++;
    return n;
  }
}

// The base models and the language-model heads (continued / domain-adaptive pre-training). Each
// architecture's LM head (BERT's cls.predictions, GPT-2's lm_head tied to wte, …) comes from its spec.
import { Tensor } from "../tensor/tensor";
import * as ops from "../tensor/ops";
import { TunekitError } from "../errors";
import { ModelConfig } from "./config";
import { ModelInputs } from "./inputs";
import { PreTrainedModel } from "./pretrained";
import type { EncoderOutput } from "./spec";
import type { ForwardOptions } from "./heads";
import type { KVCache } from "./cache";

function labelled(labels: Int32Array): number {
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== -100) n++;
  return n;
}

/** BertModel / RobertaModel / DistilBertModel / GPT2Model: the body alone (feature extraction). */
export class BaseModel extends PreTrainedModel {
  readonly architecture: string;
  constructor(config: ModelConfig, gen = new ops.Generator(42)) {
    super(config, true, gen, true);
    this.architecture = this.spec.classes.base;
  }
  forward(x: ModelInputs): EncoderOutput {
    return this.body.forward(x);
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
    const { classes, heads } = this.spec;
    if (!classes.maskedLM || !heads.maskedLM) throw new TunekitError(`${config.modelType} has no masked-LM head${classes.causalLM ? "; use AutoModelForCausalLM" : ""}`);
    this.architecture = classes.maskedLM;
    this.head = this.addHead(heads.maskedLM(this.body, config));
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

/** GPT2LMHeadModel, …: logits of the next token; labels are the input ids (shifted inside, −100 ignored). */
export class ModelForCausalLM extends PreTrainedModel {
  readonly architecture: string;
  private readonly head: (h: Tensor) => Tensor;
  constructor(config: ModelConfig, gen = new ops.Generator(42)) {
    super(config, false, gen, false);
    const { classes, heads } = this.spec;
    if (!classes.causalLM || !heads.causalLM) throw new TunekitError(`${config.modelType} has no causal-LM head${classes.maskedLM ? "; use AutoModelForMaskedLM" : ""}`);
    this.architecture = classes.causalLM;
    this.head = this.addHead(heads.causalLM(this.body, config));
  }
  forward(x: ModelInputs & { labels?: Int32Array }, opts: ForwardOptions = {}): LMOutput {
    const out = this.body.forward(x);
    if (opts.lastTokenOnly) {
      const { batchSize: B, seqLen: T } = x;
      const last = ops.selectTokens(out.lastHiddenState, new Array(B).fill(T - 1));
      return { ...out, logits: this.head(last) };
    }
    const logits = this.head(out.lastHiddenState);
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
  /** A key/value cache for generate(): B rows of up to Tmax tokens, on the model's device. */
  newCache(B: number, Tmax: number): KVCache {
    if (!this.body.newCache) throw new TunekitError(`${this.architecture} has no key/value cache (it cannot generate)`);
    return this.body.newCache(B, Tmax, this.device);
  }

  /** The loss is a mean over predicted tokens: labels ≠ −100 after the shift (each row's first label predicts nothing). */
  lossCount(x: ModelInputs & { labels?: Int32Array }): number {
    if (!x.labels) return 0;
    let n = 0;
    for (let b = 0; b < x.batchSize; b++) for (let t = 1; t < x.seqLen; t++) if (x.labels[b * x.seqLen + t] !== -100) n++;
    return n;
  }
}

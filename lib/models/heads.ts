// Task heads with Hugging Face's names and shapes, so transformers loads what tunekit saves:
// sequence classification (single-label, regression, multi-label), token classification, extractive
// QA, and a bi-encoder for sentence similarity.
// The architecture-specific parts (RoBERTa's classification head, GPT-2's score at the last token, …)
// and HF's class names come from the architecture's spec (lib/models/<arch>/).
import { Tensor } from "../tensor/tensor";
import * as ops from "../tensor/ops";
import { Linear, Dropout } from "../nn/layers";
import { TunekitError } from "../errors";
import { PreTrainedModel } from "./pretrained";
import { ModelInputs } from "./inputs";
import { specFor } from "./registry";
import type { EncoderOutput } from "./spec";
import type { ModelConfig } from "./config";

/** A padded batch as the collator gives it (see lib/data/features/collate.ts). */
export interface TaskBatch extends ModelInputs {
  /** Class ids (B) or (B·T) with −100 ignored; regression targets (B); multi-hot (B·numLabels). */
  labels?: Int32Array | Float32Array;
  startPositions?: Int32Array;
  endPositions?: Int32Array;
}

export interface TaskOutput extends EncoderOutput {
  logits: Tensor;
  loss?: Tensor;
}

/** Options of a forward pass for training. */
export interface ForwardOptions {
  /**
   * Divide the summed loss by this instead of this batch's own count: gradient accumulation passes
   * the count of the whole accumulated batch, so micro-batches add up to exactly one large batch.
   */
  lossDivisor?: number;
  /**
   * Only the loss is needed (a training step): a masked-LM head then runs on the masked positions
   * alone, and `logits` holds just those rows. The loss is the same; the head costs ~15% of the full one.
   */
  lossOnly?: boolean;
  /** Generation: logits of each row's last position only, (B, V) (a batch of prompts is left-padded). */
  lastTokenOnly?: boolean;
}

function count(labels: ArrayLike<number>, ignore = -100): number {
  let n = 0;
  for (let i = 0; i < labels.length; i++) if (labels[i] !== ignore) n++;
  return n;
}

export class ModelForSequenceClassification extends PreTrainedModel {
  readonly architecture: string;
  private readonly head: (o: EncoderOutput, x: TaskBatch) => Tensor;
  constructor(config: ModelConfig, gen = new ops.Generator(42)) {
    super(config, false, gen, specFor(config.modelType).heads.sequenceClassification.pooler);
    this.architecture = this.spec.classes.sequenceClassification;
    this.head = this.addHead(this.spec.heads.sequenceClassification.build(this.body, config, gen));
  }

  /** transformers' problem_type rule: 1 label → regression; else int labels → single-label; else multi-label. */
  get problemType(): "regression" | "single_label_classification" | "multi_label_classification" {
    if (this.config.problemType) return this.config.problemType;
    return this.config.numLabels === 1 ? "regression" : "single_label_classification";
  }

  forward(x: TaskBatch, opts: ForwardOptions = {}): TaskOutput {
    const out = this.body.forward(x);
    const logits = this.head(out, x);
    let loss: Tensor | undefined;
    if (x.labels) {
      const B = x.batchSize, N = this.config.numLabels;
      switch (this.problemType) {
        case "regression":
          if (x.labels.length !== B) throw new TunekitError(`regression: ${x.labels.length} labels for a batch of ${B}`);
          loss = ops.mseLoss(logits, Float32Array.from(x.labels), opts.lossDivisor ?? 0);
          break;
        case "multi_label_classification":
          if (x.labels.length !== B * N) throw new TunekitError(`multi-label: ${x.labels.length} labels, expected batch × numLabels = ${B * N}`);
          loss = ops.bceWithLogits(logits, Float32Array.from(x.labels), (opts.lossDivisor ?? 0) * N);
          break;
        default:
          if (x.labels.length !== B) throw new TunekitError(`classification: ${x.labels.length} labels for a batch of ${B}`);
          for (const l of x.labels) if (l !== -100 && !(Number.isInteger(l) && l >= 0 && l < N))
            throw new TunekitError(`classification: label ${l} is not a class id in 0..${N - 1} (config has ${N} labels)`);
          loss = ops.crossEntropy(logits, Int32Array.from(x.labels), { divisor: opts.lossDivisor });
      }
    }
    return { ...out, logits, loss };
  }

  /** What a loss is normalised by when nothing else is said: examples (or labelled examples). */
  lossCount(x: TaskBatch): number {
    return this.problemType === "single_label_classification" && x.labels ? count(x.labels) : x.batchSize;
  }
}

export class ModelForTokenClassification extends PreTrainedModel {
  readonly architecture: string;
  readonly dropout: Dropout;
  readonly classifier: Linear;
  constructor(config: ModelConfig, gen = new ops.Generator(42)) {
    super(config, false, gen, false);
    const { classes, heads } = this.spec;
    if (!classes.tokenClassification || !heads.tokenClassifierDropout) throw new TunekitError(`${config.modelType} has no token-classification head in tunekit; use AutoModelForSequenceClassification or AutoModelForCausalLM`);
    this.architecture = classes.tokenClassification;
    this.dropout = this.child("dropout", new Dropout(heads.tokenClassifierDropout(config), { gen }));
    this.classifier = this.child("classifier", new Linear(config.hiddenSize, config.numLabels, true, "classifier"));
  }
  forward(x: TaskBatch, opts: ForwardOptions = {}): TaskOutput {
    const out = this.body.forward(x);
    const logits = this.classifier.forward(this.dropout.forward(out.lastHiddenState));
    const loss = x.labels ? ops.crossEntropy(logits, Int32Array.from(x.labels), { divisor: opts.lossDivisor }) : undefined;
    return { ...out, logits, loss };
  }
  lossCount(x: TaskBatch): number {
    return x.labels ? count(x.labels) : 0;
  }
}

export class ModelForQuestionAnswering extends PreTrainedModel {
  readonly architecture: string;
  readonly qa_outputs: Linear;
  /** Only some QA heads have a dropout (DistilBERT's qa_dropout); BERT's, RoBERTa's and GPT-2's have none. */
  readonly dropout: Dropout | null;
  constructor(config: ModelConfig, gen = new ops.Generator(42)) {
    super(config, false, gen, false);
    const { classes, heads } = this.spec;
    if (!classes.questionAnswering || !heads.qaDropout) throw new TunekitError(`${config.modelType} has no question-answering head in tunekit; use AutoModelForSequenceClassification or AutoModelForCausalLM`);
    this.architecture = classes.questionAnswering;
    this.qa_outputs = this.child("qa_outputs", new Linear(config.hiddenSize, 2, true, "qa_outputs"));
    const p = heads.qaDropout(config);
    this.dropout = p === null ? null : this.child("dropout", new Dropout(p, { gen }));
  }
  /** logits (B, T, 2); startLogits / endLogits (B, T). Loss: (CE(start) + CE(end)) / 2 as HF. */
  forward(x: TaskBatch, opts: ForwardOptions = {}): TaskOutput & { startLogits: Tensor; endLogits: Tensor } {
    const out = this.body.forward(x);
    const h = this.dropout ? this.dropout.forward(out.lastHiddenState) : out.lastHiddenState;
    const logits = this.qa_outputs.forward(h);
    const startLogits = ops.selectColumn(logits, 0), endLogits = ops.selectColumn(logits, 1);
    const T = x.seqLen;
    let loss: Tensor | undefined;
    if (x.startPositions && x.endPositions) {
      // HF clamps positions outside the sequence to T and ignores them.
      const fix = (p: Int32Array) => Int32Array.from(p, (v) => (v < 0 || v >= T ? -100 : v));
      const ls = ops.crossEntropy(startLogits, fix(x.startPositions), { divisor: opts.lossDivisor });
      const le = ops.crossEntropy(endLogits, fix(x.endPositions), { divisor: opts.lossDivisor });
      loss = ops.combine(ls, 0.5, le, 0.5);
    }
    return { ...out, logits, startLogits, endLogits, loss };
  }
  lossCount(x: TaskBatch): number {
    return x.batchSize;
  }
}

export type Pooling = "mean" | "cls";

/**
 * A bi-encoder (sentence-transformers style): the body embeds each text on its own, pooled by the
 * masked mean or the first token; similarity is the cosine.
 */
export class SentenceEncoder extends PreTrainedModel {
  readonly architecture: string;
  constructor(config: ModelConfig, readonly pooling: Pooling = "mean", gen = new ops.Generator(42)) {
    super(config, true, gen, false);
    this.architecture = this.spec.classes.base;
  }
  /** (B, H) sentence embeddings. */
  embed(x: ModelInputs): Tensor {
    const o = this.body.forward(x);
    return this.pooling === "mean" ? ops.meanPool(o.lastHiddenState, o.mask) : ops.selectTokens(o.lastHiddenState, new Array(x.batchSize).fill(0));
  }
  /** Cosine similarity of each pair (a[i], b[i]); with targets, CosineSimilarityLoss (MSE to the target). */
  forward(x: { a: ModelInputs; b: ModelInputs; labels?: Float32Array; loss?: "cosine" | "contrastive"; scale?: number }, opts: ForwardOptions = {}): { logits: Tensor; loss?: Tensor } {
    const u = this.embed(x.a), v = this.embed(x.b);
    const logits = ops.cosineSimilarity(u, v);
    let loss: Tensor | undefined;
    if (x.loss === "contrastive") {
      // MultipleNegativesRankingLoss: a[i] must pick b[i] among all b of the batch.
      const sims = ops.cosineMatrix(u, v, x.scale ?? 20);
      loss = ops.crossEntropy(sims, Int32Array.from({ length: x.a.batchSize }, (_, i) => i), { divisor: opts.lossDivisor });
    } else if (x.labels) {
      loss = ops.mseLoss(logits, x.labels, opts.lossDivisor ?? 0);
    }
    return { logits, loss };
  }
  lossCount(x: { a: ModelInputs }): number {
    return x.a.batchSize;
  }
}

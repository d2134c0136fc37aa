// BERT's heads (modeling_bert.py): BertForMaskedLM's cls.predictions.* (tied to the word embeddings)
// and BertForSequenceClassification's dropout → classifier on the pooler output.
import { Tensor } from "../../tensor/tensor";
import * as ops from "../../tensor/ops";
import { Module, Parameter } from "../../nn/module";
import { Linear, LayerNorm, Embedding, Dropout } from "../../nn/layers";
import { ModelConfig, geluMode } from "../config";
import type { ArchHeads } from "../spec";
import type { BertModel } from "./model";

/** BERT's head nests as cls.predictions.{transform.{dense, LayerNorm}, bias}. */
export class BertOnlyMLMHead extends Module {
  readonly predictions: BertLMPredictionHead;
  constructor(c: ModelConfig, tied: Embedding) {
    super();
    this.predictions = this.child("predictions", new BertLMPredictionHead(c, tied));
  }
  forward(h: Tensor): Tensor {
    return this.predictions.forward(h);
  }
}

class BertPredictionHeadTransform extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  constructor(readonly c: ModelConfig) {
    super();
    this.dense = this.child("dense", new Linear(c.hiddenSize, c.hiddenSize, true, "cls.predictions.transform.dense"));
    this.LayerNorm = this.child("LayerNorm", new LayerNorm(c.hiddenSize, c.layerNormEps, "cls.predictions.transform.LayerNorm"));
  }
  forward(h: Tensor): Tensor {
    return this.LayerNorm.forward(ops.gelu(this.dense.forward(h), geluMode(this.c)));
  }
}

class BertLMPredictionHead extends Module {
  readonly transform: BertPredictionHeadTransform;
  readonly bias: Parameter;
  constructor(readonly c: ModelConfig, readonly tied: Embedding) {
    super();
    this.transform = this.child("transform", new BertPredictionHeadTransform(c));
    this.bias = this.param("bias", [c.vocabSize]);
  }
  forward(h: Tensor): Tensor {
    return ops.linear(this.transform.forward(h), this.tied.weight, this.bias, "cls.predictions.decoder (tied)");
  }
}

export const bertHeads: ArchHeads<BertModel> = {
  sequenceClassification: {
    pooler: true,
    build(_body, c, gen) {
      const dropout = new Dropout(c.classifierDropout, { gen });
      const classifier = new Linear(c.hiddenSize, c.numLabels, true, "classifier");
      return { modules: [["dropout", dropout], ["classifier", classifier]], forward: (o) => classifier.forward(dropout.forward(o.poolerOutput!)) };
    },
  },
  tokenClassifierDropout: (c) => c.classifierDropout,
  qaDropout: () => null,
  maskedLM(body, c) {
    const cls = new BertOnlyMLMHead(c, body.embeddings.word_embeddings);
    return { modules: [["cls", cls]], forward: (h) => cls.forward(h) };
  },
};

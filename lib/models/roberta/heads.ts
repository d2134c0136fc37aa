// RoBERTa's own heads (modeling_roberta.py): RobertaClassificationHead and RobertaLMHead; its token and
// QA heads are BERT's.
import { Tensor } from "../../tensor/tensor";
import * as ops from "../../tensor/ops";
import { Module, Parameter } from "../../nn/module";
import { Linear, LayerNorm, Dropout } from "../../nn/layers";
import { ModelConfig, geluMode } from "../config";
import type { ArchHeads } from "../spec";
import type { RobertaModel } from "./model";

/** RoBERTa's classifier: dense → tanh → out_proj on the <s> token, dropout before each. */
class RobertaClassificationHead extends Module {
  readonly dense: Linear;
  readonly out_proj: Linear;
  readonly dropout: Dropout;
  constructor(c: ModelConfig, gen: ops.Generator) {
    super();
    this.dense = this.child("dense", new Linear(c.hiddenSize, c.hiddenSize, true, "classifier.dense"));
    this.out_proj = this.child("out_proj", new Linear(c.hiddenSize, c.numLabels, true, "classifier.out_proj"));
    this.dropout = this.child("dropout", new Dropout(c.classifierDropout, { gen }));
  }
  forward(first: Tensor): Tensor {
    return this.out_proj.forward(this.dropout.forward(ops.tanh(this.dense.forward(this.dropout.forward(first)))));
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

export const robertaHeads: ArchHeads<RobertaModel> = {
  sequenceClassification: {
    pooler: false,
    build(_body, c, gen) {
      const classifier = new RobertaClassificationHead(c, gen);
      return { modules: [["classifier", classifier]], forward: (o, x) => classifier.forward(ops.selectTokens(o.lastHiddenState, new Array(x.batchSize).fill(0))) };
    },
  },
  tokenClassifierDropout: (c) => c.classifierDropout,
  qaDropout: () => null,
  maskedLM(body, c) {
    const lm = new RobertaLMHead(c, body.embeddings.word_embeddings.weight);
    return { modules: [["lm_head", lm]], forward: (h) => lm.forward(h) };
  },
};

// Language-model heads for continued pre-training, tied to the input embeddings as in HF:
// BertForMaskedLM (cls.predictions.*), RobertaForMaskedLM (lm_head.*), DistilBertForMaskedLM
// (vocab_transform, vocab_layer_norm, vocab_projector), GPT2LMHeadModel (lm_head = wte).
import { Tensor } from "../tensor/tensor";
import * as ops from "../tensor/ops";
import { Module, Parameter } from "../nn/module";
import { Linear, LayerNorm, Embedding } from "../nn/layers";
import { ModelConfig, geluMode } from "./config";

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

// Language-model heads for continued pre-training, tied to the input embeddings as in HF:
// BertForMaskedLM (cls.predictions.*), RobertaForMaskedLM (lm_head.*), DistilBertForMaskedLM
// (vocab_transform, vocab_layer_norm, vocab_projector), GPT2LMHeadModel (lm_head = wte).
import { Tensor } from "../tensor/tensor";
import * as ops from "../tensor/ops";
import { Module, Parameter } from "../nn/module";
import { Linear, LayerNorm, Embedding } from "../nn/layers";
import { ModelConfig, geluMode } from "./config";

/** dense → GELU → LayerNorm → logits = h·Eᵀ + bias with E the word embeddings. */
export class MaskedLMHead extends Module {
  readonly dense: Linear;
  readonly norm: LayerNorm;
  readonly bias: Parameter;
  constructor(readonly c: ModelConfig, readonly tied: Embedding, names: { dense: string; norm: string; bias: string }) {
    super();
    this.dense = this.child(names.dense, new Linear(c.hiddenSize, c.hiddenSize, true, names.dense));
    this.norm = this.child(names.norm, new LayerNorm(c.hiddenSize, c.layerNormEps, names.norm));
    this.bias = this.param(names.bias, [c.vocabSize]);
  }
  forward(h: Tensor): Tensor {
    const t = this.norm.forward(ops.gelu(this.dense.forward(h), geluMode(this.c)));
    return ops.linear(t, this.tied.weight, this.bias, "lm_head (tied to the word embeddings)");
  }
}

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

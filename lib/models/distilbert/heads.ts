// DistilBERT's heads (modeling_distilbert.py): DistilBertForSequenceClassification's pre_classifier,
// DistilBertForMaskedLM's vocab_transform / vocab_layer_norm / vocab_projector (tied), and the dropouts
// its token and QA heads take from their own keys.
import * as ops from "../../tensor/ops";
import { Module, Parameter } from "../../nn/module";
import { Linear, LayerNorm, Dropout } from "../../nn/layers";
import { geluMode } from "../config";
import type { ArchHeads } from "../spec";
import type { DistilBertModel } from "./model";

/** DistilBERT's vocab_projector keeps only its bias; its weight is the word embeddings. */
class TiedProjector extends Module {
  readonly bias: Parameter;
  constructor(vocab: number) {
    super();
    this.bias = this.param("bias", [vocab]);
  }
}

export const distilbertHeads: ArchHeads<DistilBertModel> = {
  sequenceClassification: {
    pooler: false,
    // pre_classifier → ReLU → dropout (seq_classif_dropout) → classifier, on the first token.
    build(_body, c, gen) {
      const pre = new Linear(c.hiddenSize, c.hiddenSize, true, "pre_classifier");
      const classifier = new Linear(c.hiddenSize, c.numLabels, true, "classifier");
      const dropout = new Dropout(c.classifierDropout, { gen });
      return {
        modules: [["pre_classifier", pre], ["classifier", classifier], ["dropout", dropout]],
        forward: (o, x) => classifier.forward(dropout.forward(ops.relu(pre.forward(ops.selectTokens(o.lastHiddenState, new Array(x.batchSize).fill(0)))))),
      };
    },
  },
  // DistilBertForTokenClassification's dropout is config.dropout; the QA head's is qa_dropout.
  tokenClassifierDropout: (c) => c.hiddenDropout,
  qaDropout: (c) => c.qaDropout,
  maskedLM(body, c) {
    const words = body.embeddings.word_embeddings.weight;
    const transform = new Linear(c.hiddenSize, c.hiddenSize, true, "vocab_transform");
    const norm = new LayerNorm(c.hiddenSize, 1e-12, "vocab_layer_norm");
    const proj = new TiedProjector(c.vocabSize);
    return {
      modules: [["vocab_transform", transform], ["vocab_layer_norm", norm], ["vocab_projector", proj]],
      forward: (h) => ops.linear(norm.forward(ops.gelu(transform.forward(h), geluMode(c))), words, proj.bias, "vocab_projector (tied)"),
    };
  },
};

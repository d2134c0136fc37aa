// GPT-2's heads (modeling_gpt2.py): GPT2ForSequenceClassification's score at the last real token, and
// GPT2LMHeadModel's lm_head, tied to wte (no parameter of its own).
import * as ops from "../../tensor/ops";
import { Linear } from "../../nn/layers";
import type { ArchHeads } from "../spec";
import type { GPT2Model } from "./model";
import { lastRealTokens } from "../inputs";

export const gpt2Heads: ArchHeads<GPT2Model> = {
  sequenceClassification: {
    pooler: false,
    // HF's score has no bias and no dropout, and reads the last non-padding token (found here from the mask).
    build(_body, c) {
      const score = new Linear(c.hiddenSize, c.numLabels, false, "score");
      return { modules: [["score", score]], forward: (o, x) => score.forward(ops.selectTokens(o.lastHiddenState, lastRealTokens(o.mask, x.batchSize, x.seqLen))) };
    },
  },
  // GPT2ForTokenClassification: classifier_dropout ?? hidden_dropout ?? 0.1 (config.classifierDropout); no QA dropout.
  tokenClassifierDropout: (c) => c.classifierDropout,
  qaDropout: () => null,
  causalLM(body) {
    return { modules: [], forward: (h) => ops.linear(h, body.wte.weight, null, "lm_head (tied to wte)") };
  },
};

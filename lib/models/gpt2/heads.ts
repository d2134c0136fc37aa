// GPT-2's heads (modeling_gpt2.py): GPT2ForSequenceClassification's score at the last real token, and
// GPT2LMHeadModel's lm_head, tied to wte (no parameter of its own).
import * as ops from "../../tensor/ops";
import type { ArchHeads } from "../spec";
import type { GPT2Model } from "./model";
import { lastTokenScore } from "../last_token_head";

export const gpt2Heads: ArchHeads<GPT2Model> = {
  sequenceClassification: lastTokenScore,
  // GPT2ForTokenClassification: classifier_dropout ?? hidden_dropout ?? 0.1 (config.classifierDropout); no QA dropout.
  tokenClassifierDropout: (c) => c.classifierDropout,
  qaDropout: () => null,
  causalLM(body) {
    return { modules: [], forward: (h) => ops.linear(h, body.wte.weight, null, "lm_head (tied to wte)") };
  },
};

// The sequence-classification head of HF's decoders (GPT2ForSequenceClassification and
// GenericForSequenceClassification: Llama, Mistral, Qwen2, Qwen3): `score`, a Linear with no bias and no
// dropout, read at each row's last real token. HF finds that token as the last whose id is not
// pad_token_id; tunekit as the last with attention mask 1 (lastRealTokens): the same token for every batch
// padded with the pad id, and it needs no pad id.
import * as ops from "../tensor/ops";
import { Linear } from "../nn/layers";
import { lastRealTokens } from "./inputs";
import type { ArchHeads, Body } from "./spec";

export const lastTokenScore: ArchHeads<Body>["sequenceClassification"] = {
  pooler: false,
  build(_body, c) {
    const score = new Linear(c.hiddenSize, c.numLabels, false, "score");
    return { modules: [["score", score]], forward: (o, x) => score.forward(ops.selectTokens(o.lastHiddenState, lastRealTokens(o.mask, x.batchSize, x.seqLen))) };
  },
};

// The Llama family's heads (modeling_llama.py's LlamaForCausalLM and GenericForSequenceClassification, the
// same in Mistral, Qwen2 and Qwen3; the token-classification head is the generic classifier): lm_head, a Linear of its own or embed_tokens' matrix when
// tie_word_embeddings; score (no bias, no dropout) read at each row's last real token.
import * as ops from "../../tensor/ops";
import { Linear } from "../../nn/layers";
import type { ArchHeads } from "../spec";
import { lastTokenScore } from "../last_token_head";
import type { LlamaModel } from "./model";

export const decoderHeads: ArchHeads<LlamaModel> = {
  sequenceClassification: lastTokenScore,
  // GenericForTokenClassification: classifier_dropout ?? hidden_dropout ?? 0.1 (config.classifierDropout).
  tokenClassifierDropout: (c) => c.classifierDropout,
  causalLM(body, c) {
    if (c.tieWordEmbeddings) return { modules: [], forward: (h) => ops.linear(h, body.embed_tokens.weight, null, "lm_head (tied to embed_tokens)") };
    const lm_head = new Linear(c.hiddenSize, c.vocabSize, false, "lm_head");
    return { modules: [["lm_head", lm_head]], forward: (h) => lm_head.forward(h) };
  },
};

/** What every family member's spec shares (all but model type, module, class names, config and body flags). */
export const DECODER_SPEC = {
  prefix: "model",
  heads: decoderHeads,
  checkpoint: {
    // HF's rotary inv_freq is a non-persistent buffer; old exports saved it.
    buffers: ["rotary_emb.inv_freq"],
    // With tie_word_embeddings a file may still hold lm_head.weight (a copy): dropped. Untied, lm_head is a
    // parameter of the model and loads as one (checkpoint_keys' parameterKeys).
    tied: { "lm_head.weight": "model.embed_tokens.weight" },
    transposed: [],
    optional: [],
  },
  layers: { list: "layers", embeddings: ["embed_tokens"] },
  norms: ["input_layernorm", "post_attention_layernorm", "norm", "q_norm", "k_norm"],
} as const;

/** Leaf names of the Linear layers of a Llama-family model (body, lm_head, score, classifier). */
export type DecoderLinear = "q_proj" | "k_proj" | "v_proj" | "o_proj" | "gate_proj" | "up_proj" | "down_proj" | "lm_head" | "score" | "classifier";

/** PEFT's names: every Linear; its default target_modules for llama, mistral, qwen2 and qwen3 are q_proj and v_proj. */
export const DECODER_LORA = {
  linear: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "lm_head", "score", "classifier"] as DecoderLinear[],
  defaultTargets: ["q_proj", "v_proj"] as DecoderLinear[],
  queryValue: ["q_proj", "v_proj"] as DecoderLinear[],
};

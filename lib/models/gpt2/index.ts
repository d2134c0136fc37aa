// GPT-2 (modeling_gpt2.py, configuration_gpt2.py): everything tunekit knows about the architecture.
import type { ArchSpec } from "../spec";
import { GPT2ConfigJson, gpt2Config } from "./config";
import { GPT2Model } from "./model";
import { gpt2Heads } from "./heads";

export type { GPT2ConfigJson };

/** Leaf names of GPT-2's Linear layers (body and task heads; its LM head is wte). */
export type GPT2Linear = "c_attn" | "c_proj" | "c_fc" | "score" | "classifier" | "qa_outputs";

export const gpt2: ArchSpec<GPT2ConfigJson, GPT2Model, GPT2Linear> = {
  modelType: "gpt2",
  hfModule: "transformers.models.gpt2.modeling_gpt2",
  classes: {
    base: "GPT2Model", causalLM: "GPT2LMHeadModel", sequenceClassification: "GPT2ForSequenceClassification",
    tokenClassification: "GPT2ForTokenClassification", questionAnswering: "GPT2ForQuestionAnswering",
  },
  config: gpt2Config,
  prefix: "transformer",
  body: (config, ctx) => new GPT2Model(config, ctx),
  heads: gpt2Heads,
  checkpoint: {
    // The causal mask older transformers saved as attn.bias / attn.masked_bias.
    buffers: ["attn.bias", "attn.masked_bias"],
    tied: { "lm_head.weight": "transformer.wte.weight" },
    // HF's Conv1D layers store their weight [in, out].
    transposed: ["attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight"],
    optional: [],
  },
  layers: { list: "h", embeddings: ["wte", "wpe"] },
  norms: ["ln_1", "ln_2", "ln_f"],
  lora: { linear: ["c_attn", "c_proj", "c_fc", "score", "classifier", "qa_outputs"], defaultTargets: ["c_attn"], queryValue: ["c_attn"] },
  tokenizerClass: "GPT2Tokenizer",
};

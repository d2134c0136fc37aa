// The random-weight BERT cases of bench/train.mjs and bench/profile_train.mjs: the model, a full-length
// batch, and one step as the Trainer takes it (forward + backward with dropout on, global-norm clip at
// 1.0, AdamW), a LoRA step (r=8 on query and value, the classifier trains), or an inference forward.
import * as tk from "../dist/index.js";
import { fullBatchToken } from "./common.mjs";

/** { layers, hidden, heads, inter, vocab } → a BERT sequence classifier with random weights. */
export function randomBert(m) {
  const config = tk.parseConfig({
    model_type: "bert", vocab_size: m.vocab, hidden_size: m.hidden, num_hidden_layers: m.layers, num_attention_heads: m.heads,
    intermediate_size: m.inter, max_position_embeddings: 512, type_vocab_size: 2, hidden_act: "gelu", layer_norm_eps: 1e-12,
    hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1, pad_token_id: 0, initializer_range: 0.02,
  });
  return tk.AutoModelForSequenceClassification.fromConfig(config, { numLabels: 2, seed: 1 });
}

/**
 * FLOPs of one case, counted as matmuls only (2 per multiply-add): per token and layer the four H×H
 * projections and the two H×I ones, plus Q·Kᵀ and P·V (2·T·H each); pooler and classifier per sequence.
 * A full step is 3× the forward (backward = dX and dW products); LoRA is 2× (dX only, W frozen; the
 * rank-8 products are ignored); inference 1×.
 */
export function bertFlops({ layers, hidden: H, inter: I }, mode, B, T) {
  const fwd = B * T * layers * 2 * (4 * H * H + 2 * H * I + 2 * T * H) + B * 2 * (H * H + 2 * H);
  return fwd * (mode === "full" ? 3 : mode === "lora" ? 2 : 1);
}

/** B sequences of T tokens, no padding, alternating labels. */
export function fullBatch(B, T, vocab) {
  const inputIds = Int32Array.from({ length: B * T }, (_, i) => fullBatchToken(i, vocab));
  return { inputIds, attentionMask: new Uint8Array(B * T).fill(1), tokenTypeIds: new Int32Array(B * T), batchSize: B, seqLen: T, labels: Int32Array.from({ length: B }, (_, i) => i % 2) };
}

/** The function one step of `mode` ("full" | "lora" | "infer") runs. */
export function makeStep(model, batch, mode) {
  if (mode === "infer") {
    model.eval();
    return () => tk.noGrad(() => tk.tidy(() => { model.forward(batch); }));
  }
  if (mode === "lora") tk.applyLora(model, { r: 8, alpha: 16, dropout: 0.1, targetModules: ["query", "value"] });
  const params = model.parameters().filter((p) => p.requiresGrad);
  const opt = new tk.AdamW(tk.paramGroups(model, { lr: 1e-5, weightDecay: 0.01 }));
  model.train();
  return () => {
    tk.tidy(() => model.forward(batch, { lossOnly: true }).loss.backward());
    const norm = tk.gradNorm(params);
    opt.update(1, norm > 1 ? 1 / (norm + 1e-6) : 1);
    model.zeroGrad();
  };
}

// Fine-tuning methods by name, and the rule `--method auto` applies. The rule follows what the
// literature and practice report for small labelled sets: with a few hundred examples, updating every
// weight of a pre-trained encoder overfits and is unstable (Mosbach et al. 2021; Zhang et al. 2021),
// while a frozen body (linear probe) or a low-rank update (LoRA, Hu et al. 2022) keeps most of the
// pre-trained features; with thousands, full fine-tuning is the strongest (Devlin et al. 2019).
import { TunekitError } from "../errors";
import type { PreTrainedModel } from "../models/pretrained";
import { applyLora } from "../peft/lora";
import type { LoraBias } from "../peft";
import type { TrainerOptions } from "./trainer";

export type FineTuneMethod = "full" | "frozen" | "freeze-bottom" | "lora" | "gradual";

export interface MethodChoice {
  method: FineTuneMethod;
  /** The rule that picked it, in words. */
  rule: string;
}

/** Below this many labelled examples: frozen body; below LORA_BELOW: LoRA; else full fine-tuning. */
export const FROZEN_BELOW = 300;
export const LORA_BELOW = 2000;

export function chooseMethod(labelledExamples: number): MethodChoice {
  const n = labelledExamples;
  if (!Number.isInteger(n) || n < 1) throw new TunekitError(`chooseMethod: expected a count of labelled examples >= 1, got ${n}`);
  if (n < FROZEN_BELOW) return { method: "frozen", rule: `${n} labelled examples < ${FROZEN_BELOW}: frozen body, only the head trains (too few to move the encoder without overfitting)` };
  if (n < LORA_BELOW) return { method: "lora", rule: `${FROZEN_BELOW} <= ${n} labelled examples < ${LORA_BELOW}: LoRA r=8 on query/value + the head (a small update that keeps the pre-trained weights)` };
  return { method: "full", rule: `${n} labelled examples >= ${LORA_BELOW}: full fine-tuning (enough data to adapt every weight)` };
}

export interface MethodOptions {
  /** freeze-bottom: embeddings + this many lowest layers stay frozen. Default 1. */
  freezeLayers?: number;
  lora?: { r?: number; alpha?: number; dropout?: number; targetModules?: string[]; bias?: LoraBias };
}

/** Applies `method` to the model (LoRA wraps layers in place) and returns the Trainer options it needs. */
export function applyMethod<F, B>(model: PreTrainedModel, method: FineTuneMethod, o: MethodOptions = {}): Partial<TrainerOptions<F, B>> {
  switch (method) {
    case "full": return {};
    case "frozen": return { freeze: { body: true } };
    case "freeze-bottom": return { freeze: { embeddings: true, layers: o.freezeLayers ?? 1 } };
    case "gradual": return { gradualUnfreezing: true };
    case "lora": {
      const l = o.lora ?? {};
      applyLora(model, { r: l.r ?? 8, alpha: l.alpha ?? 16, dropout: l.dropout ?? 0.1, bias: l.bias ?? "none",
        ...(l.targetModules ? { targetModules: l.targetModules as never } : {}) });
      return {};
    }
    default: throw new TunekitError(`unknown fine-tuning method ${JSON.stringify(method)}; expected full, frozen, freeze-bottom, lora or gradual`);
  }
}

/**
 * Default peak learning rate of a method. Head-only and LoRA training move few weights from a good
 * start and take 1e-3 (PEFT's examples use 1e-3 to 3e-4); full fine-tuning takes HF's 5e-5 for
 * BERT-base-sized models and more for small ones (Turc et al. 2019 tuned 1e-4..3e-4 for BERT-mini/tiny).
 */
export function defaultLearningRate(method: FineTuneMethod, hiddenSize: number): number {
  if (method === "frozen" || method === "lora") return 1e-3;
  return hiddenSize >= 512 ? 5e-5 : 2e-4;
}

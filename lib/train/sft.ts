// Instruction fine-tuning (TRL's SFTTrainer): SFT examples (lib/data/sft.ts) → features with the loss
// on completions / assistant turns → the Trainer, with LoRA on every linear layer of the body when a
// peftConfig is given (PEFT's "all-linear": q/k/v/o and gate/up/down for Llama-style bodies, c_attn /
// c_proj / c_fc for GPT-2; never the LM head). Nothing here depends on the architecture beyond its spec.
import { TunekitError } from "../errors";
import type { Tokenizer } from "../data/tokenizer";
import { collate, Batch } from "../data/features/collate";
import { SftExample, SftFeature, ChatRenderer, sftFeatures, packSftFeatures, isConversation, isChatPromptCompletion } from "../data/sft";
import { ModelForCausalLM } from "../models/lm";
import { maxTokens } from "../models/registry";
import { Linear } from "../nn/layers";
import { applyLora, LoraOptions, LoraSummary } from "../peft";
import { walkModules } from "../peft/targets";
import { applyChatTemplate } from "../generation/chat";
import { generate } from "../generation/generate";
import { Trainer, TrainerOptions, TrainResult } from "./trainer";

/** TRL's default max_length. */
export const SFT_MAX_LENGTH = 1024;

/**
 * PEFT's target_modules="all-linear": the leaf names of every Linear layer inside the body, in the
 * spec's order (the LM head and task heads are not in the body). Llama: q_proj … down_proj; GPT-2:
 * c_attn, c_proj, c_fc.
 */
export function allLinearTargets(model: ModelForCausalLM): string[] {
  const inBody = new Set<string>();
  for (const e of walkModules(model))
    if (e.module instanceof Linear && e.name.startsWith(`${model.prefix}.`)) inBody.add(e.name.slice(e.name.lastIndexOf(".") + 1));
  const names = model.spec.lora.linear.filter((n) => inBody.has(n));
  if (!names.length) throw new TunekitError(`${model.architecture}: no Linear layer in the body to adapt`);
  return names;
}

export interface SftOptions extends Omit<TrainerOptions<SftFeature, Batch>, "model" | "train" | "eval" | "collate" | "evaluator"> {
  model: ModelForCausalLM;
  tokenizer: Tokenizer;
  train: SftExample[];
  eval?: SftExample[];
  /** Tokens per example (per packed row). Default min(1024, the model's positions, the tokenizer's model_max_length). */
  maxLength?: number;
  /** Pack examples into rows of maxLength tokens (packSftFeatures). Default false. */
  packing?: boolean;
  /** Renders conversations. Default: the tokenizer's chat template (applyChatTemplate). */
  chatTemplate?: ChatRenderer;
  completionOnlyLoss?: boolean;
  assistantOnlyLoss?: boolean;
  /** LoRA (PEFT's LoraConfig) applied before training; targetModules default: allLinearTargets(model). */
  peftConfig?: LoraOptions;
}

export interface SftResult extends TrainResult {
  features: { train: number; eval: number; truncated: number; dropped: number; mismatched: number };
  lora?: LoraSummary;
  /** Mean loss on the eval examples' labelled tokens at the end; NaN without eval. */
  evalLoss: number;
}

/** The tokenizer's chat template as a renderer (applyChatTemplate), or undefined when it has none. */
export function chatRenderer(tokenizer: Tokenizer): ChatRenderer | undefined {
  return tokenizer.chatTemplate === null ? undefined : (m, o) => applyChatTemplate(tokenizer, m, { addGenerationPrompt: o.addGenerationPrompt });
}

/** The length examples are cut to: the option, else TRL's 1024 capped by the model and tokenizer. */
export function sftMaxLength(model: ModelForCausalLM, tokenizer: Tokenizer, maxLength?: number): number {
  const cap = maxTokens(model.config);
  const n = maxLength ?? Math.min(SFT_MAX_LENGTH, cap, Number.isFinite(tokenizer.modelMaxLength) ? tokenizer.modelMaxLength : Infinity);
  if (!Number.isInteger(n) || n < 2 || n > cap) throw new TunekitError(`sft: maxLength must be an integer in 2..${cap} (the model's positions), got ${n}`);
  return n;
}

/** Tokenizes (and packs), applies LoRA when asked, and trains. The Trainer does the rest. */
export async function sft(o: SftOptions): Promise<SftResult> {
  const { model, tokenizer, train, eval: evalExamples, maxLength: _m, packing, chatTemplate, completionOnlyLoss, assistantOnlyLoss, peftConfig, ...rest } = o;
  if (!(model instanceof ModelForCausalLM)) throw new TunekitError("sft: the model must be a ModelForCausalLM (AutoModelForCausalLM.fromPretrained)");
  if (!Array.isArray(train) || !train.length) throw new TunekitError("sft: train must be a non-empty list of examples");
  const maxLength = sftMaxLength(model, tokenizer, o.maxLength);
  const fo = { maxLength, chatTemplate: chatTemplate ?? chatRenderer(tokenizer), completionOnlyLoss, assistantOnlyLoss };
  const tr = await sftFeatures(tokenizer, train, fo);
  const ev = evalExamples?.length ? await sftFeatures(tokenizer, evalExamples, fo) : null;
  const trainRows = packing ? packSftFeatures(tr.features, maxLength) : tr.features;
  const lora = peftConfig ? applyLora(model, { ...peftConfig, targetModules: peftConfig.targetModules ?? (allLinearTargets(model) as never) }) : undefined;
  const padId = tokenizer.padTokenId ?? tokenizer.eosTokenId ?? 0;
  const trainer = new Trainer<SftFeature, Batch>({
    ...rest,
    model: model as never,
    train: trainRows,
    eval: ev?.features,
    collate: (f) => collate(f, { padId }),
  });
  const result = await trainer.train();
  const evalLoss = ev ? (trainer.evaluate().loss as number) : NaN;
  return {
    ...result, lora, evalLoss,
    features: { train: trainRows.length, eval: ev?.features.length ?? 0, truncated: tr.truncated + (ev?.truncated ?? 0),
      dropped: tr.dropped + (ev?.dropped ?? 0), mismatched: tr.mismatched + (ev?.mismatched ?? 0) },
  };
}

/** What the model is asked and what it should answer, for each kind of example. */
export async function promptAndReference(e: SftExample, chatTemplate?: ChatRenderer): Promise<{ prompt: string | null; promptText: string; reference: string }> {
  if (isConversation(e)) {
    const last = e.messages.map((m) => m.role).lastIndexOf("assistant");
    if (!chatTemplate) throw new TunekitError("a conversational example needs the model's chat template (chatTemplate)");
    return { prompt: null, promptText: await chatTemplate(e.messages.slice(0, last), { addGenerationPrompt: true }), reference: e.messages[last].content };
  }
  if (isChatPromptCompletion(e)) {
    if (!chatTemplate) throw new TunekitError("a conversational example needs the model's chat template (chatTemplate)");
    return { prompt: null, promptText: await chatTemplate(e.prompt, { addGenerationPrompt: true }), reference: e.completion.map((m) => m.content).join("") };
  }
  return { prompt: e.prompt, promptText: e.prompt, reference: e.completion };
}

export interface ExactMatchResult {
  /** Fraction of examples whose greedy output equals the reference (both trimmed of surrounding whitespace). */
  exactMatch: number;
  outputs: { prompt: string; reference: string; output: string; match: boolean }[];
}

/**
 * Exact match of greedy generation (generate(), batched) against each example's completion (its last
 * assistant turn for a conversation): the new text with special tokens left out, stopped at EOS,
 * compared after trimming surrounding whitespace. Default maxNewTokens: the longest reference's tokens + 8.
 */
export async function sftExactMatch(model: ModelForCausalLM, tokenizer: Tokenizer, examples: SftExample[],
  o: { maxNewTokens?: number; chatTemplate?: ChatRenderer; batchSize?: number } = {}): Promise<ExactMatchResult> {
  if (!examples.length) throw new TunekitError("sftExactMatch: no examples");
  const chat = o.chatTemplate ?? chatRenderer(tokenizer);
  const asked = await Promise.all(examples.map((e) => promptAndReference(e, chat)));
  // A rendered chat prompt already holds its special tokens; a plain prompt gets the tokenizer's.
  const prompts = await Promise.all(asked.map(async (a) => (await tokenizer.encode(a.promptText, null, { addSpecialTokens: a.prompt !== null })).input_ids));
  const longest = Math.max(...(await Promise.all(asked.map(async (a) => (await tokenizer.encode(a.reference, null, { addSpecialTokens: false })).input_ids.length))));
  const batch = o.batchSize ?? 16;
  const outputs: ExactMatchResult["outputs"] = [];
  for (let i = 0; i < prompts.length; i += batch) {
    const gen = await generate(model, tokenizer, prompts.slice(i, i + batch), { maxNewTokens: o.maxNewTokens ?? longest + 8, doSample: false });
    gen.forEach((g, k) => {
      const a = asked[i + k];
      outputs.push({ prompt: a.promptText, reference: a.reference, output: g.text, match: g.text.trim() === a.reference.trim() });
    });
  }
  return { exactMatch: outputs.filter((x) => x.match).length / outputs.length, outputs };
}

// Language-model pre-training on raw text: from scratch, or continued on a domain (DAPT, Gururangan
// et al. 2020). Texts are encoded and cut into blocks as run_mlm / run_clm do; masks (MLM) are drawn
// per batch from (seed, batch number). A slice of the blocks is held out with masks fixed once, so the
// validation loss (and perplexity = exp(loss)) of different evaluations compare the same thing.
import { TunekitError } from "../errors";
import type { Tokenizer } from "../data/tokenizer";
import { collate, Batch, Feature } from "../data/features/collate";
import { DataCollatorForLanguageModeling, languageModelingFeatures, maskTokens } from "../data/features/lm";
import { mixSeed } from "../data/rng";
import { ModelForMaskedLM, ModelForCausalLM } from "../models/lm";
import { maxTokens } from "../models/registry";
import { Trainer, TrainerOptions, TrainResult } from "./trainer";

export interface PretrainOptions extends Omit<TrainerOptions<Feature, Batch>, "model" | "train" | "eval" | "collate" | "evaluator"> {
  model: ModelForMaskedLM | ModelForCausalLM;
  tokenizer: Tokenizer;
  texts: string[];
  /** Fraction of the blocks held out for validation (default 0.05; 0 = none). */
  validation?: number;
  /** Tokens per block. Default min(128, the model's max positions). */
  blockSize?: number;
  /** MLM only. Default 0.15. */
  mlmProbability?: number;
}

export interface PretrainResult extends TrainResult {
  blocks: { train: number; validation: number };
  /** exp(validation loss) at the end; NaN without validation. */
  perplexity: number;
  validationLoss: number;
}

/** Builds the blocks and trains. The Trainer does the rest (schedules, checkpoints, logs, progress). */
export async function pretrain(o: PretrainOptions): Promise<PretrainResult> {
  const where = "pretrain";
  const { model, tokenizer, texts, ...rest } = o;
  const mlm = model instanceof ModelForMaskedLM;
  if (!mlm && !(model instanceof ModelForCausalLM)) throw new TunekitError(`${where}: the model must be a ModelForMaskedLM or ModelForCausalLM`);
  const c = model.config;
  const maxPos = maxTokens(c); // RoBERTa's positions start at pad + 1
  const blockSize = o.blockSize ?? Math.min(128, maxPos);
  if (!Number.isInteger(blockSize) || blockSize < 2 || blockSize > maxPos) {
    throw new TunekitError(`${where}: blockSize must be an integer in 2..${maxPos} (the model's max_position_embeddings), got ${blockSize}`);
  }
  const frac = o.validation ?? 0.05;
  if (!(frac >= 0 && frac < 1)) throw new TunekitError(`${where}: validation must be a fraction in [0, 1), got ${frac}`);
  const seed = o.seed ?? 42;
  const blocks = await languageModelingFeatures(tokenizer, texts, { blockSize });
  // At least one held-out block whenever validation is asked for and there are two or more blocks.
  const nVal = frac > 0 && blocks.length >= 2 ? Math.max(1, Math.floor(blocks.length * frac)) : 0;
  if (blocks.length - nVal < 1) throw new TunekitError(`${where}: the texts give ${blocks.length} blocks of ${blockSize} tokens; need at least one to train on`);
  // Held-out blocks are evenly spaced through the corpus, so they come from every part of it.
  const isVal = new Set(Array.from({ length: nVal }, (_, i) => Math.floor((i + 0.5) * blocks.length / nVal)));
  const train = blocks.filter((_, i) => !isVal.has(i));
  const collator = new DataCollatorForLanguageModeling({ tokenizer, mlm, mlmProbability: o.mlmProbability, seed });
  const padId = tokenizer.padTokenId ?? 0;
  // Validation rows carry their labels (masked once, from the seed), so they collate as they are.
  const validation: Feature[] = blocks.filter((_, i) => isVal.has(i)).map((f, i) => {
    const b = collate([f], { padId });
    const m = mlm ? maskTokens(b, { maskId: tokenizer.maskTokenId!, vocabSize: tokenizer.vocabSize, specialIds: tokenizer.allSpecialIds,
      probability: o.mlmProbability, seed: mixSeed(seed, 0x7e57, i) }) : { ...b, labels: b.inputIds };
    return { inputIds: Array.from(m.inputIds), labels: Array.from(m.labels!), labelKind: "token" };
  });
  const trainer = new Trainer<Feature, Batch>({
    ...rest,
    seed,
    model: model as never,
    train,
    eval: validation.length ? validation : undefined,
    collate: (features) => (features[0].labels !== undefined ? collate(features, { padId }) : collator.collate(features)),
  });
  const result = await trainer.train();
  const validationLoss = validation.length ? (trainer.evaluate().loss as number) : NaN;
  return { ...result, blocks: { train: train.length, validation: validation.length }, validationLoss, perplexity: Math.exp(validationLoss) };
}

// --task sft: instruction fine-tuning of a causal LM (TRL's SFTTrainer) on JSON lines of
// {"prompt", "completion"} or {"messages"} (lib/data/sft.ts): the loss on completions / assistant turns,
// --packing into rows of --max-length tokens, LoRA on every linear layer of the body by default (PEFT's
// all-linear), the validation loss while training and, at the end, the exact match of greedy generation
// on (up to EXACT_MATCH_EXAMPLES of) the validation examples.
import { TunekitError } from "../errors";
import type { Tokenizer } from "../data/tokenizer";
import { collate } from "../data/features/collate";
import { readSftJsonl, sftFeatures, packSftFeatures, SftExample } from "../data/sft";
import { splitItems } from "../data/files/split";
import { AutoModelForCausalLM } from "../models/auto";
import { readConfig } from "../models/config_json";
import { specFor, maxTokens } from "../models/registry";
import type { ModelForCausalLM } from "../models/lm";
import { allLinearTargets, chatRenderer, sftExactMatch, SFT_MAX_LENGTH } from "../train/sft";
import type { DataFlags, ModelFlags } from "./args";
import { resolveModel } from "./models";
import type { TaskData } from "./tasks";

/** Validation examples the final exact match generates for (greedy generation is the slow part). */
export const EXACT_MATCH_EXAMPLES = 200;

export async function sftTask(tok: Tokenizer, flags: ModelFlags & DataFlags & { packing?: boolean },
  o: { validation: number | string; seed: number; limit?: number }, padId: number): Promise<TaskData> {
  const dir = resolveModel(flags.model);
  const cfg = readConfig(dir);
  if (!specFor(cfg.modelType).classes.causalLM) throw new TunekitError(`--task sft trains a causal language model; ${dir} is a ${cfg.modelType} model, which has none (give --model a GPT-2, Llama, Mistral or Qwen folder)`);
  const read = (file: string) => readSftJsonl(file, { onBadRow: flags.onBadRow });
  const all = read(flags.data);
  let train: SftExample[], validation: SftExample[];
  if (typeof o.validation === "string") {
    train = all.examples;
    validation = read(o.validation).examples;
  } else {
    ({ train, validation } = splitItems(all.examples, o.validation, o.seed, flags.data, () => ""));
  }
  if (o.limit) train = train.slice(0, o.limit);
  if (!validation.length) throw new TunekitError("the validation set is empty: give --validation a fraction in (0, 1), a count or a file");
  const maxLength = flags.maxLength ?? Math.min(SFT_MAX_LENGTH, maxTokens(cfg), Number.isFinite(tok.modelMaxLength) ? tok.modelMaxLength : Infinity);
  const chatTemplate = chatRenderer(tok);
  const fo = { maxLength, chatTemplate };
  const tr = await sftFeatures(tok, train, fo);
  const val = await sftFeatures(tok, validation, fo);
  return {
    task: "sft", train: flags.packing ? packSftFeatures(tr.features, maxLength) : tr.features, validation: val.features, examples: train.length,
    labelNames: null, skipped: all.skipped.length, metric: "loss", maxLength,
    createModel: async (d, r) => (r.random ? AutoModelForCausalLM.fromConfig(readConfig(d), { seed: r.seed })
      : await AutoModelForCausalLM.fromPretrained(d, { warn: null, seed: r.seed })) as never,
    collate: (f) => ({ ...collate(f, { padId }), features: f }),
    // The Trainer computes the loss; nothing else is measured per evaluation.
    evaluator: () => ({ update: () => undefined, compute: () => ({}) }),
    loraTargets: (model) => allLinearTargets(model as unknown as ModelForCausalLM),
    analyse: async (model) => {
      const r = await sftExactMatch(model as unknown as ModelForCausalLM, tok, validation.slice(0, EXACT_MATCH_EXAMPLES), { chatTemplate });
      return { exactMatch: r.exactMatch, generations: r.outputs };
    },
  };
}

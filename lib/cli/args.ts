// Flag groups shared by the commands, and their conversion to Trainer / LoRA options. Every Trainer
// and LoRA option has a flag; names follow HF's TrainingArguments / LoraConfig in kebab case.
import { Command, InvalidArgumentError, Option } from "commander";
import type { ScheduleName } from "../train/schedules";

export const int = (min: number) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`expected an integer >= ${min}, got '${v}'`);
  return n;
};
export const float = (min: number, max = Infinity) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < min || n > max) throw new InvalidArgumentError(`expected a number in [${min}, ${max}], got '${v}'`);
  return n;
};
const list = (v: string): string[] => v.split(",").map((s) => s.trim()).filter(Boolean);

export const TASKS = ["classification", "regression", "multi-label", "token-classification", "qa"] as const;
export type TaskName = (typeof TASKS)[number];
export const METHODS = ["full", "frozen", "freeze-bottom", "lora", "gradual", "auto"] as const;
export type MethodName = (typeof METHODS)[number];

/** --model and --task (train, eval, predict, curve, info). */
export function modelOptions(cmd: Command): Command {
  return cmd
    .option("-m, --model <dir>", "a Hugging Face checkpoint folder (config.json + weights + tokenizer), or 'embedded'", "embedded")
    .addOption(new Option("-t, --task <task>", "what the model learns").choices(TASKS).default("classification"))
    .option("--max-length <n>", "tokens per example, special tokens included (default: the tokenizer's limit, at most 512)", int(8));
}

/** --data and the column mapping (train, eval, curve). */
export function dataOptions(cmd: Command, what = "training"): Command {
  return cmd
    .requiredOption("-d, --data <file>", `${what} data: .csv .tsv .jsonl .json .parquet (classification), CoNLL or .jsonl (token-classification), SQuAD .json (qa)`)
    .addOption(new Option("--format <format>", "file format (default: from the extension)").choices(["csv", "tsv", "jsonl", "json", "parquet", "conll", "squad", "text"]))
    .option("--text <column>", "text column (default: text, else sentence)")
    .option("--text-pair <column>", "second text column (sentence pairs)")
    .option("--label <column>", "label column (default: label)")
    .option("--labels <names>", "label names in id order, comma-separated (default: sorted labels of the data)", list)
    .addOption(new Option("--on-bad-row <what>", "malformed rows: fail with file:line, or skip them and count").choices(["fail", "skip"]).default("fail"));
}

/** Every Trainer option (train, curve, pretrain). */
export function trainerOptions(cmd: Command): Command {
  return cmd
    .option("--validation <file|fraction>", "validation file, or the fraction of --data held out (seeded, stratified)", "0.1")
    .option("--epochs <n>", "training epochs", float(0), 3)
    .option("--max-steps <n>", "stop after this many optimizer steps (overrides --epochs)", int(1))
    .option("--batch-size <n>", "examples per optimizer step (per micro-batch with --grad-accum)", int(1), 16)
    .option("--eval-batch-size <n>", "examples per evaluation batch", int(1))
    .option("--grad-accum <n>", "gradient accumulation steps", int(1), 1)
    .option("--lr <rate>", "peak learning rate (default: 1e-3 for frozen/LoRA; full: 5e-5 for hidden >= 512, else 2e-4)", float(0))
    .option("--warmup-ratio <r>", "fraction of steps with linear warm-up", float(0, 1), 0.1)
    .option("--warmup-steps <n>", "warm-up steps (overrides --warmup-ratio)", int(0))
    .option("--weight-decay <w>", "AdamW decoupled weight decay (not on biases and LayerNorm)", float(0), 0.01)
    .addOption(new Option("--scheduler <name>", "learning-rate schedule").choices(["linear", "cosine", "constant", "constant_with_warmup", "slanted_triangular"]).default("linear"))
    .option("--max-grad-norm <n>", "global gradient-norm clipping, 0 = off", float(0), 1)
    .option("--seed <n>", "seed of the split, initialisation, dropout and data order", int(0), 42)
    .addOption(new Option("--eval-strategy <when>", "when to evaluate").choices(["epoch", "steps", "no"]).default("epoch"))
    .option("--eval-steps <n>", "evaluate every n steps (with --eval-strategy steps)", int(1))
    .option("--metric <name>", "metric that picks the best model and drives early stopping (default: accuracy / f1 / loss by task)")
    .option("--early-stopping <patience>", "stop after this many evaluations without improvement", int(1))
    .option("--no-load-best", "keep the last weights instead of the best evaluated ones")
    .option("--save-steps <n>", "checkpoint every n steps into --out/checkpoint-n (resumable)", int(1))
    .option("--save-total-limit <n>", "keep at most n step checkpoints", int(1))
    .option("--resume <checkpoint>", "continue a run exactly where its checkpoint stopped ('latest': the newest complete checkpoint in --out, or a fresh start)")
    .option("--log <file>", "JSON-lines log of every step and evaluation (default: --out/log.jsonl)")
    .option("--no-progress", "no progress bar")
    .option("--layer-decay <xi>", "discriminative learning rates: layer l trains at lr·xi^(L−l)", float(0, 1))
    .option("--l2sp <lambda>", "L2-SP regularisation toward the pre-trained weights", float(0))
    .addOption(new Option("--on-non-finite <what>", "a NaN/Inf loss or gradient skips the step or stops training").choices(["skip", "stop"]).default("skip"))
    .option("--bf16", "matrix products in bfloat16 with fp32 accumulation where the CPU has AVX512-BF16/AMX (weights and optimizer stay fp32)")
    .option("--loss-scaling [initScale]", "dynamic loss scaling (torch GradScaler; initial scale default 65536)", float(0));
}

/** The fine-tuning method and LoRA's options (train, curve). */
export function methodOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--method <method>", "full fine-tuning; frozen body (head only); freeze-bottom (--freeze-layers); LoRA; gradual unfreezing (ULMFiT); auto (picked from the amount of labelled data)").choices(METHODS).default("full"))
    .option("--freeze-layers <n>", "freeze-bottom: embeddings + the n lowest layers stay frozen", int(0), 1)
    .option("--lora-r <n>", "LoRA rank", int(1), 8)
    .option("--lora-alpha <n>", "LoRA scaling numerator (scale = alpha / r)", float(0), 16)
    .option("--lora-dropout <p>", "dropout on the LoRA branch input", float(0, 1), 0.1)
    .option("--lora-targets <names>", "layers to adapt, comma-separated (default: query,value; gpt2: c_attn)", list)
    .addOption(new Option("--lora-bias <which>", "biases trained with LoRA").choices(["none", "all", "lora_only"]).default("none"))
    .option("--random-init", "train the same architecture from random initialisation (the no-transfer baseline)");
}

export interface TrainerFlags {
  validation: string; epochs: number; maxSteps?: number; batchSize: number; evalBatchSize?: number; gradAccum: number;
  lr?: number; warmupRatio: number; warmupSteps?: number; weightDecay: number; scheduler: ScheduleName; maxGradNorm: number;
  seed: number; evalStrategy: "epoch" | "steps" | "no"; evalSteps?: number; metric?: string; earlyStopping?: number;
  loadBest: boolean; saveSteps?: number; saveTotalLimit?: number; resume?: string; log?: string; progress: boolean;
  layerDecay?: number; l2sp?: number; onNonFinite: "skip" | "stop"; bf16?: boolean; lossScaling?: boolean | number;
}

export interface MethodFlags {
  method: MethodName; freezeLayers: number; loraR: number; loraAlpha: number; loraDropout: number;
  loraTargets?: string[]; loraBias: "none" | "all" | "lora_only"; randomInit?: boolean;
}

export interface DataFlags {
  data: string; format?: string; text?: string; textPair?: string; label?: string; labels?: string[]; onBadRow: "fail" | "skip";
}

export interface ModelFlags { model: string; task: TaskName; maxLength?: number }

/** --validation: a number in (0, 1) is a fraction, anything else a file. */
export function validationOf(v: string): number | string {
  const n = Number(v);
  return v.trim() !== "" && Number.isFinite(n) ? n : v;
}

/** A command's action; main wraps each to turn errors into one line and an exit code. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Action = (...args: any[]) => Promise<void>;

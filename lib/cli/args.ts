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
/** A number > min (exclusive) and <= max, or < max with openMax. */
export const above = (min: number, max = Infinity, openMax = false) => (v: string): number => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n <= min || (openMax ? n >= max : n > max))
    throw new InvalidArgumentError(`expected a number > ${min}${max < Infinity ? ` and ${openMax ? "<" : "<="} ${max}` : ""}, got '${v}'`);
  return n;
};
/** A number in [0, 1) (AdamW's betas). */
const unitOpen = (v: string): number => {
  const n = Number(v);
  if (v.trim() === "" || !Number.isFinite(n) || n < 0 || n >= 1) throw new InvalidArgumentError(`expected a number in [0, 1), got '${v}'`);
  return n;
};
const list = (v: string): string[] => v.split(",").map((s) => s.trim()).filter(Boolean);

export const TASKS = ["classification", "regression", "multi-label", "token-classification", "qa", "similarity", "sft"] as const;
export type TaskName = (typeof TASKS)[number];
export const METHODS = ["full", "frozen", "freeze-bottom", "lora", "gradual", "auto"] as const;
export type MethodName = (typeof METHODS)[number];

/** --model, --task and what shapes the inputs (train, curve). */
export function modelOptions(cmd: Command): Command {
  return cmd
    .option("-m, --model <dir>", "a Hugging Face checkpoint folder (config.json + weights + tokenizer), or 'embedded'", "embedded")
    .addOption(new Option("-t, --task <task>", "what the model learns; similarity: a bi-encoder on sentence pairs with a 0-5 score (STS-B)").choices(TASKS).default("classification"))
    .option("--packing", "sft: pack examples into rows of --max-length tokens (best-fit decreasing; attention crosses example boundaries within a row)")
    .option("--max-length <n>", "tokens per example (qa: per window; similarity: per sentence), special tokens included (default: the tokenizer's model_max_length, at most 512; qa: at most 384; sft: at most 1024); train saves it as the model's model_max_length (tokenizer_config.json)", int(8))
    .option("--doc-stride <n>", "qa: context tokens shared by consecutive windows of a long context (default: min(128, max-length / 3))", int(0))
    .addOption(new Option("--pooling <how>", "similarity: the sentence vector is the mean of the token vectors or the [CLS] vector").choices(["mean", "cls"]));
}

/** --data and the column mapping (train, eval, curve). */
export function dataOptions(cmd: Command, what = "training"): Command {
  return cmd
    .requiredOption("-d, --data <file>", `${what} data: .csv .tsv .jsonl .json .parquet (classification, regression, multi-label, similarity), CoNLL or .jsonl (token-classification), SQuAD .json (qa)`)
    .addOption(new Option("--format <format>", "file format (default: from the extension; token-classification: conll, jsonl, json, parquet; qa: squad)").choices(["csv", "tsv", "jsonl", "json", "parquet", "conll", "squad", "text"]))
    .option("--text <column>", "table files: text column (default: text, else sentence, else sentence1)")
    .option("--text-pair <column>", "second text column of sentence pairs (default with sentence1: sentence2)")
    .option("--label <column>", "label column (default: label; similarity: label, else score)")
    .option("--labels <names>", "label (token-classification: tag) names in id order, comma-separated (default: sorted labels of the data)", list)
    .addOption(new Option("--on-bad-row <what>", "malformed rows: fail with file:line, or skip them and count").choices(["fail", "skip"]).default("fail"));
}

/** Every Trainer option (train, curve, pretrain). */
export function trainerOptions(cmd: Command, help: { validation?: string; metric?: string; lr?: string } = {}): Command {
  return cmd
    .option("--validation <file|fraction>", help.validation ?? "validation file, or the fraction (0-1) or number (>= 1) of --data examples held out (seeded; stratified by class for classification)", "0.1")
    .option("--epochs <n>", "training epochs", int(1), 3)
    .option("--max-steps <n>", "stop after this many optimizer steps (overrides --epochs)", int(1))
    .option("--batch-size <n>", "examples per optimizer step (per micro-batch with --grad-accum)", int(1), 16)
    .option("--eval-batch-size <n>", "examples per evaluation batch", int(1))
    .option("--grad-accum <n>", "gradient accumulation steps", int(1), 1)
    .option("--lr <rate>", help.lr ?? "peak learning rate (default: 1e-3 for frozen/LoRA; otherwise 5e-5 for hidden >= 512, else 2e-4)", above(0))
    .option("--warmup-ratio <r>", "fraction of steps with linear warm-up (linear, cosine and constant_with_warmup schedules)", float(0, 1), 0.1)
    .option("--warmup-steps <n>", "warm-up steps (overrides --warmup-ratio)", int(0))
    .option("--weight-decay <w>", "AdamW decoupled weight decay (not on biases and LayerNorm)", float(0), 0.01)
    .option("--adam-beta1 <b>", "AdamW beta1 (HF adam_beta1), in [0, 1)", unitOpen, 0.9)
    .option("--adam-beta2 <b>", "AdamW beta2 (HF adam_beta2), in [0, 1)", unitOpen, 0.999)
    .option("--adam-epsilon <e>", "AdamW epsilon (HF adam_epsilon), > 0", above(0), 1e-8)
    .addOption(new Option("--scheduler <name>", "learning-rate schedule").choices(["linear", "cosine", "constant", "constant_with_warmup", "slanted_triangular"]).default("linear"))
    .option("--max-grad-norm <n>", "global gradient-norm clipping, 0 = off", float(0), 1)
    .option("--seed <n>", "seed of the split, initialisation, dropout and data order", int(0), 42)
    .addOption(new Option("--eval-strategy <when>", "when to evaluate").choices(["epoch", "steps", "no"]).default("epoch"))
    .option("--eval-steps <n>", "evaluate every n steps (with --eval-strategy steps)", int(1))
    .option("--metric <name>", help.metric ?? "metric that picks the best model and drives early stopping; loss is lower-is-better, every other higher (default: classification f1 with 2 labels, else macro_f1; regression pearson; multi-label micro_f1; token-classification f1 (of entities); qa f1; similarity spearman)")
    .option("--early-stopping <patience>", "stop after this many evaluations without improvement (needs --eval-strategy epoch or steps)", int(1))
    .option("--no-load-best", "keep the last weights instead of the best evaluated ones")
    .option("--save-steps <n>", "checkpoint every n steps into --out/checkpoint-n (resumable)", int(1))
    .option("--save-total-limit <n>", "keep at most n step checkpoints", int(1))
    .option("--resume <checkpoint>", "continue a run exactly where its checkpoint stopped ('latest': the newest complete checkpoint in --out, or a fresh start)")
    .option("--log <file>", "JSON-lines log of every step and evaluation (default: --out/log.jsonl)")
    .option("--no-progress", "no progress bar and no step / evaluation lines (all of them go to stderr)")
    .option("--layer-decay <xi>", "discriminative learning rates: layer l trains at lr·xi^(L−l)", float(0, 1))
    .option("--l2sp <lambda>", "L2-SP regularisation toward the pre-trained weights", float(0))
    .addOption(new Option("--on-non-finite <what>", "a NaN/Inf loss or gradient skips the step or stops training").choices(["skip", "stop"]).default("skip"))
    .option("--bf16", "matrix products in bfloat16 with fp32 accumulation where the CPU has AVX512-BF16/AMX, or on a GPU's tensor cores (weights and optimizer stay fp32)")
    .option("--fp16", "matrix products in IEEE half on a GPU's tensor cores (--device cuda only), with dynamic loss scaling")
    .addOption(new Option("--device <device>", "where the model trains: cpu, or cuda (needs the CUDA library: npm run build:cuda)").choices(["cpu", "cuda"]).default("cpu"))
    .option("--loss-scaling [initScale]", "dynamic loss scaling (torch GradScaler; initial scale default 65536)", above(0));
}

/** The fine-tuning method and LoRA's options (train, curve). */
export function methodOptions(cmd: Command): Command {
  return cmd
    .addOption(new Option("--method <method>", "full fine-tuning; frozen body (head only); freeze-bottom (--freeze-layers); LoRA; gradual unfreezing (ULMFiT); auto (picked from the amount of labelled data)").choices(METHODS).default("full"))
    .option("--freeze-layers <n>", "freeze-bottom: embeddings + the n lowest layers stay frozen", int(0), 1)
    .option("--lora-r <n>", "LoRA rank", int(1), 8)
    .option("--lora-alpha <n>", "LoRA scaling numerator (scale = alpha / r)", float(0), 16)
    .option("--lora-dropout <p>", "dropout on the LoRA branch input, in [0, 1)", unitOpen, 0.1)
    .option("--lora-targets <names>", "layers to adapt, comma-separated (default: query,value for bert and roberta, c_attn for gpt2; distilbert has none: e.g. q_lin,v_lin; --task sft: every linear layer of the body, e.g. q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj)", list)
    .addOption(new Option("--lora-bias <which>", "biases trained with LoRA").choices(["none", "all", "lora_only"]).default("none"))
    .option("--random-init", "train the same architecture from random initialisation (the no-transfer baseline)");
}

export interface TrainerFlags {
  validation: string; epochs: number; maxSteps?: number; batchSize: number; evalBatchSize?: number; gradAccum: number;
  lr?: number; warmupRatio: number; warmupSteps?: number; weightDecay: number; adamBeta1?: number; adamBeta2?: number; adamEpsilon?: number;
  scheduler: ScheduleName; maxGradNorm: number;
  seed: number; evalStrategy: "epoch" | "steps" | "no"; evalSteps?: number; metric?: string; earlyStopping?: number;
  loadBest: boolean; saveSteps?: number; saveTotalLimit?: number; resume?: string; log?: string; progress: boolean;
  layerDecay?: number; l2sp?: number; onNonFinite: "skip" | "stop"; bf16?: boolean; fp16?: boolean; device: "cpu" | "cuda"; lossScaling?: boolean | number;
}

export interface MethodFlags {
  method: MethodName; freezeLayers: number; loraR: number; loraAlpha: number; loraDropout: number;
  loraTargets?: string[]; loraBias: "none" | "all" | "lora_only"; randomInit?: boolean;
}

export interface DataFlags {
  data: string; format?: string; text?: string; textPair?: string; label?: string; labels?: string[]; onBadRow: "fail" | "skip";
}

export interface ModelFlags { model: string; task: TaskName; maxLength?: number; docStride?: number; pooling?: "mean" | "cls"; packing?: boolean }

/** --validation: a number in (0, 1) is a fraction, anything else a file. */
export function validationOf(v: string): number | string {
  const n = Number(v);
  return v.trim() !== "" && Number.isFinite(n) ? n : v;
}

/** A command's action; main wraps each to turn errors into one line and an exit code. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Action = (...args: any[]) => Promise<void>;

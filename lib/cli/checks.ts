// Every flag checked before any work (reading data, loading a model, training): a mistake is one line
// at once, never an error after an hour of training. What depends on the data (a binary-only metric on
// three classes) is checked as soon as the data is read, still before the model is loaded.
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../errors";
import { readConfig } from "../models/config_json";
import type { ModelConfig } from "../models/config";
import { checkpointProblem } from "../train/checkpoints";
import { readTrainerState } from "../train/trainer_state";
import { maxTokens } from "../models/registry";
import type { DataFlags, MethodFlags, ModelFlags, TaskName, TrainerFlags } from "./args";
import { validationOf } from "./args";

/** The metrics each task's evaluation reports (token-classification adds <TYPE>_precision/_recall/_f1/_support). */
export const TASK_METRICS: Record<TaskName, string[]> = {
  classification: ["loss", "accuracy", "f1", "precision", "recall", "macro_f1", "macro_precision", "macro_recall", "weighted_f1", "weighted_precision", "weighted_recall"],
  regression: ["loss", "pearson", "spearman", "mse"],
  "multi-label": ["loss", "subset_accuracy", "micro_f1", "micro_precision", "micro_recall", "macro_f1", "macro_precision", "macro_recall"],
  "token-classification": ["loss", "f1", "precision", "recall", "accuracy"],
  qa: ["loss", "exact_match", "f1"],
  similarity: ["loss", "pearson", "spearman"],
  sft: ["loss"],
};

function checkMetric(metric: string, task: TaskName): void {
  const names = TASK_METRICS[task];
  const perType = task === "token-classification" && /^.+_(precision|recall|f1|support)$/.test(metric);
  if (!names.includes(metric) && !perType)
    throw new TunekitError(`--metric: '${metric}' is not a metric of --task ${task}; expected one of ${names.join(", ")}${task === "token-classification" ? ", or <TYPE>_f1 (e.g. PER_f1)" : ""}`);
}

/** Tokens a model of this config takes (RoBERTa's positions start after the padding index). */
export function maxPositions(c: ModelConfig): number {
  return maxTokens(c);
}

/** --model's config against --max-length / --freeze-layers, and the task-only flags. */
export function checkModelFlags(f: ModelFlags & Partial<MethodFlags>, dir: string): void {
  const c = readConfig(dir);
  if (f.maxLength !== undefined && f.maxLength > maxPositions(c))
    throw new TunekitError(`--max-length ${f.maxLength}: ${dir} takes at most ${maxPositions(c)} tokens (its position table)`);
  if (f.docStride !== undefined && f.task !== "qa") throw new TunekitError(`--doc-stride applies to --task qa (long contexts cut into windows), not --task ${f.task}`);
  if (f.docStride !== undefined && f.maxLength !== undefined && f.docStride >= f.maxLength)
    throw new TunekitError(`--doc-stride ${f.docStride} must be smaller than --max-length ${f.maxLength} (it is the overlap of two windows)`);
  if (f.pooling !== undefined && f.task !== "similarity") throw new TunekitError(`--pooling applies to --task similarity, not --task ${f.task}`);
  if (f.packing && f.task !== "sft") throw new TunekitError(`--packing applies to --task sft, not --task ${f.task}`);
  if (f.task === "sft" && (f.method === "frozen" || f.method === "gradual"))
    throw new TunekitError(`--method ${f.method}: a causal LM's head is its (tied) embedding table, so a frozen body would train nothing; use lora, full or freeze-bottom`);
  if (f.task === "similarity" && (f.method === "frozen" || f.method === "gradual"))
    throw new TunekitError(`--method ${f.method}: a sentence encoder has no head to train on its own, so a frozen body would train nothing; use full, lora or freeze-bottom`);
  if (f.method === "freeze-bottom" && f.freezeLayers !== undefined && f.freezeLayers > c.numLayers)
    throw new TunekitError(`--freeze-layers ${f.freezeLayers}: ${dir} has ${c.numLayers} layers`);
}

/** --validation: a fraction in (0, 1), a count >= 1, or an existing file. */
export function checkValidation(v: string): void {
  const x = validationOf(v);
  if (typeof x === "number") {
    if (!(x > 0 && (x < 1 || Number.isInteger(x)))) throw new TunekitError(`--validation ${v}: expected a fraction in (0, 1), a number of examples >= 1, or a file`);
  } else if (!fs.existsSync(x)) throw new TunekitError(`--validation: no such file '${x}' (expected a file, a fraction in (0, 1) or a number of examples)`);
}

/** The Trainer flags that only make sense together, and --resume's checkpoint. */
export function checkTrainerFlags(f: TrainerFlags, out: string | undefined): void {
  if (f.evalStrategy === "steps" && f.evalSteps === undefined) throw new TunekitError("--eval-strategy steps needs --eval-steps <n> (evaluate every n steps)");
  if (f.evalSteps !== undefined && f.evalStrategy !== "steps") throw new TunekitError(`--eval-steps applies with --eval-strategy steps (it is ${f.evalStrategy})`);
  if (f.earlyStopping !== undefined && f.evalStrategy === "no") throw new TunekitError("--early-stopping needs evaluations: --eval-strategy epoch or steps, not no");
  if (f.fp16 && f.bf16) throw new TunekitError("--bf16 and --fp16 are both given; choose one");
  if (f.fp16 && f.device !== "cuda") throw new TunekitError("--fp16 runs on a GPU's tensor cores only: add --device cuda, or use --bf16 on the CPU");
  if (f.resume !== undefined && f.resume !== "latest") {
    if (!fs.existsSync(f.resume)) throw new TunekitError(`--resume: no such checkpoint folder '${f.resume}'`);
    const problem = checkpointProblem(f.resume);
    if (problem) throw new TunekitError(`--resume: ${f.resume} is not a complete tunekit checkpoint (${problem})`);
    readTrainerState(f.resume);
  }
  if (out !== undefined) checkWritable("--out", out, true);
  if (f.log !== undefined) checkWritable("--log", f.log, false);
}

/** A file or folder tunekit will create: it must not be the other kind, and its nearest existing parent must be a folder. */
export function checkWritable(flag: string, p: string, folder: boolean): void {
  if (fs.existsSync(p)) {
    if (fs.statSync(p).isDirectory() !== folder) throw new TunekitError(`${flag}: '${p}' is a ${folder ? "file" : "folder"}; expected a ${folder ? "folder (created if missing)" : "file"}`);
    return;
  }
  let parent = path.dirname(path.resolve(p));
  while (!fs.existsSync(parent)) parent = path.dirname(parent);
  if (!fs.statSync(parent).isDirectory()) throw new TunekitError(`${flag}: '${p}' cannot be created: '${parent}' is a file, not a folder`);
}

/** Column and label flags apply to table files; CoNLL sentences and SQuAD articles have fixed fields. */
function checkDataFlags(f: DataFlags & { task: TaskName }): void {
  if (f.task === "token-classification" || f.task === "qa" || f.task === "sft") {
    for (const [flag, v] of [["--text", f.text], ["--text-pair", f.textPair], ["--label", f.label]] as const)
      if (v !== undefined) throw new TunekitError(`${flag} names a column of a table file; --task ${f.task} reads ${f.task === "qa" ? "SQuAD JSON (question, context, answers)" : f.task === "sft" ? "JSON lines of prompt/completion or messages" : "tokens and tags (CoNLL or records of token lists)"}`);
  }
  if (f.task === "qa") {
    if (f.labels !== undefined) throw new TunekitError("--labels: --task qa has no labels (answers are spans of the context)");
    if (f.format !== undefined && f.format !== "squad" && f.format !== "json") throw new TunekitError(`--format ${f.format}: --task qa reads SQuAD JSON (--format squad)`);
    if (f.onBadRow === "skip") throw new TunekitError("--on-bad-row skip: --task qa reads a SQuAD file whole; a malformed one is an error");
  }
  if (f.task === "similarity" && f.labels !== undefined) throw new TunekitError("--labels: --task similarity has scores, not labels");
  if (f.task === "sft") {
    if (f.labels !== undefined) throw new TunekitError("--labels: --task sft has no labels (it learns the completions)");
    if (f.format !== undefined && f.format !== "jsonl") throw new TunekitError(`--format ${f.format}: --task sft reads JSON lines (--format jsonl)`);
  }
}

/** train / curve: everything that can be checked before the data is read. */
export function checkTrainFlags(f: ModelFlags & DataFlags & TrainerFlags & MethodFlags & { out?: string; report?: string | boolean }, dir: string): void {
  if (!fs.existsSync(f.data)) throw new TunekitError(`--data: no such file '${f.data}'`);
  checkModelFlags(f, dir);
  checkDataFlags(f);
  checkValidation(f.validation);
  checkTrainerFlags(f, f.out);
  if (f.metric !== undefined) checkMetric(f.metric, f.task);
  if (typeof f.report === "string") checkWritable("--report", f.report, false);
}

/** After the data is read, before the model: a binary-only metric needs two labels. */
export function checkMetricForData(metric: string | undefined, task: TaskName, labelNames: string[] | null): void {
  if (metric === undefined || task !== "classification" || !labelNames || labelNames.length === 2) return;
  if (["f1", "precision", "recall"].includes(metric))
    throw new TunekitError(`--metric ${metric}: the data has ${labelNames.length} labels, so there is no positive class; use macro_${metric} or weighted_${metric}`);
}

// trainer_state.json: the Trainer's progress (HF's TrainerState under tunekit's names), what a
// checkpoint records of it, and the reader that checks every field before a resume trusts it.
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../errors";
import { readJson } from "../io/json_safe";

/** HF TrainingArguments names of the options a checkpoint records (trainer_state.json "training_args"). */
export interface TrainingArgsRecord {
  learning_rate: number;
  num_train_epochs: number;
  max_steps: number;
  per_device_train_batch_size: number;
  gradient_accumulation_steps: number;
  weight_decay: number;
  adam_beta1: number;
  adam_beta2: number;
  adam_epsilon: number;
  max_grad_norm: number;
  lr_scheduler_type: string;
  warmup_ratio: number;
  warmup_steps: number;
  seed: number;
}

/**
 * Where a run stands (HF's TrainerState): what callbacks read, and what a checkpoint saves of it
 * (all but maxSteps, which follows from the options).
 */
export interface TrainerState {
  /** Optimizer steps done (HF's global_step). */
  step: number;
  /** Epochs completed. */
  epoch: number;
  /** Micro-batches of the current epoch already consumed. */
  batchInEpoch: number;
  /** The dropout generator's position after the last step. */
  genOffset: number;
  bestMetric: number | null;
  bestStep: number | null;
  /** Evaluations since metricForBestModel last improved (what early stopping counts). */
  patience: number;
  /** Every evaluation record: { step, epoch, eval_<metric>… } (HF's log_history, evaluations only). */
  history: Record<string, number | number[][]>[];
  /** Steps skipped for a non-finite loss or gradient. */
  skipped: number;
  /** The step training stops at (HF's max_steps): maxSteps, or steps per epoch × epochs. */
  maxSteps: number;
}

/** trainer_state.json of a Trainer checkpoint, checked field by field (readTrainerState). */
export interface SavedTrainerState extends Omit<TrainerState, "maxSteps"> {
  optimizerStep: number;
  seed?: number;
  lossScaler?: { scale: number; growthTracker: number };
  /** Absent in checkpoints written before it was recorded. */
  training_args?: Partial<TrainingArgsRecord>;
  /**
   * Examples per micro-batch over all processes (batchSize × world size) when it was saved: the unit of
   * batchInEpoch, so a run resumed with another number of processes finds its place in the epoch.
   * Absent in checkpoints written before it was recorded (then: per_device_train_batch_size).
   */
  train_batch_size?: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);
const isCount = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isFiniteNumber = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);
const show = (v: unknown): string => {
  if (v === undefined) return "missing";
  const s = JSON.stringify(v);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

/** The range each recorded training argument must lie in (the Trainer's own option checks). */
const TRAINING_ARGS: Record<keyof TrainingArgsRecord, [string, (v: unknown) => boolean]> = {
  learning_rate: ["a number > 0", (v) => isFiniteNumber(v) && v > 0],
  num_train_epochs: ["an integer >= 1", (v) => isCount(v) && v >= 1],
  max_steps: ["an integer >= -1 (-1: none)", (v) => Number.isSafeInteger(v) && (v as number) >= -1],
  per_device_train_batch_size: ["an integer >= 1", (v) => isCount(v) && v >= 1],
  gradient_accumulation_steps: ["an integer >= 1", (v) => isCount(v) && v >= 1],
  weight_decay: ["a number >= 0", (v) => isFiniteNumber(v) && v >= 0],
  adam_beta1: ["a number in [0, 1)", (v) => isFiniteNumber(v) && v >= 0 && v < 1],
  adam_beta2: ["a number in [0, 1)", (v) => isFiniteNumber(v) && v >= 0 && v < 1],
  adam_epsilon: ["a number > 0", (v) => isFiniteNumber(v) && v > 0],
  max_grad_norm: ["a number >= 0", (v) => isFiniteNumber(v) && v >= 0],
  lr_scheduler_type: ["a schedule name", (v) => typeof v === "string" && v.length > 0],
  warmup_ratio: ["a number in [0, 1]", (v) => isFiniteNumber(v) && v >= 0 && v <= 1],
  warmup_steps: ["an integer >= 0", isCount],
  seed: ["an integer", Number.isSafeInteger],
};

/**
 * Reads dir/trainer_state.json without trusting it: nesting is bounded before parsing (json_safe), and
 * every field is checked for type and range, so a damaged or hand-edited file stops a resume with the
 * file, the field and what was expected instead of training on from nonsense.
 */
export function readTrainerState(dir: string): SavedTrainerState {
  const file = path.join(dir, "trainer_state.json");
  if (!fs.existsSync(file)) throw new TunekitError(`resumeFrom: ${dir} is not a tunekit checkpoint (no trainer_state.json)`);
  const bad = (what: string) => new TunekitError(`resumeFrom: ${file}: ${what}`);
  const st = readJson(file, `resumeFrom: ${file}`);
  if (!isObject(st)) throw bad(`expected a JSON object, got ${show(st)}`);
  const field = <T>(obj: Record<string, unknown>, name: string, expected: string, ok: (v: unknown) => boolean, where = ""): T => {
    const v = obj[name];
    if (!ok(v)) throw bad(`field "${where}${name}" is ${show(v)}; expected ${expected}`);
    return v as T;
  };
  const count = (name: string) => field<number>(st, name, "an integer >= 0", isCount);
  const step = count("step");
  const upToStep = (name: string) => field<number>(st, name, `an integer in 0..${step} (step)`, (v) => isCount(v) && v <= step);
  const out: SavedTrainerState = {
    step,
    epoch: count("epoch"),
    batchInEpoch: count("batchInEpoch"),
    genOffset: count("genOffset"),
    // A NaN metric is written as null by JSON.stringify: null stands for "none yet" as well.
    bestMetric: field(st, "bestMetric", "a finite number or null", (v) => v === null || isFiniteNumber(v)),
    bestStep: field(st, "bestStep", `an integer in 0..${step} (step) or null`, (v) => v === null || (isCount(v) && v <= step)),
    patience: count("patience"),
    history: field(st, "history", "an array of evaluation records (objects of numbers)",
      (v) => Array.isArray(v) && v.every((r) => isObject(r) && Object.values(r).every((x) => x === null || typeof x === "number" || Array.isArray(x)))),
    skipped: upToStep("skipped"),
    optimizerStep: upToStep("optimizerStep"),
  };
  if (st.seed !== undefined) out.seed = field(st, "seed", "an integer", Number.isSafeInteger);
  if (st.train_batch_size !== undefined) out.train_batch_size = field(st, "train_batch_size", "an integer >= 1", (v) => isCount(v) && v >= 1);
  if (st.lossScaler !== undefined && st.lossScaler !== null) {
    const ls = field<Record<string, unknown>>(st, "lossScaler", "an object { scale, growthTracker }", isObject);
    out.lossScaler = {
      scale: field(ls, "scale", "a finite number > 0", (v) => isFiniteNumber(v) && v > 0, "lossScaler."),
      growthTracker: field(ls, "growthTracker", "an integer >= 0", isCount, "lossScaler."),
    };
  }
  if (st.training_args !== undefined) {
    const ta = field<Record<string, unknown>>(st, "training_args", "an object of HF TrainingArguments values", isObject);
    const args: Partial<TrainingArgsRecord> = {};
    for (const [name, [expected, ok]] of Object.entries(TRAINING_ARGS))
      if (ta[name] !== undefined) (args as Record<string, unknown>)[name] = field(ta, name, expected, ok, "training_args.");
    out.training_args = args;
  }
  return out;
}

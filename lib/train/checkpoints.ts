// Checkpoint directories on disk: how one appears (whole, by rename), how one goes away (renamed out
// of the way first, then deleted), and which one a resumed run picks (the newest complete one).
// A process killed at any moment leaves every `checkpoint-N` either complete or absent; leftovers
// carry a `.tmp-PID` or `.trash-PID` suffix and are swept by the next save.
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../errors";
import { parseJson, readJson } from "../io/json_safe";

const STEP_DIR = /^checkpoint-(\d+)$/;
const LEFTOVER = /^checkpoint-\d+\.(tmp|trash)-(\d+)$/;
/** Every file a Trainer checkpoint holds; trainer_state.json is written last. */
export const CHECKPOINT_FILES = ["model.safetensors", "optimizer.safetensors", "config.json", "trainer_state.json"];

/** The step of a `checkpoint-N` directory name, or null for any other name. */
export function checkpointStep(name: string): number | null {
  const m = STEP_DIR.exec(name);
  return m ? Number(m[1]) : null;
}

/** `checkpoint-N` directories of outputDir, oldest first (leftovers and other names ignored). */
export function listCheckpoints(outputDir: string): string[] {
  if (!fs.existsSync(outputDir)) return [];
  return fs.readdirSync(outputDir)
    .filter((d) => checkpointStep(d) !== null)
    .sort((a, b) => checkpointStep(a)! - checkpointStep(b)!)
    .map((d) => path.join(outputDir, d));
}

/** Whether a safetensors file is whole: its header parses and its data section is exactly the size the header says. */
function safetensorsWhole(file: string): boolean {
  let fd: number | null = null;
  try {
    fd = fs.openSync(file, "r");
    const size = fs.fstatSync(fd).size;
    const head = Buffer.alloc(8);
    if (size < 8 || fs.readSync(fd, head, 0, 8, 0) !== 8) return false;
    const n = Number(head.readBigUInt64LE(0));
    if (n > size - 8) return false;
    const json = Buffer.alloc(n);
    if (fs.readSync(fd, json, 0, n, 8) !== n) return false;
    const header = parseJson(json.toString("utf8"), file) as Record<string, { data_offsets?: [number, number] }>;
    let end = 0;
    for (const [k, v] of Object.entries(header)) if (k !== "__metadata__") end = Math.max(end, v.data_offsets?.[1] ?? 0);
    return 8 + n + end === size;
  } catch {
    return false;
  } finally {
    if (fd !== null) fs.closeSync(fd);
  }
}

/** Why dir is not a complete Trainer checkpoint, or null when it is. */
export function checkpointProblem(dir: string): string | null {
  for (const f of CHECKPOINT_FILES) if (!fs.existsSync(path.join(dir, f))) return `${f} is missing`;
  try {
    const st = readJson(path.join(dir, "trainer_state.json"), "trainer_state.json") as { step?: unknown } | null;
    if (!Number.isInteger(st?.step)) return "trainer_state.json has no step";
  } catch (e) {
    return (e as Error).message;
  }
  for (const f of ["model.safetensors", "optimizer.safetensors"]) if (!safetensorsWhole(path.join(dir, f))) return `${f} is truncated or malformed`;
  return null;
}

/** The newest complete checkpoint in outputDir (what `resumeFrom: "latest"` resumes), or null. */
export function latestCheckpoint(outputDir: string): string | null {
  for (const dir of listCheckpoints(outputDir).reverse()) if (checkpointProblem(dir) === null) return dir;
  return null;
}

function alive(pid: number): boolean {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Deletes `.tmp-PID` / `.trash-PID` leftovers of processes that no longer run. */
export function sweepLeftovers(outputDir: string): void {
  if (!fs.existsSync(outputDir)) return;
  for (const d of fs.readdirSync(outputDir)) {
    const m = LEFTOVER.exec(d);
    if (m && !alive(Number(m[2]))) fs.rmSync(path.join(outputDir, d), { recursive: true, force: true });
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Removes a checkpoint directory without ever leaving a half-deleted `checkpoint-N`: it is renamed
 * to a `.trash-PID` name first (one atomic step), then deleted.
 */
export function removeCheckpoint(dir: string): void {
  if (!fs.existsSync(dir)) return;
  const trash = `${dir}.trash-${process.pid}`;
  fs.rmSync(trash, { recursive: true, force: true });
  fs.renameSync(dir, trash);
  fs.rmSync(trash, { recursive: true, force: true });
}

/**
 * Writes a checkpoint directory atomically: `write(tmp)` fills a temporary sibling, whose files and
 * the directory itself are fsynced, and one rename makes it appear as `dir`. An existing `dir` is
 * moved aside first, so at every moment `dir` is either the old complete one, absent, or the new one.
 */
export function writeCheckpointDir(dir: string, write: (tmp: string) => void): void {
  const parent = path.dirname(dir);
  fs.mkdirSync(parent, { recursive: true });
  sweepLeftovers(parent);
  const tmp = `${dir}.tmp-${process.pid}`;
  fs.rmSync(tmp, { recursive: true, force: true });
  fs.mkdirSync(tmp);
  try {
    write(tmp);
    const problem = checkpointProblem(tmp);
    if (problem) throw new TunekitError(`checkpoint ${dir}: not complete after writing (${problem})`);
    for (const f of fs.readdirSync(tmp)) {
      const fd = fs.openSync(path.join(tmp, f), "r");
      try {
        fs.fsyncSync(fd);
      } finally {
        fs.closeSync(fd);
      }
    }
    fsyncDir(tmp);
  } catch (e) {
    fs.rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
  removeCheckpoint(dir);
  fs.renameSync(tmp, dir);
  fsyncDir(parent);
}

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

/** trainer_state.json of a Trainer checkpoint, checked field by field (readTrainerState). */
export interface SavedTrainerState {
  step: number;
  epoch: number;
  batchInEpoch: number;
  genOffset: number;
  bestMetric: number | null;
  bestStep: number | null;
  patience: number;
  history: Record<string, number | number[][]>[];
  skipped: number;
  optimizerStep: number;
  seed?: number;
  lossScaler?: { scale: number; growthTracker: number };
  /** Absent in checkpoints written before it was recorded. */
  training_args?: Partial<TrainingArgsRecord>;
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

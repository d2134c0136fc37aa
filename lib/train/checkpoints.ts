// Trainer checkpoints on disk: what one holds and how a run is saved into one and resumed from it
// (saveTrainerCheckpoint / loadTrainerCheckpoint); how a directory appears (whole, by rename), how one
// goes away (renamed out of the way first, then deleted), and which one a resumed run picks (the newest
// complete one). A process killed at any moment leaves every `checkpoint-N` either complete or absent;
// leftovers carry a `.tmp-PID` or `.trash-PID` suffix and are swept by the next save.
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../errors";
import { parseJson, readJson } from "../io/json_safe";
import { saveSafetensors, readSafetensors } from "../io/safetensors";
import { writeFileAtomicSync } from "../io/atomic";
import { saveConfig } from "../models/config_json";
import { assertFinite } from "../tensor/finite";
import { Storage, allocate } from "../tensor/storage";
import type { PreTrainedModel } from "../models/pretrained";
import type { AdamW } from "./optimizer";
import type { LossScaler } from "./loss_scaler";
import { readTrainerState, TrainerState, TrainingArgsRecord } from "./trainer_state";

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


/** What a Trainer checkpoint saves and a resume restores. */
export interface TrainerRun {
  model: PreTrainedModel;
  optimizer: AdamW;
  scaler: LossScaler | null;
  state: TrainerState;
  /** The weights of the best evaluation so far (loadBestModelAtEnd), on the model's device; null before one. */
  bestWeights: Map<string, Storage> | null;
  seed: number;
  trainingArgs: TrainingArgsRecord;
  /** Examples per micro-batch over all processes (trainer_state.json's train_batch_size); default: the per-process batch size. */
  trainBatchSize?: number;
}

const f32 = (v: Float32Array) => ({ dtype: "F32" as const, shape: [v.length], data: v });

/**
 * Writes weights, optimizer state and trainer state (step, data position, dropout RNG, best metric,
 * loss scale) into a temporary directory and renames it into place: a crash never leaves half a
 * checkpoint. Refuses (NonFiniteError) before writing anything when a weight or an optimizer moment
 * holds NaN or Infinity, so a resumed run never starts from poisoned weights.
 */
export function saveTrainerCheckpoint(dir: string, run: TrainerRun): void {
  const { model, optimizer, state: s } = run;
  // The whole state (LoRA factors included), not a publishable checkpoint: savePretrained refuses adapters.
  const weights = model.stateDict();
  const moments = optimizer.stateTensors();
  assertFinite(`saveCheckpoint(${dir})`, weights);
  assertFinite(`saveCheckpoint(${dir}) optimizer state`, moments);
  writeCheckpointDir(dir, (tmp) => {
    saveSafetensors(path.join(tmp, "model.safetensors"), weights);
    saveConfig(tmp, { ...model.config, architectures: [model.architecture] }, { dtype: "F32" }); // the weights just written
    if (run.bestWeights) // so a resumed run can still load the best model at the end
      saveSafetensors(path.join(tmp, "best.safetensors"), new Map([...run.bestWeights].map(([k, v]) => [k, f32(Float32Array.from(v.toHost()))])));
    saveSafetensors(path.join(tmp, "optimizer.safetensors"), new Map([...moments].map(([k, v]) => [k, f32(v)])));
    // Last: checkpointProblem() treats a directory without it as incomplete.
    const st = { step: s.step, epoch: s.epoch, batchInEpoch: s.batchInEpoch, genOffset: model.gen.offset, bestMetric: s.bestMetric, bestStep: s.bestStep,
      patience: s.patience, history: s.history, skipped: s.skipped, optimizerStep: optimizer.step, seed: run.seed, lossScaler: run.scaler?.state(),
      training_args: run.trainingArgs, train_batch_size: run.trainBatchSize ?? run.trainingArgs.per_device_train_batch_size };
    writeFileAtomicSync(path.join(tmp, "trainer_state.json"), Buffer.from(JSON.stringify(st, null, 2)));
  });
}

/**
 * The saved data position (micro-batches of the saved global batch size) in micro-batches of this
 * run's: the same number of examples into the epoch's permutation. A run resumed with another number
 * of processes (or batch size) whose position falls inside one of its micro-batches starts at that
 * micro-batch: the examples before the position in it are seen twice this epoch (a warning says how many).
 */
function positionIn(st: ReturnType<typeof readTrainerState>, now: { trainBatchSize: number; examples: number }, dir: string): number {
  const saved = st.train_batch_size ?? st.training_args?.per_device_train_batch_size ?? now.trainBatchSize;
  if (saved === now.trainBatchSize) return st.batchInEpoch;
  console.warn(`tunekit: resumeFrom ${dir}: ${saved} examples per micro-batch over all processes in the checkpoint, ${now.trainBatchSize} here ` +
    "(batchSize × number of processes): the run goes on with the new batch, so it will not continue exactly");
  const examples = Math.min(st.batchInEpoch * saved, now.examples);
  if (examples >= now.examples) return Math.ceil(now.examples / now.trainBatchSize);
  const at = Math.floor(examples / now.trainBatchSize);
  if (examples % now.trainBatchSize)
    console.warn(`tunekit: resumeFrom ${dir}: saved ${examples} examples into epoch ${st.epoch} with ${saved} per micro-batch; with ${now.trainBatchSize} ` +
      `per micro-batch (all processes) this run restarts the epoch at example ${at * now.trainBatchSize}: ${examples % now.trainBatchSize} examples are seen twice this epoch`);
  return at;
}

/**
 * Restores a run from dir into run's model, optimizer and loss scaler (trainer_state.json checked by
 * readTrainerState first); returns the saved state and best weights. microBatchesPerEpoch is this
 * run's, which the saved data position must fit.
 */
export function loadTrainerCheckpoint(dir: string, run: Omit<TrainerRun, "state" | "bestWeights" | "seed">, microBatchesPerEpoch: number,
  position?: { trainBatchSize: number; examples: number }):
  { state: Omit<TrainerState, "maxSteps">; bestWeights: Map<string, Storage> | null } {
  const st = readTrainerState(dir);
  if (position) st.batchInEpoch = positionIn(st, position, dir);
  if (st.batchInEpoch > microBatchesPerEpoch)
    throw new TunekitError(`resumeFrom: ${path.join(dir, "trainer_state.json")}: field "batchInEpoch" is ${st.batchInEpoch}; expected an integer in 0..${microBatchesPerEpoch} (micro-batches per epoch of this training set: is it the same data and batchSize?)`);
  // As HF's compare_trainer_and_checkpoint_args: a different setting resumes, with a warning, since it no longer continues the same run.
  const now = run.trainingArgs as unknown as Record<string, unknown>;
  for (const [k, v] of Object.entries(st.training_args ?? {}))
    if (now[k] !== v) console.warn(`tunekit: resumeFrom ${dir}: training argument ${k} is ${JSON.stringify(now[k])} here but ${JSON.stringify(v)} in the checkpoint; the run will not continue exactly`);
  const { model } = run;
  model.loadStateDict(readSafetensors(path.join(dir, "model.safetensors")).tensors, `resumeFrom: ${dir}/model.safetensors`);
  const opt = readSafetensors(path.join(dir, "optimizer.safetensors")).tensors;
  run.optimizer.loadStateTensors(new Map([...opt].map(([k, v]) => [k, v.data as Float32Array])), st.optimizerStep);
  const bestFile = path.join(dir, "best.safetensors");
  let bestWeights: Map<string, Storage> | null = null;
  if (fs.existsSync(bestFile)) {
    const params = new Map(model.namedParameters());
    bestWeights = new Map();
    for (const [k, v] of readSafetensors(bestFile).tensors) {
      const p = params.get(k);
      if (!p || p.size !== v.data.length) throw new TunekitError(`resumeFrom: ${bestFile}: tensor '${k}' ${p ? `has ${v.data.length} values, expected ${p.size}` : "is not a parameter of this model"}`);
      bestWeights.set(k, allocate(p.size, p.device).copyFrom(v.data));
    }
  }
  if (run.scaler && st.lossScaler) run.scaler.load(st.lossScaler);
  model.gen.offset = st.genOffset;
  const { step, epoch, batchInEpoch, genOffset, bestMetric, bestStep, patience, history, skipped } = st;
  return { state: { step, epoch, batchInEpoch, genOffset, bestMetric, bestStep, patience, history, skipped }, bestWeights };
}

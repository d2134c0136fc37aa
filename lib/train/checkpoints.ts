// Checkpoint directories on disk: how one appears (whole, by rename), how one goes away (renamed out
// of the way first, then deleted), and which one a resumed run picks (the newest complete one).
// A process killed at any moment leaves every `checkpoint-N` either complete or absent; leftovers
// carry a `.tmp-PID` or `.trash-PID` suffix and are swept by the next save.
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../errors";

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
    const header = JSON.parse(json.toString("utf8")) as Record<string, { data_offsets?: [number, number] }>;
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
    const st = JSON.parse(fs.readFileSync(path.join(dir, "trainer_state.json"), "utf8"));
    if (!Number.isInteger(st.step)) return "trainer_state.json has no step";
  } catch (e) {
    return `trainer_state.json does not parse (${(e as Error).message})`;
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

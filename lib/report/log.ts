// Reads the Trainer's JSON-lines log (lib/train/trainer.ts write()): one object per line, either a step
// record {step, epoch, loss, lr, grad_norm} or an eval record {step, epoch, eval_<metric>...}. A non-finite
// loss was written by JSON.stringify as null (a skipped step); a resumed run appends, so a step can occur
// twice and the later record wins.
import * as fs from "fs";
import { TunekitError } from "../errors";
import { tryParseJson } from "../io/json_safe";

export interface StepRecord {
  step: number;
  epoch: number;
  /** null: the step was skipped (non-finite loss). */
  loss: number | null;
  lr: number;
  gradNorm: number | null;
}

export interface EvalRecord {
  step: number;
  epoch: number;
  /** Numeric metrics without the "eval_" prefix (loss, accuracy, f1...); null where the value was not finite. */
  metrics: Record<string, number | null>;
}

export interface TrainingLog {
  file: string;
  steps: StepRecord[];
  evals: EvalRecord[];
}

const isNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v);

/** Parses a Trainer log file; throws a TunekitError naming the file and line of anything malformed. */
export function readTrainingLog(file: string): TrainingLog {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new TunekitError(code === "ENOENT" ? `report: log file ${file} does not exist` : `report: cannot read log file ${file}: ${(e as Error).message}`);
  }
  const steps = new Map<number, StepRecord>(), evals = new Map<number, EvalRecord>();
  const lines = text.split("\n");
  lines.forEach((raw, i) => {
    const line = raw.trim();
    if (!line) return;
    const where = `${file}:${i + 1}`;
    const bad = (msg: string): never => {
      throw new TunekitError(`report: ${where}: ${msg}`);
    };
    const parsed = tryParseJson(line);
    if (!("value" in parsed)) return bad(`${parsed.problem}: ${line.length > 80 ? line.slice(0, 80) + "…" : line}`);
    const rec = parsed.value;
    if (typeof rec !== "object" || rec === null || Array.isArray(rec)) return bad("expected a JSON object per line");
    const r = rec as Record<string, unknown>;
    if (!Number.isInteger(r.step) || (r.step as number) < 0) bad(`'step' must be a non-negative integer, got ${JSON.stringify(r.step)}`);
    if (!isNum(r.epoch) || r.epoch < 0) bad(`'epoch' must be a non-negative number, got ${JSON.stringify(r.epoch)}`);
    const step = r.step as number, epoch = r.epoch as number;
    const evalKeys = Object.keys(r).filter((k) => k.startsWith("eval_"));
    if ("loss" in r) {
      if (r.loss !== null && !isNum(r.loss)) bad(`'loss' must be a number (or null for a skipped step), got ${JSON.stringify(r.loss)}`);
      if (!isNum(r.lr)) bad(`'lr' must be a finite number, got ${JSON.stringify(r.lr)}`);
      if (r.grad_norm !== undefined && r.grad_norm !== null && !isNum(r.grad_norm)) bad(`'grad_norm' must be a number, got ${JSON.stringify(r.grad_norm)}`);
      steps.set(step, { step, epoch, loss: r.loss as number | null, lr: r.lr as number, gradNorm: (r.grad_norm as number | null | undefined) ?? null });
    } else if (evalKeys.length) {
      const metrics: Record<string, number | null> = {};
      for (const k of evalKeys) {
        const v = r[k];
        if (v === null || isNum(v)) metrics[k.slice(5)] = v;
        else if (typeof v !== "object") bad(`'${k}' must be a number, got ${JSON.stringify(v)}`);
        // Arrays (a confusion matrix) are not plotted from the log: the report takes them with their labels.
      }
      evals.set(step, { step, epoch, metrics });
    } else {
      bad("neither a step record (with 'loss') nor an eval record (with 'eval_*' keys)");
    }
  });
  if (!steps.size && !evals.size) throw new TunekitError(`report: log file ${file} is empty (no step or eval records)`);
  const byStep = <T extends { step: number }>(m: Map<number, T>) => [...m.values()].sort((a, b) => a.step - b.step);
  return { file, steps: byStep(steps), evals: byStep(evals) };
}

// Learning-rate schedules as multipliers of the base lr, step → factor. `step` counts optimizer updates from 0:
// update number s uses lr = baseLr · schedule(s), which is what transformers' get_scheduler gives through
// torch's LambdaLR (built at step 0, scheduler.step() after each optimizer.step()). So with warmup the very
// first update has lr 0, as in HF.
import { TunekitError } from "../errors";

export type LrSchedule = (step: number) => number;

export type ScheduleName = "constant" | "constant_with_warmup" | "linear" | "cosine" | "slanted_triangular";
export const SCHEDULE_NAMES: readonly ScheduleName[] = ["constant", "constant_with_warmup", "linear", "cosine", "slanted_triangular"];

export interface ScheduleOptions {
  /** Steps of linear warmup from 0 (default 0). Not for "constant" (no warmup) nor "slanted_triangular" (cutFrac). */
  numWarmupSteps?: number;
  /** Total optimizer updates; needed by linear, cosine and slanted_triangular. */
  numTrainingSteps?: number;
  /** cosine: number of cosine waves over the decay (default 0.5: half a cosine down to 0). */
  numCycles?: number;
  /** slanted_triangular: fraction of the steps spent increasing the lr (default 0.1). */
  cutFrac?: number;
  /** slanted_triangular: lr_max / lr_min (default 32). */
  ratio?: number;
}

function fail(where: string, msg: string): never {
  throw new TunekitError(`${where}: ${msg}`);
}

function integer(where: string, name: string, v: unknown, min: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) fail(where, `${name} must be an integer >= ${min}, got ${String(v)}`);
  return v;
}

function withStepCheck(where: string, f: (step: number) => number, maxStep = Infinity): LrSchedule {
  return (step: number) => {
    integer(where, "step", step, 0);
    if (step > maxStep) fail(where, `step ${step} is past numTrainingSteps ${maxStep}`);
    return f(step);
  };
}

function warmupAndTotal(where: string, o: ScheduleOptions): [number, number] {
  const w = integer(where, "numWarmupSteps", o.numWarmupSteps ?? 0, 0);
  const t = integer(where, "numTrainingSteps", o.numTrainingSteps, 1);
  if (w > t) fail(where, `numWarmupSteps (${w}) must not exceed numTrainingSteps (${t})`);
  return [w, t];
}

/** Always 1. */
export function constantSchedule(): LrSchedule {
  return withStepCheck("constantSchedule", () => 1);
}

/** step / numWarmupSteps during warmup, then 1. */
export function constantWithWarmupSchedule(options: Pick<ScheduleOptions, "numWarmupSteps">): LrSchedule {
  const w = integer("constantWithWarmupSchedule", "numWarmupSteps", options.numWarmupSteps ?? 0, 0);
  return withStepCheck("constantWithWarmupSchedule", (s) => (s < w ? s / Math.max(1, w) : 1));
}

/** Warmup, then linear decay to 0 at numTrainingSteps (0 after it). */
export function linearSchedule(options: Pick<ScheduleOptions, "numWarmupSteps" | "numTrainingSteps">): LrSchedule {
  const [w, t] = warmupAndTotal("linearSchedule", options);
  return withStepCheck("linearSchedule", (s) => (s < w ? s / Math.max(1, w) : Math.max(0, (t - s) / Math.max(1, t - w))));
}

/**
 * Warmup, then 0.5·(1 + cos(π·numCycles·2·progress)) with progress from 0 to 1 over the remaining steps:
 * a half cosine to 0 at numTrainingSteps by default. Past numTrainingSteps it follows the formula (rises
 * again), exactly as transformers does.
 */
export function cosineSchedule(options: Pick<ScheduleOptions, "numWarmupSteps" | "numTrainingSteps" | "numCycles">): LrSchedule {
  const where = "cosineSchedule";
  const [w, t] = warmupAndTotal(where, options);
  const cycles = options.numCycles ?? 0.5;
  if (typeof cycles !== "number" || !(cycles > 0 && Number.isFinite(cycles))) fail(where, `numCycles must be a finite number > 0, got ${String(cycles)}`);
  return withStepCheck(where, (s) => {
    if (s < w) return s / Math.max(1, w);
    const progress = (s - w) / Math.max(1, t - w);
    return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
  });
}

/**
 * ULMFiT's slanted triangular lr (Howard & Ruder 2018, eq. 3) as a multiplier of lr_max: cut = ⌊T·cutFrac⌋,
 * p = t/cut for t < cut, else 1 − (t − cut)/(cut·(1/cutFrac − 1)); factor = (1 + p·(ratio − 1))/ratio.
 * Rises from 1/ratio to 1 at step cut, falls back to about 1/ratio at T. Defined for 0 ≤ step ≤ T.
 */
export function slantedTriangularSchedule(options: Pick<ScheduleOptions, "numTrainingSteps" | "cutFrac" | "ratio">): LrSchedule {
  const where = "slantedTriangularSchedule";
  const t = integer(where, "numTrainingSteps", options.numTrainingSteps, 1);
  const cutFrac = options.cutFrac ?? 0.1;
  const ratio = options.ratio ?? 32;
  if (typeof cutFrac !== "number" || !(cutFrac > 0 && cutFrac < 1)) fail(where, `cutFrac must be in (0, 1), got ${String(cutFrac)}`);
  if (typeof ratio !== "number" || !(ratio >= 1 && Number.isFinite(ratio))) fail(where, `ratio must be a finite number >= 1, got ${String(ratio)}`);
  const cut = Math.floor(t * cutFrac);
  if (cut < 1) fail(where, `numTrainingSteps × cutFrac = ${t} × ${cutFrac} < 1 leaves no increasing phase; use more steps or a larger cutFrac`);
  return withStepCheck(
    where,
    (s) => {
      const p = s < cut ? s / cut : 1 - (s - cut) / (cut * (1 / cutFrac - 1));
      return (1 + p * (ratio - 1)) / ratio;
    },
    t,
  );
}

/**
 * A schedule by the name transformers' get_scheduler uses (plus "slanted_triangular"). numTrainingSteps is
 * accepted by every schedule; an option the named schedule would ignore is an error, so a warmup is never
 * silently dropped.
 */
export function getScheduler(name: ScheduleName, options: ScheduleOptions = {}): LrSchedule {
  const where = "getScheduler";
  if (!SCHEDULE_NAMES.includes(name)) fail(where, `unknown schedule ${JSON.stringify(name)}; expected one of ${SCHEDULE_NAMES.join(", ")}`);
  const unused = (key: keyof ScheduleOptions, why: string) => {
    if (options[key] !== undefined && !(key === "numWarmupSteps" && options[key] === 0)) fail(where, `"${name}" does not use ${key}${why}`);
  };
  if (name !== "cosine") unused("numCycles", "");
  if (name !== "slanted_triangular") {
    unused("cutFrac", "");
    unused("ratio", "");
  }
  switch (name) {
    case "constant":
      unused("numWarmupSteps", ' (use "constant_with_warmup")');
      return constantSchedule();
    case "constant_with_warmup":
      return constantWithWarmupSchedule(options);
    case "linear":
      return linearSchedule(options);
    case "cosine":
      return cosineSchedule(options);
    case "slanted_triangular":
      unused("numWarmupSteps", " (its increasing phase is set by cutFrac)");
      return slantedTriangularSchedule(options);
  }
}

/** Warmup steps from a ratio of the total, as HF's TrainingArguments.get_warmup_steps: ceil(total × ratio). */
export function warmupStepsFromRatio(warmupRatio: number, numTrainingSteps: number): number {
  const where = "warmupStepsFromRatio";
  if (typeof warmupRatio !== "number" || !(warmupRatio >= 0 && warmupRatio <= 1)) fail(where, `warmupRatio must be in [0, 1], got ${String(warmupRatio)}`);
  integer(where, "numTrainingSteps", numTrainingSteps, 1);
  return Math.ceil(numTrainingSteps * warmupRatio);
}

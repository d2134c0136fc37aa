// The Trainer's options (HF's TrainingArguments under tunekit's names), their checks, and the types
// a Trainer takes and returns.
import { TunekitError } from "../errors";
import { native } from "../native";
import type { MatmulPrecision } from "../native";
import type { Tensor } from "../tensor/tensor";
import { parseDevice, Device } from "../tensor/storage";
import type { PreTrainedModel } from "../models/pretrained";
import type { ForwardOptions } from "../models/heads";
import type { FreezeOptions } from "./strategies";
import type { LossScalerOptions } from "./loss_scaler";
import type { ScheduleName } from "./schedules";
import type { CallbackOrClass, TrainerEvents } from "./callbacks";
import type { DistributedOptions } from "../distributed/env";
import type { ProcessGroup } from "../distributed/process_group";

/** A model the Trainer can drive: a forward that returns a loss, and the count its loss is normalised by. */
export type TrainableModel<B> = PreTrainedModel & {
  forward(b: B, o?: ForwardOptions): { loss?: Tensor; logits: Tensor };
  lossCount(b: B): number;
};

/** Streaming evaluation: update() per batch (never holding all logits), compute() at the end. */
export interface Evaluator<B> {
  update(output: { logits: Tensor; loss?: Tensor }, batch: B): void;
  compute(): Record<string, number | number[][]>;
}

export type Metrics = Record<string, number | number[][]>;

export interface TrainerOptions<F, B> {
  model: TrainableModel<B>;
  train: F[];
  eval?: F[];
  /** Pads a list of features into a batch (dynamic padding to the longest). */
  collate(features: F[]): B;
  evaluator?: () => Evaluator<B>;
  learningRate?: number;
  epochs?: number;
  /** Stop after this many optimizer steps (overrides epochs when set). */
  maxSteps?: number;
  batchSize?: number;
  evalBatchSize?: number;
  gradientAccumulationSteps?: number;
  warmupRatio?: number;
  warmupSteps?: number;
  weightDecay?: number;
  /** AdamW's β1 (HF's adam_beta1), in [0, 1). Default 0.9. */
  adamBeta1?: number;
  /** AdamW's β2 (HF's adam_beta2), in [0, 1). Default 0.999. */
  adamBeta2?: number;
  /** AdamW's ε (HF's adam_epsilon), > 0. Default 1e-8. */
  adamEpsilon?: number;
  scheduler?: ScheduleName;
  /** Global-norm clipping (0 = off). Default 1.0 as HF. */
  maxGradNorm?: number;
  seed?: number;
  evalStrategy?: "epoch" | "steps" | "no";
  evalSteps?: number;
  /** Metric that picks the best checkpoint and drives early stopping (default "loss", lower is better). */
  metricForBestModel?: string;
  greaterIsBetter?: boolean;
  loadBestModelAtEnd?: boolean;
  earlyStoppingPatience?: number;
  /** Checkpoint every N optimizer steps into outputDir/checkpoint-N (0 = never). */
  saveSteps?: number;
  outputDir?: string;
  /** Keep at most this many step checkpoints (oldest removed). */
  saveTotalLimit?: number;
  /**
   * A checkpoint directory written by this Trainer: training continues exactly where it stopped.
   * "latest": the newest complete checkpoint in outputDir, or a fresh start when there is none
   * (what a run restarted after a crash wants).
   */
  resumeFrom?: string;
  /** JSON-lines log of every step and evaluation. */
  logFile?: string;
  /** Progress bar on a TTY, plain lines otherwise, both on stderr (stdout stays the caller's); false for silence. */
  progress?: boolean;
  /** Plain functions called on steps, evaluations, epoch ends and saves (kept for older code; callbacks can do more). */
  events?: TrainerEvents;
  /** Listeners on the loop's events (HF's TrainerCallback), called after the built-in ones. */
  callbacks?: CallbackOrClass[];
  /**
   * Where the model trains: moved there (model.to) before the optimizer is built; batches go there as
   * they are used. "cuda" needs the CUDA backend (native.cudaAvailable()). Default: where the model is.
   */
  device?: Device | "cuda:0";
  // Strategies.
  freeze?: FreezeOptions;
  /** ULMFiT: the head first, then one more layer group from the top each epoch. */
  gradualUnfreezing?: boolean;
  /** Discriminative learning rates: layer l trains at lr·ξ^(L−l). */
  layerDecay?: number;
  /** L2-SP: λ/2·‖θ − θ_pre‖² toward the weights training started from. */
  l2sp?: number;
  /** What a non-finite loss or gradient does: skip the step (default) or stop. */
  onNonFinite?: "skip" | "stop";
  /**
   * Matrix products (linear layers, LoRA's frozen base) in bfloat16 with fp32 accumulation, on CPUs with
   * AVX512-BF16 (AMX tiles where present) and on CUDA's tensor cores; master weights, gradients, optimizer
   * state and every other op stay float32. Where the CPU lacks bf16 a CPU run trains in float32
   * (TrainResult.precision says which ran).
   */
  bf16?: boolean;
  /**
   * Matrix products in IEEE half on a CUDA device's tensor cores (HF's fp16; fp32 master weights,
   * gradients and optimizer state, fp32 accumulation). fp16's narrow range wants loss scaling, so
   * lossScaling defaults to on with it (torch's GradScaler defaults). CUDA only: on the CPU use bf16.
   */
  fp16?: boolean;
  /**
   * Dynamic loss scaling for fp16/bf16-style training (torch.amp.GradScaler): true for torch's
   * defaults, or the options. A step whose scaled gradients overflow is skipped and backs the scale off.
   */
  lossScaling?: boolean | LossScalerOptions;
  /**
   * Data-parallel training (torch DDP): a process group, or its settings ({ rank, worldSize, masterAddr,
   * masterPort, timeout, bucketCapMb }), or false for one process. Default: the default group when
   * there is one, else the launcher's environment (RANK/WORLD_SIZE from `tunekit launch` or torchrun,
   * mpirun's, srun's), else one process. batchSize is per process: N processes train like one with
   * batch N·batchSize.
   */
  distributed?: DistributedOptions | ProcessGroup | false;
}

export interface TrainResult {
  steps: number;
  epochs: number;
  trainLoss: number;
  bestMetric: number | null;
  bestStep: number | null;
  history: Record<string, number | number[][]>[];
  seconds: number;
  trainableParameters: number;
  skippedSteps: number;
  /** What the matrix products ran in ("bf16" only with the bf16 option on a CPU that has it). */
  precision: MatmulPrecision;
  /**
   * Data-parallel runs: the processes, and per optimizer step the seconds of gradient all-reduce
   * (on the communication thread, overlapping the backward) and the seconds the step waited for it.
   */
  distributed?: { worldSize: number; allReduceSecondsPerStep: number; waitSecondsPerStep: number };
}

/** Seeded permutation (xorshift + Fisher–Yates): the data order of an epoch depends on (seed, epoch) only. */
export function permutation(n: number, seed: number): number[] {
  let s = (seed ^ 0x9e3779b9) >>> 0 || 1;
  const next = () => {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return s / 4294967296;
  };
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [p[i], p[j]] = [p[j], p[i]];
  }
  return p;
}

/** Every numeric option checked before any work: a bad value is a TunekitError naming it, never a NaN later. */
export function checkOptions(o: Record<string, unknown>): void {
  const rules: [string, string, (v: number) => boolean][] = [
    ["batchSize", "a positive integer", (v) => Number.isInteger(v) && v >= 1],
    ["gradientAccumulationSteps", "a positive integer", (v) => Number.isInteger(v) && v >= 1],
    ["epochs", "a positive integer", (v) => Number.isInteger(v) && v >= 1],
    ["maxSteps", "a positive integer", (v) => Number.isInteger(v) && v >= 1],
    ["learningRate", "> 0", (v) => v > 0 && Number.isFinite(v)],
    ["weightDecay", ">= 0", (v) => v >= 0 && Number.isFinite(v)],
    ["maxGradNorm", ">= 0 (0 = no clipping)", (v) => v >= 0 && Number.isFinite(v)],
    ["warmupRatio", "in [0, 1]", (v) => v >= 0 && v <= 1],
    ["warmupSteps", "an integer >= 0", (v) => Number.isInteger(v) && v >= 0],
    ["seed", "an integer", (v) => Number.isSafeInteger(v)],
    // torch.optim.AdamW's ranges, except ε: 0 would divide 0 by 0 for a parameter whose gradient is still 0.
    ["adamBeta1", "in [0, 1)", (v) => v >= 0 && v < 1],
    ["adamBeta2", "in [0, 1)", (v) => v >= 0 && v < 1],
    ["adamEpsilon", "> 0", (v) => v > 0 && Number.isFinite(v)],
    ["earlyStoppingPatience", "an integer >= 0", (v) => Number.isSafeInteger(v) && v >= 0],
  ];
  for (const [k, expected, ok] of rules) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || !ok(v)) throw new TunekitError(`Trainer: ${k} must be ${expected}, got ${typeof v === "number" ? v : JSON.stringify(v)}`);
  }
}

/** Moves the model to the Trainer's device option, refusing "cuda" without a CUDA backend. */
export function moveModel(model: PreTrainedModel, device: unknown): void {
  const d = parseDevice(device, "Trainer: device");
  if (d === "cuda" && !native.cudaAvailable())
    throw new TunekitError(`Trainer: device "cuda" needs the CUDA backend, which is not available (${native.cudaInfo().reason}); ` +
      'point TUNEKIT_CUDA_LIB at a built libtunekit_cuda.so, or train with device "cpu"');
  model.to(d);
}

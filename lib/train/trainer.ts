// The Trainer: epochs or max steps over shuffled, dynamically padded batches; gradient accumulation
// that equals one large batch; global-norm clipping; a schedule; evaluation with streaming metrics;
// early stopping and the best checkpoint; resumable checkpoints; a progress bar and a JSON-lines log.
import * as fs from "fs";
import * as path from "path";
import { SingleBar, Presets } from "cli-progress";
import { TunekitError } from "../errors";
import { native } from "../native";
import type { MatmulPrecision } from "../native";
import { Tensor, tidy } from "../tensor/tensor";
import { Storage, acquire, allocate, release } from "../tensor/storage";
import { Parameter } from "../nn/module";
import { noGrad, backward } from "../tensor/autograd";
import { assertFinite, firstNonFinite } from "../tensor/finite";
import { PreTrainedModel } from "../models/pretrained";
import type { ForwardOptions } from "../models/heads";
import { saveSafetensors, readSafetensors } from "../io/safetensors";
import { writeFileAtomicSync } from "../io/atomic";
import { saveConfig } from "../io/config";
import { AdamW, paramGroups, gradNorm } from "./optimizer";
import { freeze, unfreezeTop, trainableCount, FreezeOptions } from "./strategies";
import { LossScaler, LossScalerOptions } from "./loss_scaler";
import { writeCheckpointDir, removeCheckpoint, listCheckpoints, latestCheckpoint, readTrainerState, TrainingArgsRecord } from "./checkpoints";
import { getScheduler, warmupStepsFromRatio, LrSchedule, ScheduleName } from "./schedules";

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

export interface TrainerEvents {
  onStep?(s: { step: number; epoch: number; loss: number; lr: number; gradNorm: number }): void;
  onEvaluate?(s: { step: number; epoch: number; metrics: Metrics }): void;
  onEpochEnd?(s: { epoch: number }): void;
  onSave?(s: { step: number; dir: string }): void;
}

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
  events?: TrainerEvents;
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
   * AVX512-BF16 (AMX tiles where present); master weights, gradients, optimizer state and every other op
   * stay float32. Where the CPU lacks bf16 this trains in float32 (TrainResult.precision says which ran).
   */
  bf16?: boolean;
  /**
   * Dynamic loss scaling for fp16/bf16-style training (torch.amp.GradScaler): true for torch's
   * defaults, or the options. A step whose scaled gradients overflow is skipped and backs the scale off.
   */
  lossScaling?: boolean | LossScalerOptions;
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

interface State {
  step: number;
  epoch: number;
  /** Micro-batches of the current epoch already consumed. */
  batchInEpoch: number;
  genOffset: number;
  bestMetric: number | null;
  bestStep: number | null;
  patience: number;
  history: Record<string, number | number[][]>[];
  skipped: number;
}

/** Progress and evaluation lines go to stderr, like the bar: a program's stdout (a CLI's --json) stays its own. */
function progressLine(s: string): void {
  process.stderr.write(s + "\n");
}

/** Every numeric option checked before any work: a bad value is a TunekitError naming it, never a NaN later. */
function checkOptions(o: Record<string, unknown>): void {
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
  ];
  for (const [k, expected, ok] of rules) {
    const v = o[k];
    if (v === undefined) continue;
    if (typeof v !== "number" || !ok(v)) throw new TunekitError(`Trainer: ${k} must be ${expected}, got ${typeof v === "number" ? v : JSON.stringify(v)}`);
  }
}

export class Trainer<F, B> {
  readonly o: Required<Pick<TrainerOptions<F, B>, "learningRate" | "epochs" | "batchSize" | "gradientAccumulationSteps" | "weightDecay" | "maxGradNorm" | "seed" | "scheduler" | "adamBeta1" | "adamBeta2" | "adamEpsilon">> & TrainerOptions<F, B>;
  readonly optimizer: AdamW;
  private state: State;
  /** L2-SP's anchor: −(the starting weights) of each trainable parameter, on its device. */
  private readonly pretrained: Map<Parameter, Storage> = new Map();
  private bestWeights: Map<string, Float32Array> | null = null;
  private log: number | null = null;
  /** The data order of one epoch, built once per epoch (not once per micro-batch). */
  private order: { epoch: number; indices: number[] } | null = null;
  /** Present when lossScaling is on. */
  readonly scaler: LossScaler | null;

  constructor(options: TrainerOptions<F, B>) {
    const o = {
      learningRate: 5e-5, epochs: 3, batchSize: 8, gradientAccumulationSteps: 1, weightDecay: 0, maxGradNorm: 1, seed: 42,
      scheduler: "linear" as ScheduleName, adamBeta1: 0.9, adamBeta2: 0.999, adamEpsilon: 1e-8,
      // An option given as undefined takes its default (a plain spread would overwrite the default with undefined).
      ...(Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) as TrainerOptions<F, B>),
    };
    this.o = o;
    if (!o.train.length) throw new TunekitError("Trainer: the training set is empty");
    checkOptions(o);
    if (o.bf16 !== undefined && typeof o.bf16 !== "boolean") throw new TunekitError(`Trainer: bf16 must be true or false, got ${JSON.stringify(o.bf16)}`);
    if (o.bf16 && !native.bf16Available() && o.progress !== false)
      console.warn("tunekit: bf16 asked for, but this CPU has no AVX512-BF16 (or the AVX-512 kernels are not in use): training in float32");
    const model = o.model;
    // Strategies decide which parameters train; the optimizer knows every parameter that may train.
    // A statically frozen parameter is outside the optimizer (no gradient, no state); gradual
    // unfreezing makes every parameter trainable in turn, so they are all inside.
    if (o.gradualUnfreezing) unfreezeTop(model, model.body.numLayers + 1);
    else if (o.freeze) freeze(model, o.freeze);
    const groups = paramGroups(model, { lr: o.learningRate, weightDecay: o.weightDecay, layerDecay: o.layerDecay });
    this.optimizer = new AdamW(groups, { betas: [o.adamBeta1, o.adamBeta2], eps: o.adamEpsilon });
    if (o.gradualUnfreezing) {
      if (o.freeze) freeze(model, o.freeze);
      unfreezeTop(model, 0);
    }
    if (o.l2sp)
      for (const p of model.parameters()) if (p.requiresGrad || o.gradualUnfreezing) {
        const neg = allocate(p.size, p.device).copyFromStorage(p.storage);
        native.scale({ n: p.size, x: neg.handle, s: -1 });
        this.pretrained.set(p, neg);
      }
    this.scaler = o.lossScaling ? new LossScaler(o.lossScaling === true ? {} : o.lossScaling) : null;
    this.state = { step: 0, epoch: 0, batchInEpoch: 0, genOffset: 0, bestMetric: null, bestStep: null, patience: 0, history: [], skipped: 0 };
    if (o.resumeFrom === "latest") {
      if (!o.outputDir) throw new TunekitError('Trainer: resumeFrom "latest" needs outputDir (where the checkpoints are)');
      const dir = latestCheckpoint(o.outputDir);
      if (dir) this.resume(dir);
    } else if (o.resumeFrom) this.resume(o.resumeFrom);
  }

  get microBatchesPerEpoch(): number {
    return Math.ceil(this.o.train.length / this.o.batchSize);
  }
  get stepsPerEpoch(): number {
    return Math.ceil(this.microBatchesPerEpoch / this.o.gradientAccumulationSteps);
  }
  get totalSteps(): number {
    return this.o.maxSteps ?? this.stepsPerEpoch * this.o.epochs;
  }
  private get warmupSteps(): number {
    return this.o.warmupSteps ?? warmupStepsFromRatio(this.o.warmupRatio ?? 0, this.totalSteps);
  }
  private schedule: LrSchedule | null = null;
  private lrMultiplier(step: number): number {
    if (!this.schedule) {
      const name = this.o.scheduler;
      const warm = name === "constant" || name === "slanted_triangular" ? {} : { numWarmupSteps: this.warmupSteps };
      this.schedule = getScheduler(name, { ...warm, numTrainingSteps: this.totalSteps });
    }
    return this.schedule(step);
  }

  private batchAt(epoch: number, index: number): B {
    if (this.order?.epoch !== epoch) this.order = { epoch, indices: permutation(this.o.train.length, this.o.seed * 1000003 + epoch) };
    const bs = this.o.batchSize;
    return this.o.collate(this.order.indices.slice(index * bs, (index + 1) * bs).map((i) => this.o.train[i]));
  }

  /** The options under HF TrainingArguments names, as a checkpoint records them. */
  trainingArgs(): TrainingArgsRecord {
    const o = this.o;
    return {
      learning_rate: o.learningRate, num_train_epochs: o.epochs, max_steps: o.maxSteps ?? -1, per_device_train_batch_size: o.batchSize,
      gradient_accumulation_steps: o.gradientAccumulationSteps, weight_decay: o.weightDecay, adam_beta1: o.adamBeta1, adam_beta2: o.adamBeta2,
      adam_epsilon: o.adamEpsilon, max_grad_norm: o.maxGradNorm, lr_scheduler_type: o.scheduler, warmup_ratio: o.warmupRatio ?? 0,
      warmup_steps: o.warmupSteps ?? 0, seed: o.seed,
    };
  }

  private write(record: Record<string, unknown>): void {
    if (!this.o.logFile) return;
    if (this.log === null) {
      fs.mkdirSync(path.dirname(path.resolve(this.o.logFile)), { recursive: true });
      this.log = fs.openSync(this.o.logFile, this.o.resumeFrom ? "a" : "w");
    }
    fs.writeSync(this.log, JSON.stringify(record) + "\n");
  }

  /** Sets the GEMM precision the bf16 option asks for; returns what restores the caller's. */
  private usePrecision(): () => void {
    const before = native.matmulPrecision();
    native.setMatmulPrecision(this.o.bf16 ? "bf16" : "fp32");
    return () => native.setMatmulPrecision(before);
  }

  /** Trains to the end (or early stop). Returns the summary; the model holds the final (or best) weights. */
  async train(): Promise<TrainResult> {
    const restore = this.usePrecision();
    try {
      return await this.trainLoop();
    } finally {
      restore();
    }
  }

  private async trainLoop(): Promise<TrainResult> {
    const o = this.o, model = o.model, s = this.state;
    const t0 = Date.now();
    const total = this.totalSteps;
    const tty = o.progress !== false && process.stderr.isTTY;
    const bar = tty ? new SingleBar({ format: "{bar} {value}/{total} | epoch {epoch} | loss {loss} | lr {lr} | {speed} it/s | ETA {eta_formatted}", hideCursor: true }, Presets.shades_classic) : null;
    bar?.start(total, s.step, { epoch: s.epoch + 1, loss: "-", lr: "-", speed: "-" });
    let lossSum = 0, lossN = 0, lastLine = Date.now();
    model.gen.offset = Math.max(model.gen.offset, s.genOffset);
    let stop = false;
    try {
      while (!stop && s.step < total && s.epoch < (o.maxSteps ? Number.MAX_SAFE_INTEGER : o.epochs)) {
        if (o.gradualUnfreezing) unfreezeTop(model, s.epoch);
        model.train();
        const perEpoch = this.microBatchesPerEpoch;
        while (s.batchInEpoch < perEpoch && s.step < total) {
          const accum = Math.min(o.gradientAccumulationSteps, perEpoch - s.batchInEpoch);
          const batches: B[] = [];
          for (let k = 0; k < accum; k++) batches.push(this.batchAt(s.epoch, s.batchInEpoch + k));
          const count = batches.reduce((n, b) => n + model.lossCount(b), 0);
          let stepLoss = 0;
          for (const b of batches) {
            const l = tidy(() => {
              const out = model.forward(b, { lossDivisor: Math.max(count, 1), lossOnly: true });
              if (!out.loss) throw new TunekitError("Trainer: the batch has no labels, so the model returned no loss");
              const v = out.loss.item();
              // With loss scaling the backward starts from `scale` instead of 1: every gradient is scaled.
              if (this.scaler) backward(out.loss, new Float32Array([this.scaler.scale]));
              else out.loss.backward();
              return v;
            });
            stepLoss += l;
          }
          s.batchInEpoch += accum;
          const result = this.optimizerStep(stepLoss);
          s.step++;
          if (result.skipped) {
            s.skipped++;
            // A scaled gradient that overflowed is loss scaling at work (the scale backs off), not a fault.
            if (!result.overflow) {
              if (o.onNonFinite === "stop") throw new TunekitError(`Trainer: step ${s.step}: ${result.reason}; stopping (onNonFinite: "stop")`);
              console.warn(`tunekit: step ${s.step} skipped: ${result.reason}`);
            }
          } else {
            lossSum += stepLoss;
            lossN++;
          }
          const rec = { step: s.step, epoch: s.epoch + s.batchInEpoch / perEpoch, loss: stepLoss, lr: result.lr, grad_norm: result.norm };
          this.write(rec);
          o.events?.onStep?.({ step: s.step, epoch: rec.epoch, loss: stepLoss, lr: result.lr, gradNorm: result.norm });
          const elapsed = (Date.now() - t0) / 1000;
          if (bar) bar.update(s.step, { epoch: s.epoch + 1, loss: stepLoss.toFixed(4), lr: result.lr.toExponential(2), speed: (s.step / elapsed).toFixed(2) });
          else if (o.progress !== false && (Date.now() - lastLine > 10000 || s.step === total)) {
            lastLine = Date.now();
            progressLine(`step ${s.step}/${total} epoch ${s.epoch + 1} loss ${stepLoss.toFixed(4)} lr ${result.lr.toExponential(2)} ${(s.step / elapsed).toFixed(2)} it/s`);
          }
          if (o.evalStrategy === "steps" && o.evalSteps && s.step % o.evalSteps === 0) stop = this.evaluateAndTrack();
          if (o.saveSteps && o.outputDir && s.step % o.saveSteps === 0) this.saveCheckpoint(path.join(o.outputDir, `checkpoint-${s.step}`));
          if (stop) break;
        }
        if (s.batchInEpoch >= perEpoch) {
          o.events?.onEpochEnd?.({ epoch: s.epoch });
          const evalNow = (o.evalStrategy ?? (o.eval ? "epoch" : "no")) === "epoch";
          s.epoch++;
          s.batchInEpoch = 0;
          if (evalNow && !stop) stop = this.evaluateAndTrack();
        }
      }
    } finally {
      bar?.stop();
      if (this.log !== null) fs.closeSync(this.log), (this.log = null);
    }
    if (o.loadBestModelAtEnd && this.bestWeights) {
      for (const [name, p] of model.namedParameters()) {
        const w = this.bestWeights.get(name);
        if (w) p.copyFrom(w);
      }
    }
    model.eval();
    return {
      steps: s.step, epochs: s.epoch, trainLoss: lossN ? lossSum / lossN : NaN, bestMetric: s.bestMetric, bestStep: s.bestStep,
      history: s.history, seconds: (Date.now() - t0) / 1000, trainableParameters: trainableCount(model), skippedSteps: s.skipped,
      precision: native.matmulPrecision(),
    };
  }

  /** L2-SP, clipping, the non-finite check and the AdamW update of one optimizer step. */
  private optimizerStep(loss: number): { lr: number; norm: number; skipped: boolean; overflow?: boolean; reason?: string } {
    const o = this.o, model = o.model, s = this.state;
    const params = model.parameters().filter((p) => p.requiresGrad && p.grad);
    // Gradients hold scale·∂loss; the unscale is folded into the norm and the update's multiplier.
    const scale = this.scaler ? this.scaler.scale : 1;
    if (o.l2sp) {
      const tmp = acquire(Math.max(...params.map((p) => p.size), 1), model.device, "f32", false);
      for (const p of params) {
        const neg = this.pretrained.get(p);
        if (!neg) continue;
        const d = tmp.view(0, p.size).handle;
        native.add({ n: p.size, a: p.storage.handle, b: neg.handle, y: d });
        native.scale({ n: p.size, x: d, s: o.l2sp * scale });
        native.add({ n: p.size, a: p.grad!.handle, b: d, y: p.grad!.handle });
      }
      release(tmp);
    }
    const opt = this.optimizer;
    let norm = Math.sqrt(opt.gradSumSquares()) / scale, unscale = scale;
    if (this.scaler && !Number.isFinite(norm) && Number.isFinite(loss) && !firstNonFinite([["", opt.grads.storage.toHost()]])) {
      // Every scaled gradient is finite, but their squares overflowed the norm kernel's float32
      // partial sums (values above ~1e19): unscale in place (torch's unscale_) and measure again.
      opt.scaleGrads(1 / scale);
      norm = Math.sqrt(opt.gradSumSquares());
      unscale = 1;
    }
    const lr = o.learningRate * this.lrMultiplier(s.step);
    let skipped = false, overflow = false, reason: string | undefined;
    if (!Number.isFinite(loss) || !Number.isFinite(norm)) {
      skipped = true;
      // A finite loss whose scaled gradients overflowed: the scaler's business, not a fault.
      overflow = this.scaler !== null && Number.isFinite(loss);
      const bad = model.parameters().find((p) => p.grad && !Number.isFinite(native.sumSquares({ n: p.size, x: p.grad.handle })));
      const name = bad ? [...model.namedParameters()].find(([, p]) => p === bad)?.[0] : undefined;
      reason = !Number.isFinite(loss) ? `non-finite loss ${loss}` : `non-finite gradient in '${name}'${this.scaler ? ` at loss scale ${scale}` : ""}`;
    } else {
      const clip = o.maxGradNorm > 0 && norm > o.maxGradNorm ? o.maxGradNorm / (norm + 1e-6) : 1;
      this.optimizer.update(lr / o.learningRate, clip / unscale);
    }
    this.scaler?.update(skipped);
    opt.zeroGrad();
    model.zeroGrad(); // parameters outside the optimizer (none in a normal run)
    s.genOffset = model.gen.offset;
    return { lr, norm, skipped, overflow, reason };
  }

  /** Evaluates on the eval set: mean loss plus the evaluator's metrics. */
  evaluate(features: F[] = this.o.eval ?? []): Metrics {
    const restore = this.usePrecision();
    try {
      return this.evaluateAll(features);
    } finally {
      restore();
    }
  }

  private evaluateAll(features: F[]): Metrics {
    const o = this.o, model = o.model;
    if (!features.length) throw new TunekitError("Trainer.evaluate: the evaluation set is empty");
    const wasTraining = model.training;
    model.eval();
    const ev = o.evaluator?.();
    let lossSum = 0, count = 0;
    const bs = o.evalBatchSize ?? o.batchSize;
    noGrad(() => {
      for (let i = 0; i < features.length; i += bs) {
        const b = o.collate(features.slice(i, i + bs));
        tidy(() => {
          const out = model.forward(b);
          if (out.loss) {
            const n = model.lossCount(b);
            lossSum += out.loss.item() * n;
            count += n;
          }
          ev?.update(out, b);
        });
      }
    });
    if (wasTraining) model.train();
    return { loss: count ? lossSum / count : NaN, ...(ev ? ev.compute() : {}) };
  }

  private evaluateAndTrack(): boolean {
    const o = this.o, s = this.state;
    if (!o.eval?.length) return false;
    const metrics = this.evaluate();
    const rec = { step: s.step, epoch: s.epoch, ...Object.fromEntries(Object.entries(metrics).map(([k, v]) => [`eval_${k}`, v])) };
    s.history.push(rec);
    this.write(rec);
    o.events?.onEvaluate?.({ step: s.step, epoch: s.epoch, metrics });
    if (o.progress !== false) progressLine(`eval @ step ${s.step}: ${Object.entries(metrics).filter(([, v]) => typeof v === "number").map(([k, v]) => `${k} ${Number.isInteger(v) ? v : (v as number).toFixed(4)}`).join(", ")}`);
    const key = o.metricForBestModel ?? "loss";
    const value = metrics[key];
    if (typeof value !== "number") throw new TunekitError(`Trainer: metricForBestModel '${key}' is not among the metrics: ${Object.keys(metrics).join(", ")}`);
    const greater = o.greaterIsBetter ?? key !== "loss";
    const better = s.bestMetric === null || (greater ? value > s.bestMetric : value < s.bestMetric);
    if (better) {
      s.bestMetric = value;
      s.bestStep = s.step;
      s.patience = 0;
      if (o.loadBestModelAtEnd) {
        this.bestWeights = new Map();
        for (const [name, p] of o.model.namedParameters()) if (p.requiresGrad || o.gradualUnfreezing) this.bestWeights.set(name, Float32Array.from(p.toHost()));
      }
      return false;
    }
    s.patience++;
    return o.earlyStoppingPatience !== undefined && s.patience >= o.earlyStoppingPatience;
  }

  /**
   * Writes weights, optimizer state and trainer state (step, data position, dropout RNG, best metric,
   * loss scale) into a temporary directory and renames it into place (checkpoints.ts): a crash never
   * leaves half a checkpoint. Refuses (NonFiniteError) before writing anything when a weight or an
   * optimizer moment holds NaN or Infinity, so a resumed run never starts from poisoned weights.
   */
  saveCheckpoint(dir: string): void {
    const s = this.state, model = this.o.model;
    // The whole state (LoRA factors included), not a publishable checkpoint: savePretrained refuses adapters.
    const weights = model.stateDict();
    const moments = this.optimizer.stateTensors();
    assertFinite(`saveCheckpoint(${dir})`, weights);
    assertFinite(`saveCheckpoint(${dir}) optimizer state`, moments);
    writeCheckpointDir(dir, (tmp) => {
      saveSafetensors(path.join(tmp, "model.safetensors"), weights);
      saveConfig(tmp, { ...model.config, architectures: [model.architecture] }, { dtype: "F32" }); // the weights just written
      if (this.bestWeights)  // so a resumed run can still load the best model at the end
        saveSafetensors(path.join(tmp, "best.safetensors"), new Map([...this.bestWeights].map(([k, v]) => [k, { dtype: "F32" as const, shape: [v.length], data: v }])));
      saveSafetensors(path.join(tmp, "optimizer.safetensors"), new Map([...moments].map(([k, v]) => [k, { dtype: "F32" as const, shape: [v.length], data: v }])));
      // Last: checkpointProblem() treats a directory without it as incomplete.
      const st = { ...s, genOffset: model.gen.offset, optimizerStep: this.optimizer.step, seed: this.o.seed, lossScaler: this.scaler?.state(),
        training_args: this.trainingArgs() };
      writeFileAtomicSync(path.join(tmp, "trainer_state.json"), Buffer.from(JSON.stringify(st, null, 2)));
    });
    this.o.events?.onSave?.({ step: s.step, dir });
    if (this.o.saveTotalLimit && this.o.outputDir) {
      const olds = listCheckpoints(this.o.outputDir);
      for (const d of olds.slice(0, Math.max(0, olds.length - this.o.saveTotalLimit))) removeCheckpoint(d);
    }
  }

  private resume(dir: string): void {
    const st = readTrainerState(dir);
    const perEpoch = this.microBatchesPerEpoch;
    if (st.batchInEpoch > perEpoch)
      throw new TunekitError(`resumeFrom: ${path.join(dir, "trainer_state.json")}: field "batchInEpoch" is ${st.batchInEpoch}; expected an integer in 0..${perEpoch} (micro-batches per epoch of this training set: is it the same data and batchSize?)`);
    // As HF's compare_trainer_and_checkpoint_args: a different setting resumes, with a warning, since it no longer continues the same run.
    const now = this.trainingArgs() as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(st.training_args ?? {}))
      if (now[k] !== v) console.warn(`tunekit: resumeFrom ${dir}: training argument ${k} is ${JSON.stringify(now[k])} here but ${JSON.stringify(v)} in the checkpoint; the run will not continue exactly`);
    const model = this.o.model;
    model.loadStateDict(readSafetensors(path.join(dir, "model.safetensors")).tensors, `resumeFrom: ${dir}/model.safetensors`);
    const opt = readSafetensors(path.join(dir, "optimizer.safetensors")).tensors;
    this.optimizer.loadStateTensors(new Map([...opt].map(([k, v]) => [k, v.data as Float32Array])), st.optimizerStep);
    const best = path.join(dir, "best.safetensors");
    if (fs.existsSync(best)) this.bestWeights = new Map([...readSafetensors(best).tensors].map(([k, v]) => [k, v.data as Float32Array]));
    this.state = { step: st.step, epoch: st.epoch, batchInEpoch: st.batchInEpoch, genOffset: st.genOffset, bestMetric: st.bestMetric, bestStep: st.bestStep, patience: st.patience, history: st.history, skipped: st.skipped };
    if (this.scaler && st.lossScaler) this.scaler.load(st.lossScaler);
    model.gen.offset = st.genOffset;
  }
}

// The Trainer: epochs or max steps over shuffled, dynamically padded batches; gradient accumulation
// that equals one large batch; global-norm clipping; a schedule; evaluation with streaming metrics;
// the best checkpoint; resumable checkpoints (checkpoints.ts). The loop fires HF's TrainerCallback
// events (callbacks.ts): the default flow, early stopping, the progress bar and the JSON-lines log
// (progress.ts) are callbacks, and train() yields to the event loop after every step.
import * as path from "path";
import { TunekitError } from "../errors";
import { native } from "../native";
import type { MatmulPrecision } from "../native";
import { tidy } from "../tensor/tensor";
import type { Tensor } from "../tensor/tensor";
import { Storage, acquire, allocate, release } from "../tensor/storage";
import { Parameter } from "../nn/module";
import { noGrad, backward } from "../tensor/autograd";
import { firstNonFinite } from "../tensor/finite";
import { AdamW, paramGroups } from "./optimizer";
import { freeze, unfreezeTop, trainableCount } from "./strategies";
import { LossScaler } from "./loss_scaler";
import { saveTrainerCheckpoint, loadTrainerCheckpoint, removeCheckpoint, listCheckpoints, latestCheckpoint } from "./checkpoints";
import type { TrainerState, TrainingArgsRecord } from "./trainer_state";
import { getScheduler, warmupStepsFromRatio, LrSchedule, ScheduleName } from "./schedules";
import { CallbackHandler, CallbackKwargs, CallbackOrClass, DefaultFlowCallback, EarlyStoppingCallback, EventsCallback, LogRecord, TrainerArgs, TrainerCallback,
  TrainerControl, TrainerEvent } from "./callbacks";
import { ProgressCallback, JsonLinesCallback } from "./progress";
import { checkOptions, moveModel, permutation, Metrics, TrainerOptions, TrainResult } from "./trainer_options";
import type { ProcessGroup } from "../distributed/process_group";
import { Reducer } from "../distributed/reducer";
import { trainerGroup, broadcastParameters, shareOf, checkSameStart } from "../distributed/ddp";
import { shardedBatches } from "../distributed/evaluation";

// The types a Trainer takes and returns live in trainer_options.ts; they are imported from here as well.
export { permutation } from "./trainer_options";
export type { TrainableModel, Evaluator, Metrics, TrainerOptions, TrainResult } from "./trainer_options";
export type { TrainerEvents } from "./callbacks";

export class Trainer<F, B> {
  readonly o: Required<Pick<TrainerOptions<F, B>, "learningRate" | "epochs" | "batchSize" | "gradientAccumulationSteps" | "weightDecay" | "maxGradNorm" | "seed" | "scheduler" | "adamBeta1" | "adamBeta2" | "adamEpsilon">> & TrainerOptions<F, B>;
  readonly optimizer: AdamW;
  /** Where the run stands (HF's TrainerState); callbacks read it. */
  state: TrainerState;
  /** What the loop does next; callbacks set its flags (HF's TrainerControl). */
  control = new TrainerControl();
  /** The callbacks, built-in ones first (DefaultFlowCallback, then those the options ask for). */
  readonly callbackHandler: CallbackHandler;
  /** L2-SP's anchor: −(the starting weights) of each trainable parameter, on its device. */
  private readonly pretrained: Map<Parameter, Storage> = new Map();
  /** The weights of the best evaluation (loadBestModelAtEnd), on the model's device. */
  private bestWeights: Map<string, Storage> | null = null;
  /** The data order of one epoch, built once per epoch (not once per micro-batch). */
  private order: { epoch: number; indices: number[] } | null = null;
  /** Present when lossScaling is on. */
  readonly scaler: LossScaler | null;
  /** Data-parallel training: the group of processes, and the gradient all-reduce (null in one process). */
  readonly group: ProcessGroup | null;
  private readonly reducer: Reducer | null = null;
  /** Seconds of gradient collectives (communication thread) and of the steps' waits for them, over this train(). */
  private communication = { seconds: 0, wait: 0, steps: 0 };
  private training = false;

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
    if (o.fp16 !== undefined && typeof o.fp16 !== "boolean") throw new TunekitError(`Trainer: fp16 must be true or false, got ${JSON.stringify(o.fp16)}`);
    if (o.fp16 && o.bf16) throw new TunekitError("Trainer: bf16 and fp16 are both set; choose one");
    const model = o.model;
    if (o.device !== undefined) moveModel(model, o.device);
    if (o.fp16 && model.device === "cpu")
      throw new TunekitError("Trainer: fp16 runs on a CUDA device only (its tensor cores); on the CPU use bf16 (AVX512-BF16 / AMX) or float32");
    if (o.fp16 && o.lossScaling === undefined) o.lossScaling = true;
    if (o.bf16 && model.device === "cpu" && !native.bf16Available() && o.progress !== false)
      console.warn("tunekit: bf16 asked for, but this CPU has no AVX512-BF16 (or the AVX-512 kernels are not in use): training in float32");
    this.group = trainerGroup(o.distributed, model.device);
    // Every process starts from rank 0's weights (DDP's broadcast at construction), before anything is derived from them.
    if (this.group) broadcastParameters(this.group, model.parameters());
    // Strategies decide which parameters train; the optimizer knows every parameter that may train.
    // A statically frozen parameter is outside the optimizer (no gradient, no state); gradual
    // unfreezing makes every parameter trainable in turn, so they are all inside.
    if (o.gradualUnfreezing) unfreezeTop(model, model.body.numLayers + 1);
    else if (o.freeze) freeze(model, o.freeze);
    const groups = paramGroups(model, { lr: o.learningRate, weightDecay: o.weightDecay, layerDecay: o.layerDecay });
    this.optimizer = new AdamW(groups, { betas: [o.adamBeta1, o.adamBeta2], eps: o.adamEpsilon });
    if (this.group) this.reducer = new Reducer(this.group, this.optimizer, model);
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
    this.state = { step: 0, epoch: 0, batchInEpoch: 0, genOffset: 0, bestMetric: null, bestStep: null, patience: 0, history: [], skipped: 0, maxSteps: this.totalSteps };
    let resumeDir: string | null = o.resumeFrom ?? null;
    if (resumeDir === "latest") {
      if (!o.outputDir) throw new TunekitError('Trainer: resumeFrom "latest" needs outputDir (where the checkpoints are)');
      resumeDir = latestCheckpoint(o.outputDir);
    }
    if (resumeDir) {
      const r = loadTrainerCheckpoint(resumeDir, { model, optimizer: this.optimizer, scaler: this.scaler, trainingArgs: this.trainingArgs() }, this.microBatchesPerEpoch,
        { trainBatchSize: this.globalBatchSize, examples: o.train.length });
      this.state = { ...r.state, maxSteps: this.totalSteps };
      this.bestWeights = r.bestWeights;
    }
    if (this.group) checkSameStart(this.group, this.state);
    // Only the first process reports and logs (HF's is_world_process_zero); every one runs the callbacks.
    const main = this.isWorldProcessZero();
    this.callbackHandler = new CallbackHandler([
      DefaultFlowCallback,
      ...(o.progress !== false && main ? [new ProgressCallback()] : []),
      ...(o.logFile && main ? [new JsonLinesCallback(o.logFile, !!o.resumeFrom)] : []),
      ...(o.earlyStoppingPatience !== undefined ? [new EarlyStoppingCallback(o.earlyStoppingPatience)] : []),
      ...(o.events ? [new EventsCallback(o.events)] : []),
      ...(o.callbacks ?? []),
    ]);
    this.fire("onInitEnd");
  }

  /** Adds a callback (an instance, or a class to instantiate) after the others (HF's add_callback). */
  addCallback(callback: CallbackOrClass): void {
    this.callbackHandler.add(callback);
  }
  /** Removes the callback, or the first instance of a class, and returns it; null when absent (HF's pop_callback). */
  popCallback(callback: CallbackOrClass): TrainerCallback | null {
    return this.callbackHandler.pop(callback);
  }
  /** Removes the callback, or the first instance of a class (HF's remove_callback). */
  removeCallback(callback: CallbackOrClass): void {
    this.callbackHandler.pop(callback);
  }

  private fire(event: TrainerEvent, extra: Partial<CallbackKwargs> = {}): void {
    const kwargs: CallbackKwargs = { trainer: this as unknown as Trainer<unknown, unknown>, model: this.o.model, optimizer: this.optimizer, ...extra };
    this.control = this.callbackHandler.call(event, this.o as unknown as TrainerArgs, this.state, this.control, kwargs);
  }

  /** Whether this process is the one that saves, logs and reports (rank 0, or the only one). */
  isWorldProcessZero(): boolean {
    return !this.group || this.group.rank === 0;
  }
  /** Examples per micro-batch over all processes: batchSize × world size (HF's train_batch_size × world size). */
  get globalBatchSize(): number {
    return this.o.batchSize * (this.group?.worldSize ?? 1);
  }
  get microBatchesPerEpoch(): number {
    return Math.ceil(this.o.train.length / this.globalBatchSize);
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

  /** This process's part of micro-batch `index` of the epoch; null when it has no example in it (a short last batch). */
  private batchAt(epoch: number, index: number): B | null {
    if (this.order?.epoch !== epoch) this.order = { epoch, indices: permutation(this.o.train.length, this.o.seed * 1000003 + epoch) };
    const g = this.globalBatchSize;
    const mine = shareOf(this.order.indices.slice(index * g, (index + 1) * g), this.group);
    return mine.length ? this.o.collate(mine.map((i) => this.o.train[i])) : null;
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

  /** What this run's matrix products run in: "bf16" only with the bf16 option, on a GPU or a CPU that has it. */
  get precision(): MatmulPrecision {
    if (this.o.fp16) return "fp16";
    return this.o.bf16 && (this.o.model.device !== "cpu" || native.bf16Available()) ? "bf16" : "fp32";
  }

  /**
   * Runs fn at this run's GEMM precision and restores the process-wide one before returning. fn never
   * awaits, and the GEMM bindings read the precision when called, so nothing else in the process (a
   * pipeline, another Trainer) ever runs at this run's precision, however their awaits interleave.
   */
  private atPrecision<T>(fn: () => T): T {
    const before = native.matmulPrecision(), mine = this.precision;
    if (before === mine) return fn();
    native.setMatmulPrecision(mine);
    try {
      return fn();
    } finally {
      native.setMatmulPrecision(before);
    }
  }

  /**
   * Trains to the end (or until a callback stops it). Returns the summary; the model holds the final
   * (or best) weights. Between steps it yields to the event loop, so timers, I/O and other awaits
   * (a server, a UI, inference on another model) go on while it trains.
   */
  async train(): Promise<TrainResult> {
    if (this.training) throw new TunekitError("Trainer.train: this Trainer is already training (await the train() in progress first)");
    this.training = true;
    try {
      const t0 = Date.now();
      let losses: { sum: number; n: number };
      try {
        losses = await this.loop();
      } catch (e) {
        try {
          this.fire("onTrainEnd", { error: e });
        } catch {
          // the first error is the one to report
        }
        // The other processes stop at their next collective with this reason, instead of waiting out the timeout.
        this.group?.abort(e instanceof Error ? e.message : String(e));
        throw e;
      }
      const o = this.o, model = o.model, s = this.state;
      if (o.loadBestModelAtEnd && this.bestWeights)
        for (const [name, p] of model.namedParameters()) {
          const w = this.bestWeights.get(name);
          if (w) p.storage.copyFromStorage(w);
        }
      model.eval();
      this.fire("onTrainEnd");
      return {
        steps: s.step, epochs: s.epoch, trainLoss: losses.n ? losses.sum / losses.n : NaN, bestMetric: s.bestMetric, bestStep: s.bestStep,
        history: s.history, seconds: (Date.now() - t0) / 1000, trainableParameters: trainableCount(model), skippedSteps: s.skipped, precision: this.precision,
        ...(this.group ? { distributed: { worldSize: this.group.worldSize, allReduceSecondsPerStep: this.communication.seconds / Math.max(1, this.communication.steps),
          waitSecondsPerStep: this.communication.wait / Math.max(1, this.communication.steps) } } : {}),
      };
    } finally {
      this.training = false;
    }
  }

  /** The epochs and steps; returns the summed loss of the steps not skipped. */
  private async loop(): Promise<{ sum: number; n: number }> {
    const o = this.o, model = o.model, s = this.state;
    let sum = 0, n = 0;
    this.communication = { seconds: 0, wait: 0, steps: 0 };
    model.gen.offset = Math.max(model.gen.offset, s.genOffset);
    this.fire("onTrainBegin");
    while (!this.control.shouldTrainingStop && s.step < s.maxSteps && s.epoch < (o.maxSteps ? Number.MAX_SAFE_INTEGER : o.epochs)) {
      if (o.gradualUnfreezing) unfreezeTop(model, s.epoch);
      model.train();
      this.fire("onEpochBegin");
      const perEpoch = this.microBatchesPerEpoch;
      while (s.batchInEpoch < perEpoch && s.step < s.maxSteps) {
        this.fire("onStepBegin");
        const { record, skipped } = this.trainingStep(perEpoch);
        if (!skipped) sum += record.loss, n++;
        this.fire("onStepEnd");
        this.logSaveEvaluate(record);
        // Other work (timers, I/O, awaits elsewhere) runs here, between steps, never inside one.
        await new Promise<void>((resolve) => setImmediate(resolve));
        if (this.control.shouldTrainingStop || this.control.shouldEpochStop) break;
      }
      if (this.control.shouldEpochStop) s.batchInEpoch = perEpoch; // the rest of the epoch is skipped
      if (s.batchInEpoch >= perEpoch) {
        s.epoch++;
        s.batchInEpoch = 0;
        this.fire("onEpochEnd");
        this.logSaveEvaluate(null);
      }
    }
    return { sum, n };
  }

  /** One optimizer step over its micro-batches; returns its log record and whether it was skipped. */
  private trainingStep(perEpoch: number): { record: LogRecord & { loss: number }; skipped: boolean } {
    const o = this.o, model = o.model, s = this.state;
    const accum = Math.min(o.gradientAccumulationSteps, perEpoch - s.batchInEpoch);
    const group = this.group, reducer = this.reducer;
    const before = group?.stats().seconds ?? 0;
    const batches: (B | null)[] = [];
    for (let k = 0; k < accum; k++) batches.push(this.batchAt(s.epoch, s.batchInEpoch + k));
    let count = batches.reduce((c, b) => c + (b ? model.lossCount(b) : 0), 0);
    // Every process divides by the count of the whole global batch (HF's num_items_in_batch gathered across
    // processes), so that the summed gradients are exactly those of one process with the whole batch.
    if (group) count = this.sum(count);
    let stepLoss = 0;
    batches.forEach((b, k) => {
      // Only the last micro-batch's backward reduces the gradients (torch's no_sync on the others).
      const reduceNow = reducer && k === accum - 1 ? reducer : null;
      if (b) stepLoss += this.atPrecision(() => tidy(() => {
        const out = model.forward(b, { lossDivisor: Math.max(count, 1), lossOnly: true });
        if (!out.loss) throw new TunekitError("Trainer: the batch has no labels, so the model returned no loss");
        const v = out.loss.item();
        reduceNow?.prepare();
        // With loss scaling the backward starts from `scale` instead of 1: every gradient is scaled.
        backward(out.loss, this.scaler ? new Float32Array([this.scaler.scale]) : undefined, reduceNow?.onGradReady);
        return v;
      }));
      if (k < accum - 1) this.fire("onSubstepEnd");
    });
    if (group && reducer) {
      this.communication.wait += reducer.finish().waitSeconds;
      // The step's loss, and which parameters any process's backward reached (torch: grad is not None),
      // so that every process updates the same ones.
      const params = this.optimizer.parameters;
      const v = new Float64Array(1 + params.length);
      v[0] = stepLoss;
      params.forEach((p, i) => (v[i + 1] = p.gradTouched ? 1 : 0));
      group.allReduce(v);
      stepLoss = v[0];
      params.forEach((p, i) => (p.gradTouched = v[i + 1] > 0));
      this.communication.seconds += group.stats().seconds - before;
      this.communication.steps++;
    }
    s.batchInEpoch += accum;
    this.fire("onPreOptimizerStep");
    const result = this.optimizerStep(stepLoss);
    this.fire("onOptimizerStep");
    this.optimizer.zeroGrad();
    model.zeroGrad(); // parameters outside the optimizer (none in a normal run)
    s.step++;
    if (result.skipped) {
      s.skipped++;
      // A scaled gradient that overflowed is loss scaling at work (the scale backs off), not a fault.
      if (!result.overflow) {
        if (o.onNonFinite === "stop") throw new TunekitError(`Trainer: step ${s.step}: ${result.reason}; stopping (onNonFinite: "stop")`);
        console.warn(`tunekit: step ${s.step} skipped: ${result.reason}`);
      }
    }
    return { record: { step: s.step, epoch: s.epoch + s.batchInEpoch / perEpoch, loss: stepLoss, lr: result.lr, grad_norm: result.norm }, skipped: result.skipped };
  }

  /** Does what the control asks after a step (its record given) or an epoch (HF's _maybe_log_save_evaluate). */
  private logSaveEvaluate(record: LogRecord | null): void {
    if (this.control.shouldLog && record) this.fire("onLog", { logs: record });
    if (this.control.shouldEvaluate) {
      if (!this.o.eval?.length) throw new TunekitError("Trainer: control.shouldEvaluate is set, but there is no eval set (the eval option) to evaluate on");
      const metrics = this.evaluate();
      const s = this.state;
      const record = { step: s.step, epoch: s.epoch, ...Object.fromEntries(Object.entries(metrics).map(([k, v]) => [`eval_${k}`, v])) };
      s.history.push(record);
      this.fire("onLog", { logs: record });
      this.trackBest(metrics);
      this.fire("onEvaluate", { metrics });
    }
    if (this.control.shouldSave) {
      if (!this.o.outputDir) throw new TunekitError("Trainer: control.shouldSave is set, but there is no outputDir to write the checkpoint in");
      const dir = path.join(this.o.outputDir, `checkpoint-${this.state.step}`);
      this.saveCheckpoint(dir);
      this.fire("onSave", { checkpoint: dir });
    }
  }
  /** The sum of x over the processes. */
  private sum(x: number): number {
    const v = Float64Array.of(x);
    this.group!.allReduce(v);
    return v[0];
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
    s.genOffset = model.gen.offset;
    return { lr, norm, skipped, overflow, reason };
  }

  /**
   * Evaluates on the eval set (or `features`): mean loss plus the evaluator's metrics, at this run's
   * precision. Under data parallelism it is collective (every process calls it): each runs its share of
   * the batches and every one gets the metrics of all (the evaluator sees logits / startLogits / endLogits).
   */
  evaluate(features: F[] = this.o.eval ?? []): Metrics {
    return this.atPrecision(() => this.evaluateAll(features));
  }

  private evaluateAll(features: F[]): Metrics {
    const o = this.o, model = o.model;
    if (!features.length) throw new TunekitError("Trainer.evaluate: the evaluation set is empty");
    const wasTraining = model.training;
    model.eval();
    const ev = o.evaluator?.();
    let lossSum = 0, count = 0;
    const bs = o.evalBatchSize ?? o.batchSize;
    const batch = (j: number) => o.collate(features.slice(j * bs, (j + 1) * bs));
    if (this.group) noGrad(() => {
      // Each process runs its share of the batches; every one sees all outputs in order (distributed/evaluation.ts).
      shardedBatches(this.group!, Math.ceil(features.length / bs), !!ev, (j) => {
        const b = batch(j), out = model.forward(b);
        return { out, count: out.loss ? model.lossCount(b) : 0 };
      }, (j, r) => {
        if (r.loss !== undefined) lossSum += r.loss * r.count, count += r.count;
        ev?.update(r.outputs as { logits: Tensor }, batch(j));
      });
    });
    else noGrad(() => {
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

  /** Updates the best metric, its step and weights, and the patience count from an evaluation (HF's _determine_best_metric). */
  private trackBest(metrics: Metrics): void {
    const o = this.o, s = this.state;
    const key = o.metricForBestModel ?? "loss";
    const value = metrics[key];
    if (typeof value !== "number") throw new TunekitError(`Trainer: metricForBestModel '${key}' is not among the metrics: ${Object.keys(metrics).join(", ")}`);
    const greater = o.greaterIsBetter ?? key !== "loss";
    if (s.bestMetric !== null && !(greater ? value > s.bestMetric : value < s.bestMetric)) {
      s.patience++;
      return;
    }
    s.bestMetric = value;
    s.bestStep = s.step;
    s.patience = 0;
    if (!o.loadBestModelAtEnd) return;
    // Kept on the model's device, in buffers reused at each improvement.
    const best = this.bestWeights ?? new Map<string, Storage>();
    for (const [name, p] of o.model.namedParameters()) if (p.requiresGrad || o.gradualUnfreezing) {
      let w = best.get(name);
      if (w?.length !== p.size || w.device !== p.device) best.set(name, (w = allocate(p.size, p.device)));
      w.copyFromStorage(p.storage);
    }
    this.bestWeights = best;
  }

  /**
   * Writes a checkpoint of the run into dir (saveTrainerCheckpoint: whole or not at all, refused for
   * non-finite weights), then removes the oldest of outputDir's beyond saveTotalLimit.
   */
  saveCheckpoint(dir: string): void {
    const o = this.o;
    if (!this.isWorldProcessZero()) return; // the processes hold the same weights and state: rank 0 writes them
    saveTrainerCheckpoint(dir, { model: o.model, optimizer: this.optimizer, scaler: this.scaler, state: this.state, bestWeights: this.bestWeights,
      seed: o.seed, trainingArgs: this.trainingArgs(), trainBatchSize: this.globalBatchSize });
    if (o.saveTotalLimit && o.outputDir) {
      const olds = listCheckpoints(o.outputDir);
      for (const d of olds.slice(0, Math.max(0, olds.length - o.saveTotalLimit))) removeCheckpoint(d);
    }
  }
}

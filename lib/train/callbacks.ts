// The training loop's events, as Hugging Face's TrainerCallback names them (camelCase), and the
// TrainerControl flags through which a callback steers the loop. The Trainer's own flow is made of
// callbacks too: DefaultFlowCallback decides when to log, evaluate, save and stop; EarlyStoppingCallback
// stops on patience; ProgressCallback and JsonLinesCallback (progress.ts) report; EventsCallback keeps
// the older `events` option working.
import { TunekitError } from "../errors";
import type { PreTrainedModel } from "../models/pretrained";
import type { AdamW } from "./optimizer";
import type { TrainerState } from "./trainer_state";
import type { Trainer, TrainerOptions, Metrics } from "./trainer";

/**
 * What the loop does after the current event (HF's TrainerControl). DefaultFlowCallback sets the
 * flags from the options; any callback may set or clear them. The loop clears shouldLog,
 * shouldEvaluate and shouldSave at each step's begin and once it has done what they ask;
 * shouldEpochStop at each epoch's begin; shouldTrainingStop when train() begins.
 */
export class TrainerControl {
  /** End training after this step (or this epoch's end). */
  shouldTrainingStop = false;
  /** Skip the rest of this epoch. */
  shouldEpochStop = false;
  /** Write a checkpoint (outputDir/checkpoint-<step>) now. */
  shouldSave = false;
  /** Evaluate on the eval set now. */
  shouldEvaluate = false;
  /** Log this step's record (onLog). */
  shouldLog = false;
}

/** The Trainer's options after defaults (HF's TrainingArguments). */
export type TrainerArgs = Trainer<unknown, unknown>["o"];

/** A step's log record { step, epoch, loss, lr, grad_norm }, or an evaluation's { step, epoch, eval_<metric>… }. */
export type LogRecord = Record<string, number | number[][]>;

/** Passed to every event (HF's kwargs), with what the event is about. */
export interface CallbackKwargs {
  trainer: Trainer<unknown, unknown>;
  model: PreTrainedModel;
  optimizer: AdamW;
  /** onEvaluate: the evaluation's metrics (as trainer.evaluate() returns them). */
  metrics?: Metrics;
  /** onLog: the record being logged. */
  logs?: LogRecord;
  /** onSave: the checkpoint directory just written. */
  checkpoint?: string;
  /** onTrainEnd: what train() threw, when it ended by an error. */
  error?: unknown;
}

/**
 * A callback: the same signature for every event (HF's `args, state, control, **kwargs`). It may change
 * control's flags, or return a TrainerControl to replace it. Callbacks run synchronously, in the order
 * they were added, between the loop's computations (never inside one): a Promise returned is refused.
 */
export type CallbackFunction = (args: TrainerArgs, state: TrainerState, control: TrainerControl, kwargs: CallbackKwargs) => TrainerControl | void;

/** Listeners on the Trainer's events (HF's TrainerCallback, camelCase): implement the ones you need. */
export interface TrainerCallback {
  /** The end of the Trainer's constructor. */
  onInitEnd?: CallbackFunction;
  /** train() begins (also when it continues a run). */
  onTrainBegin?: CallbackFunction;
  /** train() ends; also when it throws (kwargs.error), so a callback can release what it holds. */
  onTrainEnd?: CallbackFunction;
  onEpochBegin?: CallbackFunction;
  /** An epoch was completed (state.epoch counts it). */
  onEpochEnd?: CallbackFunction;
  /** Before the first forward of an optimizer step. */
  onStepBegin?: CallbackFunction;
  /** After each micro-batch's backward but the last of a step (gradient accumulation). */
  onSubstepEnd?: CallbackFunction;
  /** Gradients complete, before clipping and the optimizer's update. */
  onPreOptimizerStep?: CallbackFunction;
  /** After the optimizer's update, before the gradients are zeroed. */
  onOptimizerStep?: CallbackFunction;
  /** After an optimizer step (state.step counts it). */
  onStepEnd?: CallbackFunction;
  /** After an evaluation during training (kwargs.metrics), once state's best metric and patience are updated. */
  onEvaluate?: CallbackFunction;
  /** After a checkpoint was written (kwargs.checkpoint). */
  onSave?: CallbackFunction;
  /** A record is logged (kwargs.logs): each step's, and each evaluation's. */
  onLog?: CallbackFunction;
}
export type TrainerEvent = keyof TrainerCallback;
const EVENTS: Record<TrainerEvent, true> = { onInitEnd: true, onTrainBegin: true, onTrainEnd: true, onEpochBegin: true, onEpochEnd: true, onStepBegin: true,
  onSubstepEnd: true, onPreOptimizerStep: true, onOptimizerStep: true, onStepEnd: true, onEvaluate: true, onSave: true, onLog: true };
/** Every event name. */
export const TRAINER_EVENTS = Object.keys(EVENTS) as TrainerEvent[];

/** A callback, or a class whose instances take no arguments (added as a new instance). */
export type CallbackOrClass = TrainerCallback | (new () => TrainerCallback);

const isClass = (c: CallbackOrClass): c is new () => TrainerCallback => typeof c === "function";

/** The Trainer's callbacks, in order, and the dispatch of an event to each (HF's CallbackHandler). */
export class CallbackHandler {
  readonly callbacks: TrainerCallback[] = [];

  constructor(callbacks: CallbackOrClass[] = []) {
    for (const c of callbacks) this.add(c);
  }

  add(c: CallbackOrClass): TrainerCallback {
    const cb = isClass(c) ? new c() : c;
    if (typeof cb !== "object" || cb === null) throw new TunekitError(`Trainer: a callback must be an object of event functions (onStepEnd, onLog, …) or a class; got ${cb === null ? "null" : typeof cb}`);
    // A misspelt event (onStep, on_step_end) would never be called: refuse it.
    for (let o: object | null = cb; o && o !== Object.prototype; o = Object.getPrototypeOf(o))
      for (const k of Object.getOwnPropertyNames(o))
        if (/^on[A-Z_]/.test(k) && !(k in EVENTS) && typeof (cb as Record<string, unknown>)[k] === "function")
          throw new TunekitError(`Trainer: callback ${name(cb)} has ${k}, which is no Trainer event; the events are ${TRAINER_EVENTS.join(", ")}`);
    this.callbacks.push(cb);
    return cb;
  }

  /** Removes and returns the callback, or the first instance of the class; null when there is none. */
  pop(c: CallbackOrClass): TrainerCallback | null {
    const i = this.callbacks.findIndex((cb) => (isClass(c) ? cb instanceof c : cb === c));
    return i < 0 ? null : this.callbacks.splice(i, 1)[0];
  }

  /** Calls `event` on every callback in order; returns the control (replaced where a callback returned one). */
  call(event: TrainerEvent, args: TrainerArgs, state: TrainerState, control: TrainerControl, kwargs: CallbackKwargs): TrainerControl {
    // The flags an event starts afresh, as HF's CallbackHandler clears them.
    if (event === "onTrainBegin") control.shouldTrainingStop = false;
    if (event === "onEpochBegin") control.shouldEpochStop = false;
    if (event === "onStepBegin") control.shouldLog = control.shouldEvaluate = control.shouldSave = false;
    if (event === "onLog") control.shouldLog = false;
    if (event === "onEvaluate") control.shouldEvaluate = false;
    if (event === "onSave") control.shouldSave = false;
    for (const cb of this.callbacks) {
      const fn = cb[event];
      if (!fn) continue;
      const r: unknown = fn.call(cb, args, state, control, kwargs);
      if (r instanceof TrainerControl) control = r;
      else if (r instanceof Promise)
        throw new TunekitError(`Trainer: ${name(cb)}.${event} returned a Promise; callbacks run synchronously between steps (start async work without returning it: train() yields to the event loop after every step)`);
    }
    return control;
  }
}

function name(cb: TrainerCallback): string {
  const c = Object.getPrototypeOf(cb)?.constructor?.name;
  return c && c !== "Object" ? c : "a callback";
}

/**
 * The default flow (HF's DefaultFlowCallback): log every step; evaluate every evalSteps steps
 * (evalStrategy "steps") or at each epoch's end (evalStrategy "epoch", the default with an eval set);
 * save every saveSteps steps into outputDir; stop at maxSteps.
 */
export class DefaultFlowCallback implements TrainerCallback {
  onStepEnd(args: TrainerArgs, state: TrainerState, control: TrainerControl): void {
    control.shouldLog = true;
    if (args.evalStrategy === "steps" && args.evalSteps && args.eval?.length && state.step % args.evalSteps === 0) control.shouldEvaluate = true;
    if (args.saveSteps && args.outputDir && state.step % args.saveSteps === 0) control.shouldSave = true;
    if (state.step >= state.maxSteps) control.shouldTrainingStop = true;
  }

  onEpochEnd(args: TrainerArgs, state: TrainerState, control: TrainerControl): void {
    if ((args.evalStrategy ?? (args.eval ? "epoch" : "no")) === "epoch" && args.eval?.length) control.shouldEvaluate = true;
  }
}

/**
 * Stops training once metricForBestModel has not improved for `earlyStoppingPatience` evaluations in a
 * row (HF's EarlyStoppingCallback; the count is state.patience, which a checkpoint keeps).
 */
export class EarlyStoppingCallback implements TrainerCallback {
  constructor(readonly earlyStoppingPatience = 1) {
    if (!(Number.isSafeInteger(earlyStoppingPatience) && earlyStoppingPatience >= 0))
      throw new TunekitError(`EarlyStoppingCallback: earlyStoppingPatience must be an integer >= 0, got ${earlyStoppingPatience}`);
  }

  onEvaluate(_args: TrainerArgs, state: TrainerState, control: TrainerControl): void {
    // patience 0 means this evaluation was the best so far: never a reason to stop.
    if (state.patience > 0 && state.patience >= this.earlyStoppingPatience) control.shouldTrainingStop = true;
  }
}

/** The `events` option: plain functions with the payloads tunekit gave them before callbacks. */
export interface TrainerEvents {
  /** Each logged step. */
  onStep?(s: { step: number; epoch: number; loss: number; lr: number; gradNorm: number }): void;
  onEvaluate?(s: { step: number; epoch: number; metrics: Metrics }): void;
  /** epoch: the 0-based index of the epoch that ended. */
  onEpochEnd?(s: { epoch: number }): void;
  onSave?(s: { step: number; dir: string }): void;
}

/** The `events` option as a callback. */
export class EventsCallback implements TrainerCallback {
  constructor(readonly events: TrainerEvents) {}

  onLog(_a: TrainerArgs, _s: TrainerState, _c: TrainerControl, { logs }: CallbackKwargs): void {
    if (logs && typeof logs.loss === "number")
      this.events.onStep?.({ step: logs.step as number, epoch: logs.epoch as number, loss: logs.loss, lr: logs.lr as number, gradNorm: logs.grad_norm as number });
  }

  onEvaluate(_a: TrainerArgs, state: TrainerState, _c: TrainerControl, { metrics }: CallbackKwargs): void {
    this.events.onEvaluate?.({ step: state.step, epoch: state.epoch, metrics: metrics! });
  }

  onEpochEnd(_a: TrainerArgs, state: TrainerState): void {
    this.events.onEpochEnd?.({ epoch: state.epoch - 1 });
  }

  onSave(_a: TrainerArgs, state: TrainerState, _c: TrainerControl, { checkpoint }: CallbackKwargs): void {
    this.events.onSave?.({ step: state.step, dir: checkpoint! });
  }
}

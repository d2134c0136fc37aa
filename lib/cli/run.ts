// One fine-tuning run as the CLI does it (train, curve and demo share it): model → method → Trainer →
// evaluation → analysis → files.
import * as fs from "fs";
import * as path from "path";
import type { Tokenizer } from "../data/tokenizer";
import { Trainer, TrainResult, Metrics, TrainableModel } from "../train/trainer";
import { trainableCount, parameterCount } from "../train/strategies";
import { applyMethod, chooseMethod, defaultLearningRate, FineTuneMethod, MethodChoice, LORA_BELOW } from "../train/method";
import { saveAdapter, mergeAndUnload } from "../peft";
import { isLoraModel } from "../peft/lora";
import { readConfig } from "../models/config_json";
import { TunekitError } from "../errors";
import type { TaskData, Analysis, TaskBatch } from "./tasks";
import type { TrainerFlags, MethodFlags } from "./args";
import type { EncodedFeature } from "../data/features/collate";
import { isWorldProcessZero } from "../distributed/process_group";

export interface RunResult {
  method: MethodChoice;
  /** The metric that picked the best model (--metric, or the task's default). */
  metric: string;
  random: boolean;
  train: TrainResult;
  metrics: Metrics;
  analysis: Analysis;
  trainable: number;
  parameters: number;
  logFile?: string;
  seconds: number;
}

export interface RunOptions {
  modelDir: string;
  tokenizer: Tokenizer;
  task: TaskData;
  trainer: TrainerFlags;
  method: MethodFlags;
  /** Where the model (or LoRA adapter), tokenizer and log go; none = nothing saved. */
  out?: string;
  random?: boolean;
  /** Most confident errors to keep. */
  errors?: number;
  /** Output dtype on disk. */
  quiet?: boolean;
}

export async function fineTune(o: RunOptions): Promise<RunResult> {
  const t0 = Date.now();
  const { task, trainer: f, method: m } = o;
  const random = o.random ?? m.randomInit ?? false;
  let choice: MethodChoice = m.method === "auto" ? chooseMethod(task.examples) : { method: m.method as FineTuneMethod, rule: `--method ${m.method}` };
  // A sentence encoder has no head: a frozen body would train nothing, so the small-data choice is LoRA.
  if (task.task === "similarity" && choice.method === "frozen")
    choice = { method: "lora", rule: `${task.examples} labelled examples < ${LORA_BELOW}: LoRA r=8 on query/value (a sentence encoder has no head to train on a frozen body)` };
  if (task.task === "sft" && choice.method === "frozen")
    choice = { method: "lora", rule: `${task.examples} examples < ${LORA_BELOW}: LoRA r=8 on every linear layer of the body (a causal LM has no separate head to train on a frozen body)` };
  const model = await task.createModel(o.modelDir, { random, seed: f.seed });
  const extra = applyMethod<EncodedFeature, TaskBatch>(model, choice.method, {
    freezeLayers: m.freezeLayers, lora: { r: m.loraR, alpha: m.loraAlpha, dropout: m.loraDropout, targetModules: m.loraTargets ?? task.loraTargets?.(model), bias: m.loraBias } });
  const lr = f.lr ?? defaultLearningRate(choice.method, readConfig(o.modelDir).hiddenSize);
  const logFile = f.log ?? (o.out ? path.join(o.out, "log.jsonl") : undefined);
  const metric = f.metric ?? task.metric;
  const evalOn = f.evalStrategy !== "no";
  const trainer = new Trainer<EncodedFeature, TaskBatch>({
    model, train: task.train, eval: task.validation, collate: task.collate, evaluator: task.evaluator,
    learningRate: lr, epochs: f.epochs, maxSteps: f.maxSteps, batchSize: f.batchSize, evalBatchSize: f.evalBatchSize,
    gradientAccumulationSteps: f.gradAccum, warmupRatio: f.warmupRatio, warmupSteps: f.warmupSteps, weightDecay: f.weightDecay,
    adamBeta1: f.adamBeta1, adamBeta2: f.adamBeta2, adamEpsilon: f.adamEpsilon,
    scheduler: f.scheduler, maxGradNorm: f.maxGradNorm, seed: f.seed, evalStrategy: f.evalStrategy, evalSteps: f.evalSteps,
    metricForBestModel: evalOn ? metric : undefined, greaterIsBetter: metric !== "loss" && !metric.endsWith("loss"),
    loadBestModelAtEnd: evalOn && f.loadBest, earlyStoppingPatience: f.earlyStopping,
    saveSteps: f.saveSteps, saveTotalLimit: f.saveTotalLimit, outputDir: o.out, resumeFrom: f.resume,
    logFile, progress: o.quiet ? false : f.progress, layerDecay: f.layerDecay, l2sp: f.l2sp, onNonFinite: f.onNonFinite, bf16: f.bf16, fp16: f.fp16, device: f.device,
    lossScaling: typeof f.lossScaling === "number" ? { initScale: f.lossScaling } : f.lossScaling,
    ...extra,
  });
  const train = await trainer.train();
  // Saved before the final evaluation and analysis, so that nothing failing there loses the trained model.
  // Under data parallelism every process holds the same weights: the first one saves, analyses and reports.
  const main = isWorldProcessZero();
  if (o.out && main) await save(model, o.out, o);
  const { metrics, analysis } = await afterSave(o.out, async () => ({ metrics: trainer.evaluate(), analysis: main ? await task.analyse(model, o.errors ?? 5) : {} }));
  return { method: choice, metric, random, train, metrics, analysis, trainable: train.trainableParameters, parameters: parameterCount(model),
    logFile, seconds: (Date.now() - t0) / 1000 };
}

/** Runs what follows the save of a trained model: a TunekitError there also says that the model is safe on disk. */
export async function afterSave<T>(out: string | undefined, fn: () => T | Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    if (out && e instanceof TunekitError) e.message += ` (the trained model is saved in ${out})`;
    throw e;
  }
}

/**
 * The trained model, HF's layout. The length it trained with is tokenizer_config.json's model_max_length:
 * what HF's tokenizer truncates to by default, and what `tunekit eval` / `predict` read back.
 */
async function save(model: TrainableModel<TaskBatch>, out: string, o: RunOptions): Promise<void> {
  fs.mkdirSync(out, { recursive: true });
  // LoRA: the PEFT adapter (small; Python: PeftModel.from_pretrained) in out/adapter, and the merged
  // model in out/, so `tunekit predict --model out` and transformers' from_pretrained(out) both just work.
  if (isLoraModel(model)) {
    saveAdapter(model, path.join(out, "adapter"), { baseModelNameOrPath: path.resolve(o.modelDir) });
    mergeAndUnload(model);
  }
  await model.savePretrained(out);
  const before = o.tokenizer.modelMaxLength;
  o.tokenizer.modelMaxLength = o.task.maxLength;
  try {
    await o.tokenizer.save(out);
  } finally {
    o.tokenizer.modelMaxLength = before;
  }
  o.task.saveExtra?.(out);
}

export { trainableCount };

// One fine-tuning run as the CLI does it (train, curve and demo share it): model → method → Trainer →
// evaluation → analysis → files.
import * as fs from "fs";
import * as path from "path";
import type { Tokenizer } from "../data/tokenizer";
import { Trainer, TrainResult, Metrics } from "../train/trainer";
import { trainableCount, parameterCount } from "../train/strategies";
import { applyMethod, chooseMethod, defaultLearningRate, FineTuneMethod, MethodChoice } from "../train/method";
import { saveAdapter, mergeAndUnload } from "../peft";
import { isLoraModel } from "../peft/lora";
import { readConfig } from "../io/config";
import type { TaskData, Analysis, TaskBatch } from "./tasks";
import type { TrainerFlags, MethodFlags } from "./args";
import type { EncodedFeature } from "../data/collate";

export interface RunResult {
  method: MethodChoice;
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
  const choice: MethodChoice = m.method === "auto" ? chooseMethod(task.examples) : { method: m.method as FineTuneMethod, rule: `--method ${m.method}` };
  const model = await task.createModel(o.modelDir, { random, seed: f.seed });
  const extra = applyMethod<EncodedFeature, TaskBatch>(model, choice.method, {
    freezeLayers: m.freezeLayers, lora: { r: m.loraR, alpha: m.loraAlpha, dropout: m.loraDropout, targetModules: m.loraTargets, bias: m.loraBias } });
  const lr = f.lr ?? defaultLearningRate(choice.method, readConfig(o.modelDir).hiddenSize);
  const logFile = f.log ?? (o.out ? path.join(o.out, "log.jsonl") : undefined);
  const metric = f.metric ?? task.metric;
  const evalOn = f.evalStrategy !== "no";
  const trainer = new Trainer<EncodedFeature, TaskBatch>({
    model, train: task.train, eval: task.validation, collate: task.collate, evaluator: task.evaluator,
    learningRate: lr, epochs: f.epochs, maxSteps: f.maxSteps, batchSize: f.batchSize, evalBatchSize: f.evalBatchSize,
    gradientAccumulationSteps: f.gradAccum, warmupRatio: f.warmupRatio, warmupSteps: f.warmupSteps, weightDecay: f.weightDecay,
    scheduler: f.scheduler, maxGradNorm: f.maxGradNorm, seed: f.seed, evalStrategy: f.evalStrategy, evalSteps: f.evalSteps,
    metricForBestModel: evalOn ? metric : undefined, greaterIsBetter: metric !== "loss" && !metric.endsWith("loss"),
    loadBestModelAtEnd: evalOn && f.loadBest, earlyStoppingPatience: f.earlyStopping,
    saveSteps: f.saveSteps, saveTotalLimit: f.saveTotalLimit, outputDir: o.out, resumeFrom: f.resume,
    logFile, progress: o.quiet ? false : f.progress, layerDecay: f.layerDecay, l2sp: f.l2sp, onNonFinite: f.onNonFinite, bf16: f.bf16,
    lossScaling: typeof f.lossScaling === "number" ? { initScale: f.lossScaling } : f.lossScaling,
    ...extra,
  });
  const train = await trainer.train();
  const metrics = trainer.evaluate();
  const analysis = task.analyse(model, o.errors ?? 5);
  if (o.out) {
    fs.mkdirSync(o.out, { recursive: true });
    // LoRA: the PEFT adapter (small; Python: PeftModel.from_pretrained) in out/adapter, and the merged
    // model in out/, so `tunekit predict --model out` and transformers' from_pretrained(out) both just work.
    if (isLoraModel(model)) {
      saveAdapter(model, path.join(o.out, "adapter"), { baseModelNameOrPath: path.resolve(o.modelDir) });
      mergeAndUnload(model);
    }
    await model.savePretrained(o.out);
    await o.tokenizer.save(o.out);
  }
  return { method: choice, random, train, metrics, analysis, trainable: train.trainableParameters, parameters: parameterCount(model),
    logFile, seconds: (Date.now() - t0) / 1000 };
}

export { trainableCount };

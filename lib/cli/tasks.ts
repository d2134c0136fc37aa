// What each task needs from a data file to a trained model's numbers: reading, features, the model
// class, batching, the evaluator, and the error analysis printed after evaluation.
import * as fs from "fs";
import { TunekitError } from "../errors";
import { AutoTokenizer } from "../data/tokenizer";
import type { Tokenizer } from "../data/tokenizer";
import { collate, Batch, EncodedFeature } from "../data/features/collate";
import { loadDataset, loadTokenDataset, loadQaDataset, TextDataset } from "../data/files";
import { classificationFeatures } from "../data/features/classification";
import { tokenClassificationFeatures, wordPredictions, TokenFeature } from "../data/features/token_classification";
import { qaFeatures, postprocessQa, squadMetrics, QaFeature } from "../data/features/qa";
import type { ClassificationExample, TokenClassificationExample, QaExample } from "../data/files/examples";
import { AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoModelForQuestionAnswering } from "../models/auto";
import { readConfig } from "../models/config_json";
import { ClassificationMetric, MultiLabelMetric, EntityMetric, RegressionMetric, MostConfidentErrors } from "../metrics";
import type { Evaluator, TrainableModel } from "../train/trainer";
import { noGrad } from "../tensor/autograd";
import { tidy, Tensor } from "../tensor/tensor";
import { DataFlags, ModelFlags, TaskName, validationOf } from "./args";
import { similarityTask } from "./similarity";
import { sftTask } from "./sft";

/** A batch that still knows its features (token classification and QA evaluate per feature). */
type TaskBatch = Batch & { features: EncodedFeature[] };

export interface Analysis {
  confusion?: { labels: string[]; matrix: number[][] };
  /** Most confidently misclassified validation examples. */
  errors?: { text: string; label: string; predicted: string; score: number }[];
  /** sft: the exact match of greedy generation on the validation examples, and each one's output. */
  exactMatch?: number;
  generations?: { prompt: string; reference: string; output: string; match: boolean }[];
}

export interface TaskData {
  task: TaskName;
  train: EncodedFeature[];
  validation: EncodedFeature[];
  /** Training examples (before tokenization): the method rule counts these. */
  examples: number;
  labelNames: string[] | null;
  skipped: number;
  /** Metric for the best model and early stopping, greater is better unless "loss". */
  metric: string;
  /** Tokens per example (per window for QA, per sentence for similarity) the features were cut to: the
   *  length the model trains with, saved with it as tokenizer_config.json's model_max_length. */
  maxLength: number;
  createModel(dir: string, o: { random: boolean; seed: number }): Promise<TrainableModel<TaskBatch>>;
  collate(features: EncodedFeature[]): TaskBatch;
  evaluator(): Evaluator<TaskBatch>;
  /** Confusion matrix and the k most confident errors (none for k = 0) on the validation set (classification); sft: exact match. */
  analyse(model: TrainableModel<TaskBatch>, k: number): Analysis | Promise<Analysis>;
  /** LoRA's targets when --lora-targets is not given (sft: every linear layer of the body); default: PEFT's per architecture. */
  loraTargets?(model: TrainableModel<TaskBatch>): string[];
  /** Files a saved model of this task needs beside config, weights and tokenizer (similarity: sentence-transformers' modules). */
  saveExtra?(dir: string): void;
}

export async function fromDir<M>(auto: { fromPretrained(d: string, o: object): Promise<M>; fromConfig(c: ReturnType<typeof readConfig>, o: object): M },
  dir: string, random: boolean, opts: object): Promise<M> {
  return random ? auto.fromConfig(readConfig(dir), opts) : auto.fromPretrained(dir, { warn: null, ...opts });
}

const maxLen = (tok: Tokenizer, flags: ModelFlags) => flags.maxLength ?? Math.min(tok.modelMaxLength, 512);

/** HF's run_qa: stride 128 at length 384; shorter windows keep the same proportion. */
/**
 * The tokenizer a task trains with: for token classification a byte-level BPE tokenizer (GPT-2,
 * RoBERTa) gets add_prefix_space, as HF's run_ner.py loads it, so the saved tokenizer encodes raw text
 * at prediction time the way the pre-split words were encoded in training.
 */
export async function taskTokenizer(dir: string, task: string | undefined): Promise<Tokenizer> {
  const tok = await AutoTokenizer.fromPretrained(dir);
  return task === "token-classification" && tok.addPrefixSpace === false ? AutoTokenizer.fromPretrained(dir, { addPrefixSpace: true }) : tok;
}

export const defaultDocStride = (maxLength: number): number => Math.min(128, Math.floor(maxLength / 3));

/** Reads --data (and --validation) for the task and tokenizes it. */
export async function loadTask(tok: Tokenizer, flags: ModelFlags & DataFlags & { validation?: string; seed?: number; limit?: number; packing?: boolean },
  fixedLabels?: string[]): Promise<TaskData> {
  if (!fs.existsSync(flags.data)) throw new TunekitError(`--data: no such file '${flags.data}'`);
  const validation = validationOf(flags.validation ?? "0.1");
  const seed = flags.seed ?? 42;
  const labels = fixedLabels ?? flags.labels;
  const padId = tok.padTokenId ?? 0;
  switch (flags.task) {
    case "classification": case "regression": case "multi-label": {
      const problemType = flags.task === "regression" ? "regression" : flags.task === "multi-label" ? "multi_label_classification" : "single_label_classification";
      const ds = await loadDataset(flags.data, { format: flags.format as never, text: flags.text, textPair: flags.textPair, label: flags.label,
        validation, seed, labels, problemType, limit: flags.limit, onBadRow: flags.onBadRow });
      return classificationTask(tok, flags, ds, padId);
    }
    case "token-classification": {
      const ds = await loadTokenDataset(flags.data, { format: flags.format as never, validation, seed, labels, onBadRow: flags.onBadRow });
      const train = flags.limit ? ds.train.slice(0, flags.limit) : ds.train;
      return tokenTask(tok, flags, { ...ds, train }, padId);
    }
    case "qa": {
      const ds = await loadQaDataset(flags.data, { validation, seed });
      const train = flags.limit ? ds.train.slice(0, flags.limit) : ds.train;
      return qaTask(tok, flags, { ...ds, train }, padId);
    }
    case "similarity":
      return similarityTask(tok, flags, { validation, seed, limit: flags.limit }, padId);
    case "sft":
      return sftTask(tok, flags, { validation, seed, limit: flags.limit }, tok.padTokenId ?? tok.eosTokenId ?? 0);
  }
}

export async function classificationTask(tok: Tokenizer, flags: ModelFlags, ds: TextDataset, padId: number): Promise<TaskData> {
  const problemType = ds.problemType;
  const label2id = ds.labelNames ? Object.fromEntries(ds.labelNames.map((l, i) => [l, i])) : undefined;
  const o = { maxLength: maxLen(tok, flags), problemType, label2id };
  if (!ds.validation.length) throw new TunekitError("the validation set is empty: give --validation a fraction in (0, 1) or a file");
  const train = await classificationFeatures(tok, ds.train, o);
  const val = await classificationFeatures(tok, ds.validation, o);
  const names = ds.labelNames;
  const N = names ? names.length : 1;
  const single = problemType === "single_label_classification";
  return {
    task: flags.task, train: train.features, validation: val.features, examples: ds.train.length, labelNames: names, skipped: ds.skipped.length,
    metric: single ? (N === 2 ? "f1" : "macro_f1") : problemType === "regression" ? "pearson" : "micro_f1", maxLength: o.maxLength,
    createModel: (dir, r) => fromDir(AutoModelForSequenceClassification, dir, r.random, {
      seed: r.seed, problemType, ...(names ? { id2label: Object.fromEntries(names.map((l, i) => [i, l])) } : { numLabels: 1 }) }) as never,
    collate: (f) => ({ ...collate(f, { padId }), features: f }),
    evaluator: () => {
      if (problemType === "regression") {
        const m = new RegressionMetric();
        return { update: (out, b) => m.update(out.logits.toHost(), b.labels!), compute: () => m.compute() };
      }
      if (problemType === "multi_label_classification") {
        const m = new MultiLabelMetric({ numLabels: N });
        return { update: (out, b) => m.update(out.logits.toHost(), b.labels!), compute: () => m.compute() };
      }
      const m = new ClassificationMetric({ numLabels: N });
      return { update: (out, b) => m.updateLogits(out.logits.toHost(), b.labels!), compute: () => m.compute() };
    },
    analyse: (model, k) => (single ? analyseClassification(model, val.features, ds.validation, names!, padId, k) : {}),
  };
}

function analyseClassification(model: TrainableModel<TaskBatch>, features: EncodedFeature[], examples: ClassificationExample[],
  names: string[], padId: number, k: number): Analysis {
  const N = names.length;
  const cm = new ClassificationMetric({ numLabels: N });
  const worst = k > 0 ? new MostConfidentErrors(k, N) : null;
  model.eval();
  noGrad(() => {
    for (let i = 0; i < features.length; i += 64) tidy(() => {
      const f = features.slice(i, i + 64);
      const b = collate(f, { padId });
      const logits = model.forward({ ...b, features: f }).logits.toHost();
      cm.updateLogits(logits, b.labels!);
      worst?.update(logits, b.labels!);
    });
  });
  const text = (e: ClassificationExample) => (e.textPair ? `${e.text} || ${e.textPair}` : e.text);
  return {
    confusion: { labels: names, matrix: cm.confusionMatrix() },
    errors: (worst?.errors() ?? []).map((e) => ({ text: text(examples[e.index]), label: names[e.label], predicted: names[e.predicted], score: e.confidence })),
  };
}

async function tokenTask(tok: Tokenizer, flags: ModelFlags, ds: { train: TokenClassificationExample[]; validation: TokenClassificationExample[]; labelNames: string[]; skipped: unknown[] },
  padId: number): Promise<TaskData> {
  const label2id = Object.fromEntries(ds.labelNames.map((l, i) => [l, i]));
  const o = { maxLength: maxLen(tok, flags), label2id };
  const train = await tokenClassificationFeatures(tok, ds.train, o);
  const val = await tokenClassificationFeatures(tok, ds.validation, o);
  const names = ds.labelNames, N = names.length;
  const gold = new Map<EncodedFeature, string[]>(val.features.map((f, i) => [f, (ds.validation[i].tags ?? []).map(String)]));
  return {
    task: "token-classification", train: train.features, validation: val.features, examples: ds.train.length, labelNames: names, skipped: ds.skipped.length,
    metric: "f1", maxLength: o.maxLength,
    createModel: (dir, r) => fromDir(AutoModelForTokenClassification, dir, r.random, { seed: r.seed, id2label: Object.fromEntries(names.map((l, i) => [i, l])) }) as never,
    collate: (f) => ({ ...collate(f, { padId }), features: f }),
    evaluator: () => {
      const m = new EntityMetric();
      return {
        update: (out, b) => {
          const T = b.seqLen, logits = out.logits.toHost();
          b.features.forEach((f, k) => {
            const words = wordPredictions(f as TokenFeature, { logits: logits.subarray(k * T * N, (k + 1) * T * N), numLabels: N });
            const ref = gold.get(f);
            if (ref) m.update([words.map((p) => (p < 0 ? "O" : names[p]))], [ref.slice(0, words.length)]);
          });
        },
        compute: () => m.compute(),
      };
    },
    analyse: () => ({}),
  };
}

async function qaTask(tok: Tokenizer, flags: ModelFlags, ds: { train: QaExample[]; validation: QaExample[] }, padId: number): Promise<TaskData> {
  const maxLength = flags.maxLength ?? Math.min(tok.modelMaxLength, 384);
  const o = { maxLength, docStride: flags.docStride ?? defaultDocStride(maxLength) };
  const train = await qaFeatures(tok, ds.train, o);
  const val = await qaFeatures(tok, ds.validation, o);
  const index = new Map<EncodedFeature, number>(val.map((f, i) => [f, i]));
  return {
    task: "qa", train, validation: val, examples: ds.train.length, labelNames: null, skipped: 0, metric: "f1", maxLength,
    createModel: (dir, r) => fromDir(AutoModelForQuestionAnswering, dir, r.random, { seed: r.seed }) as never,
    collate: (f) => ({ ...collate(f, { padId }), features: f }),
    evaluator: () => {
      const starts: number[][] = new Array(val.length), ends: number[][] = new Array(val.length);
      return {
        update: (out, b) => {
          const o2 = out as unknown as { startLogits: Tensor; endLogits: Tensor };
          const T = b.seqLen;
          b.features.forEach((f, k) => {
            const i = index.get(f)!;
            starts[i] = Array.from(o2.startLogits.toHost().subarray(k * T, (k + 1) * T));
            ends[i] = Array.from(o2.endLogits.toHost().subarray(k * T, (k + 1) * T));
          });
        },
        compute: () => {
          const s = squadMetrics(ds.validation, postprocessQa(ds.validation, val as QaFeature[], starts, ends));
          return { exact_match: s.exactMatch, f1: s.f1 };
        },
      };
    },
    analyse: () => ({}),
  };
}

export type { TaskBatch };

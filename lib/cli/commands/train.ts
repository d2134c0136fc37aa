// tunekit train / eval / curve.
import * as fs from "fs";
import * as path from "path";
import { Command, Option } from "commander";
import { AutoTokenizer } from "../../data/tokenizer";
import { readConfig } from "../../models/config_json";
import { TunekitError } from "../../errors";
import { noGrad } from "../../tensor/autograd";
import { tidy } from "../../tensor/tensor";
import { dataOptions, methodOptions, modelOptions, trainerOptions, int, DataFlags, MethodFlags, ModelFlags, TrainerFlags, TaskName, Action } from "../args";
import { resolveModel } from "../models";
import { loadTask, TaskData, defaultDocStride, taskTokenizer } from "../tasks";
import { checkTrainFlags, checkMetricForData, maxPositions } from "../checks";
import { sentenceTransformerPooling } from "../similarity";
import { fineTune, afterSave, RunResult } from "../run";
import { output, Out, table, metricLine, confusionTable, clip, fmt } from "../print";
import { writeReport } from "../../report";

type TrainFlags = ModelFlags & DataFlags & TrainerFlags & MethodFlags & { out: string; report?: string | boolean; json?: boolean; limit?: number; errors: number };

function describeData(out: Out, task: TaskData, file: string): void {
  out.line(`data: ${file}: ${task.train.length} training and ${task.validation.length} validation features` +
    (task.labelNames ? `; labels: ${task.labelNames.join(", ")}` : "") + (task.skipped ? `; ${task.skipped} malformed rows skipped` : ""));
}

export function printRun(out: Out, r: RunResult, task: TaskData, errors = 5): void {
  out.line(`${r.random ? "random init" : "pre-trained"}: ${metricLine(r.metrics, ["accuracy", "f1", "micro_f1", "macro_f1", "precision", "recall", "exact_match", "pearson", "spearman", "loss"])}` +
    `  (${r.train.steps} steps, ${r.seconds.toFixed(1)} s, ${r.trainable.toLocaleString("en-US")} of ${r.parameters.toLocaleString("en-US")} parameters trained)`);
  if (r.analysis.confusion) out.line("\n" + confusionTable(r.analysis.confusion.labels, r.analysis.confusion.matrix));
  if (r.analysis.errors?.length) {
    out.line("\nmost confident errors:");
    out.line(table(r.analysis.errors.map((e) => [e.score.toFixed(3), e.label, e.predicted, clip(e.text, 70)]), ["confidence", "true", "predicted", "text"]));
  }
  const g = r.analysis.generations;
  if (g && r.analysis.exactMatch !== undefined) {
    out.line(`exact match of greedy generation on ${g.length} validation examples: ${fmt(r.analysis.exactMatch)}`);
    const wrong = g.filter((x) => !x.match).slice(0, errors);
    if (wrong.length) out.line("\nmismatches:\n" + table(wrong.map((x) => [clip(x.prompt, 40), clip(x.reference, 30), clip(x.output, 30)]), ["prompt", "expected", "generated"]));
  }
  void task;
}

async function train(flags: TrainFlags): Promise<void> {
  const out = output(!!flags.json);
  const dir = resolveModel(flags.model);
  checkTrainFlags(flags, dir);
  const tok = await taskTokenizer(dir, flags.task);
  const task = await loadTask(tok, flags);
  checkMetricForData(flags.metric, task.task, task.labelNames);
  describeData(out, task, flags.data);
  const cfg = readConfig(dir);
  out.line(`model: ${dir} (${cfg.modelType}, ${cfg.numLayers} layers, hidden ${cfg.hiddenSize})${flags.randomInit ? ", random initialisation" : ""}`);
  const r = await fineTune({ modelDir: dir, tokenizer: tok, task, trainer: flags, method: flags, out: flags.out, errors: flags.errors });
  await afterSave(flags.out, () => finish(out, flags, task, r, dir));
}

async function finish(out: Out, flags: TrainFlags, task: TaskData, r: RunResult, dir: string): Promise<void> {
  out.line(`method: ${r.method.method} — ${r.method.rule}`);
  printRun(out, r, task, flags.errors);
  let report: string | undefined;
  if (flags.report !== false) {
    report = typeof flags.report === "string" ? flags.report : path.join(flags.out, "report.html");
    await writeReport(report, {
      title: `tunekit train: ${path.basename(flags.data)} (${task.task}, ${r.method.method})`,
      runs: r.logFile ? [{ name: r.random ? "random init" : "pre-trained", logFile: r.logFile }] : undefined,
      confusion: r.analysis.confusion ? [{ ...r.analysis.confusion }] : undefined,
      examples: r.analysis.errors,
      summary: [{ run: r.random ? "random init" : "pre-trained", method: r.method.method, ...scalars(r.metrics), seconds: Number(r.seconds.toFixed(1)) }],
    });
  }
  out.line(`\nsaved: ${flags.out}${report ? `, report: ${report}` : ""}`);
  out.result({ model: dir, out: flags.out, report, method: r.method, metric: r.metric, maxLength: task.maxLength,
    features: { train: task.train.length, validation: task.validation.length }, metrics: r.metrics, analysis: r.analysis, steps: r.train.steps,
    precision: r.train.precision, seconds: r.seconds, trainable: r.trainable, parameters: r.parameters, skippedRows: task.skipped });
}

export function scalars(m: Record<string, unknown>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => typeof v === "number").map(([k, v]) => [k, Number((v as number).toFixed(4))]));
}

type EvalFlags = Omit<ModelFlags, "task"> & DataFlags & { json?: boolean; errors: number; batchSize: number; device: "cpu" | "cuda" };

const TASK_OF_ARCH: [RegExp, TaskName][] = [[/ForSequenceClassification$/, "classification"], [/ForTokenClassification$/, "token-classification"], [/ForQuestionAnswering$/, "qa"]];

/** The task a fine-tuned checkpoint was trained for: sentence-transformers' modules.json, else config.json's architectures. */
export function taskOfModel(dir: string): TaskName {
  if (sentenceTransformerPooling(dir)) return "similarity";
  const cfg = readConfig(dir);
  const arch = cfg.architectures[0] ?? "";
  const hit = TASK_OF_ARCH.find(([re]) => re.test(arch));
  if (!hit) throw new TunekitError(`--model: ${dir} is a ${arch || "model without architectures"}, not a fine-tuned classifier, tagger, QA model or sentence encoder (modules.json); train one with \`tunekit train\``);
  if (hit[1] === "classification" && cfg.problemType === "regression") return "regression";
  if (hit[1] === "classification" && cfg.problemType === "multi_label_classification") return "multi-label";
  return hit[1];
}

/**
 * The length a saved model was trained with: tokenizer_config.json's model_max_length, which `tunekit
 * train` sets to it (and HF's tokenizer truncates to). A checkpoint without a limit there gets its
 * position table's size (the tokenizer's fallback), or 512 when even that is unknown.
 */
export function savedMaxLength(modelMaxLength: number, dir: string): number {
  return Number.isFinite(modelMaxLength) ? Math.min(modelMaxLength, maxPositions(readConfig(dir))) : 512;
}

async function evaluate(flags: EvalFlags): Promise<void> {
  const out = output(!!flags.json);
  const dir = resolveModel(flags.model);
  if (!fs.existsSync(flags.data)) throw new TunekitError(`--data: no such file '${flags.data}'`);
  const cfg = readConfig(dir);
  const taskName = taskOfModel(dir);
  if (flags.docStride !== undefined && taskName !== "qa") throw new TunekitError(`--doc-stride applies to QA models; ${dir} is a ${taskName} model`);
  if (flags.maxLength !== undefined && flags.maxLength > maxPositions(cfg)) throw new TunekitError(`--max-length ${flags.maxLength}: ${dir} takes at most ${maxPositions(cfg)} tokens (its position table)`);
  const tok = await AutoTokenizer.fromPretrained(dir);
  const maxLength = flags.maxLength ?? savedMaxLength(tok.modelMaxLength, dir);
  const labels = ["regression", "qa", "similarity"].includes(taskName) ? undefined : Object.keys(cfg.id2label).map(Number).sort((a, b) => a - b).map((i) => cfg.id2label[i]);
  // Every row is evaluated: the file is read as a validation set of its own.
  const task = await loadTask(tok, { ...flags, task: taskName, maxLength, docStride: flags.docStride ?? (taskName === "qa" ? defaultDocStride(maxLength) : undefined),
    pooling: sentenceTransformerPooling(dir) ?? undefined, validation: flags.data }, labels);
  const model = (await task.createModel(dir, { random: false, seed: 42 })).to(flags.device);
  model.eval();
  const ev = task.evaluator();
  let loss = 0, n = 0;
  noGrad(() => {
    for (let i = 0; i < task.validation.length; i += flags.batchSize) tidy(() => {
      const b = task.collate(task.validation.slice(i, i + flags.batchSize));
      const o = model.forward(b);
      if (o.loss) { const c = model.lossCount(b); loss += o.loss.item() * c; n += c; }
      ev.update(o, b);
    });
  });
  const metrics = { loss: n ? loss / n : NaN, ...ev.compute() };
  const analysis = await task.analyse(model, flags.errors);
  out.line(`${flags.data}: ${task.validation.length} ${taskName === "qa" ? "windows" : "examples"}${task.skipped ? ` (${task.skipped} malformed rows skipped)` : ""}, max length ${maxLength}`);
  out.line(metricLine(metrics));
  if (analysis.confusion) out.line("\n" + confusionTable(analysis.confusion.labels, analysis.confusion.matrix));
  if (analysis.errors?.length) {
    out.line("\nmost confident errors:");
    out.line(table(analysis.errors.map((e) => [e.score.toFixed(3), e.label, e.predicted, clip(e.text, 70)]), ["confidence", "true", "predicted", "text"]));
  }
  out.result({ model: dir, data: flags.data, examples: task.validation.length, maxLength, metrics, analysis });
}

type CurveFlags = TrainFlags & { sizes: number[] };

async function curve(flags: CurveFlags): Promise<void> {
  const out = output(!!flags.json);
  const dir = resolveModel(flags.model);
  checkTrainFlags(flags, dir);
  const tok = await taskTokenizer(dir, flags.task);
  const full = await loadTask(tok, flags);
  checkMetricForData(flags.metric, full.task, full.labelNames);
  describeData(out, full, flags.data);
  const sizes = [...new Set(flags.sizes.map((s) => Math.min(s, full.examples)))].sort((a, b) => a - b);
  const metric = flags.metric ?? (full.task === "classification" ? "accuracy" : full.metric);
  const points: { size: number; run: string; metric: number; metricName: string }[] = [];
  const rows: (string | number)[][] = [];
  for (const size of sizes) {
    const task = size === full.examples ? full : await loadTask(tok, { ...flags, limit: size });
    const row: (string | number)[] = [size];
    for (const random of [false, true]) {
      const r = await fineTune({ modelDir: dir, tokenizer: tok, task, trainer: { ...flags, progress: false }, method: flags, random, quiet: true });
      const v = r.metrics[metric] as number;
      points.push({ size, run: random ? "random init" : "pre-trained", metric: v, metricName: metric });
      row.push(v);
      out.line(`size ${size}: ${random ? "random init" : "pre-trained"} ${metric} ${fmt(v)} (${fmt(r.seconds)} s)`);
    }
    row.push((row[1] as number) - (row[2] as number));
    rows.push(row);
  }
  out.line("\n" + table(rows, ["train size", `pre-trained ${metric}`, `random init ${metric}`, "transfer gain"]));
  const report = typeof flags.report === "string" ? flags.report : path.join(flags.out, "curve.html");
  if (flags.report !== false) {
    await writeReport(report, { title: `Learning curve: ${path.basename(flags.data)}`, curve: points,
      summary: rows.map((r) => ({ "train size": r[0] as number, [`pre-trained ${metric}`]: Number((r[1] as number).toFixed(4)),
        [`random init ${metric}`]: Number((r[2] as number).toFixed(4)) })) });
    out.line(`report: ${report}`);
  }
  out.result({ metric, points, report });
}

export function registerTrain(program: Command, run: (fn: Action) => Action): void {
  const common = (c: Command) => methodOptions(trainerOptions(dataOptions(modelOptions(c))))
    .option("-o, --out <dir>", "where the model, log and report go", "tunekit-out")
    .option("--no-report", "no report.html")
    .option("--report <file>", "report file (default: <out>/report.html)")
    .option("--limit <n>", "train on n training examples: a seeded sample (stratified by class for classification) for classification, regression, multi-label and similarity; the first n for token-classification and qa", int(1))
    .option("--errors <k>", "classification: the k most confidently misclassified validation examples to list; sft: the first k wrong generations (0: none)", int(0), 5)
    .option("--json", "one JSON document on stdout (progress and everything else on stderr)");

  common(program.command("train").description("fine-tune a model on your data"))
    .addHelpText("after", `
Examples:
  $ tunekit train --data reviews.csv --text review --label sentiment --epochs 3 --out ./out
  $ tunekit train --model ./bert-base-uncased --data train.jsonl --validation dev.jsonl --method lora --lora-r 16
  $ tunekit train --data small.csv --method auto          # picks frozen / LoRA / full from the data size
  $ tunekit train --task token-classification --data train.conll --metric f1
  $ tunekit train --task qa --data squad.json --max-length 384 --doc-stride 128 --batch-size 8
  $ tunekit train --task similarity --data stsb.csv --text sentence1 --text-pair sentence2 --label score   # bi-encoder, Spearman
  $ tunekit train --task sft --model ./Llama-3.2-1B-Instruct --data chat.jsonl --method lora --max-length 512 --packing   # instruction tuning`)
    .action(run(train));

  common(program.command("curve").description("learning curve: pre-trained vs random initialisation at several training-set sizes"))
    .option("--sizes <list>", "training-set sizes", (v: string) => v.split(",").map((s) => int(1)(s.trim())), [50, 100, 200, 500, 1000, Number.MAX_SAFE_INTEGER])
    .addHelpText("after", `
Examples:
  $ tunekit curve --data reviews.csv --sizes 50,100,200,500,1000 --epochs 5
  $ tunekit curve --model ./my-bert --data train.tsv --validation dev.tsv --json > curve.json`)
    .action(run(curve));

  program.command("eval").description("evaluate a fine-tuned model on a labelled file (the task comes from the model: classifier, regression, multi-label, tagger, QA or sentence encoder)")
    .requiredOption("-m, --model <dir>", "a fine-tuned checkpoint folder (as `tunekit train` saves it)")
    .requiredOption("-d, --data <file>", "labelled data, same columns as for train")
    .addOption(new Option("--format <format>", "file format (default: from the extension)").choices(["csv", "tsv", "jsonl", "json", "parquet", "conll", "squad"]))
    .option("--text <column>", "text column").option("--text-pair <column>", "second text column").option("--label <column>", "label column")
    .addOption(new Option("--on-bad-row <what>", "malformed rows: fail with file:line, or skip them and count").choices(["fail", "skip"]).default("fail"))
    .option("--max-length <n>", "tokens per example (default: the length the model was trained with, its tokenizer_config.json model_max_length)", int(8))
    .option("--doc-stride <n>", "qa: context tokens shared by consecutive windows (default: min(128, max-length / 3))", int(0))
    .option("--batch-size <n>", "examples per batch", int(1), 32)
    .option("--errors <k>", "classification: the k most confidently misclassified examples to list (0: none)", int(0), 10)
    .addOption(new Option("--device <device>", "where the model runs: cpu, or cuda (needs the CUDA library)").choices(["cpu", "cuda"]).default("cpu"))
    .option("--json", "one JSON document on stdout (everything else on stderr)")
    .addHelpText("after", `
Examples:
  $ tunekit eval --model ./out --data test.csv
  $ tunekit eval --model ./out --data test.csv --errors 20 --json`)
    .action(run(evaluate));
}

// tunekit train / eval / curve.
import * as path from "path";
import { Command } from "commander";
import { AutoTokenizer } from "../../data/tokenizer";
import { readConfig } from "../../io/config";
import { TunekitError } from "../../errors";
import { noGrad } from "../../tensor/autograd";
import { tidy } from "../../tensor/tensor";
import { dataOptions, methodOptions, modelOptions, trainerOptions, int, DataFlags, MethodFlags, ModelFlags, TrainerFlags, TaskName, Action } from "../args";
import { resolveModel } from "../models";
import { loadTask, TaskData } from "../tasks";
import { fineTune, RunResult } from "../run";
import { output, Out, table, metricLine, confusionTable, clip, fmt } from "../print";
import { writeReport } from "../../report";

type TrainFlags = ModelFlags & DataFlags & TrainerFlags & MethodFlags & { out: string; report?: string | boolean; json?: boolean; limit?: number; errors: number };

function describeData(out: Out, task: TaskData, file: string): void {
  out.line(`data: ${file}: ${task.train.length} training and ${task.validation.length} validation features` +
    (task.labelNames ? `; labels: ${task.labelNames.join(", ")}` : "") + (task.skipped ? `; ${task.skipped} malformed rows skipped` : ""));
}

export function printRun(out: Out, r: RunResult, task: TaskData): void {
  out.line(`${r.random ? "random init" : "pre-trained"}: ${metricLine(r.metrics, ["accuracy", "f1", "macro_f1", "precision", "recall", "exact_match", "pearson", "spearman", "loss"])}` +
    `  (${r.train.steps} steps, ${r.seconds.toFixed(1)} s, ${r.trainable.toLocaleString("en-US")} of ${r.parameters.toLocaleString("en-US")} parameters trained)`);
  if (r.analysis.confusion) out.line("\n" + confusionTable(r.analysis.confusion.labels, r.analysis.confusion.matrix));
  if (r.analysis.errors?.length) {
    out.line("\nmost confident errors:");
    out.line(table(r.analysis.errors.map((e) => [e.score.toFixed(3), e.label, e.predicted, clip(e.text, 70)]), ["confidence", "true", "predicted", "text"]));
  }
  void task;
}

async function train(flags: TrainFlags): Promise<void> {
  const out = output(!!flags.json);
  const dir = resolveModel(flags.model);
  const tok = await AutoTokenizer.fromPretrained(dir);
  const task = await loadTask(tok, flags);
  describeData(out, task, flags.data);
  const cfg = readConfig(dir);
  out.line(`model: ${dir} (${cfg.modelType}, ${cfg.numLayers} layers, hidden ${cfg.hiddenSize})${flags.randomInit ? ", random initialisation" : ""}`);
  const r = await fineTune({ modelDir: dir, tokenizer: tok, task, trainer: flags, method: flags, out: flags.out, errors: flags.errors });
  out.line(`method: ${r.method.method} — ${r.method.rule}`);
  printRun(out, r, task);
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
  out.result({ model: dir, out: flags.out, report, method: r.method, metrics: r.metrics, analysis: r.analysis, steps: r.train.steps,
    precision: r.train.precision, seconds: r.seconds, trainable: r.trainable, parameters: r.parameters, skippedRows: task.skipped });
}

export function scalars(m: Record<string, unknown>): Record<string, number> {
  return Object.fromEntries(Object.entries(m).filter(([, v]) => typeof v === "number").map(([k, v]) => [k, Number((v as number).toFixed(4))]));
}

type EvalFlags = ModelFlags & DataFlags & { json?: boolean; errors: number; batchSize: number };

const TASK_OF_ARCH: [RegExp, TaskName][] = [[/ForSequenceClassification$/, "classification"], [/ForTokenClassification$/, "token-classification"], [/ForQuestionAnswering$/, "qa"]];

/** The task a fine-tuned checkpoint was trained for, from config.json's architectures. */
export function taskOfModel(dir: string): TaskName {
  const cfg = readConfig(dir);
  const arch = cfg.architectures[0] ?? "";
  const hit = TASK_OF_ARCH.find(([re]) => re.test(arch));
  if (!hit) throw new TunekitError(`--model: ${dir} is a ${arch || "model without architectures"}, not a fine-tuned classifier, tagger or QA model; train one with \`tunekit train\``);
  if (hit[1] === "classification" && cfg.problemType === "regression") return "regression";
  if (hit[1] === "classification" && cfg.problemType === "multi_label_classification") return "multi-label";
  return hit[1];
}

async function evaluate(flags: EvalFlags): Promise<void> {
  const out = output(!!flags.json);
  const dir = resolveModel(flags.model);
  const cfg = readConfig(dir);
  const taskName = taskOfModel(dir);
  const tok = await AutoTokenizer.fromPretrained(dir);
  const labels = taskName === "regression" || taskName === "qa" ? undefined : Object.keys(cfg.id2label).map(Number).sort((a, b) => a - b).map((i) => cfg.id2label[i]);
  // Every row is evaluated: the file is read as a validation set of its own.
  const task = await loadTask(tok, { ...flags, task: taskName, validation: flags.data }, labels);
  const model = await task.createModel(dir, { random: false, seed: 42 });
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
  const analysis = task.analyse(model, flags.errors);
  out.line(`${flags.data}: ${task.validation.length} examples${task.skipped ? ` (${task.skipped} malformed rows skipped)` : ""}`);
  out.line(metricLine(metrics));
  if (analysis.confusion) out.line("\n" + confusionTable(analysis.confusion.labels, analysis.confusion.matrix));
  if (analysis.errors?.length) {
    out.line("\nmost confident errors:");
    out.line(table(analysis.errors.map((e) => [e.score.toFixed(3), e.label, e.predicted, clip(e.text, 70)]), ["confidence", "true", "predicted", "text"]));
  }
  out.result({ model: dir, data: flags.data, examples: task.validation.length, metrics, analysis });
}

type CurveFlags = TrainFlags & { sizes: number[] };

async function curve(flags: CurveFlags): Promise<void> {
  const out = output(!!flags.json);
  const dir = resolveModel(flags.model);
  const tok = await AutoTokenizer.fromPretrained(dir);
  const full = await loadTask(tok, flags);
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
    .option("--limit <n>", "use only the first n training examples", int(1))
    .option("--errors <k>", "most confident errors to list", int(0), 5)
    .option("--json", "machine-readable output on stdout");

  common(program.command("train").description("fine-tune a model on your data"))
    .addHelpText("after", `
Examples:
  $ tunekit train --data reviews.csv --text review --label sentiment --epochs 3 --out ./out
  $ tunekit train --model ./bert-base-uncased --data train.jsonl --validation dev.jsonl --method lora --lora-r 16
  $ tunekit train --data small.csv --method auto          # picks frozen / LoRA / full from the data size
  $ tunekit train --task token-classification --data train.conll --metric f1
  $ tunekit train --task qa --data squad.json --max-length 384 --batch-size 8`)
    .action(run(train));

  common(program.command("curve").description("learning curve: pre-trained vs random initialisation at several training-set sizes"))
    .option("--sizes <list>", "training-set sizes", (v: string) => v.split(",").map((s) => int(1)(s.trim())), [50, 100, 200, 500, 1000, Number.MAX_SAFE_INTEGER])
    .addHelpText("after", `
Examples:
  $ tunekit curve --data reviews.csv --sizes 50,100,200,500,1000 --epochs 5
  $ tunekit curve --model ./my-bert --data train.tsv --validation dev.tsv --json > curve.json`)
    .action(run(curve));

  modelOptions(program.command("eval").description("evaluate a fine-tuned model on a labelled file"))
    .requiredOption("-d, --data <file>", "labelled data, same columns as for train")
    .option("--format <format>", "file format (default: from the extension)")
    .option("--text <column>", "text column").option("--text-pair <column>", "second text column").option("--label <column>", "label column")
    .option("--on-bad-row <what>", "fail or skip malformed rows", "fail")
    .option("--batch-size <n>", "examples per batch", int(1), 32)
    .option("--errors <k>", "most confident errors to list", int(0), 10)
    .option("--json", "machine-readable output on stdout")
    .addHelpText("after", `
Examples:
  $ tunekit eval --model ./out --data test.csv
  $ tunekit eval --model ./out --data test.csv --errors 20 --json`)
    .action(run(evaluate));
}

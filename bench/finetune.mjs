// Evidence on real data: fine-tunes the checkpoints of ../shared/models on SST-2, CoNLL-2003, SQuAD and
// STS-B with each strategy, beside a majority / no-training baseline and the same architecture trained
// from random initialisation on the same split. Each run is its own process, so its peak RSS is its own.
//   node bench/finetune.mjs              all runs, table + bench/results/finetune.json
//   node bench/finetune.mjs --quick      tiny slices (checks that every run works; numbers mean nothing)
//   node bench/finetune.mjs --only sst2  runs whose name contains "sst2"
import { execFileSync } from "node:child_process";
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as tk from "../dist/index.js";
import { table, saveResults, fmt, machine } from "./common.mjs";

const here = fileURLToPath(import.meta.url);
const shared = process.env.TUNEKIT_SHARED ?? path.resolve(path.dirname(here), "..", "..", "shared");
const model = (name) => path.join(shared, "models", name);
const data = (p) => path.join(shared, "data", p);
// Children get --quick through the environment (their argv is --run <spec>).
const quick = process.argv.includes("--quick") || process.env.TUNEKIT_FINETUNE_QUICK === "1";
const N = quick ? { sst2: 64, dev: 64, ner: 48, nerDev: 32, qaArticles: 1, stsb: 64, stsbDev: 64, epochs: 1 } : { sst2: 4000, dev: 872, ner: 3000, nerDev: 1000, qaArticles: 20, stsb: 5749, stsbDev: 1500, epochs: 3 };

const RUNS = [
  ["sst2/majority", { task: "sst2", strategy: "majority" }],
  ["sst2/full", { task: "sst2", strategy: "full", lr: 1e-4 }],
  ["sst2/frozen-body", { task: "sst2", strategy: "frozen", lr: 1e-3 }],
  ["sst2/freeze-emb+1-layer", { task: "sst2", strategy: "freeze-bottom", lr: 1e-4 }],
  ["sst2/gradual-unfreezing", { task: "sst2", strategy: "gradual", lr: 1e-4 }],
  ["sst2/layer-decay-0.8", { task: "sst2", strategy: "layer-decay", lr: 1e-4 }],
  ["sst2/l2sp-0.01", { task: "sst2", strategy: "l2sp", lr: 1e-4 }],
  ["sst2/lora-r8", { task: "sst2", strategy: "lora", lr: 1e-3 }],
  ["sst2/random-init", { task: "sst2", strategy: "random", lr: 1e-4 }],
  ["conll/majority-O", { task: "conll", strategy: "majority" }],
  ["conll/full", { task: "conll", strategy: "full", lr: 3e-4 }],
  ["conll/lora-r8", { task: "conll", strategy: "lora", lr: 1e-3 }],
  ["conll/random-init", { task: "conll", strategy: "random", lr: 3e-4 }],
  ["squad/full", { task: "squad", strategy: "full", lr: 3e-4 }],
  ["squad/random-init", { task: "squad", strategy: "random", lr: 3e-4 }],
  ["stsb/no-training", { task: "stsb", strategy: "majority" }],
  ["stsb/full", { task: "stsb", strategy: "full", lr: 1e-4 }],
  ["stsb/random-init", { task: "stsb", strategy: "random", lr: 1e-4 }],
  // Memory on the largest encoder checkpoint (bert-mini, 11M parameters): full vs LoRA vs frozen body.
  ["memory/bert-mini/full", { task: "sst2", strategy: "full", lr: 1e-4, model: "bert-mini-random", memory: true }],
  ["memory/bert-mini/lora-r8", { task: "sst2", strategy: "lora", lr: 1e-3, model: "bert-mini-random", memory: true }],
  ["memory/bert-mini/frozen-body", { task: "sst2", strategy: "frozen", lr: 1e-3, model: "bert-mini-random", memory: true }],
];

async function load(Auto, spec, opts) {
  const dir = model(spec.model ?? "bert-tiny-mlm");
  if (spec.strategy !== "random") return Auto.fromPretrained(dir, { warn: null, ...opts });
  return Auto.fromConfig(tk.readConfig(dir), { seed: 1, ...opts });
}

function strategyOptions(spec, m) {
  switch (spec.strategy) {
    case "frozen": return { freeze: { body: true } };
    case "freeze-bottom": return { freeze: { embeddings: true, layers: 1 } };
    case "gradual": return { gradualUnfreezing: true };
    case "layer-decay": return { layerDecay: 0.8 };
    case "l2sp": return { l2sp: 0.01 };
    case "lora": tk.applyLora(m, { r: 8, alpha: 16, dropout: 0.1, targetModules: ["query", "value"] }); return {};
    default: return {};
  }
}

async function run(spec) {
  const tok = await tk.AutoTokenizer.fromPretrained(model("bert-tiny-mlm"));
  const padId = tok.padTokenId;
  const t0 = Date.now();
  const common = { epochs: N.epochs, batchSize: 32, warmupRatio: 0.1, weightDecay: 0.01, seed: 42, progress: false };
  let metric, trainable = 0, total = 0;
  if (spec.task === "sst2") {
    const all = tk.readSst2(data("sst2/train.tsv"));
    const { validation: train } = tk.stratifiedSplit(all, { validation: spec.memory ? Math.min(N.sst2, 1024) : N.sst2, seed: 1, labelOf: (e) => e.label });
    const dev = tk.readSst2(data("sst2/dev.tsv")).slice(0, N.dev);
    if (spec.strategy === "majority") {
      const pos = train.filter((e) => e.label === 1).length >= train.length / 2 ? 1 : 0;
      return { metric: "accuracy", value: dev.filter((e) => e.label === pos).length / dev.length };
    }
    const f = await tk.classificationFeatures(tok, train.map((e) => ({ text: e.text, label: e.label })), { maxLength: 64, label2id: { 0: 0, 1: 1 } });
    const d = await tk.classificationFeatures(tok, dev.map((e) => ({ text: e.text, label: e.label })), { maxLength: 64, label2id: { 0: 0, 1: 1 } });
    const m = await load(tk.AutoModelForSequenceClassification, spec, { numLabels: 2 });
    const extra = strategyOptions(spec, m);
    const trainer = new tk.Trainer({ model: m, train: f.features, eval: d.features, collate: (x) => tk.collate(x, { padId }), learningRate: spec.lr, ...common, ...extra,
      ...(spec.memory ? { epochs: 1 } : {}),
      evaluator: () => { const c = new tk.ClassificationMetric({ numLabels: 2 }); return { update: (o, b) => c.updateLogits(o.logits.toHost(), b.labels), compute: () => c.compute() }; },
      metricForBestModel: "accuracy", loadBestModelAtEnd: true });
    const r = await trainer.train();
    metric = { metric: "accuracy", value: trainer.evaluate().accuracy, gradBytes: m.parameters().reduce((n, p) => n + (p.grad ? p.grad.bytes : 0), 0), optimizerBytes: trainer.optimizer.stateBytes };
    trainable = r.trainableParameters; total = tk.parameterCount(m);
  } else if (spec.task === "conll") {
    const train = tk.readConll(data("conll2003/train.txt")).slice(0, N.ner);
    const dev = tk.readConll(data("conll2003/valid.txt")).slice(0, N.nerDev);
    if (spec.strategy === "majority") return { metric: "entity_f1", value: 0 };
    const f = await tk.tokenClassificationFeatures(tok, train.map((s) => ({ words: s.tokens, tags: s.ner })), { maxLength: 128 });
    const d = await tk.tokenClassificationFeatures(tok, dev.map((s) => ({ words: s.tokens, tags: s.ner })), { maxLength: 128, label2id: f.label2id });
    const m = await load(tk.AutoModelForTokenClassification, spec, { id2label: f.id2label });
    strategyOptions(spec, m);
    const trainer = new tk.Trainer({ model: m, train: f.features, collate: (x) => tk.collate(x, { padId }), learningRate: spec.lr, ...common });
    const r = await trainer.train();
    const em = new tk.EntityMetric();
    tk.noGrad(() => {
      for (let i = 0; i < d.features.length; i += 32) tk.tidy(() => {
        const feats = d.features.slice(i, i + 32), b = tk.collate(feats, { padId });
        const out = m.forward(b), logits = out.logits.toHost(), L = f.numLabels, T = b.seqLen;
        feats.forEach((ft, k) => {
          const words = tk.wordPredictions(ft, { logits: logits.subarray(k * T * L, (k + 1) * T * L), numLabels: L });
          const sent = dev[i + k];
          em.update([words.map((p) => (p < 0 ? "O" : f.id2label[p]))], [sent.ner.slice(0, words.length)]);
        });
      });
    });
    metric = { metric: "entity_f1", value: em.compute().f1 };
    trainable = r.trainableParameters; total = tk.parameterCount(m);
  } else if (spec.task === "squad") {
    const all = tk.readSquad(data("squad_v1.1/dev-v1.1-part-a.json"));
    const titles = [...new Set(all.map((e) => e.title))];
    const trainTitles = new Set(titles.slice(0, N.qaArticles)), devTitles = new Set(titles.slice(N.qaArticles, N.qaArticles + (quick ? 1 : 4)));
    const train = all.filter((e) => trainTitles.has(e.title)).slice(0, quick ? 48 : undefined), dev = all.filter((e) => devTitles.has(e.title)).slice(0, quick ? 32 : undefined);
    const f = await tk.qaFeatures(tok, train, { maxLength: 256, docStride: 96 });
    const d = await tk.qaFeatures(tok, dev, { maxLength: 256, docStride: 96 });
    const m = await load(tk.AutoModelForQuestionAnswering, spec, {});
    const trainer = new tk.Trainer({ model: m, train: f, collate: (x) => tk.collate(x, { padId }), learningRate: spec.lr, ...common, batchSize: 16 });
    const r = await trainer.train();
    const starts = [], ends = [];
    tk.noGrad(() => {
      for (let i = 0; i < d.length; i += 32) tk.tidy(() => {
        const b = tk.collate(d.slice(i, i + 32), { padId }), o = m.forward(b), T = b.seqLen;
        for (let k = 0; k < b.batchSize; k++) {
          starts.push(Array.from(o.startLogits.toHost().subarray(k * T, (k + 1) * T)));
          ends.push(Array.from(o.endLogits.toHost().subarray(k * T, (k + 1) * T)));
        }
      });
    });
    const preds = tk.postprocessQa(dev, d, starts, ends);
    const s = tk.squadMetrics(dev, preds);
    metric = { metric: "squad_f1 (EM)", value: s.f1, extra: s.exactMatch };
    trainable = r.trainableParameters; total = tk.parameterCount(m);
  } else {
    const train = tk.readStsb(data("stsb/stsb-en-train.csv")).slice(0, N.stsb), dev = tk.readStsb(data("stsb/stsb-en-dev.csv")).slice(0, N.stsbDev);
    const f = await tk.sentencePairFeatures(tok, train, { maxLength: 64 }), d = await tk.sentencePairFeatures(tok, dev, { maxLength: 64 });
    const m = await load(tk.AutoSentenceEncoder, spec, { pooling: "mean" });
    const col = (x) => tk.collate(x, { padId });
    let r = { trainableParameters: tk.trainableCount(m) };
    if (spec.strategy !== "majority") {
      const trainer = new tk.Trainer({ model: m, train: f, collate: col, learningRate: spec.lr, ...common, batchSize: 16 });
      r = await trainer.train();
    }
    const rm = new tk.RegressionMetric();
    tk.noGrad(() => {
      for (let i = 0; i < d.length; i += 64) tk.tidy(() => {
        const b = col(d.slice(i, i + 64));
        rm.update(m.forward(b).logits.toHost(), b.scores);
      });
    });
    metric = { metric: "spearman", value: rm.compute().spearman };
    trainable = spec.strategy === "majority" ? 0 : r.trainableParameters; total = tk.parameterCount(m);
  }
  return { ...metric, seconds: (Date.now() - t0) / 1000, trainable, total };
}

if (process.argv[2] === "--run") {
  const out = await run(JSON.parse(process.argv[3]));
  out.peakRssMB = process.resourceUsage().maxRSS / 1024;
  console.log(JSON.stringify(out));
} else {
  const only = process.argv.includes("--only") ? process.argv[process.argv.indexOf("--only") + 1] : "";
  const rows = [], results = [];
  for (const [name, spec] of RUNS.filter(([n]) => n.includes(only))) {
    process.stdout.write(`${name} … `);
    const out = execFileSync(process.execPath, [here, "--run", JSON.stringify(spec)], { encoding: "utf8", env: { ...process.env, TUNEKIT_SHARED: shared, TUNEKIT_FINETUNE_QUICK: quick ? "1" : "0" }, maxBuffer: 1 << 26 });
    const r = JSON.parse(out.trim().split("\n").pop());
    console.log(`${r.metric} ${fmt(r.value, 4)}`);
    results.push({ name, ...spec, ...r });
    if (r.gradBytes !== undefined) console.log(`   gradient buffers ${fmt(r.gradBytes / 2 ** 20)} MB, optimizer state ${fmt(r.optimizerBytes / 2 ** 20)} MB`);
    rows.push({ run: name, metric: r.metric, value: fmt(r.value, 4) + (r.extra !== undefined ? ` (${fmt(r.extra, 1)})` : ""), "wall s": fmt(r.seconds, 0), trainable: r.trainable, "of params": r.total, "peak RSS MB": fmt(r.peakRssMB, 0) });
  }
  table(rows, ["run", "metric", "value", "wall s", "trainable", "of params", "peak RSS MB"]);
  saveResults(`finetune${quick ? "-quick" : ""}${only ? "-" + only.replace(/[^a-z0-9]+/gi, "_") : ""}`, { date: new Date().toISOString(), machine: machine(tk.native), sizes: N, results });
}

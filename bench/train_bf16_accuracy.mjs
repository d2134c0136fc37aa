// The accuracy cost of the bf16 option on a real fine-tuning run: the same recipe (bert-tiny-mlm from
// ../shared/models on an SST-2 slice from ../shared/data, same seed, same data order) trained once in
// float32 and once with `bf16: true`, validation accuracy and loss side by side.
//   node bench/train_bf16_accuracy.mjs          4000 training sentences, 3 epochs → bench/results/train-bf16-accuracy.json
//   node bench/train_bf16_accuracy.mjs --quick  256 sentences, 1 epoch (checks that it runs)
import * as path from "node:path";
import { fileURLToPath } from "node:url";
import * as tk from "../dist/index.js";
import { table, saveResults, fmt, machine } from "./common.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const shared = process.env.TUNEKIT_SHARED ?? path.resolve(here, "..", "..", "shared");
const quick = process.argv.includes("--quick");
const N = quick ? { train: 256, dev: 128, epochs: 1 } : { train: 4000, dev: 872, epochs: 3 };
const modelDir = path.join(shared, "models", "bert-tiny-mlm");

const tok = await tk.AutoTokenizer.fromPretrained(modelDir);
const all = tk.readSst2(path.join(shared, "data", "sst2", "train.tsv"));
const { validation: train } = tk.stratifiedSplit(all, { validation: N.train, seed: 1, labelOf: (e) => e.label });
const dev = tk.readSst2(path.join(shared, "data", "sst2", "dev.tsv")).slice(0, N.dev);
const feats = async (xs) => (await tk.classificationFeatures(tok, xs.map((e) => ({ text: e.text, label: e.label })), { maxLength: 64, label2id: { 0: 0, 1: 1 } })).features;
const f = await feats(train), d = await feats(dev);

const runs = [];
for (const bf16 of [false, true]) {
  const model = await tk.AutoModelForSequenceClassification.fromPretrained(modelDir, { numLabels: 2, warn: null });
  const trainer = new tk.Trainer({
    model, train: f, eval: d, collate: (x) => tk.collate(x, { padId: tok.padTokenId }), learningRate: 1e-4, epochs: N.epochs,
    batchSize: 32, warmupRatio: 0.1, weightDecay: 0.01, seed: 42, progress: false, bf16,
    evaluator: tk.classificationEvaluator(2),
  });
  const r = await trainer.train();
  const m = trainer.evaluate();
  runs.push({ option: bf16 ? "bf16: true" : "fp32", precision: r.precision, accuracy: m.accuracy, evalLoss: m.loss, trainLoss: r.trainLoss, steps: r.steps, seconds: r.seconds });
  console.log(`${runs.at(-1).option}: ran in ${r.precision}, accuracy ${fmt(m.accuracy, 4)}, eval loss ${fmt(m.loss, 4)}, ${fmt(r.seconds, 1)} s`);
}
table(runs.map((r) => ({ run: r.option, precision: r.precision, accuracy: fmt(r.accuracy, 4), "eval loss": fmt(r.evalLoss, 4), "train loss": fmt(r.trainLoss, 4), steps: r.steps, "wall s": fmt(r.seconds, 1) })), ["run", "precision", "accuracy", "eval loss", "train loss", "steps", "wall s"]);
saveResults(`train-bf16-accuracy${quick ? "-quick" : ""}`, {
  date: new Date().toISOString(), machine: machine(tk.native), bf16Available: tk.native.bf16Available(),
  recipe: { model: "bert-tiny-mlm", task: "SST-2", train: N.train, dev: N.dev, epochs: N.epochs, batchSize: 32, lr: 1e-4, maxLength: 64, seed: 42 },
  runs, accuracyDelta: runs[1].accuracy - runs[0].accuracy,
});

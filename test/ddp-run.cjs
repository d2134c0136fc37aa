// One process of the data-parallel tests (test/ddp.test.ts): fine-tunes the embedded brown-bert (BERT,
// 4 layers, hidden 128; dropout off so that runs can be compared) on the committed SST-2 slice with
// the Trainer, in whatever group the environment describes (RANK, WORLD_SIZE, … as `tunekit launch`
// sets them; none: one process). The case comes as JSON in argv[2]: { n, batchSize, accum, epochs,
// maxSteps, outDir, saveSteps, resume, weightDecay, stallAtStep, killAtStep, throwAtStep, exitAtStep }. Prints one JSON line: every logged loss
// (full precision), the evaluation, a digest of the final weights, and the communication timings.
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const tk = require("../dist");

const c = JSON.parse(process.argv[2] || "{}");
const FIXTURES = path.join(__dirname, "fixtures");

async function main() {
  const tok = await tk.AutoTokenizer.fromPretrained(tk.EMBEDDED_MODEL);
  const lines = fs.readFileSync(path.join(FIXTURES, "data", "sst2_train_head.tsv"), "utf8").split("\n").slice(1).filter((l) => l.includes("\t"));
  const rows = lines.slice(0, (c.n ?? 33) + (c.evalN ?? 21)).map((l) => ({ text: l.split("\t")[0], label: Number(l.split("\t")[1]) }));
  const enc = await tok.encodeBatch(rows.map((r) => r.text), { truncation: true, maxLength: 32 });
  // Uneven labels: some examples carry -100, so micro-batches (and ranks) hold different loss counts.
  const examples = rows.map((r, i) => ({ ids: enc.input_ids[i], label: i % 6 === 4 ? -100 : r.label }));
  const train = examples.slice(0, c.n ?? 33), evalSet = examples.slice(c.n ?? 33).map((e, i) => ({ ...e, label: rows[(c.n ?? 33) + i].label }));
  const collate = (f) => {
    const T = Math.max(...f.map((e) => e.ids.length));
    const inputIds = new Int32Array(f.length * T), attentionMask = new Uint8Array(f.length * T);
    f.forEach((e, b) => e.ids.forEach((id, t) => { inputIds[b * T + t] = id; attentionMask[b * T + t] = 1; }));
    return { inputIds, attentionMask, batchSize: f.length, seqLen: T, labels: Int32Array.from(f.map((e) => e.label)) };
  };
  const model = await tk.AutoModelForSequenceClassification.fromPretrained(tk.EMBEDDED_MODEL, {
    warn: null, numLabels: 2, seed: 3, config: { hiddenDropout: 0, attentionDropout: 0, classifierDropout: 0, embeddingDropout: 0 } });
  const losses = [];
  const evals = [];
  const watcher = {
    onLog: (_a, _s, _c, { logs }) => { if (typeof logs.loss === "number") losses.push({ step: logs.step, loss: logs.loss, gradNorm: logs.grad_norm }); },
    onEvaluate: (_a, _s, _c, { metrics }) => evals.push(metrics),
    onStepEnd: (_a, state) => {
      const rank = Number(process.env.RANK ?? 0);
      if (c.exitAtStep && state.step === c.exitAtStep.step && rank === c.exitAtStep.rank) process.exit(7);
      if (c.stallAtStep && state.step === c.stallAtStep.step && rank === c.stallAtStep.rank) process.kill(process.pid, "SIGSTOP");
      if (c.throwAtStep && state.step === c.throwAtStep.step && rank === c.throwAtStep.rank) throw new Error("a callback failed on purpose");
      if (c.killAtStep && state.step === c.killAtStep.step && rank === c.killAtStep.rank) process.kill(process.pid, "SIGKILL");
      if (c.slowFromStep && state.step >= c.slowFromStep && rank === 1) { const t = Date.now(); while (Date.now() - t < 300); }
    },
  };
  const trainer = new tk.Trainer({
    model, train, eval: evalSet, collate, evaluator: tk.classificationEvaluator(2), learningRate: 1e-3, epochs: c.epochs ?? 2, maxSteps: c.maxSteps,
    batchSize: c.batchSize ?? 4, evalBatchSize: c.evalBatchSize ?? 4, gradientAccumulationSteps: c.accum ?? 1, weightDecay: c.weightDecay ?? 0.01,
    warmupSteps: 1, seed: 11, progress: false, callbacks: [watcher], outputDir: c.outDir, saveSteps: c.saveSteps, resumeFrom: c.resume,
    evalStrategy: c.evalStrategy ?? "epoch", metricForBestModel: "accuracy", loadBestModelAtEnd: false,
    ...(c.distributed !== undefined ? { distributed: c.distributed } : {}),
  });
  const result = await trainer.train();
  const final = trainer.evaluate();
  const h = crypto.createHash("sha256");
  for (const [name, p] of model.namedParameters()) h.update(name).update(Buffer.from(Float32Array.from(p.toHost()).buffer));
  const group = tk.getProcessGroup();
  const out = { rank: group ? group.rank : 0, worldSize: group ? group.worldSize : 1, losses, evals, final, weights: h.digest("hex"),
    trainLoss: result.trainLoss, steps: result.steps, distributed: result.distributed ?? null,
    classifier: Array.from([...model.namedParameters()].pop()[1].toHost().slice(0, 4)) };
  tk.destroyProcessGroup();
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stderr.write(`ddp-run: ${e.message}\n`);
  process.exit(1);
});

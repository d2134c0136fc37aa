// The workload of scripts/lsan-check.sh: a short training run with checkpoints, async native ops,
// and a worker_thread terminated with async work in flight (the AsyncOp teardown path).
const path = require("path");
const fs = require("fs");
const os = require("os");
const { Worker } = require("worker_threads");
const root = path.resolve(__dirname, "..");
const { native } = require(path.join(root, "dist/native.js"));
const { AutoModelForSequenceClassification } = require(path.join(root, "dist/models/auto.js"));
const { Trainer } = require(path.join(root, "dist/train/trainer.js"));
const shared = process.env.TUNEKIT_SHARED ? path.resolve(process.env.TUNEKIT_SHARED) : path.resolve(root, "..", "shared");

(async () => {
  const model = await AutoModelForSequenceClassification.fromPretrained(path.join(shared, "models", "bert-tiny-mlm"), { warn: null, numLabels: 2 });
  const { examples, collate } = require(path.join(root, "scripts/synthetic.cjs"));
  const train = examples(32, { minLen: 3, lengths: 7 });
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-lsan-"));
  const trainer = new Trainer({ model, train, collate, maxSteps: 10, batchSize: 8, saveSteps: 5, saveTotalLimit: 1, outputDir: out, progress: false });
  await trainer.train();
  await model.savePretrained(path.join(out, "final"));
  // Async ops, one rejected.
  const A = native.alloc(256 * 256), B = native.alloc(256 * 256), C = native.alloc(256 * 256);
  await native.gemmAsync({ M: 256, N: 256, K: 256, A, B, C });
  await native.gemmAsync({ M: 257, N: 256, K: 256, A, B, C }).catch(() => {});
  native.free(A); native.free(B); native.free(C);
  // A worker terminated with async work in flight.
  await new Promise((resolve) => {
    const w = new Worker(`const { native } = require(${JSON.stringify(path.join(root, "dist/native.js"))});
      const n = 256, X = native.alloc(n * n);
      for (let i = 0; i < 8; i++) native.gemmAsync({ M: n, N: n, K: n, A: X, B: X, C: native.alloc(n * n) }).catch(() => {});
      require("worker_threads").parentPort.postMessage(0); setInterval(() => {}, 1000);`, { eval: true });
    w.on("message", () => w.terminate().then(resolve));
  });
  trainer.optimizer.dispose();
  fs.rmSync(out, { recursive: true, force: true });
  console.log("lsan workload done");
})().catch((e) => { console.error(e); process.exit(1); });

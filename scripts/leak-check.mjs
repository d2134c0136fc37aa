#!/usr/bin/env node
// Leak check: trains bert-tiny-mlm (or, without ../shared, a random bert-tiny-shaped model) for N
// steps (default 1000) and samples the addon's own counters (native.memoryStats(): bytes and buffers
// alive) and RSS every 100 steps. Each sample first runs a full GC and empties the tensor pool
// (lib/tensor/tensor.ts keeps freed activations by exact length, up to 1 GiB, and dynamic padding
// makes new lengths for a while), so "live" is what the run really holds: weights, gradients,
// optimizer state. The pool's size is reported too. Pass: live native memory is exactly flat from
// the warm-up sample (step 200; step 100 for --steps below 400) to the end, and RSS grows by less
// than --rss-mib (default 16) over the second half of the run. RSS follows the high-water mark of
// the pool (the longest batches seen so far; glibc keeps the freed heap) for a few hundred steps and
// then stays put, while a leak keeps growing: the growth since warm-up is reported as well.
//   node --expose-gc scripts/leak-check.mjs [--steps 1000] [--rss-mib 16] [--json]
// Needs dist/ (`npx tsc -p .`).
import * as path from "path";
import { createRequire } from "module";
import { fileURLToPath } from "url";
import * as fs from "fs";
import * as os from "os";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const arg = (name, dflt) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? Number(process.argv[i + 1]) : dflt; };
const steps = arg("steps", 1000), rssLimit = arg("rss-mib", 16), every = 100;
const warm = steps >= 400 ? 200 : every;
if (typeof global.gc !== "function") {
  console.error("leak-check: run with node --expose-gc (npm run leak-check does)");
  process.exit(2);
}

const { native } = require(path.join(root, "dist/native.js"));
const { releasePool } = require(path.join(root, "dist/tensor/storage.js"));
const { AutoModelForSequenceClassification } = require(path.join(root, "dist/models/auto.js"));
const { Trainer } = require(path.join(root, "dist/train/trainer.js"));
const shared = process.env.TUNEKIT_SHARED ? path.resolve(process.env.TUNEKIT_SHARED) : path.resolve(root, "..", "shared");
const dir = path.join(shared, "models", "bert-tiny-mlm");

async function model() {
  if (fs.existsSync(dir)) return [await AutoModelForSequenceClassification.fromPretrained(dir, { warn: null, numLabels: 2 }), "bert-tiny-mlm"];
  // bert-tiny's config.json (google/bert_uncased_L-2_H-128_A-2), random weights.
  const { configFrom } = require(path.join(root, "dist/models/pretrained.js"));
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tunekit-leak-"));
  fs.writeFileSync(path.join(tmp, "config.json"), JSON.stringify({ model_type: "bert", architectures: ["BertForMaskedLM"], hidden_size: 128, num_hidden_layers: 2,
    num_attention_heads: 2, intermediate_size: 512, vocab_size: 30522, max_position_embeddings: 512, type_vocab_size: 2, hidden_act: "gelu",
    hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1, layer_norm_eps: 1e-12, pad_token_id: 0 }));
  return [AutoModelForSequenceClassification.fromConfig(configFrom(tmp), { numLabels: 2, seed: 1 }), "random weights, bert-tiny shapes"];
}

const [m, what] = await model();
const { examples, collate } = require(path.join(root, "scripts/synthetic.cjs"));
const train = examples(96, { seed: 99, minLen: 6, lengths: 20 });
const samples = [];
const sample = (step) => {
  global.gc();
  const all = native.memoryStats();
  releasePool();
  const st = native.memoryStats();
  samples.push({ step, nativeBytes: st.bytes, nativeBuffers: st.buffers, pooledBytes: all.bytes - st.bytes, rssMiB: +(process.memoryUsage().rss / 2 ** 20).toFixed(1), heapMiB: +(process.memoryUsage().heapUsed / 2 ** 20).toFixed(1) });
};
const t0 = Date.now();
sample(0);
await new Trainer({
  model: m, train, collate, learningRate: 1e-4, maxSteps: steps, batchSize: 8, progress: false, seed: 1,
  events: { onStep: ({ step }) => { if (step % every === 0) sample(step); } },
}).train();

const base = samples.find((x) => x.step === warm), last = samples[samples.length - 1];
const flat = samples.filter((x) => x.step >= warm).every((x) => x.nativeBytes === base.nativeBytes && x.nativeBuffers === base.nativeBuffers);
const half = samples.find((x) => x.step >= steps / 2);
const rssGrowth = +(last.rssMiB - base.rssMiB).toFixed(1), rssLate = +(last.rssMiB - half.rssMiB).toFixed(1);
const pass = flat && rssLate < rssLimit;
const summary = { model: what, steps, warmupStep: warm, nativeFlat: flat, rssGrowthMiB: rssGrowth, rssSecondHalfMiB: rssLate, rssLimitMiB: rssLimit, pass, seconds: (Date.now() - t0) / 1000, samples };
if (process.argv.includes("--json")) console.log(JSON.stringify(summary));
else {
  console.log(`leak check: ${what}, ${steps} steps, ${summary.seconds.toFixed(0)} s`);
  console.log("  step   live native B  buffers   pooled B    RSS MiB  heap MiB");
  for (const x of samples) console.log(`${String(x.step).padStart(6)} ${String(x.nativeBytes).padStart(15)} ${String(x.nativeBuffers).padStart(8)} ${String(x.pooledBytes).padStart(10)} ${x.rssMiB.toFixed(1).padStart(10)} ${x.heapMiB.toFixed(1).padStart(9)}`);
  const sign = (v) => `${v >= 0 ? "+" : ""}${v}`;
  console.log(`live native memory ${flat ? "flat" : "NOT flat"} from step ${warm}; RSS ${sign(rssGrowth)} MiB since step ${warm}, ${sign(rssLate)} MiB since step ${half.step} (limit ${rssLimit}) → ${pass ? "PASS" : "FAIL"}`);
}
process.exit(pass ? 0 : 1);

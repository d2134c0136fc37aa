// Instruction fine-tuning that visibly learns: a made-for-the-demo instruction set (three kinds of
// question about numbers and words, asked in words) on ../shared/models/gpt2-small-random — GPT-2's
// architecture and real BPE with RANDOM weights (../shared/PROVENANCE.md), so everything it answers
// afterwards it learned here. Reports the exact match of greedy generation on held-out questions
// before and after tuning, per kind.
//
//   npm run build && node scripts/sft-demo.mjs [--method full|lora] [--epochs N] [--lr R] [--packing] [--json]
import * as path from "path";
import { createRequire } from "module";
import { fileURLToPath } from "url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { AutoModelForCausalLM, AutoTokenizer, sft, sftExactMatch } = require(path.join(root, "dist", "index.js"));

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? dflt : process.argv[i + 1];
};
// Full fine-tuning by default: with random weights there is nothing pre-trained for LoRA to keep, and
// its frozen random embedding table (GPT-2's LM head is tied to it) caps what a low-rank update reaches.
const method = arg("method", "full");
const epochs = Number(arg("epochs", 16));
const lr = Number(arg("lr", method === "lora" ? 1e-2 : 3e-3));
const packing = process.argv.includes("--packing");
const asJson = process.argv.includes("--json");
const log = (...a) => (asJson ? console.error(...a) : console.log(...a));

// Three instructions, each answerable from the question alone by a rule, so held-out questions test
// the rule and not memory. Seeded, so every run sees the same split.
const words = ["apple", "river", "stone", "cloud", "tiger", "paper", "green", "music", "table", "light", "ocean", "bread", "chair", "plant", "smile", "glass"];
let s = 12345;
const rand = (n) => ((s = (s * 1103515245 + 12345) % 2147483648), Math.floor(s / 65536) % n); // the high bits: the low ones cycle
const kinds = {
  parity: () => { const n = 100 + rand(900); return { prompt: `Question: is ${n} odd or even?\nAnswer:`, completion: n % 2 ? " odd" : " even" }; },
  "last digit": () => { const n = 1000 + rand(9000); return { prompt: `Question: what is the last digit of ${n}?\nAnswer:`, completion: ` ${n % 10}` }; },
  "first word": () => { const a = words[rand(16)], b = words[rand(16)], c = words[rand(16)]; return { prompt: `Question: which word comes first in "${a} ${b} ${c}"?\nAnswer:`, completion: ` ${a}` }; },
};
const make = (k, n) => Array.from({ length: n }, () => ({ kind: k, ...kinds[k]() }));
const names = Object.keys(kinds);
const train = names.flatMap((k) => make(k, 200));
const heldOut = names.flatMap((k) => make(k, 30)).filter((e) => !train.some((t) => t.prompt === e.prompt));

const dir = path.join(root, "..", "shared", "models", "gpt2-small-random");
const tokenizer = await AutoTokenizer.fromPretrained(dir);
const model = await AutoModelForCausalLM.fromPretrained(dir, { warn: null });

async function exactMatch() {
  const per = {};
  for (const k of names) per[k] = (await sftExactMatch(model, tokenizer, heldOut.filter((e) => e.kind === k))).exactMatch;
  const all = await sftExactMatch(model, tokenizer, heldOut);
  return { all: all.exactMatch, per, sample: all.outputs.slice(0, 3) };
}

log(`model: ${dir} (random weights); ${train.length} training and ${heldOut.length} held-out questions; method ${method}, ${epochs} epochs at lr ${lr}${packing ? ", packed" : ""}`);
const before = await exactMatch();
log(`before: exact match ${before.all.toFixed(3)} (${names.map((k) => `${k} ${before.per[k].toFixed(2)}`).join(", ")}); e.g. ${JSON.stringify(before.sample[0].output)} for ${JSON.stringify(before.sample[0].reference)}`);
const t0 = Date.now();
const r = await sft({
  model, tokenizer, train, packing, maxLength: 64, epochs, batchSize: 16, warmupRatio: 0.05, seed: 42, progress: false,
  learningRate: lr,
  peftConfig: method === "lora" ? { r: 16, alpha: 32 } : undefined,
});
const seconds = (Date.now() - t0) / 1000;
const after = await exactMatch();
log(`trained: ${r.steps} steps in ${seconds.toFixed(1)} s, ${r.trainableParameters.toLocaleString("en-US")} parameters trained${r.lora ? ` (LoRA on ${r.lora.config.targetModules.join(", ")})` : ""}, final loss ${r.trainLoss.toFixed(3)}`);
log(`after:  exact match ${after.all.toFixed(3)} (${names.map((k) => `${k} ${after.per[k].toFixed(2)}`).join(", ")})`);
for (const o of after.sample) log(`  ${JSON.stringify(o.prompt)} → ${JSON.stringify(o.output)} (expected ${JSON.stringify(o.reference)})`);
if (asJson) console.log(JSON.stringify({ method, epochs, lr, packing, train: train.length, heldOut: heldOut.length, steps: r.steps, seconds, before: { all: before.all, ...before.per }, after: { all: after.all, ...after.per } }));

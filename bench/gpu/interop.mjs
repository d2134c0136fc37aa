// Files between tunekit on the GPU and Python (bench/gpu/interop.py), both ways:
//   node bench/gpu/interop.mjs save DIR [device]   train a BERT classifier (the embedded model) and a
//        LoRA adapter on GPT-2 (test/fixtures/models/gpt2-tiny-random) for a few steps on the device, save
//        them (DIR/tk-bert, DIR/tk-lora) with their logits on fixed inputs (DIR/tk-logits.json)
//   node bench/gpu/interop.mjs load DIR [device]   load what Python saved (DIR/py-bert, DIR/py-lora) onto
//        the device and compare tunekit's logits with Python's (DIR/py-logits.json); prints JSON
// device: "cuda" (default) or "cpu" (the same files, for a run without a GPU).
import * as fs from "node:fs";
import * as path from "node:path";
import * as tk from "../../dist/index.js";

const [mode, dir, device = "cuda"] = process.argv.slice(2);
if (!["save", "load"].includes(mode) || !dir) {
  console.error("usage: node bench/gpu/interop.mjs save|load DIR [cuda|cpu]");
  process.exit(2);
}
const GPT2 = new URL("../../test/fixtures/models/gpt2-tiny-random", import.meta.url).pathname;
// Two rows, the second padded (attention mask 0 at the end), for both models.
const B = 2, T = 6;
const bertIds = [2, 100, 200, 300, 400, 3, 2, 150, 250, 3, 0, 0];
const gptIds = [5, 17, 42, 8, 99, 3, 11, 12, 13, 14, 0, 0];
const mask = [1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0];
const batch = (ids) => ({ inputIds: Int32Array.from(ids), attentionMask: Uint8Array.from(mask), batchSize: B, seqLen: T });

function logits(model, ids) {
  model.eval();
  return Array.from(tk.noGrad(() => model.forward(batch(ids)).logits.toHost()));
}

function trainSteps(model, ids, labels, steps = 3) {
  model.train();
  const opt = new tk.AdamW(tk.paramGroups(model, { lr: 1e-2 }));
  for (let i = 0; i < steps; i++) {
    tk.tidy(() => model.forward({ ...batch(ids), labels }).loss.backward());
    opt.update(1);
    model.zeroGrad();
  }
}

// Causal-LM logits (B·T rows of V) at the positions the mask keeps: what a padded position predicts is
// not defined alike in both libraries.
const unpadded = (l) => l.filter((_, i) => mask[Math.floor(i / (l.length / (B * T)))] === 1);
const maxDiff = (a, b) => (a.length !== b.length ? Infinity : a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0));

if (mode === "save") {
  fs.mkdirSync(dir, { recursive: true });
  const bert = (await tk.AutoModelForSequenceClassification.fromPretrained(tk.EMBEDDED_MODEL, { config: { numLabels: 2 }, warn: null })).to(device);
  trainSteps(bert, bertIds, Int32Array.from([0, 1]));
  await bert.savePretrained(path.join(dir, "tk-bert"), { tokenizer: await tk.AutoTokenizer.fromPretrained(tk.EMBEDDED_MODEL) });
  const gpt = (await tk.AutoModelForCausalLM.fromPretrained(GPT2, { warn: null })).to(device);
  tk.applyLora(gpt, { r: 4, alpha: 8, dropout: 0, targetModules: ["c_attn"] });
  trainSteps(gpt, gptIds, Int32Array.from(gptIds.map((t, i) => (mask[i] ? t : -100))));
  tk.saveAdapter(gpt, path.join(dir, "tk-lora"), { baseModelNameOrPath: GPT2 });
  const out = { device, B, T, mask, bertIds, gptIds, bert: logits(bert, bertIds), gpt2Lora: logits(gpt, gptIds) };
  fs.writeFileSync(path.join(dir, "tk-logits.json"), JSON.stringify(out));
  console.log(JSON.stringify({ saved: dir, device }));
} else {
  const ref = JSON.parse(fs.readFileSync(path.join(dir, "py-logits.json"), "utf8"));
  const bert = (await tk.AutoModelForSequenceClassification.fromPretrained(path.join(dir, "py-bert"), { warn: null })).to(device);
  const gpt = (await tk.AutoModelForCausalLM.fromPretrained(GPT2, { warn: null })).to(device);
  tk.loadAdapter(gpt, path.join(dir, "py-lora"));
  console.log(JSON.stringify({ device, bertMaxDiff: maxDiff(logits(bert, bertIds), ref.bert), gpt2LoraMaxDiff: maxDiff(unpadded(logits(gpt, gptIds)), unpadded(ref.gpt2Lora)) }));
}

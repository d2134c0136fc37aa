// Run by test/loader_device.test.ts in a process of its own with TUNEKIT_CUDA_LIB set: the one loader
// (PreTrainedModel.loadStateDict) writing into parameters that live on the device, for an adapter file and
// a resumed state dict, against the same loads on the CPU. Prints one JSON line.
const path = require("path");
const os = require("os");
const fs = require("fs");
const tk = require("../dist");

const SRC = path.join(__dirname, "fixtures", "models", "gpt2-tiny-random");
const x = { inputIds: Int32Array.from([5, 6, 7, 8, 9, 10]), attentionMask: Uint8Array.from([1, 1, 1, 1, 1, 0]), batchSize: 2, seqLen: 3 };
const logits = (m) => Array.from(tk.noGrad(() => tk.tidy(() => Float32Array.from(m.forward(x).logits.toHost()))));
const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const load = () => tk.AutoModelForSequenceClassification.fromPretrained(SRC, { warn: null, numLabels: 2, seed: 1 });

async function main() {
  const out = { device: tk.native.cudaInfo().device };
  // An adapter whose modules_to_save include a GPT-2 Conv1D layer (transposed in the file) and the score head.
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tk-loader-"));
  const a = await load();
  tk.applyLora(a, { r: 4, targetModules: ["c_attn"], modulesToSave: ["h.1.mlp"] });
  for (const [n, p] of a.namedParameters()) if (p.requiresGrad) p.copyFrom(Float32Array.from({ length: p.size }, (_, i) => Math.sin(i + n.length) * 0.05));
  tk.saveAdapter(a, dir);
  const cpu = await load();
  tk.loadAdapter(cpu, dir);
  const dev = (await load()).to("cuda");
  tk.loadAdapter(dev, dir);
  dev.to("cuda"); // the LoRA factors loadAdapter added were made on the CPU
  out.adapter = { onDevice: [...dev.namedParameters()].every(([, p]) => p.device === "cuda"), maxDiff: maxDiff(logits(cpu), logits(dev)), changed: maxDiff(logits(cpu), logits(await load())) };
  // Resume: a state dict (the file's layout) into a model on the device.
  const trained = a.stateDict();
  const resumed = (await load()).to("cuda");
  tk.applyLora(resumed, { r: 4, targetModules: ["c_attn"], modulesToSave: ["h.1.mlp"] });
  resumed.to("cuda");
  resumed.loadStateDict(trained, "resume");
  out.resume = { maxDiff: maxDiff(logits(a), logits(resumed)) };
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(JSON.stringify(out));
}
main().catch((e) => console.log(JSON.stringify({ error: e.stack })));

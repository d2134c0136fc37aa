// tunekit's side of the GPU session (bench/gpu/session.sh): every CPU-vs-CUDA op case, a short
// fine-tuning run on the GPU beside the same run on the CPU, and the timings the issue asks for (GEMM,
// attention forward + backward, a BERT-base step B32×T128, GPT-2 124M B16×T1024), fp32 and bf16.
// bench/gpu/torch_side.py times the same shapes in PyTorch; bench/gpu/report.mjs puts them side by side.
//   node bench/gpu/tunekit.mjs OUT.json [--quick]      (--quick: tiny shapes, runs on the emulator too)
// Each part is timed and caught on its own: one failure is written down and the next part still runs.
import * as fs from "node:fs";
import * as path from "node:path";
import * as tk from "../../dist/index.js";
import { randomBert, makeStep, fullBatch } from "../bert_step.mjs";

const native = tk.native;
const out = process.argv[2] ?? "gpu-tunekit.json";
const quick = process.argv.includes("--quick");
const res = { quick, parts: {} };
const save = () => fs.writeFileSync(out, JSON.stringify(res, null, 1));

async function part(name, fn) {
  const t0 = performance.now();
  try {
    res.parts[name] = { ...(await fn()), seconds: (performance.now() - t0) / 1000 };
  } catch (e) {
    res.parts[name] = { error: `${e.constructor.name}: ${e.message}`, seconds: (performance.now() - t0) / 1000 };
  }
  console.log(`${name}: ${JSON.stringify(res.parts[name]).slice(0, 400)}`);
  save();
}

// The device runs one stream: reading one float back waits for everything queued before it.
const sync = (buf) => native.copy({ src: native.view(buf, 0, 1), dst: new Float32Array(1) });
function timeDevice(fn, buf, { minSeconds = quick ? 0.05 : 0.5, warmup = 2 } = {}) {
  for (let i = 0; i < warmup; i++) fn();
  sync(buf);
  let n = 0;
  const t0 = performance.now();
  do {
    fn();
    n++;
    if (n % 5 === 0) sync(buf);
  } while (performance.now() - t0 < minSeconds * 1000 || n < 5);
  sync(buf);
  return (performance.now() - t0) / 1000 / n;
}
const dev = (n, dtype = "f32") => native.alloc(n, { device: "cuda", dtype });
// Values in [-0.5, 0.5] (not zeros: a GPU multiplies zeros faster), one host pattern copied block by block.
const PATTERN = Float32Array.from({ length: 1 << 20 }, (_, i) => Math.sin(i * 12.9898) * 0.5);
function randomDev(n) {
  const d = dev(n);
  for (let o = 0; o < n; o += PATTERN.length) {
    const len = Math.min(PATTERN.length, n - o);
    native.copy({ src: PATTERN.subarray(0, len), dst: native.view(d, o, len) });
  }
  return d;
}

async function main() {
  res.info = native.cudaInfo();
  if (!native.cudaAvailable()) throw new Error(`CUDA unavailable: ${res.info.reason}`);
  res.date = new Date().toISOString();

  await part("ops", () => {
    const cases = native.cudaCheckOps();
    const bad = cases.filter((c) => !(c.maxAbsDiff <= c.tolerance * Math.max(1, c.refMaxAbs)));
    return { cases: cases.length, failed: bad };
  });

  // A short fine-tuning run: the same seed, data and steps on both devices; the losses side by side.
  await part("finetune", async () => {
    const tok = await tk.AutoTokenizer.fromPretrained(tk.EMBEDDED_MODEL);
    const file = new URL("../../test/fixtures/data/sst2_train_head.tsv", import.meta.url).pathname;
    const data = await tk.loadDataset(file, { text: "sentence", label: "label", validation: 0.25 });
    const label2id = Object.fromEntries(data.labelNames.map((l, i) => [l, i]));
    const train = await tk.classificationFeatures(tok, data.train, { maxLength: 64, label2id });
    const run = async (device) => {
      const model = await tk.AutoModelForSequenceClassification.fromPretrained(tk.EMBEDDED_MODEL, { config: { numLabels: 2 }, warn: null });
      const losses = [];
      const trainer = new tk.Trainer({
        model, train: train.features, collate: (f) => tk.collate(f, { padId: tok.padTokenId }), epochs: 2, batchSize: 8,
        learningRate: 5e-4, seed: 3, device, callbacks: [{ onLog: (_a, _s, _c, { logs }) => { if (logs?.loss !== undefined) losses.push(logs.loss); } }],
      });
      trainer.removeCallback(tk.ProgressCallback);
      await trainer.train();
      return { losses };
    };
    const cpu = await run("cpu"), cuda = await run("cuda");
    const diffs = cpu.losses.map((l, i) => Math.abs(l - cuda.losses[i]));
    return { cpu: cpu.losses, cuda: cuda.losses, maxLossDiff: Math.max(...diffs) };
  });

  // GEMM at the BERT-base (B32×T128 = 4096 tokens) and GPT-2 (B16×T1024 = 16384 tokens) shapes.
  const gemmShapes = quick
    ? [{ name: "tiny NT", M: 256, N: 192, K: 64, transB: true }]
    : [
        { name: "BERT qkv (4096×2304×768, NT)", M: 4096, N: 2304, K: 768, transB: true },
        { name: "BERT ffn up (4096×3072×768, NT)", M: 4096, N: 3072, K: 768, transB: true },
        { name: "BERT ffn down (4096×768×3072, NT)", M: 4096, N: 768, K: 3072, transB: true },
        { name: "BERT dW ffn up (3072×768×4096, TN)", M: 3072, N: 768, K: 4096, transA: true },
        { name: "GPT-2 fc (16384×3072×768, NT)", M: 16384, N: 3072, K: 768, transB: true },
        { name: "GPT-2 lm head (16384×50257×768, NT)", M: 16384, N: 50257, K: 768, transB: true },
        { name: "square 4096³ NN", M: 4096, N: 4096, K: 4096 },
      ];
  await part("gemm", () => {
    const rows = [];
    for (const s of gemmShapes) {
      const A = randomDev(s.M * s.K), B = randomDev(s.N * s.K), C = dev(s.M * s.N);
      for (const precision of ["fp32", "bf16", "fp16"]) {
        const sec = timeDevice(() => native.gemm({ M: s.M, N: s.N, K: s.K, A, B, C, transA: !!s.transA, transB: !!s.transB, precision }), C);
        rows.push({ shape: s.name, precision, ms: sec * 1e3, tflops: (2 * s.M * s.N * s.K) / sec / 1e12 });
      }
      [A, B, C].forEach((b) => native.free(b));
    }
    return { rows };
  });

  // Attention forward + backward: BERT (B32 H12 T128 D64, padding mask) and GPT-2 (B16 H12 T1024 D64, causal).
  const attnShapes = quick
    ? [{ name: "tiny", B: 2, H: 2, T: 32, D: 16, causal: true }]
    : [{ name: "BERT B32 H12 T128 D64", B: 32, H: 12, T: 128, D: 64, causal: false }, { name: "GPT-2 B16 H12 T1024 D64 causal", B: 16, H: 12, T: 1024, D: 64, causal: true }];
  await part("attention", () => {
    const rows = [];
    for (const s of attnShapes) {
      const n = s.B * s.T * s.H * s.D;
      const a = { B: s.B, H: s.H, Tq: s.T, Tk: s.T, D: s.D, q: randomDev(n), k: randomDev(n), v: randomDev(n), o: dev(n), lse: dev(s.B * s.H * s.T), causal: s.causal };
      const fwd = timeDevice(() => native.attentionForward(a), a.o);
      const b = { ...a, dout: randomDev(n), dq: dev(n), dk: dev(n), dv: dev(n) };
      const bwd = timeDevice(() => native.attentionBackward(b), b.dq);
      // FLOPs as FlashAttention counts them: 4·B·H·T²·D forward (halved when causal), 2.5× that backward.
      const f = (4 * s.B * s.H * s.T * s.T * s.D) / (s.causal ? 2 : 1);
      rows.push({ shape: s.name, fwdMs: fwd * 1e3, bwdMs: bwd * 1e3, fwdBwdMs: (fwd + bwd) * 1e3, tflopsFwdBwd: (3.5 * f) / (fwd + bwd) / 1e12 });
    }
    return { rows, precision: "fp32 (the CUDA attention kernel has no bf16 path yet)" };
  });

  // BERT-base fine-tuning step (forward with dropout + backward + clip + AdamW), B32×T128.
  const bertShape = quick ? { layers: 2, hidden: 64, heads: 2, inter: 128, vocab: 1000, B: 4, T: 16 } : { layers: 12, hidden: 768, heads: 12, inter: 3072, vocab: 30522, B: 32, T: 128 };
  for (const precision of ["fp32", "bf16"]) {
    await part(`bert-base step ${precision}`, () => {
      native.setMatmulPrecision(precision);
      const model = randomBert(bertShape).to("cuda");
      const batch = fullBatch(bertShape.B, bertShape.T, bertShape.vocab);
      const step = makeStep(model, batch, "full");
      const probe = model.parameters()[0].storage.handle;
      const sec = timeDevice(step, probe, { minSeconds: quick ? 0.1 : 5, warmup: 3 });
      native.setMatmulPrecision("fp32");
      return { B: bertShape.B, T: bertShape.T, msPerStep: sec * 1e3, samplesPerSecond: bertShape.B / sec, memory: native.deviceMemory() };
    });
  }

  // GPT-2 124M causal-LM training step, B16×T1024 (tokens/s), from a random config.
  const gptShape = quick ? { n_layer: 2, n_embd: 64, n_head: 2, vocab_size: 1000, n_positions: 64, B: 2, T: 32 } : { n_layer: 12, n_embd: 768, n_head: 12, vocab_size: 50257, n_positions: 1024, B: 16, T: 1024 };
  for (const precision of ["fp32", "bf16"]) {
    await part(`gpt2 step ${precision}`, () => {
      native.setMatmulPrecision(precision);
      const config = tk.parseConfig({ model_type: "gpt2", ...gptShape, B: undefined, T: undefined, resid_pdrop: 0.0, embd_pdrop: 0.0, attn_pdrop: 0.0 });
      const model = tk.AutoModelForCausalLM.fromConfig(config, { seed: 1 }).to("cuda");
      const { B, T } = gptShape;
      const ids = Int32Array.from({ length: B * T }, (_, i) => (i * 7919) % gptShape.vocab_size);
      const batch = { inputIds: ids, attentionMask: new Uint8Array(B * T).fill(1), batchSize: B, seqLen: T, labels: ids };
      const opt = new tk.AdamW(tk.paramGroups(model, { lr: 6e-4, weightDecay: 0.1 }));
      const params = model.parameters().filter((p) => p.requiresGrad);
      model.train();
      const step = () => {
        tk.tidy(() => model.forward(batch, { lossOnly: true }).loss.backward());
        const norm = tk.gradNorm(params);
        opt.update(1, norm > 1 ? 1 / (norm + 1e-6) : 1);
        model.zeroGrad();
      };
      const sec = timeDevice(step, params[0].storage.handle, { minSeconds: quick ? 0.1 : 5, warmup: 2 });
      native.setMatmulPrecision("fp32");
      return { B, T, msPerStep: sec * 1e3, tokensPerSecond: (B * T) / sec, memory: native.deviceMemory() };
    });
  }
  save();
}

main().catch((e) => {
  res.error = `${e.constructor.name}: ${e.message}`;
  save();
  console.error(e);
  process.exit(1);
});

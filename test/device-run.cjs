// The device path end to end, run by test/device.test.ts in a process of its own with TUNEKIT_CUDA_LIB
// set (the CUDA library is opened once per process). On a machine without a GPU that library is the
// CPU emulator build of cuda/*.cu (cuda/dev/emu/build-lib.sh): the real CUDA kernels, run slowly on
// the CPU. Every check runs the same work on "cpu" and on "cuda" and prints one JSON line of results;
// the jest side holds the expectations.
const path = require("path");
const os = require("os");
const fs = require("fs");
const tk = require("../dist");
const { native } = require("../dist/native");
const { AdamW, paramGroups } = require("../dist/train/optimizer");

const FIXTURES = path.join(__dirname, "fixtures", "models");
const out = {};
const maxDiff = (a, b) => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i])), 0);
const weights = (m) => [...m.namedParameters()].map(([, p]) => Float32Array.from(p.toHost()));
const maxWeightDiff = (a, b) => weights(a).reduce((m, w, i) => Math.max(m, maxDiff(w, weights(b)[i])), 0);

// steps of AdamW on the same batches; returns the losses
function train(model, batches, lr = 1e-3) {
  model.train();
  const opt = new AdamW(paramGroups(model, { lr, weightDecay: 0.01 }));
  const losses = [];
  for (const b of batches) {
    const o = model.forward(b);
    losses.push(o.loss.item());
    o.loss.backward();
    opt.update(1);
    opt.zeroGrad();
  }
  return losses;
}

const bertBatches = [
  { inputIds: Int32Array.from([2, 100, 200, 300, 3, 2, 150, 250, 3, 0]), attentionMask: Uint8Array.from([1, 1, 1, 1, 1, 1, 1, 1, 1, 0]), batchSize: 2, seqLen: 5, labels: Int32Array.from([0, 1]) },
  { inputIds: Int32Array.from([2, 400, 3, 0, 0, 2, 500, 600, 700, 3]), attentionMask: Uint8Array.from([1, 1, 1, 0, 0, 1, 1, 1, 1, 1]), batchSize: 2, seqLen: 5, labels: Int32Array.from([1, 1]) },
];

async function main() {
  out.device = native.cudaInfo().device;
  // 0. every op's CPU-vs-CUDA cases (native/cuda_check.cc), each with its own tolerance
  out.checkOps = native.cudaCheckOps();
  const bert = () => tk.AutoModelForSequenceClassification.fromPretrained(tk.EMBEDDED_MODEL, { config: { numLabels: 2 }, warn: null });

  // 1. full fine-tuning steps of BERT (dropout on: the Philox masks are the same on both devices)
  {
    const c = await bert(), g = (await bert()).to("cuda");
    const lc = train(c, bertBatches), lg = train(g, bertBatches);
    out.bert = { lossesCpu: lc, lossesCuda: lg, maxWeightDiff: maxWeightDiff(c, g), onDevice: [...g.parameters()].every((p) => p.device === "cuda") };
  }
  // 2. GPT-2 causal LM steps
  {
    const dir = path.join(FIXTURES, "gpt2-tiny-random");
    const mk = () => tk.AutoModelForCausalLM.fromPretrained(dir, { warn: null });
    const ids = Int32Array.from([5, 17, 42, 8, 99, 3, 11, 12]);
    const b = { inputIds: ids, attentionMask: new Uint8Array(8).fill(1), batchSize: 2, seqLen: 4, labels: ids };
    const c = await mk(), g = (await mk()).to("cuda");
    out.gpt2 = { lossesCpu: train(c, [b, b]), lossesCuda: train(g, [b, b]), maxWeightDiff: maxWeightDiff(c, g) };
  }
  // 3. LoRA steps (the frozen base never gets a gradient; only the adapter and the head train)
  {
    const mk = async () => {
      const m = await bert();
      tk.applyLora(m, { r: 4, alpha: 8, dropout: 0.1, targetModules: ["query", "value"] });
      return m;
    };
    const c = await mk(), g = (await mk()).to("cuda");
    out.lora = { lossesCpu: train(c, bertBatches), lossesCuda: train(g, bertBatches), maxWeightDiff: maxWeightDiff(c, g) };
  }
  // 4. inference through a pipeline, 5. save from the device and load on the CPU
  {
    const tok = await tk.AutoTokenizer.fromPretrained(tk.EMBEDDED_MODEL);
    const c = await bert(), g = (await bert()).to("cuda");
    const texts = ["a gorgeous, witty film", "a dull mess", "it rains"];
    const rc = await tk.classify(c, tok, texts), rg = await tk.classify(g, tok, texts);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "tk-device-"));
    await g.savePretrained(dir);
    const back = await tk.AutoModelForSequenceClassification.fromPretrained(dir, { warn: null });
    const rb = await tk.classify(back, tok, texts);
    fs.rmSync(dir, { recursive: true, force: true });
    const scores = (r) => r.flatMap((x) => x.scores.map((s) => s.score));
    out.inference = { maxScoreDiff: maxDiff(scores(rc), scores(rg)), reloadedMaxScoreDiff: maxDiff(scores(rg), scores(rb)) };
  }
  // 6. what crosses between host and device in one training step (after a warm-up step)
  {
    const g = (await bert()).to("cuda");
    g.train();
    const opt = new AdamW(paramGroups(g, { lr: 1e-3 }));
    const step = (b) => {
      const o = g.forward(b);
      const loss = o.loss.item();
      const logits = o.logits.toHost();
      o.loss.backward();
      opt.update(1);
      opt.zeroGrad();
      return [loss, logits];
    };
    step(bertBatches[0]);
    const before = native.deviceMemory();
    step(bertBatches[1]);
    const after = native.deviceMemory();
    const b = bertBatches[1], BT = b.batchSize * b.seqLen;
    out.transfers = {
      h2d: after.h2d - before.h2d, d2h: after.d2h - before.d2h,
      // ids, position ids, token types (int32), the mask (bytes), labels and the rows the pooler reads (int32)
      batchBytes: 3 * 4 * BT + BT + 4 * b.batchSize + 4 * b.batchSize,
      logitsBytes: 4 * b.batchSize * 2,
      parameterBytes: [...g.parameters()].reduce((n, p) => n + 4 * p.size, 0),
    };
  }
  // 7. running out of device memory: a clear error, and the process keeps working
  {
    const g = (await bert()).to("cuda");
    let message = "";
    try {
      tk.Tensor.zeros([2 ** 28, 2], "cuda"); // 2 GiB on a device of 1 GiB (the emulator's)
    } catch (e) {
      message = `${e.constructor.name}: ${e.message}`;
    }
    const after = g.forward(bertBatches[0]).logits.toHost().length;
    out.oom = { message, worksAfter: after === 4 };
  }
  // 9. the Llama family (test/fixtures/decoders): causal-LM training steps (GQA, a sliding window smaller
  // than the sequence, q/k norms, biases), and a greedy decode through the KV cache of a left-padded batch
  {
    const DEC = path.join(__dirname, "fixtures", "decoders");
    out.decoders = {};
    for (const name of ["llama-gqa", "llama3-rope-bias", "mistral-window", "qwen2-bias", "qwen3-qknorm"]) {
      const g = JSON.parse(fs.readFileSync(path.join(DEC, `${name}.json`), "utf8"));
      const mk = () => tk.AutoModelForCausalLM.fromPretrained(path.join(DEC, name), { warn: null });
      const ids = Int32Array.from(g.input_ids.flat()), mask = Uint8Array.from(g.attention_mask.flat());
      const labels = Int32Array.from(ids, (id, i) => (mask[i] ? id : -100));
      const b = { inputIds: ids, attentionMask: mask, batchSize: g.B, seqLen: g.T, labels };
      // Gradients of one step (relative to each parameter's max |g|), then the losses of two AdamW steps.
      // Weights after AdamW are not compared: gradients that are zero in exact arithmetic (the bias of k in
      // rotary pairs that barely turn, llama3's scaled low frequencies) are float noise that Adam's 1/√v
      // turns into steps of ±lr, differently on each device.
      const c = await mk(), d = (await mk()).to("cuda");
      let maxGradRelDiff = 0;
      for (const m of [c, d]) (m.train(), m.forward(b).loss.backward());
      const gradsCuda = new Map([...d.namedParameters()].map(([n, p]) => [n, p.grad.toHost()]));
      for (const [n, p] of c.namedParameters()) {
        const a = p.grad.toHost(), scale = a.reduce((s, v) => Math.max(s, Math.abs(v)), 0);
        maxGradRelDiff = Math.max(maxGradRelDiff, maxDiff(a, gradsCuda.get(n)) / scale);
      }
      const r = { lossesCpu: train(await mk(), [b, b]), lossesCuda: train((await mk()).to("cuda"), [b, b]), maxGradRelDiff };
      // Greedy through the cache on both devices from the checkpoint's weights.
      const decode = (m) => {
        m.eval();
        const B = g.greedy.prompts.length, P = g.greedy.prompts[0].length, N = g.greedy.new_tokens, V = g.V;
        const cache = m.newCache(B, P + N), tokens = [], logits = [];
        let x = { inputIds: Int32Array.from(g.greedy.prompts.flat()), attentionMask: Uint8Array.from(g.greedy.prompt_mask.flat()), batchSize: B, seqLen: P, cache };
        tk.noGrad(() => {
          for (let s = 0; s < N; s++) {
            const l = tk.tidy(() => Float32Array.from(m.forward(x, { lastTokenOnly: true }).logits.toHost()));
            const next = Int32Array.from({ length: B }, (_, i) => l.subarray(i * V, (i + 1) * V).reduce((k, v, j, a) => (v > a[k] ? j : k), 0));
            tokens.push(Array.from(next));
            logits.push(...l);
            x = { inputIds: next, attentionMask: new Uint8Array(B).fill(1), batchSize: B, seqLen: 1, cache };
          }
        });
        cache.free();
        return { tokens: g.greedy.prompts.map((_, i) => tokens.map((t) => t[i])), logits };
      };
      const gc = decode(await mk()), gd = decode((await mk()).to("cuda"));
      r.greedy = { cpu: gc.tokens, cuda: gd.tokens, golden: g.greedy.tokens, maxLogitDiff: maxDiff(gc.logits, gd.logits) };
      out.decoders[name] = r;
    }
  }
  // 8. two runs on the device are bit-identical
  {
    const a = (await bert()).to("cuda"), b = (await bert()).to("cuda");
    const la = train(a, bertBatches), lb = train(b, bertBatches);
    out.repeat = { sameLosses: la.every((v, i) => Object.is(v, lb[i])), maxWeightDiff: maxWeightDiff(a, b) };
  }
  // 9. the Trainer's bf16 option on the device: tensor-core GEMMs whatever the host CPU has (autocast:
  // float32 weights and optimizer state), close to the float32 run but not equal to it
  {
    const tok = await tk.AutoTokenizer.fromPretrained(tk.EMBEDDED_MODEL);
    const texts = ["a gorgeous, witty film", "a dull mess", "warm and funny", "tedious and long", "a delight", "nothing works here"];
    const { features } = await tk.classificationFeatures(tok, texts.map((text, i) => ({ text, label: String(i % 2) })), { maxLength: 16, label2id: { 0: 0, 1: 1 } });
    const run = async (precision) => {
      const model = await bert();
      const losses = [];
      const trainer = new tk.Trainer({
        model, train: features, collate: (f) => tk.collate(f, { padId: tok.padTokenId }), epochs: 2, batchSize: 3, learningRate: 1e-3, seed: 1,
        device: "cuda", ...precision, callbacks: [{ onLog: (_a, _s, _c, { logs }) => { if (logs.loss !== undefined) losses.push(logs.loss); } }],
      });
      trainer.removeCallback(tk.ProgressCallback);
      const r = await trainer.train();
      return { losses, precision: r.precision, lossScale: trainer.scaler?.scale ?? null };
    };
    const f32 = await run({});
    // The CPU side on AVX2 kernels (no bf16 there): the device's precision must not depend on it.
    const isa = native.isa();
    if (native.availableIsas().includes("avx2")) native.setIsa("avx2");
    const cpuBf16 = native.bf16Available();
    const b16 = await run({ bf16: true });
    native.setIsa(isa);
    // fp16 autocast: tensor cores in IEEE half, loss scaling on by default; on the CPU a clear error.
    const h16 = await run({ fp16: true });
    let fp16OnCpu = "";
    try {
      new tk.Trainer({ model: await bert(), train: features, collate: (f) => tk.collate(f, { padId: tok.padTokenId }), fp16: true });
    } catch (e) {
      fp16OnCpu = e.message;
    }
    out.fp16 = { precision: h16.precision, losses: h16.losses, lossScale: h16.lossScale, onCpu: fp16OnCpu };
    out.bf16 = { cpuBf16, precision: b16.precision, lossesF32: f32.losses, lossesBf16: b16.losses, processPrecisionAfter: native.matmulPrecision() };
  }
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ error: `${e.constructor.name}: ${e.message}`, stack: e.stack }) + "\n");
  process.exit(1);
});

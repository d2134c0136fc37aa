// Where a training step's time goes: wraps every native call with a timer and prints each op's share
// of the step (the rest is JS: graph bookkeeping, pool, allocation). Random-weight BERT, as bench/train.mjs.
//   node bench/profile_train.mjs [base|mini|tiny] [full|lora|infer] [fp32|bf16] [steps] [batch]
import * as tk from "../dist/index.js";
import { table, fmt } from "./common.mjs";
import { randomBert, fullBatch, makeStep } from "./bert_step.mjs";

const [size = "mini", mode = "full", dtype = "fp32", stepsArg = "2", batchArg] = process.argv.slice(2);
const MODELS = { base: [12, 768, 12, 3072, 16], mini: [4, 256, 4, 1024, 32], tiny: [2, 128, 2, 512, 32] };
const [layers, hidden, heads, inter, B0] = MODELS[size];
const B = batchArg ? Number(batchArg) : B0;
const T = 128;
tk.native.setMatmulPrecision(dtype);
const model = randomBert({ layers, hidden, heads, inter, vocab: 30522 });
const batch = fullBatch(B, T, 30522);

const spent = new Map();
for (const name of Object.keys(tk.native)) {
  const f = tk.native[name];
  if (typeof f !== "function" || name.endsWith("Async")) continue;
  tk.native[name] = (...args) => {
    const t0 = process.hrtime.bigint();
    try {
      return f(...args);
    } finally {
      // a GEMM is named by its shape role: forward (transB), dX (plain), dW (transA)
      const a = args[0];
      const key = name === "gemm" ? `gemm ${a.transA ? "dW" : a.transB ? "fwd" : "dX"}` : name;
      spent.set(key, (spent.get(key) ?? 0) + Number(process.hrtime.bigint() - t0) / 1e9);
    }
  };
}

// the native functions are wrapped above, before the step is built, so every call is timed
const step = makeStep(model, batch, mode);
step(); // warm-up: pool filled, pages touched
spent.clear();
const steps = Number(stepsArg);
const t0 = process.hrtime.bigint();
for (let i = 0; i < steps; i++) step();
const total = Number(process.hrtime.bigint() - t0) / 1e9;
const native = [...spent.values()].reduce((a, b) => a + b, 0);
const rows = [...spent].sort((a, b) => b[1] - a[1]).map(([op, s]) => ({ op, "ms/step": fmt((s / steps) * 1e3, 1), "%": fmt((100 * s) / total) }));
rows.push({ op: "(JS: graph, pool, other)", "ms/step": fmt(((total - native) / steps) * 1e3, 1), "%": fmt((100 * (total - native)) / total) });
console.log(`BERT-${size} ${mode} ${dtype}, batch ${B}x${T}: ${fmt((total / steps) * 1e3, 0)} ms/step, peak RSS ${fmt(process.resourceUsage().maxRSS / 1024, 0)} MB`);
table(rows, ["op", "ms/step", "%"]);

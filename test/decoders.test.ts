// Parity of the Llama family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM and
// their *ForSequenceClassification) with plain-PyTorch references of HF's math at small random configs:
// logits, gradients of a sum-of-logits-times-R loss, and greedy continuations with and without the KV
// cache. The checkpoints are in HF's layouts (sharded with an index, tied, untied, BF16, a tied lm_head copy).
// References and checkpoints: test/fixtures/golden_decoders.py.
import * as path from "path";
import { AutoModelForCausalLM, AutoModelForSequenceClassification } from "../lib/models/auto";
import * as ops from "../lib/tensor/ops";
import { Tensor, tidy } from "../lib/tensor/tensor";
import { noGrad } from "../lib/tensor/autograd";
import { DECODER_GOLDENS, DIR, loadGolden, checkpointDir, batch, realDiff, maxDiff, compareGrads, greedyNoCache, greedyCached, R } from "./decoder_goldens";

const quiet = { warn: null };

describe.each(DECODER_GOLDENS.map((f) => [f.replace(/\.json$/, "")]))("%s: parity with PyTorch", (name) => {
  const g = loadGolden(`${name}.json`);
  const table: Record<string, string> = {};
  afterAll(() => console.log(`${g.name} (${g.cls}, ${g.weights.dtype}${g.weights.sharded ? ", sharded" : ""}${g.weights.tied ? ", tied" : ""}) max |Δ| vs PyTorch: ${Object.entries(table).map(([k, v]) => `${k} ${v}`).join(", ")}; float32 vs float64 in PyTorch: logits ${g.f64_check.logits_max_abs.toExponential(1)}`));

  test("the checkpoint loads as HF's class, every weight used; causal-LM logits at real positions within 1e-4", async () => {
    const m = await AutoModelForCausalLM.fromPretrained(checkpointDir(g), quiet);
    expect(m.architecture).toBe(g.cls);
    expect(m.loadReport!.files.map((f) => path.basename(f))).toEqual(g.weights.files);
    expect(m.loadReport!.initialized).toEqual([]);
    expect(m.loadReport!.unexpected).toEqual([]);
    expect([...m.namedParameters()].some(([n]) => n === "lm_head.weight")).toBe(!g.weights.tied);
    const d = noGrad(() => tidy(() => realDiff(m.forward(batch(g)).logits.toHost(), g)));
    table.logits = d.toExponential(1);
    expect(d).toBeLessThan(1e-4);
  });

  test("causal-LM gradients of sum(logits · R) within 1e-3 of PyTorch's (relative to each parameter's max |g|)", async () => {
    const m = await AutoModelForCausalLM.fromPretrained(checkpointDir(g), quiet);
    const real = g.real.flat(), r = R(g.B * g.T * g.V);
    for (let i = 0; i < r.length; i++) if (!real[Math.floor(i / g.V)]) r[i] = 0;
    m.zeroGrad();
    const loss = ops.weightedSum(m.forward(batch(g)).logits, r);
    expect(Math.abs(loss.item() - g.losses.causal.value)).toBeLessThan(1e-4 * Math.max(1, Math.abs(g.losses.causal.value)));
    loss.backward();
    table["grad(causal)"] = compareGrads(m, g.losses.causal.grads, "causal").toExponential(1);
  });

  test("greedy continuation: without the cache and through it (left-padded batch) both equal PyTorch's, token for token", async () => {
    const m = await AutoModelForCausalLM.fromPretrained(checkpointDir(g), quiet);
    const full = greedyNoCache(m, g), cached = greedyCached(m, g);
    expect(full.tokens).toEqual(g.greedy.tokens);
    expect(cached.tokens).toEqual(g.greedy.tokens);
    const flat = (l: Float32Array[]) => Float32Array.from(l.flatMap((x) => Array.from(x)));
    const dFull = maxDiff(flat(full.logits), g.greedy.step_logits), dCached = maxDiff(flat(cached.logits), g.greedy.step_logits);
    table["greedy logits (no cache)"] = dFull.toExponential(1);
    table["greedy logits (cache)"] = dCached.toExponential(1);
    expect(dFull).toBeLessThan(1e-4);
    expect(dCached).toBeLessThan(1e-4);
  });

  test(`${g.seqcls_cls}: score at the last real token, logits within 1e-4 and gradients within 1e-3`, async () => {
    const m = await AutoModelForSequenceClassification.fromPretrained(checkpointDir(g), { ...quiet, numLabels: g.num_labels });
    expect(m.architecture).toBe(g.seqcls_cls);
    expect(m.loadReport!.initialized).toEqual(["score.weight"]);
    m.loadStateDict(new Map([["score.weight", { shape: [g.num_labels, g.config.hidden_size as number], data: Float32Array.from(g.seqcls.score_weight) }]]), "golden", (n) => n === "score.weight");
    m.zeroGrad();
    const logits = m.forward(batch(g)).logits;
    const d = maxDiff(logits.toHost(), g.seqcls.logits);
    table["seqcls logits"] = d.toExponential(1);
    expect(d).toBeLessThan(1e-4);
    ops.weightedSum(logits, R(g.B * g.num_labels)).backward();
    table["grad(seqcls)"] = compareGrads(m, g.losses.seqcls.grads, "seqcls").toExponential(1);
  });
});

test("Qwen2ForSequenceClassification checkpoint (qwen2-seqcls: body + score) loads as that class and gives the golden logits", async () => {
  const g = loadGolden("qwen2-bias.json");
  const m = await AutoModelForSequenceClassification.fromPretrained(path.join(DIR, "qwen2-seqcls"), quiet);
  expect([m.architecture, m.config.numLabels, m.loadReport!.initialized, m.loadReport!.unexpected]).toEqual(["Qwen2ForSequenceClassification", 3, [], []]);
  const d = noGrad(() => tidy(() => maxDiff((m.forward(batch(g)).logits as Tensor).toHost(), g.seqcls.logits)));
  expect(d).toBeLessThan(1e-4);
});

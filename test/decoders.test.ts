// Parity of the Llama family (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM and
// their *ForSequenceClassification) with plain-PyTorch references of HF's math at small random configs:
// logits, gradients of a sum-of-logits-times-R loss, and greedy continuations with and without the KV
// cache. The checkpoints are in HF's layouts (sharded with an index, tied, untied, BF16, a tied lm_head copy).
// References and checkpoints: test/fixtures/golden_decoders.py.
import * as fs from "fs";
import * as path from "path";
import { AutoModelForCausalLM, AutoModelForSequenceClassification } from "../lib/models/auto";
import type { PreTrainedModel } from "../lib/models/pretrained";
import type { ModelForCausalLM } from "../lib/models/lm";
import * as ops from "../lib/tensor/ops";
import { Tensor, tidy } from "../lib/tensor/tensor";
import { noGrad } from "../lib/tensor/autograd";

interface Summary { shape: number[]; sum: number; abs_sum: number; sq_sum: number; max_abs: number; first: number[]; sample: number[] }
export interface DecoderGolden {
  name: string; cls: string; seqcls_cls: string; config: Record<string, unknown>;
  weights: { files: string[]; dtype: string; tied: boolean; sharded: boolean; extra_tied_copy: boolean };
  B: number; T: number; V: number; num_labels: number;
  input_ids: number[][]; attention_mask: number[][]; real: number[][]; logits: number[];
  losses: Record<"causal" | "seqcls", { value: number; grads: Record<string, Summary> }>;
  seqcls: { score_weight: number[]; last_token: number[]; logits: number[] };
  greedy: { prompts: number[][]; prompt_mask: number[][]; new_tokens: number; tokens: number[][]; step_logits: number[]; min_margin: number };
  f64_check: Record<string, number>;
}

const DIR = path.join(__dirname, "fixtures", "decoders");
export const DECODER_GOLDENS = fs.readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();
export const loadGolden = (f: string) => JSON.parse(fs.readFileSync(path.join(DIR, f), "utf8")) as DecoderGolden;
export const checkpointDir = (g: DecoderGolden) => path.join(DIR, g.name);
const R = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(0.37 * i + 0.1)));
const quiet = { warn: null };

export function batch(g: DecoderGolden) {
  return { inputIds: Int32Array.from(g.input_ids.flat()), attentionMask: g.attention_mask.flat(), batchSize: g.B, seqLen: g.T };
}

/** max |ours − theirs| over the real positions of (B, T, V) logits. */
function realDiff(ours: Float32Array, g: DecoderGolden): number {
  const real = g.real.flat();
  let d = 0;
  for (let r = 0; r < real.length; r++) if (real[r]) for (let v = 0; v < g.V; v++) d = Math.max(d, Math.abs(ours[r * g.V + v] - g.logits[r * g.V + v]));
  return d;
}
const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

/** Worst relative difference (to the parameter's max |g|) of every gradient summary; throws past 1e-3. */
function compareGrads(m: PreTrainedModel, grads: Record<string, Summary>, what: string): number {
  const params = new Map(m.namedParameters());
  expect([...params.keys()].sort()).toEqual(Object.keys(grads).sort());
  let worst = 0;
  for (const [name, s] of Object.entries(grads)) {
    const p = params.get(name)!;
    expect(p.shape).toEqual(s.shape);
    const ours = p.grad?.toHost() ?? new Float32Array(p.size);
    let sum = 0, abs = 0, sq = 0, mx = 0;
    for (const v of ours) (sum += v, abs += Math.abs(v), sq += v * v, mx = Math.max(mx, Math.abs(v)));
    if (s.max_abs === 0) {
      if (!(mx === 0)) throw new Error(`${what}: gradient of ${name} should be 0 (as in PyTorch), got max |g| ${mx}`);
      continue;
    }
    const rel = (a: number, b: number, ref: number) => Math.abs(a - b) / ref;
    const e = Math.max(
      rel(abs, s.abs_sum, s.abs_sum), rel(Math.sqrt(sq), Math.sqrt(s.sq_sum), Math.sqrt(s.sq_sum)), rel(mx, s.max_abs, s.max_abs), rel(sum, s.sum, s.abs_sum),
      ...s.first.map((v, k) => rel(ours[k], v, s.max_abs)), ...s.sample.map((v, k) => rel(ours[(k * 7919) % ours.length], v, s.max_abs)),
    );
    if (!(e < 1e-3)) throw new Error(`${what}: gradient of ${name} differs from PyTorch by ${e.toExponential(2)} (relative to its max |g| ${s.max_abs.toExponential(2)})`);
    worst = Math.max(worst, e);
  }
  return worst;
}

/** HF's greedy continuation of each prompt alone, recomputing the whole sequence each step (no cache). */
export function greedyNoCache(m: ModelForCausalLM, g: DecoderGolden): { tokens: number[][]; logits: Float32Array[] } {
  const tokens: number[][] = [], logits: Float32Array[] = [];
  noGrad(() => g.greedy.prompts.forEach((row, b) => {
    const seq = row.filter((_, t) => g.greedy.prompt_mask[b][t]);
    const out: number[] = [];
    for (let s = 0; s < g.greedy.new_tokens; s++) {
      const l = tidy(() => Float32Array.from(m.forward({ inputIds: Int32Array.from(seq), batchSize: 1, seqLen: seq.length }, { lastTokenOnly: true }).logits.toHost()));
      const t = argmax(l);
      out.push(t), seq.push(t), logits.push(l);
    }
    tokens.push(out);
  }));
  return { tokens, logits };
}

const argmax = (l: Float32Array) => l.reduce((best, v, i) => (v > l[best] ? i : best), 0);

/** The left-padded batch of prompts through the KV cache: a prefill, then one token per row per step. */
export function greedyCached(m: ModelForCausalLM, g: DecoderGolden): { tokens: number[][]; logits: Float32Array[] } {
  const B = g.greedy.prompts.length, P = g.greedy.prompts[0].length, N = g.greedy.new_tokens, V = g.V;
  const tokens: number[][] = Array.from({ length: B }, () => []), logits: Float32Array[][] = Array.from({ length: B }, () => []);
  const cache = m.newCache(B, P + N);
  try {
    noGrad(() => {
      let x = { inputIds: Int32Array.from(g.greedy.prompts.flat()), attentionMask: g.greedy.prompt_mask.flat(), batchSize: B, seqLen: P, cache };
      for (let s = 0; s < N; s++) {
        const l = tidy(() => Float32Array.from(m.forward(x, { lastTokenOnly: true }).logits.toHost()));
        const next = new Int32Array(B);
        for (let b = 0; b < B; b++) {
          const row = l.slice(b * V, (b + 1) * V);
          next[b] = argmax(row);
          tokens[b].push(next[b]);
          logits[b].push(row);
        }
        x = { inputIds: next, attentionMask: new Array(B).fill(1), batchSize: B, seqLen: 1, cache };
      }
    });
  } finally {
    cache.free();
  }
  return { tokens, logits: logits.flat() };
}

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

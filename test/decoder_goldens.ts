// The Llama-family goldens of test/fixtures/golden_decoders.py and what the tests that read them share:
// the batch, greedy decoding with and without the KV cache, gradient comparison.
import * as fs from "fs";
import * as path from "path";
import type { PreTrainedModel } from "../lib/models/pretrained";
import type { ModelForCausalLM } from "../lib/models/lm";
import { tidy } from "../lib/tensor/tensor";
import { noGrad } from "../lib/tensor/autograd";

export interface Summary { shape: number[]; sum: number; abs_sum: number; sq_sum: number; max_abs: number; first: number[]; sample: number[] }
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

export const DIR = path.join(__dirname, "fixtures", "decoders");
export const DECODER_GOLDENS = fs.readdirSync(DIR).filter((f) => f.endsWith(".json")).sort();
export const loadGolden = (f: string) => JSON.parse(fs.readFileSync(path.join(DIR, f), "utf8")) as DecoderGolden;
export const checkpointDir = (g: DecoderGolden) => path.join(DIR, g.name);
export const R = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.fround(Math.sin(0.37 * i + 0.1)));

export function batch(g: DecoderGolden) {
  return { inputIds: Int32Array.from(g.input_ids.flat()), attentionMask: g.attention_mask.flat(), batchSize: g.B, seqLen: g.T };
}

/** max |ours − theirs| over the real positions of (B, T, V) logits. */
export function realDiff(ours: Float32Array, g: DecoderGolden): number {
  const real = g.real.flat();
  let d = 0;
  for (let r = 0; r < real.length; r++) if (real[r]) for (let v = 0; v < g.V; v++) d = Math.max(d, Math.abs(ours[r * g.V + v] - g.logits[r * g.V + v]));
  return d;
}
export const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  expect(a.length).toBe(b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

/** Worst relative difference (to the parameter's max |g|) of every gradient summary; throws past 1e-3. */
export function compareGrads(m: PreTrainedModel, grads: Record<string, Summary>, what: string): number {
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


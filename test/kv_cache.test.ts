// A causal LM with a key/value cache (generation) gives the logits of the full forward: GPT-2 (the tiny
// fixture), a left-padded batch, a prefill then one token at a time.
import * as path from "path";
import { AutoModelForCausalLM } from "../lib/models/auto";
import { noGrad } from "../lib/tensor/autograd";
import { tidy } from "../lib/tensor/tensor";

const dir = path.join(__dirname, "fixtures", "models", "gpt2-tiny-random");

test("GPT-2: prefill + one token at a time through the cache equals the full forward at every real position", async () => {
  const model = await AutoModelForCausalLM.fromPretrained(dir, { warn: null });
  model.eval();
  const B = 2, T = 9, P = 4;
  // Row 0 is left-padded by 3 (pad id 0, mask 0); row 1 is full.
  const ids = Int32Array.from([0, 0, 0, 17, 42, 8, 99, 3, 11, /**/ 5, 17, 42, 8, 99, 3, 11, 12, 13]);
  const mask = Uint8Array.from([0, 0, 0, 1, 1, 1, 1, 1, 1, /**/ 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  const V = model.config.vocabSize;
  noGrad(() => {
    // The reference: one forward per row over its real tokens only (positions 0.. as HF's generate gives them).
    const full = [0, 1].map((b) => {
      const real = Array.from(ids.subarray(b * T, (b + 1) * T)).filter((_, t) => mask[b * T + t]);
      return tidy(() => Float32Array.from(model.forward({ inputIds: Int32Array.from(real), batchSize: 1, seqLen: real.length }).logits.toHost()));
    });
    const cache = model.newCache(B, 16);
    const sub = (t0: number, t1: number) => {
      const n = t1 - t0, a = new Int32Array(B * n), m = new Uint8Array(B * n);
      for (let b = 0; b < B; b++) {
        a.set(ids.subarray(b * T + t0, b * T + t1), b * n);
        m.set(mask.subarray(b * T + t0, b * T + t1), b * n);
      }
      return { inputIds: a, attentionMask: m, batchSize: B, seqLen: n, cache };
    };
    const check = (logits: Float32Array, t: number) => {
      for (let b = 0; b < B; b++) {
        const realBefore = Array.from(mask.subarray(b * T, b * T + t + 1)).reduce((s, x) => s + x, 0);
        const ref = full[b].subarray((realBefore - 1) * V, realBefore * V);
        const got = logits.subarray(b * V, (b + 1) * V);
        let d = 0;
        for (let i = 0; i < V; i++) d = Math.max(d, Math.abs(got[i] - ref[i]));
        expect(d).toBeLessThan(1e-4);
      }
    };
    check(tidy(() => Float32Array.from(model.forward(sub(0, P), { lastTokenOnly: true }).logits.toHost())), P - 1);
    for (let t = P; t < T; t++) check(tidy(() => Float32Array.from(model.forward(sub(t, t + 1), { lastTokenOnly: true }).logits.toHost())), t);
    expect(cache.length).toBe(T);
    cache.free();
  });
});

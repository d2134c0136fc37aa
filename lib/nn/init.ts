// Fresh weights as Hugging Face's _init_weights makes them: normal(0, std) for Linear and Embedding
// weights, zero biases, LayerNorm weight 1 and bias 0, RMSNorm weight 1. Seeded, so a run is reproducible. The normal
// values are drawn on the host (one sequential stream, the same on every device) and copied in once.
import { Module, Parameter } from "./module";
import { Linear, Embedding, LayerNorm, RMSNorm, Dropout } from "./layers";

export function normalFill(a: Float32Array, std: number, seed: number): void {
  let s = seed >>> 0 || 1;
  const next = () => {
    // xorshift32 → (0, 1)
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    return (s + 0.5) / 4294967296;
  };
  for (let i = 0; i < a.length; i += 2) {
    const r = Math.sqrt(-2 * Math.log(next())) * std, th = 2 * Math.PI * next();
    a[i] = r * Math.cos(th);
    if (i + 1 < a.length) a[i + 1] = r * Math.sin(th);
  }
}

function normal(p: Parameter, std: number, seed: number): void {
  const a = new Float32Array(p.size);
  normalFill(a, std, seed);
  p.copyFrom(a);
}

/** Initialises every parameter of `m` whose full name is in `names` (all when names is null). */
export function initWeights(m: Module, std: number, seed: number, names: Set<string> | null = null, prefix = ""): void {
  let k = 0;
  for (const [name, mod] of m.namedModules(prefix)) {
    // Dropouts hold no weights; skipping them keeps each weight's seed what it was before they became
    // children, so a model built from a seed (models/brown-bert's recipe, say) is still the same model.
    if (mod instanceof Dropout) continue;
    const want = (p: string) => names === null || names.has(name ? `${name}.${p}` : p);
    k++;
    if (mod instanceof Linear) {
      if (want("weight")) normal(mod.weight, std, seed * 7919 + k);
      if (mod.bias && want("bias")) mod.bias.storage.fill(0);
    } else if (mod instanceof Embedding) {
      if (want("weight")) normal(mod.weight, std, seed * 7919 + k);
    } else if (mod instanceof LayerNorm) {
      if (want("weight")) mod.weight.storage.fill(1);
      if (want("bias")) mod.bias.storage.fill(0);
    } else if (mod instanceof RMSNorm) {
      if (want("weight")) mod.weight.storage.fill(1);
    }
  }
}

// What an architecture's spec says about a parameter, by its name alone: its layer (layer-wise learning
// rates, freezing the bottom layers, gradual unfreezing) and whether it takes weight decay.
import type { ArchSpec } from "./spec";

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Layer of a parameter: 0 for the embeddings, 1..L for the transformer layers, L+1 for anything else
 * (heads, poolers, final norms); null when it is none of this architecture's layers or embeddings.
 */
export function layerIndex(spec: ArchSpec, name: string): number | null {
  const m = new RegExp(`(?:^|\\.)${escape(spec.layers.list)}\\.(\\d+)\\.`).exec(name);
  if (m) return Number(m[1]) + 1;
  if (new RegExp(`(?:^|\\.)(?:${spec.layers.embeddings.map(escape).join("|")})\\.`).test(name)) return 0;
  return null;
}

/** HF Trainer's get_decay_parameter_names: no decay for names matching these (lower-cased). */
const NO_DECAY_PATTERNS = [/bias/, /layernorm/, /rmsnorm/, /(?:^|\.)norm(?:$|\.)/, /_norm(?:$|\.)/];

/**
 * As HF's Trainer: no weight decay for biases and norm weights. It finds the norms by name pattern and by
 * type (nn.LayerNorm); by name alone, the spec's `norms` also catch those its patterns miss (GPT-2's ln_1).
 */
export function noWeightDecay(spec: ArchSpec | null, name: string): boolean {
  const lower = name.toLowerCase();
  if (NO_DECAY_PATTERNS.some((re) => re.test(lower))) return true;
  const parts = name.split(".");
  return spec !== null && parts.length > 1 && spec.norms.includes(parts[parts.length - 2]);
}

// Which parameters train: full fine-tuning, feature extraction (frozen body), freezing the embeddings
// and/or the bottom n layers, and ULMFiT's gradual unfreezing. Frozen parameters get no gradient
// buffer and no optimizer state, and a frozen body records no graph, so it keeps no activations.
import { TunekitError } from "../errors";
import { PreTrainedModel } from "../models/pretrained";
import { layerOf } from "./optimizer";

export interface FreezeOptions {
  /** Freeze the whole body: only the head trains (feature extraction). */
  body?: boolean;
  /** Freeze the embedding tables. */
  embeddings?: boolean;
  /** Freeze the bottom n transformer layers. */
  layers?: number;
}

/**
 * Sets requiresGrad per the options (everything else trainable). Returns the trainable parameter count.
 * Weights that were freshly initialised at load (a pooler an MLM checkpoint lacks) always train:
 * freezing random weights never helps.
 */
export function freeze(model: PreTrainedModel, o: FreezeOptions): number {
  const L = model.body.numLayers;
  const fresh = new Set(model.loadReport?.initialized ?? []);
  if (o.layers !== undefined && !(Number.isInteger(o.layers) && o.layers >= 0 && o.layers <= L))
    throw new TunekitError(`freeze: layers = ${o.layers}, expected an integer in 0..${L} (the model has ${L} layers)`);
  for (const [name, p] of model.namedParameters()) {
    const inBody = model.isBase || name.startsWith(`${model.prefix}.`);
    const layer = layerOf(name, L, model.config.modelType); // 0 embeddings, 1..L layers, L+1 other
    let frozen = false;
    if (inBody && o.body) frozen = true;
    if (inBody && o.embeddings && layer === 0) frozen = true;
    if (inBody && o.layers && layer >= 1 && layer <= o.layers) frozen = true;
    p.requiresGrad = !frozen || fresh.has(model.fullName(name));
  }
  return trainableCount(model);
}

/**
 * Gradual unfreezing (ULMFiT): in epoch e (0-based) the head and the top e layer groups train; layer
 * groups are the transformer layers from the top, then the embeddings.
 */
export function unfreezeTop(model: PreTrainedModel, groups: number): number {
  const L = model.body.numLayers;
  for (const [name, p] of model.namedParameters()) {
    const inBody = model.isBase || name.startsWith(`${model.prefix}.`);
    const layer = layerOf(name, L, model.config.modelType);
    // Non-layer body parts (pooler, final LayerNorm) sit with the head.
    const groupFromTop = !inBody || layer > L ? 0 : L + 1 - layer; // top layer → 1, embeddings → L+1
    p.requiresGrad = groupFromTop <= groups;
  }
  return trainableCount(model);
}

export function trainableCount(model: PreTrainedModel): number {
  let n = 0;
  for (const p of model.parameters()) if (p.requiresGrad) n += p.size;
  return n;
}

export function parameterCount(model: PreTrainedModel): number {
  return model.parameters().reduce((n, p) => n + p.size, 0);
}

// GPT-2 body (modeling_gpt2.py), parameter names as HF's. HF stores the Conv1D weights (c_attn,
// c_proj, c_fc) as [in, out]; tunekit keeps every linear weight [out, in], so the checkpoint key map
// transposes these on load and back on save (checkpoint.transposed in ./index.ts).
import { Tensor } from "../../tensor/tensor";
import * as ops from "../../tensor/ops";
import { Module, Context } from "../../nn/module";
import { Linear, Embedding, LayerNorm, Dropout } from "../../nn/layers";
import { ModuleList } from "../../nn/containers";
import { ModelInputs, checkInputs } from "../inputs";
import { ModelConfig, geluMode } from "../config";
import type { EncoderOutput } from "../spec";
import { KVCache, cachedAttention } from "../cache";
import type { Device } from "../../tensor/storage";

class GPT2Attention extends Module {
  readonly c_attn: Linear;
  readonly c_proj: Linear;
  /** On the attention probabilities (attn_pdrop), applied inside the fused attention kernel. */
  readonly attn_dropout: Dropout;
  readonly resid_dropout: Dropout;
  constructor(readonly c: ModelConfig, readonly ctx: Context, p: string) {
    super();
    const E = c.hiddenSize;
    this.c_attn = this.child("c_attn", new Linear(E, 3 * E, true, `${p}.c_attn`));
    this.c_proj = this.child("c_proj", new Linear(E, E, true, `${p}.c_proj`));
    this.attn_dropout = this.child("attn_dropout", new Dropout(c.attentionDropout, ctx));
    this.resid_dropout = this.child("resid_dropout", new Dropout(c.hiddenDropout, ctx));
  }
  forward(x: Tensor, mask: Uint8Array, B: number, T: number, cache?: { kv: KVCache; layer: number }): Tensor {
    const E = this.c.hiddenSize;
    const qkv = this.c_attn.forward(x); // (B, T, 3E): q | k | v, read in place
    const [q, k, v] = [ops.heads(qkv, 0), ops.heads(qkv, E), ops.heads(qkv, 2 * E)];
    let a: Tensor;
    if (cache) {
      cache.kv.append(cache.layer, k, v, T);
      a = cachedAttention(q, k, v, cache.kv, cache.layer, T, this.c.numHeads);
    } else {
      a = ops.attention(q, k, v, B, T, E, {
        numHeads: this.c.numHeads, keyMask: mask, causal: true, dropoutP: this.attn_dropout.rate, training: this.attn_dropout.training, gen: this.ctx.gen,
      });
    }
    return this.resid_dropout.forward(this.c_proj.forward(a));
  }
}

class GPT2MLP extends Module {
  readonly c_fc: Linear;
  readonly c_proj: Linear;
  readonly dropout: Dropout;
  constructor(readonly c: ModelConfig, ctx: Context, p: string) {
    super();
    this.c_fc = this.child("c_fc", new Linear(c.hiddenSize, c.intermediateSize, true, `${p}.c_fc`));
    this.c_proj = this.child("c_proj", new Linear(c.intermediateSize, c.hiddenSize, true, `${p}.c_proj`));
    this.dropout = this.child("dropout", new Dropout(c.hiddenDropout, ctx));
  }
  forward(x: Tensor): Tensor {
    return this.dropout.forward(this.c_proj.forward(ops.gelu(this.c_fc.forward(x), geluMode(this.c))));
  }
}

class GPT2Block extends Module {
  readonly ln_1: LayerNorm;
  readonly attn: GPT2Attention;
  readonly ln_2: LayerNorm;
  readonly mlp: GPT2MLP;
  constructor(c: ModelConfig, ctx: Context, p: string) {
    super();
    this.ln_1 = this.child("ln_1", new LayerNorm(c.hiddenSize, c.layerNormEps, `${p}.ln_1`));
    this.attn = this.child("attn", new GPT2Attention(c, ctx, `${p}.attn`));
    this.ln_2 = this.child("ln_2", new LayerNorm(c.hiddenSize, c.layerNormEps, `${p}.ln_2`));
    this.mlp = this.child("mlp", new GPT2MLP(c, ctx, `${p}.mlp`));
  }
  forward(h: Tensor, mask: Uint8Array, B: number, T: number, cache?: { kv: KVCache; layer: number }): Tensor {
    const a = ops.add(h, this.attn.forward(this.ln_1.forward(h), mask, B, T, cache));
    return ops.add(a, this.mlp.forward(this.ln_2.forward(a)));
  }
}

export class GPT2Model extends Module {
  readonly wte: Embedding;
  readonly wpe: Embedding;
  readonly drop: Dropout;
  readonly h: ModuleList<GPT2Block>;
  readonly ln_f: LayerNorm;
  constructor(readonly config: ModelConfig, readonly ctx: Context = { gen: new ops.Generator(42) }) {
    super();
    this.wte = this.child("wte", new Embedding(config.vocabSize, config.hiddenSize));
    this.wpe = this.child("wpe", new Embedding(config.maxPositions, config.hiddenSize));
    this.drop = this.child("drop", new Dropout(config.embeddingDropout, ctx));
    this.h = this.child("h", new ModuleList(Array.from({ length: config.numLayers }, (_, i) => new GPT2Block(config, ctx, `h.${i}`))));
    this.ln_f = this.child("ln_f", new LayerNorm(config.hiddenSize, config.layerNormEps, "ln_f"));
  }
  get numLayers(): number {
    return this.h.items.length;
  }
  forward(x: ModelInputs): EncoderOutput {
    const mask = checkInputs(x, "GPT2Model", this.config.maxPositions, this.config.vocabSize);
    const { batchSize: B, seqLen: T } = x;
    // Training: positions 0..T−1 (right padding). Generation: from the cache (left padding, HF's
    // cumsum(attention_mask) − 1).
    let pos: Int32Array;
    if (x.cache) pos = x.cache.begin(mask, T);
    else {
      pos = new Int32Array(B * T);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = t;
    }
    let h = this.drop.forward(ops.add(this.wte.forward(x.inputIds, [B, T]), this.wpe.forward(pos, [B, T])));
    this.h.items.forEach((block, layer) => {
      h = block.forward(h, mask, B, T, x.cache && { kv: x.cache, layer });
    });
    x.cache?.end(T);
    return { lastHiddenState: this.ln_f.forward(h), mask };
  }

  newCache(B: number, Tmax: number, device: Device): KVCache {
    const H = this.config.numHeads;
    return new KVCache(B, Tmax, this.numLayers, H, this.config.hiddenSize / H, device);
  }
}

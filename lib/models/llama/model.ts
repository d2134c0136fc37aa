// The Llama family's body (modeling_llama.py; Mistral, Qwen2 and Qwen3 differ only in DecoderSettings):
// embed_tokens, pre-norm layers of grouped-query attention with rotary positions and a SwiGLU MLP, a final
// RMSNorm. Parameter names as HF's. Training positions are 0..T−1 for every row (HF without position_ids);
// generation reads them from the KV cache (left padding: HF's cumsum(attention_mask) − 1).
import { Tensor } from "../../tensor/tensor";
import * as ops from "../../tensor/ops";
import { rope, ropeTables, swiglu, RopeTables } from "../../tensor/decoder_ops";
import { Module, Context } from "../../nn/module";
import { Linear, Embedding, RMSNorm, Dropout } from "../../nn/layers";
import { ModuleList } from "../../nn/containers";
import { ModelInputs, checkInputs } from "../inputs";
import type { ModelConfig } from "../config";
import type { EncoderOutput } from "../spec";
import { KVCache, cachedAttention } from "../cache";
import { ropeInvFreq } from "../rope";
import type { Device } from "../../tensor/storage";
import type { DecoderSettings } from "./config";

interface Step {
  mask: Uint8Array;
  B: number;
  T: number;
  positions: Int32Array;
  rope: RopeTables;
  cache?: KVCache;
}

class LlamaAttention extends Module {
  readonly q_proj: Linear;
  readonly k_proj: Linear;
  readonly v_proj: Linear;
  readonly o_proj: Linear;
  readonly q_norm: RMSNorm | null = null;
  readonly k_norm: RMSNorm | null = null;
  /** On the attention probabilities (attention_dropout, a float in HF), applied inside the fused kernel. */
  readonly attention_dropout: Dropout;
  constructor(readonly c: ModelConfig, readonly s: DecoderSettings, readonly ctx: Context, readonly layer: number, p: string) {
    super();
    const E = c.hiddenSize, D = s.headDim, H = c.numHeads, Hkv = s.numKvHeads;
    this.q_proj = this.child("q_proj", new Linear(E, H * D, s.qkvBias, `${p}.q_proj`));
    this.k_proj = this.child("k_proj", new Linear(E, Hkv * D, s.qkvBias, `${p}.k_proj`));
    this.v_proj = this.child("v_proj", new Linear(E, Hkv * D, s.qkvBias, `${p}.v_proj`));
    this.o_proj = this.child("o_proj", new Linear(H * D, E, s.oBias, `${p}.o_proj`));
    if (s.qkNorm) {
      this.q_norm = this.child("q_norm", new RMSNorm(D, c.layerNormEps, `${p}.q_norm`));
      this.k_norm = this.child("k_norm", new RMSNorm(D, c.layerNormEps, `${p}.k_norm`));
    }
    this.attention_dropout = this.child("attention_dropout", new Dropout(c.attentionDropout, ctx));
  }

  forward(x: Tensor, st: Step): Tensor {
    const H = this.c.numHeads, Hkv = this.s.numKvHeads, D = this.s.headDim, window = this.s.windows[this.layer];
    let q = this.q_proj.forward(x), k = this.k_proj.forward(x);
    const v = this.v_proj.forward(x);
    if (this.q_norm && this.k_norm) {
      q = this.q_norm.forward(q);
      k = this.k_norm.forward(k);
    }
    q = rope(q, H, st.positions, st.rope);
    k = rope(k, Hkv, st.positions, st.rope);
    const [qh, kh, vh] = [ops.heads(q), ops.heads(k), ops.heads(v)];
    let a: Tensor;
    if (st.cache) {
      st.cache.append(this.layer, kh, vh, st.T);
      a = cachedAttention(qh, kh, vh, st.cache, this.layer, st.T, H, window);
    } else {
      a = ops.attention(qh, kh, vh, st.B, st.T, H * D, {
        numHeads: H, numKvHeads: Hkv, window, keyMask: st.mask, causal: true,
        dropoutP: this.attention_dropout.rate, training: this.attention_dropout.training, gen: this.ctx.gen,
      });
    }
    return this.o_proj.forward(a);
  }
}

class LlamaMLP extends Module {
  readonly gate_proj: Linear;
  readonly up_proj: Linear;
  readonly down_proj: Linear;
  constructor(c: ModelConfig, s: DecoderSettings, p: string) {
    super();
    this.gate_proj = this.child("gate_proj", new Linear(c.hiddenSize, c.intermediateSize, s.mlpBias, `${p}.gate_proj`));
    this.up_proj = this.child("up_proj", new Linear(c.hiddenSize, c.intermediateSize, s.mlpBias, `${p}.up_proj`));
    this.down_proj = this.child("down_proj", new Linear(c.intermediateSize, c.hiddenSize, s.mlpBias, `${p}.down_proj`));
  }
  forward(x: Tensor): Tensor {
    return this.down_proj.forward(swiglu(this.gate_proj.forward(x), this.up_proj.forward(x)));
  }
}

class LlamaDecoderLayer extends Module {
  readonly self_attn: LlamaAttention;
  readonly mlp: LlamaMLP;
  readonly input_layernorm: RMSNorm;
  readonly post_attention_layernorm: RMSNorm;
  constructor(c: ModelConfig, s: DecoderSettings, ctx: Context, layer: number) {
    super();
    const p = `layers.${layer}`;
    this.self_attn = this.child("self_attn", new LlamaAttention(c, s, ctx, layer, `${p}.self_attn`));
    this.mlp = this.child("mlp", new LlamaMLP(c, s, `${p}.mlp`));
    this.input_layernorm = this.child("input_layernorm", new RMSNorm(c.hiddenSize, c.layerNormEps, `${p}.input_layernorm`));
    this.post_attention_layernorm = this.child("post_attention_layernorm", new RMSNorm(c.hiddenSize, c.layerNormEps, `${p}.post_attention_layernorm`));
  }
  forward(h: Tensor, st: Step): Tensor {
    const a = ops.add(h, this.self_attn.forward(this.input_layernorm.forward(h), st));
    return ops.add(a, this.mlp.forward(this.post_attention_layernorm.forward(a)));
  }
}

/** LlamaModel / MistralModel / Qwen2Model / Qwen3Model. */
export class LlamaModel extends Module {
  readonly embed_tokens: Embedding;
  readonly layers: ModuleList<LlamaDecoderLayer>;
  readonly norm: RMSNorm;
  private readonly invFreq: Float32Array;
  // cos/sin tables on the parameters' device, grown (doubling) when a longer sequence comes. Old tables are
  // not released: a graph recorded before the growth may still read them in its backward.
  private rope: RopeTables | null = null;

  constructor(readonly config: ModelConfig, readonly settings: DecoderSettings, readonly name: string, readonly ctx: Context = { gen: new ops.Generator(42) }) {
    super();
    // HF builds embed_tokens with padding_idx = pad_token_id: that row gets no gradient from the lookup.
    this.embed_tokens = this.child("embed_tokens", new Embedding(config.vocabSize, config.hiddenSize, config.padTokenId));
    this.layers = this.child("layers", new ModuleList(Array.from({ length: config.numLayers }, (_, i) => new LlamaDecoderLayer(config, settings, ctx, i))));
    this.norm = this.child("norm", new RMSNorm(config.hiddenSize, config.layerNormEps, "norm"));
    this.invFreq = ropeInvFreq(settings.headDim, settings.ropeTheta, settings.ropeScaling);
  }

  get numLayers(): number {
    return this.layers.items.length;
  }

  /** Tables covering positions 0..P−1 on `device`. */
  private ropeTables(P: number, device: Device): RopeTables {
    const t = this.rope;
    if (t && t.positions >= P && t.cos.device === device) return t;
    const n = Math.min(this.config.maxPositions, Math.max(P, 2 * (t?.positions ?? 0), 1024));
    return (this.rope = ropeTables(this.invFreq, Math.max(n, P), device));
  }

  forward(x: ModelInputs): EncoderOutput {
    const mask = checkInputs(x, this.name, this.config.maxPositions, this.config.vocabSize);
    const { batchSize: B, seqLen: T } = x;
    let positions: Int32Array;
    if (x.cache) positions = x.cache.begin(mask, T);
    else {
      positions = new Int32Array(B * T);
      for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) positions[b * T + t] = t;
    }
    const device = this.embed_tokens.weight.device;
    const st: Step = { mask, B, T, positions, rope: this.ropeTables(x.cache ? x.cache.Tmax : T, device), cache: x.cache };
    let h = this.embed_tokens.forward(x.inputIds, [B, T]);
    for (const layer of this.layers.items) h = layer.forward(h, st);
    x.cache?.end(T);
    return { lastHiddenState: this.norm.forward(h), mask };
  }

  newCache(B: number, Tmax: number, device: Device): KVCache {
    return new KVCache(B, Tmax, this.numLayers, this.settings.numKvHeads, this.settings.headDim, device);
  }
}

// DistilBERT body (modeling_distilbert.py), parameter names as HF's.
import { Tensor } from "../../tensor/tensor";
import * as ops from "../../tensor/ops";
import { Module, Context } from "../../nn/module";
import { Linear, Embedding, LayerNorm, Dropout } from "../../nn/layers";
import { ModuleList } from "../../nn/containers";
import { ModelInputs, checkInputs } from "../inputs";
import { ModelConfig, geluMode } from "../config";
import type { EncoderOutput } from "../spec";

class DistilEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;
  constructor(c: ModelConfig, ctx: Context) {
    super();
    this.word_embeddings = this.child("word_embeddings", new Embedding(c.vocabSize, c.hiddenSize, c.padTokenId));
    this.position_embeddings = this.child("position_embeddings", new Embedding(c.maxPositions, c.hiddenSize));
    this.LayerNorm = this.child("LayerNorm", new LayerNorm(c.hiddenSize, 1e-12, "embeddings.LayerNorm"));
    this.dropout = this.child("dropout", new Dropout(c.embeddingDropout, ctx));
  }
  forward(x: ModelInputs): Tensor {
    const { batchSize: B, seqLen: T } = x;
    const pos = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = t;
    const e = ops.add(this.word_embeddings.forward(x.inputIds, [B, T]), this.position_embeddings.forward(pos, [B, T]));
    return this.dropout.forward(this.LayerNorm.forward(e));
  }
}

class MultiHeadSelfAttention extends Module {
  readonly q_lin: Linear;
  readonly k_lin: Linear;
  readonly v_lin: Linear;
  readonly out_lin: Linear;
  /** On the attention probabilities (attention_dropout), applied inside the fused attention kernel. */
  readonly dropout: Dropout;
  constructor(readonly c: ModelConfig, readonly ctx: Context, p: string) {
    super();
    const H = c.hiddenSize;
    this.q_lin = this.child("q_lin", new Linear(H, H, true, `${p}.q_lin`));
    this.k_lin = this.child("k_lin", new Linear(H, H, true, `${p}.k_lin`));
    this.v_lin = this.child("v_lin", new Linear(H, H, true, `${p}.v_lin`));
    this.out_lin = this.child("out_lin", new Linear(H, H, true, `${p}.out_lin`));
    this.dropout = this.child("dropout", new Dropout(c.attentionDropout, ctx));
  }
  forward(h: Tensor, mask: Uint8Array, B: number, T: number): Tensor {
    const q = this.q_lin.forward(h), k = this.k_lin.forward(h), v = this.v_lin.forward(h);
    const a = ops.attention(ops.heads(q), ops.heads(k), ops.heads(v), B, T, this.c.hiddenSize, {
      numHeads: this.c.numHeads, keyMask: mask, causal: false, dropoutP: this.dropout.rate, training: this.dropout.training, gen: this.ctx.gen,
    });
    return this.out_lin.forward(a);
  }
}

class FFN extends Module {
  readonly lin1: Linear;
  readonly lin2: Linear;
  readonly dropout: Dropout;
  constructor(readonly c: ModelConfig, ctx: Context, p: string) {
    super();
    this.lin1 = this.child("lin1", new Linear(c.hiddenSize, c.intermediateSize, true, `${p}.lin1`));
    this.lin2 = this.child("lin2", new Linear(c.intermediateSize, c.hiddenSize, true, `${p}.lin2`));
    this.dropout = this.child("dropout", new Dropout(c.hiddenDropout, ctx));
  }
  forward(x: Tensor): Tensor {
    return this.dropout.forward(this.lin2.forward(ops.gelu(this.lin1.forward(x), geluMode(this.c))));
  }
}

class TransformerBlock extends Module {
  readonly attention: MultiHeadSelfAttention;
  readonly sa_layer_norm: LayerNorm;
  readonly ffn: FFN;
  readonly output_layer_norm: LayerNorm;
  constructor(c: ModelConfig, ctx: Context, p: string) {
    super();
    this.attention = this.child("attention", new MultiHeadSelfAttention(c, ctx, `${p}.attention`));
    this.sa_layer_norm = this.child("sa_layer_norm", new LayerNorm(c.hiddenSize, 1e-12, `${p}.sa_layer_norm`));
    this.ffn = this.child("ffn", new FFN(c, ctx, `${p}.ffn`));
    this.output_layer_norm = this.child("output_layer_norm", new LayerNorm(c.hiddenSize, 1e-12, `${p}.output_layer_norm`));
  }
  forward(h: Tensor, mask: Uint8Array, B: number, T: number): Tensor {
    const sa = this.sa_layer_norm.forward(ops.add(this.attention.forward(h, mask, B, T), h));
    return this.output_layer_norm.forward(ops.add(this.ffn.forward(sa), sa));
  }
}

class Transformer extends Module {
  readonly layer: ModuleList<TransformerBlock>;
  constructor(c: ModelConfig, ctx: Context) {
    super();
    this.layer = this.child("layer", new ModuleList(Array.from({ length: c.numLayers }, (_, i) => new TransformerBlock(c, ctx, `transformer.layer.${i}`))));
  }
}

export class DistilBertModel extends Module {
  readonly embeddings: DistilEmbeddings;
  readonly transformer: Transformer;
  constructor(readonly config: ModelConfig, readonly ctx: Context = { gen: new ops.Generator(42) }) {
    super();
    this.embeddings = this.child("embeddings", new DistilEmbeddings(config, ctx));
    this.transformer = this.child("transformer", new Transformer(config, ctx));
  }
  get numLayers(): number {
    return this.transformer.layer.items.length;
  }
  forward(x: ModelInputs): EncoderOutput {
    const mask = checkInputs(x, "DistilBertModel", this.config.maxPositions, this.config.vocabSize);
    let h = this.embeddings.forward(x);
    for (const layer of this.transformer.layer.items) h = layer.forward(h, mask, x.batchSize, x.seqLen);
    return { lastHiddenState: h, mask };
  }
}

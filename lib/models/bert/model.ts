// BERT body (modeling_bert.py), parameter names as HF's. RobertaModel (lib/models/roberta/model.ts)
// is this body with its own position ids.
import { Tensor, tidy } from "../../tensor/tensor";
import { isGradEnabled } from "../../tensor/autograd";
import * as ops from "../../tensor/ops";
import { Module, Context } from "../../nn/module";
import { Linear, Embedding, LayerNorm, Dropout } from "../../nn/layers";
import { ModuleList } from "../../nn/containers";
import { ModelInputs, checkInputs } from "../inputs";
import { ModelConfig, geluMode } from "../config";
import type { EncoderOutput } from "../spec";

export class BertEmbeddings extends Module {
  readonly word_embeddings: Embedding;
  readonly position_embeddings: Embedding;
  readonly token_type_embeddings: Embedding;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;
  /** HF gives the word table padding_idx = pad_token_id (RoBERTa's position table too: positionPadding). */
  constructor(readonly c: ModelConfig, ctx: Context, padding = c.padTokenId, positionPadding: number | null = null) {
    super();
    this.word_embeddings = this.child("word_embeddings", new Embedding(c.vocabSize, c.hiddenSize, padding));
    this.position_embeddings = this.child("position_embeddings", new Embedding(c.maxPositions, c.hiddenSize, positionPadding));
    this.token_type_embeddings = this.child("token_type_embeddings", new Embedding(c.typeVocabSize, c.hiddenSize));
    this.LayerNorm = this.child("LayerNorm", new LayerNorm(c.hiddenSize, c.layerNormEps, "embeddings.LayerNorm"));
    this.dropout = this.child("dropout", new Dropout(c.embeddingDropout, ctx));
  }
  /** (B·T) position ids: 0..T−1 in each row. */
  positionIds(x: ModelInputs): Int32Array {
    const { batchSize: B, seqLen: T } = x;
    const pos = new Int32Array(B * T);
    for (let b = 0; b < B; b++) for (let t = 0; t < T; t++) pos[b * T + t] = t;
    return pos;
  }
  forward(x: ModelInputs): Tensor {
    const { batchSize: B, seqLen: T } = x;
    const shape = [B, T];
    const pos = this.positionIds(x);
    const types = x.tokenTypeIds ?? new Int32Array(B * T);
    const e = ops.add(ops.add(this.word_embeddings.forward(x.inputIds, shape), this.position_embeddings.forward(pos, shape)), this.token_type_embeddings.forward(types, shape));
    return this.dropout.forward(this.LayerNorm.forward(e));
  }
}

class BertSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  /** On the attention probabilities, applied inside the fused attention kernel. */
  readonly dropout: Dropout;
  constructor(readonly c: ModelConfig, readonly ctx: Context, prefix: string) {
    super();
    const H = c.hiddenSize;
    this.query = this.child("query", new Linear(H, H, true, `${prefix}.query`));
    this.key = this.child("key", new Linear(H, H, true, `${prefix}.key`));
    this.value = this.child("value", new Linear(H, H, true, `${prefix}.value`));
    this.dropout = this.child("dropout", new Dropout(c.attentionDropout, ctx));
  }
  forward(h: Tensor, mask: Uint8Array, B: number, T: number): Tensor {
    const q = this.query.forward(h), k = this.key.forward(h), v = this.value.forward(h);
    // The output is (B, T, H·D) with heads side by side: the layout the output projection reads as is.
    const o = ops.attention(ops.heads(q), ops.heads(k), ops.heads(v), B, T, this.c.hiddenSize, {
      numHeads: this.c.numHeads, keyMask: mask, causal: false, dropoutP: this.dropout.rate, training: this.dropout.training, gen: this.ctx.gen,
    });
    return o;
  }
}

/** dense → dropout → LayerNorm(x + residual): BertSelfOutput and BertOutput. */
class BertResidualOutput extends Module {
  readonly dense: Linear;
  readonly LayerNorm: LayerNorm;
  readonly dropout: Dropout;
  constructor(c: ModelConfig, ctx: Context, inDim: number, prefix: string) {
    super();
    this.dense = this.child("dense", new Linear(inDim, c.hiddenSize, true, `${prefix}.dense`));
    this.LayerNorm = this.child("LayerNorm", new LayerNorm(c.hiddenSize, c.layerNormEps, `${prefix}.LayerNorm`));
    this.dropout = this.child("dropout", new Dropout(c.hiddenDropout, ctx));
  }
  forward(x: Tensor, residual: Tensor): Tensor {
    // The bias is added in the GEMM's epilogue, the residual inside the LayerNorm: the dropout mask sits
    // between the two in training (in eval the GEMM epilogue could take the residual too, for the same
    // memory traffic: one read of it either way).
    return this.LayerNorm.forwardResidual(this.dropout.forward(this.dense.forward(x)), residual);
  }
}

class BertAttention extends Module {
  readonly self: BertSelfAttention;
  readonly output: BertResidualOutput;
  constructor(c: ModelConfig, ctx: Context, prefix: string) {
    super();
    this.self = this.child("self", new BertSelfAttention(c, ctx, `${prefix}.self`));
    this.output = this.child("output", new BertResidualOutput(c, ctx, c.hiddenSize, `${prefix}.output`));
  }
}

class BertIntermediate extends Module {
  readonly dense: Linear;
  constructor(readonly c: ModelConfig, prefix: string) {
    super();
    this.dense = this.child("dense", new Linear(c.hiddenSize, c.intermediateSize, true, `${prefix}.dense`));
  }
  forward(x: Tensor): Tensor {
    // A Linear adds bias and GELU in its GEMM's epilogue; a module swapped in for it (LoRA's) runs first.
    const mode = geluMode(this.c), dense: Linear | { forward(x: Tensor): Tensor } = this.dense;
    return dense instanceof Linear ? dense.forwardFused(x, { activation: mode }) : ops.gelu(dense.forward(x), mode);
  }
}

export class BertLayer extends Module {
  readonly attention: BertAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertResidualOutput;
  constructor(c: ModelConfig, ctx: Context, prefix: string) {
    super();
    this.attention = this.child("attention", new BertAttention(c, ctx, `${prefix}.attention`));
    this.intermediate = this.child("intermediate", new BertIntermediate(c, `${prefix}.intermediate`));
    this.output = this.child("output", new BertResidualOutput(c, ctx, c.intermediateSize, `${prefix}.output`));
  }
  forward(h: Tensor, mask: Uint8Array, B: number, T: number): Tensor {
    const a = this.attention.output.forward(this.attention.self.forward(h, mask, B, T), h);
    return this.output.forward(this.intermediate.forward(a), a);
  }
}

class BertEncoder extends Module {
  readonly layer: ModuleList<BertLayer>;
  constructor(c: ModelConfig, ctx: Context, prefix: string) {
    super();
    this.layer = this.child("layer", new ModuleList(Array.from({ length: c.numLayers }, (_, i) => new BertLayer(c, ctx, `${prefix}.layer.${i}`))));
  }
}

class BertPooler extends Module {
  readonly dense: Linear;
  constructor(c: ModelConfig) {
    super();
    this.dense = this.child("dense", new Linear(c.hiddenSize, c.hiddenSize, true, "pooler.dense"));
  }
  forward(h: Tensor, B: number): Tensor {
    return ops.tanh(this.dense.forward(ops.selectTokens(h, new Array(B).fill(0))));
  }
}

/** BertModel (and RobertaModel, with its embeddings and class name). `addPoolingLayer` as in HF. */
export class BertModel extends Module {
  readonly embeddings: BertEmbeddings;
  readonly encoder: BertEncoder;
  readonly pooler: BertPooler | null;
  readonly ctx: Context;
  constructor(readonly config: ModelConfig, addPoolingLayer = true, ctx: Context = { gen: new ops.Generator(42) },
              embeddings = new BertEmbeddings(config, ctx), readonly className = "BertModel") {
    super();
    this.ctx = ctx;
    this.embeddings = this.child("embeddings", embeddings);
    this.encoder = this.child("encoder", new BertEncoder(config, ctx, "encoder"));
    this.pooler = addPoolingLayer ? this.child("pooler", new BertPooler(config)) : null;
  }
  get numLayers(): number {
    return this.encoder.layer.items.length;
  }
  forward(x: ModelInputs): EncoderOutput {
    const c = this.config;
    const mask = checkInputs(x, this.className, c.maxPositions, c.vocabSize);
    if (isGradEnabled()) {
      let h = this.embeddings.forward(x);
      for (const layer of this.encoder.layer.items) h = layer.forward(h, mask, x.batchSize, x.seqLen);
      return { lastHiddenState: h, poolerOutput: this.pooler ? this.pooler.forward(h, x.batchSize) : undefined, mask };
    }
    // No graph (inference): a layer's intermediates and its input are dead once it returns, so free
    // them there (back to the pool, for the next layer) instead of at the end of the caller's tidy;
    // peak memory is then about one layer's activations, not all of them. (Freeing each intermediate
    // right after its last reader was tried: buffers of several sizes then outgrow the pool's bound,
    // the peak of live bytes, and every forward allocated and page-faulted anew: 21 allocations instead
    // of 3 for 4 layers at B1, slower.)
    let h = tidy(() => this.embeddings.forward(x));
    for (const layer of this.encoder.layer.items) {
      const input = h;
      h = tidy(() => layer.forward(input, mask, x.batchSize, x.seqLen));
      input.dispose();
    }
    return { lastHiddenState: h, poolerOutput: this.pooler ? this.pooler.forward(h, x.batchSize) : undefined, mask };
  }
}

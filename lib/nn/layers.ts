import { Tensor } from "../tensor/tensor";
import * as ops from "../tensor/ops";
import { rmsNorm } from "../tensor/decoder_ops";
import * as fused from "../tensor/fused";
import { TunekitError } from "../errors";
import { Module, Parameter, Context } from "./module";

/** y = x·Wᵀ + b, weight [out, in] as PyTorch stores it. */
export class Linear extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter | null;
  constructor(readonly inFeatures: number, readonly outFeatures: number, bias = true, readonly label = "linear") {
    super();
    this.weight = this.param("weight", [outFeatures, inFeatures]);
    this.bias = bias ? this.param("bias", [outFeatures]) : null;
  }
  /**
   * Set while a LoRA adapter (lib/peft) wraps this layer: the forward goes through it, also for code
   * that captured this Linear itself rather than reading its parent's field.
   */
  adapter: { forward(x: Tensor): Tensor } | null = null;
  forward(x: Tensor): Tensor {
    if (this.adapter) return this.adapter.forward(x);
    return ops.linear(x, this.weight, this.bias, this.label);
  }
  /** act(forward(x) + residual) in the GEMM's epilogue; through the separate ops when an adapter wraps it. */
  forwardFused(x: Tensor, ep: fused.LinearEpilogue): Tensor {
    if (!this.adapter) return fused.linearFused(x, this.weight, this.bias, ep, this.label);
    let y = this.adapter.forward(x);
    if (ep.residual) y = ops.add(y, ep.residual);
    return ep.activation != null ? ops.gelu(y, ep.activation) : y;
  }
}

export class Embedding extends Module {
  readonly weight: Parameter;
  /** paddingIdx: that row receives no gradient, as torch.nn.Embedding(padding_idx=…). */
  constructor(readonly num: number, readonly dim: number, readonly paddingIdx: number | null = null) {
    super();
    this.weight = this.param("weight", [num, dim]);
  }
  forward(ids: Int32Array, shape: number[]): Tensor {
    return ops.embedding(ids, shape, this.weight, this.paddingIdx ?? -1);
  }
}

export class LayerNorm extends Module {
  readonly weight: Parameter;
  readonly bias: Parameter;
  constructor(readonly dim: number, readonly eps: number, readonly label = "LayerNorm") {
    super();
    this.weight = this.param("weight", [dim]);
    this.bias = this.param("bias", [dim]);
    this.weight.storage.fill(1);
  }
  forward(x: Tensor): Tensor {
    return ops.layerNorm(x, this.weight, this.bias, this.eps, this.label);
  }
  /** forward(x + residual), the sum formed inside the LayerNorm kernel. */
  forwardResidual(x: Tensor, residual: Tensor): Tensor {
    return fused.residualLayerNorm(x, residual, this.weight, this.bias, this.eps, this.label);
  }
}

/**
 * LlamaRMSNorm: x·rsqrt(mean(x²) + eps)·weight over groups of `dim` values (dim = the hidden size; or the
 * head dimension for Qwen3's per-head q_norm / k_norm over (…, heads·dim)).
 */
export class RMSNorm extends Module {
  readonly weight: Parameter;
  constructor(readonly dim: number, readonly eps: number, readonly label = "RMSNorm") {
    super();
    this.weight = this.param("weight", [dim]);
    this.weight.storage.fill(1);
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps, this.dim, this.label);
  }
}

/**
 * torch.nn.Dropout: zeroes a fraction p of its input in training (Philox mask from the model's stream),
 * the identity in eval. Its mode is set only by train()/eval() walking the children, so a Dropout that
 * no parent registered refuses to run rather than silently staying in one mode.
 */
export class Dropout extends Module {
  constructor(readonly p: number, private readonly ctx: Context) {
    super();
  }
  /** The probability a fused kernel (attention) applies: p in training, 0 in eval. */
  get rate(): number {
    if (!this.registered) throw new TunekitError(`Dropout(p = ${this.p}) is not registered as a child of a module, so train()/eval() cannot reach it; create it with this.child("dropout", new Dropout(…))`);
    return this.training ? this.p : 0;
  }
  forward(x: Tensor): Tensor {
    return ops.dropout(x, this.rate, this.training, this.ctx.gen);
  }
}

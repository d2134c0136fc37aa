import { Tensor } from "../tensor/tensor";
import * as ops from "../tensor/ops";
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
    this.weight.data.fill(1);
  }
  forward(x: Tensor): Tensor {
    return ops.layerNorm(x, this.weight, this.bias, this.eps, this.label);
  }
}

export class Dropout extends Module {
  constructor(readonly p: number, private readonly ctx: Context) {
    super();
  }
  forward(x: Tensor): Tensor {
    return ops.dropout(x, this.p, this.training, this.ctx.gen);
  }
}

// The fused ops (lib/tensor/fused.ts) against the unfused ops they replace, forward and backward:
// linearFused (GEMM epilogue: bias, residual, GELU) against linear → add → gelu, residualLayerNorm
// against add → layerNorm, and the LayerNorm kernels' residual input on every ISA. The fused ops do
// the same float operations in the same order, so outputs and gradients agree bit for bit. (Parity of
// the whole BERT body with PyTorch, which now runs through these ops, is test/models.test.ts.)
import { native } from "../lib/native";
import { Tensor } from "../lib/tensor/tensor";
import * as ops from "../lib/tensor/ops";
import { linearFused, residualLayerNorm } from "../lib/tensor/fused";
import { noGrad } from "../lib/tensor/autograd";
import { TunekitError } from "../lib/errors";
import { ISAS, withIsa, randn, maxAbsDiff } from "./helpers";

const leaf = (shape: number[], seed: number, scale = 1) => new Tensor(shape, randn(shape.reduce((a, b) => a * b, 1), seed, scale), true);
const copy = (t: Tensor) => new Tensor(t.shape, Float32Array.from(t.toHost()), t.requiresGrad);

/** Runs f on fresh copies of the leaves, backpropagates Σ f·R; the output and every leaf's gradient. */
function run(leaves: Tensor[], f: (xs: Tensor[]) => Tensor): Float32Array[] {
  const xs = leaves.map(copy);
  const y = f(xs);
  const R = randn(y.size, 77);
  const out = Float32Array.from(y.toHost());
  ops.weightedSum(y, R).backward();
  return [out, ...xs.map((x) => (x.grad ? Float32Array.from(x.grad.toHost()) : new Float32Array(0)))];
}

function expectSame(a: Float32Array[], b: Float32Array[]) {
  expect(a.length).toBe(b.length);
  a.forEach((x, i) => {
    expect(x.length).toBe(b[i].length);
    expect(maxAbsDiff(x, b[i])).toBe(0);
  });
}

describe.each(ISAS)("fused ops on %s", (isa) => {
  const B = 3, T = 5, IN = 40, OUT = 36;

  test.each(["none", "tanh"] as const)("linearFused with GELU (%s): output and gradients equal linear → gelu", (approx) => {
    withIsa(isa, () => {
      const leaves = [leaf([B, T, IN], 1), leaf([OUT, IN], 2, 0.2), leaf([OUT], 3)];
      const fused = run(leaves, ([x, W, b]) => linearFused(x, W, b, { activation: approx }));
      const plain = run(leaves, ([x, W, b]) => ops.gelu(ops.linear(x, W, b), approx));
      expectSame(fused, plain);
    });
  });

  test("linearFused with a residual: output and gradients (the residual's too) equal linear → add", () => {
    withIsa(isa, () => {
      const leaves = [leaf([B, T, IN], 1), leaf([OUT, IN], 2, 0.2), leaf([OUT], 3), leaf([B, T, OUT], 4)];
      const fused = run(leaves, ([x, W, b, r]) => linearFused(x, W, b, { residual: r }));
      const plain = run(leaves, ([x, W, b, r]) => ops.add(ops.linear(x, W, b), r));
      expectSame(fused, plain);
    });
  });

  test("residualLayerNorm: output and gradients of x, residual, gamma, beta equal add → layerNorm", () => {
    withIsa(isa, () => {
      const C = 45; // not a multiple of the vector width: the partial-vector tail too
      const leaves = [leaf([B, T, C], 1), leaf([B, T, C], 2, 3), leaf([C], 3), leaf([C], 4)];
      const fused = run(leaves, ([x, r, g, b]) => residualLayerNorm(x, r, g, b, 1e-12));
      const plain = run(leaves, ([x, r, g, b]) => ops.layerNorm(ops.add(x, r), g, b, 1e-12));
      expectSame(fused, plain);
      // the same tensor as x and residual: its gradient is the sum's, twice
      const twice = run([leaves[0], leaves[2], leaves[3]], ([x, g, b]) => residualLayerNorm(x, x, g, b, 1e-12));
      const twicePlain = run([leaves[0], leaves[2], leaves[3]], ([x, g, b]) => ops.layerNorm(ops.add(x, x), g, b, 1e-12));
      expectSame(twice, twicePlain);
    });
  });

  test("the layerNorm kernels' residual input equals add then the plain kernels (rows threaded)", () => {
    withIsa(isa, () => {
      const rows = 300, C = 100, n = rows * C; // above the threading threshold
      const x = randn(n, 1), r = randn(n, 2), g = randn(C, 3), b = randn(C, 4), dy = randn(n, 5);
      const s = new Float32Array(n);
      native.add({ n, a: x, b: r, y: s });
      const out = () => ({ y: new Float32Array(n), mean: new Float32Array(rows), rstd: new Float32Array(rows) });
      const want = out(), got = out();
      native.layerNormForward({ rows, C, eps: 1e-5, x: s, gamma: g, beta: b, ...want });
      native.layerNormForward({ rows, C, eps: 1e-5, x, residual: r, gamma: g, beta: b, ...got });
      expect(maxAbsDiff(got.y, want.y)).toBe(0);
      expect(maxAbsDiff(got.rstd, want.rstd)).toBe(0);
      const grads = () => ({ dx: new Float32Array(n), dgamma: new Float32Array(C), dbeta: new Float32Array(C) });
      const gw = grads(), gg = grads();
      native.layerNormBackward({ rows, C, x: s, gamma: g, mean: want.mean, rstd: want.rstd, dy, ...gw });
      native.layerNormBackward({ rows, C, x, residual: r, gamma: g, mean: got.mean, rstd: got.rstd, dy, ...gg });
      for (const k of ["dx", "dgamma", "dbeta"] as const) expect(maxAbsDiff(gg[k], gw[k])).toBe(0);
    });
  });
});

test("under noGrad the fused ops record nothing and keep no pre-activation", () => {
  const x = leaf([2, 3, 8], 1), W = leaf([16, 8], 2), b = leaf([16], 3);
  const y = noGrad(() => linearFused(x, W, b, { activation: "none" }));
  expect(y.node).toBeNull();
  const z = noGrad(() => residualLayerNorm(y, y, leaf([16], 4), leaf([16], 5), 1e-5));
  expect(z.node).toBeNull();
});

test("shape errors name the layer and what was expected", () => {
  const x = leaf([2, 3, 8], 1), W = leaf([16, 8], 2), b = leaf([16], 3);
  expect(() => linearFused(x, W, b, { residual: leaf([2, 3, 8], 4) }, "encoder.layer.0.output.dense")).toThrow(TunekitError);
  expect(() => linearFused(x, W, b, { residual: leaf([2, 3, 8], 4) }, "encoder.layer.0.output.dense")).toThrow(/'encoder.layer.0.output.dense': residual has shape \[2, 3, 8\], expected \[2, 3, 16\]/);
  expect(() => residualLayerNorm(x, leaf([2, 8], 5), leaf([8], 6), leaf([8], 7), 1e-5, "ln")).toThrow(/'ln': residual has shape \[2, 8\], expected \[2, 3, 8\]/);
});

describe("BERT's inference path (noGrad: no graph, each layer's intermediates freed when it returns)", () => {
  const { AutoModel } = require("../lib/models/auto") as typeof import("../lib/models/auto");
  const { parseConfig } = require("../lib/models/config_json") as typeof import("../lib/models/config_json");
  const { tidy } = require("../lib/tensor/tensor") as typeof import("../lib/tensor/tensor");
  const config = parseConfig({ model_type: "bert", vocab_size: 100, hidden_size: 64, num_hidden_layers: 3, num_attention_heads: 4, intermediate_size: 128, max_position_embeddings: 64 });
  const B = 2, T = 16;
  const x = { inputIds: Int32Array.from({ length: B * T }, (_, i) => 3 + ((i * 7) % 90)), attentionMask: Int32Array.from({ length: B * T }, (_, i) => (i >= B * T - 5 ? 0 : 1)), batchSize: B, seqLen: T };

  test("gives exactly the hidden states of the recorded (grad) forward", () => {
    const model = AutoModel.fromConfig(config, { seed: 3 });
    model.eval();
    const withGraph = tidy(() => Float32Array.from(model.forward(x).lastHiddenState.toHost()));
    const inference = noGrad(() => tidy(() => Float32Array.from(model.forward(x).lastHiddenState.toHost())));
    expect(maxAbsDiff(inference, withGraph)).toBe(0);
    // twice in a row: the buffers freed early and taken back from the pool hold nothing stale that matters
    const again = noGrad(() => tidy(() => Float32Array.from(model.forward(x).lastHiddenState.toHost())));
    expect(maxAbsDiff(again, withGraph)).toBe(0);
  });
});

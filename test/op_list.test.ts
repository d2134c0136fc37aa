// The op list (include/tunekit/ops.h, TK_OPS) as the addon exposes it: ops() is that list, the CPU
// backend fills every slot, every op's binding runs through that op's slot, and an op whose slot is
// empty fails with "op <name> is not supported on <device>" (the path a CUDA kernel that is not
// written yet takes; tested here on the CPU backend with a slot emptied by a test hook).
import * as fs from "fs";
import * as path from "path";
import { TunekitError } from "../lib/errors";
import { native } from "../lib/native";

const f32 = (...v: number[]) => Float32Array.from(v);

// TK_OPS parsed from the header itself, so ops() is checked against the declaration, not against itself.
function declaredOps(): string[] {
  const header = fs.readFileSync(path.join(__dirname, "..", "include", "tunekit", "ops.h"), "utf8");
  const start = header.indexOf("#define TK_OPS(X)");
  const end = header.indexOf("\n\n", start);
  expect(start).toBeGreaterThanOrEqual(0);
  return [...header.slice(start, end).matchAll(/\bX\((\w+),/g)].map((m) => m[1]);
}

// Every op through each binding that calls it, on tiny valid inputs (sync and async forms), each
// checking one result so a call that silently did nothing would fail.
// Memory bindings (fill, copy) are sync only: they have no async form.
type Call = { binding: string; sync: () => void; async?: () => Promise<void> };
function calls(): Record<string, Call[]> {
  const gemm = () => ({ M: 2, N: 2, K: 2, A: f32(1, 2, 3, 4), B: f32(5, 6, 7, 8), C: new Float32Array(4) });
  // Weight operands may be bf16 (a Uint16Array): 5, 6, 7, 8 and 3 are exact in bf16.
  const bf16 = (...v: number[]) => {
    const out = new Uint16Array(v.length);
    native.copy({ src: f32(...v), dst: out });
    return out;
  };
  const gemmBf16 = () => ({ ...gemm(), B: bf16(5, 6, 7, 8) });
  const attention = () => ({
    B: 1, H: 1, Tq: 1, Tk: 1, D: 1, q: f32(1), k: f32(1), v: f32(3), o: new Float32Array(1), lse: new Float32Array(1),
  });
  const attentionBackward = () => {
    const a = attention();
    native.attentionForward(a);
    return { ...a, dout: f32(1), dq: f32(9), dk: f32(9), dv: f32(9) };
  };
  const layernorm = () => ({ rows: 1, C: 2, x: f32(1, 3), y: new Float32Array(2), mean: new Float32Array(1), rstd: new Float32Array(1) });
  const layernormBackward = () => {
    const a = layernorm();
    native.layerNormForward(a);
    return { rows: 1, C: 2, x: a.x, mean: a.mean, rstd: a.rstd, dy: f32(1, 0), dx: f32(9, 9) };
  };
  const gelu = () => ({ n: 1, x: f32(0), y: f32(9) });
  const geluBackward = () => ({ n: 1, x: f32(0), dy: f32(2), dx: f32(9) });
  const biasAdd = () => ({ rows: 2, C: 1, x: f32(1, 2), bias: f32(10), y: new Float32Array(2) });
  const biasBackward = () => ({ rows: 2, C: 1, dy: f32(1, 2), dbias: f32(0) });
  const add = () => ({ n: 1, a: f32(1), b: f32(2), y: f32(0) });
  const scale = () => ({ n: 1, x: f32(3), s: 2, sp: f32(-1) });
  const dropout = () => ({ n: 1, x: f32(3), y: f32(9), p: 0, seed: 1, offset: 0 });
  const crossEntropy = () => ({ N: 1, V: 2, logits: f32(0, 0), targets: Int32Array.from([0]) });
  const embedding = () => ({ N: 1, C: 1, V: 2, ids: Int32Array.from([1]), table: f32(5, 7), out: f32(0) });
  const embeddingBf16 = () => ({ ...embedding(), table: bf16(5, 7) });
  const embeddingBackward = () => ({ N: 1, C: 1, V: 2, ids: Int32Array.from([1]), dout: f32(2), dtable: f32(0, 0) });
  const adamw = () => ({ n: 1, param: f32(1), grad: f32(1), m: f32(0), v: f32(0), lr: 0.1, step: 1 });
  const adamwMulti = () => ({ params: [f32(1)], grads: [f32(1)], ms: [f32(0)], vs: [f32(0)], lrs: [0.1], weightDecays: [0], step: 1 });
  const lora = () => ({
    M: 1, in: 1, out: 1, r: 1, x: f32(2), W: f32(3), A: f32(1), B: f32(1), scale: 1, y: f32(0), h: f32(0),
  });
  const loraBackward = () => ({
    M: 1, in: 1, out: 1, r: 1, x: f32(2), W: f32(3), A: f32(1), B: f32(1), h: f32(2), scale: 1,
    dy: f32(1), dx: f32(0), dA: f32(0), dB: f32(0),
  });
  const loraBf16 = () => ({ ...lora(), W: bf16(3) });
  const loraBackwardBf16 = () => ({ ...loraBackward(), W: bf16(3) });
  const unary = () => ({ n: 1, kind: "relu" as const, x: f32(-2), y: f32(9) });
  const unaryBackward = () => ({ n: 1, kind: "tanh" as const, y: f32(0), dy: f32(3), dx: f32(9) });
  const copyStrided = () => ({ rows: 2, cols: 1, src: f32(1, 2, 3, 4).subarray(1), srcLd: 2, dst: f32(0, 0) });
  const maskedMean = () => ({ B: 1, T: 2, C: 1, x: f32(2, 9), mask: Uint8Array.from([1, 0]), y: f32(0) });
  const maskedMeanBackward = () => ({ B: 1, T: 2, C: 1, mask: Uint8Array.from([1, 1]), dy: f32(4), dx: f32(9, 9) });
  const cosine = () => ({ N: 1, C: 2, a: f32(1, 0), b: f32(0, 3), y: f32(9) });
  const cosineBackward = () => ({ N: 1, C: 2, a: f32(1, 0), b: f32(0, 3), dy: f32(1), da: f32(9, 9) });
  const l2norm = () => ({ N: 1, C: 2, x: f32(3, 4), y: f32(0, 0), norm: f32(0) });
  const l2normBackward = () => ({ N: 1, C: 2, y: f32(1, 0), norm: f32(2), dy: f32(0, 4), dx: f32(9, 9) });
  const loss = () => ({ n: 1, x: f32(3), target: f32(1), loss: f32(9) });
  const lossBackward = () => ({ n: 1, x: f32(3), target: f32(1), dy: f32(2), dx: f32(9) });
  const dotForward = () => ({ n: 2, x: f32(1, 2), w: f32(3, 4), y: f32(0) });
  const axpby = () => ({ n: 1, alpha: 2, a: f32(3), ap: f32(-1), beta: 1, b: f32(1), y: f32(9) });
  // A sync call and its async twin, with the same check on the result.
  function both<A>(binding: string, make: () => A, check: (a: A, result: unknown) => void): Call {
    const fn = (native as unknown as Record<string, (a: A) => unknown>)[binding];
    const fnAsync = (native as unknown as Record<string, (a: A) => Promise<unknown>>)[binding + "Async"];
    return {
      binding,
      sync: () => {
        const a = make();
        check(a, fn(a));
      },
      async: async () => {
        const a = make();
        check(a, await fnAsync(a));
      },
    };
  }
  function syncOnly<A>(binding: string, make: () => A, check: (a: A) => void): Call {
    const fn = (native as unknown as Record<string, (a: A) => unknown>)[binding];
    return { binding, sync: () => { const a = make(); fn(a); check(a); } };
  }
  const rmsnorm = () => ({ rows: 1, C: 2, x: f32(3, 4), y: f32(0, 0), rstd: f32(0) });
  const rmsnormBackward = () => ({ rows: 1, C: 2, x: f32(3, 4), rstd: f32(0.2), dy: f32(1, 0), dweight: f32(0, 0) });
  const rope = () => ({ B: 1, T: 1, H: 1, D: 2, P: 1, x: f32(1, 0), cos: f32(0), sin: f32(1), positions: Int32Array.from([0]) });
  const swiglu = () => ({ rows: 1, C: 1, gate: f32(0), up: f32(5), y: f32(9) });
  const swigluBackward = () => ({ rows: 1, C: 1, gate: f32(0), up: f32(2), dy: f32(1), dgate: f32(9) });
  const attentionDecode = () => ({ B: 1, H: 1, Tk: 1, D: 1, q: f32(1), k: f32(1), v: f32(3), o: f32(0) });
  const fill = () => ({ x: f32(1, 2), bits: 0x40400000 }); // 3.0f
  const convert = () => ({ src: f32(1.5, -2), dst: new Uint16Array(2) }); // f32 → bf16
  return {
    fill: [syncOnly("fill", fill, (a) => expect(Array.from(a.x)).toEqual([3, 3]))],
    convert: [syncOnly("copy", convert, (a) => expect(Array.from(a.dst)).toEqual([0x3fc0, 0xc000]))],
    gemm: [
      both("gemm", gemm, (a) => expect(Array.from(a.C)).toEqual([19, 22, 43, 50])),
      both("gemm", gemmBf16, (a) => expect(Array.from(a.C)).toEqual([19, 22, 43, 50])),
    ],
    attention_forward: [both("attentionForward", attention, (a) => expect(a.o[0]).toBe(3))],
    attention_backward: [both("attentionBackward", attentionBackward, (a) => expect(a.dv[0]).toBe(1))],
    layernorm_forward: [both("layerNormForward", layernorm, (a) => expect(a.mean[0]).toBe(2))],
    layernorm_backward: [both("layerNormBackward", layernormBackward, (a) => expect(a.dx[0]).not.toBe(9))],
    gelu_forward: [both("geluForward", gelu, (a) => expect(a.y[0]).toBe(0))],
    gelu_backward: [both("geluBackward", geluBackward, (a) => expect(a.dx[0]).toBe(1))],
    bias_add: [both("biasAdd", biasAdd, (a) => expect(Array.from(a.y)).toEqual([11, 12]))],
    bias_backward: [both("biasBackward", biasBackward, (a) => expect(a.dbias[0]).toBe(3))],
    add: [both("add", add, (a) => expect(a.y[0]).toBe(3))],
    scale: [both("scale", scale, (a) => expect(a.x[0]).toBe(-6))],
    dropout: [both("dropout", dropout, (a) => expect(a.y[0]).toBe(3))],
    cross_entropy: [both("crossEntropy", crossEntropy, (_a, r) => expect((r as { loss: number }).loss).toBeCloseTo(Math.LN2, 6))],
    embedding_forward: [
      both("embeddingForward", embedding, (a) => expect(a.out[0]).toBe(7)),
      both("embeddingForward", embeddingBf16, (a) => expect(a.out[0]).toBe(7)),
    ],
    embedding_backward: [both("embeddingBackward", embeddingBackward, (a) => expect(Array.from(a.dtable)).toEqual([0, 2]))],
    adamw: [
      both("adamw", adamw, (a) => expect(a.param[0]).toBeLessThan(1)),
      both("adamwMulti", adamwMulti, (a) => expect(a.params[0][0]).toBeLessThan(1)),
    ],
    sum_squares: [
      both("sumSquares", () => ({ n: 2, x: f32(3, 4) }), (_a, r) => expect(r).toBe(25)),
      both("gradNorm", () => ({ tensors: [f32(3), f32(4)] }), (_a, r) => expect(r).toBe(5)),
    ],
    lora_forward: [
      both("loraForward", lora, (a) => expect(a.y[0]).toBe(8)),
      both("loraForward", loraBf16, (a) => expect(a.y[0]).toBe(8)),
    ],
    lora_backward: [
      both("loraBackward", loraBackward, (a) => expect(a.dB[0]).toBe(2)),
      both("loraBackward", loraBackwardBf16, (a) => expect(Array.from(a.dx)).toEqual([4])), // dy·W + dh·A = 3 + 1
    ],
    unary_forward: [both("unaryForward", unary, (a) => expect(a.y[0]).toBe(0))],
    unary_backward: [both("unaryBackward", unaryBackward, (a) => expect(a.dx[0]).toBe(3))],
    copy_strided: [both("copyStrided", copyStrided, (a) => expect(Array.from(a.dst)).toEqual([2, 4]))],
    masked_mean_forward: [both("maskedMeanForward", maskedMean, (a) => expect(a.y[0]).toBe(2))],
    masked_mean_backward: [both("maskedMeanBackward", maskedMeanBackward, (a) => expect(Array.from(a.dx)).toEqual([2, 2]))],
    cosine_forward: [both("cosineForward", cosine, (a) => expect(a.y[0]).toBe(0))],
    cosine_backward: [both("cosineBackward", cosineBackward, (a) => expect(Array.from(a.da)).toEqual([0, 1]))],
    l2norm_forward: [both("l2NormForward", l2norm, (a) => expect(a.norm[0]).toBe(5))],
    l2norm_backward: [both("l2NormBackward", l2normBackward, (a) => expect(Array.from(a.dx)).toEqual([0, 2]))],
    mse_forward: [both("mseForward", loss, (a) => expect(a.loss[0]).toBe(4))],
    mse_backward: [both("mseBackward", lossBackward, (a) => expect(a.dx[0]).toBe(8))],
    bce_forward: [both("bceForward", loss, (a) => expect(a.loss[0]).toBeCloseTo(Math.log1p(Math.exp(-3)), 6))],
    bce_backward: [both("bceBackward", lossBackward, (a) => expect(a.dx[0]).toBeCloseTo(2 * (1 / (1 + Math.exp(-3)) - 1), 6))],
    dot_forward: [both("dotForward", dotForward, (a) => expect(a.y[0]).toBe(11))],
    axpby: [both("axpby", axpby, (a) => expect(a.y[0]).toBe(-5))],
    rmsnorm_forward: [both("rmsNormForward", rmsnorm, (a) => expect(a.rstd[0]).toBeCloseTo(1 / Math.sqrt(12.5 + 1e-6), 6))],
    rmsnorm_backward: [both("rmsNormBackward", rmsnormBackward, (a) => expect(a.dweight[0]).toBeCloseTo(0.6, 6))],
    rope_forward: [both("ropeForward", rope, (a) => expect(Array.from(a.x)).toEqual([0, 1]))],
    rope_backward: [both("ropeBackward", rope, (a) => expect(Array.from(a.x)).toEqual([0, -1]))],
    swiglu_forward: [both("swigluForward", swiglu, (a) => expect(a.y[0]).toBe(0))],
    swiglu_backward: [both("swigluBackward", swigluBackward, (a) => expect(a.dgate[0]).toBe(1))],
    attention_decode: [both("attentionDecode", attentionDecode, (a) => expect(a.o[0]).toBe(3))],
  };
}

describe("the op list", () => {
  test("ops() is TK_OPS of include/tunekit/ops.h, in order, without repeats", () => {
    const declared = declaredOps();
    expect(declared.length).toBeGreaterThan(10);
    expect(native.ops()).toEqual(declared);
    expect(new Set(native.ops()).size).toBe(declared.length);
  });

  test("the CPU backend fills every slot", () => {
    for (const op of native.ops()) expect([op, native.supportsOp("cpu", op)]).toEqual([op, true]);
  });

  test("every op has a binding here that runs it (a new op needs an entry in this test)", async () => {
    const table = calls();
    expect(Object.keys(table).sort()).toEqual([...native.ops()].sort());
    for (const list of Object.values(table))
      for (const c of list) {
        c.sync();
        await c.async?.();
      }
  });

  test("supportsOp('cuda', op) is false for every op without a usable CUDA backend", () => {
    for (const op of native.ops()) {
      const s = native.supportsOp("cuda", op);
      expect(typeof s).toBe("boolean");
      if (!native.cudaAvailable()) expect(s).toBe(false);
    }
  });

  test("supportsOp rejects an unknown device or op by name", () => {
    expect(() => native.supportsOp("tpu" as "cpu", "gemm")).toThrow(TunekitError);
    expect(() => native.supportsOp("tpu" as "cpu", "gemm")).toThrow("supportsOp: device 'tpu' is not one of 'cpu', 'cuda'");
    expect(() => native.supportsOp("cpu", "conv2d")).toThrow(TunekitError);
    expect(() => native.supportsOp("cpu", "conv2d")).toThrow(/^supportsOp: unknown op 'conv2d', expected one of gemm, attention_forward, /);
    expect(() => native._hideCpuOp("conv2d")).toThrow(/unknown op 'conv2d'/);
  });
});

describe("an op whose backend slot is empty", () => {
  afterEach(() => native._hideCpuOp(null));

  test.each(Object.keys(calls()))("%s: supportsOp is false and every binding of it fails clearly, sync and async", async (op) => {
    const table = calls();
    native._hideCpuOp(op);
    expect(native.supportsOp("cpu", op)).toBe(false);
    const message = `op ${op} is not supported on cpu`;
    for (const c of table[op]) {
      expect(c.sync).toThrow(TunekitError);
      expect(c.sync).toThrow(`${c.binding}: ${message}`);
      if (!c.async) continue;
      await expect(c.async()).rejects.toThrow(TunekitError);
      await expect(c.async()).rejects.toThrow(message);
    }
    // The other slots are untouched.
    for (const other of native.ops().filter((o) => o !== op)) expect(native.supportsOp("cpu", other)).toBe(true);
    const other = op === "add" ? "scale" : "add";
    for (const c of table[other]) c.sync();
    // And the slot comes back.
    native._hideCpuOp(null);
    expect(native.supportsOp("cpu", op)).toBe(true);
    for (const c of table[op]) c.sync();
  });
});

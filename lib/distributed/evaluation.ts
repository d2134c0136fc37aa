// Sharded evaluation: each rank runs the forward of every world-size-th batch, the outputs an evaluator
// reads are gathered, and every rank feeds all of them to its evaluator in the original batch order.
// The batches are the ones one process would make, so the metrics (and the loss, summed in the same
// order) are exactly the single-process ones, on every rank. One round of gathering per world-size
// batches keeps memory at one batch per rank, as the streaming evaluators expect.
import { TunekitError } from "../errors";
import { parseJson } from "../io/json_safe";
import { Tensor, tidy } from "../tensor/tensor";
import type { ProcessGroup } from "./process_group";

/** The head outputs an evaluator reads, gathered across ranks (the loss travels as a number). */
export const GATHERED_OUTPUTS = ["logits", "startLogits", "endLogits"];

interface Packed {
  loss: number | null;
  count: number;
  tensors: { name: string; shape: number[]; data: Float32Array }[];
}

function pack(p: Packed): Uint8Array {
  const header = Buffer.from(JSON.stringify({ loss: p.loss, count: p.count, tensors: p.tensors.map((t) => ({ name: t.name, shape: t.shape })) }));
  const start = 4 + Math.ceil(header.length / 4) * 4;
  const out = new Uint8Array(start + p.tensors.reduce((n, t) => n + t.data.length * 4, 0));
  new DataView(out.buffer).setUint32(0, header.length, true);
  out.set(header, 4);
  let at = start;
  for (const t of p.tensors) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

function unpack(bytes: Uint8Array): Packed {
  const n = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(0, true);
  const h = parseJson(Buffer.from(bytes.subarray(4, 4 + n)).toString("utf8"), "distributed evaluation") as { loss: number | null; count: number; tensors: { name: string; shape: number[] }[] };
  let at = 4 + Math.ceil(n / 4) * 4;
  const tensors = h.tensors.map((t) => {
    const len = t.shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(len);
    new Uint8Array(data.buffer).set(bytes.subarray(at, at + len * 4));
    at += len * 4;
    return { name: t.name, shape: t.shape, data };
  });
  return { loss: h.loss, count: h.count, tensors };
}

/**
 * Runs `numBatches` batches across the group: forward(j) on the rank that owns batch j (j mod world
 * size) returns its outputs and loss count; replay(j, out) then runs on every rank for every j in
 * order, with the outputs rebuilt as host tensors (only when `withOutputs`; else out holds the loss).
 */
export function shardedBatches(group: ProcessGroup, numBatches: number, withOutputs: boolean,
  forward: (j: number) => { out: Record<string, unknown>; count: number },
  replay: (j: number, out: { loss?: number; count: number; outputs: Record<string, Tensor> }) => void): void {
  const N = group.worldSize;
  for (let round = 0; round * N < numBatches; round++) {
    const j = round * N + group.rank;
    // Host copies only leave the tidy scope: the forward's tensors are freed here.
    const mine: Packed = j >= numBatches ? { loss: null, count: 0, tensors: [] } : tidy(() => {
      const { out, count } = forward(j);
      const loss = out.loss instanceof Tensor ? out.loss.item() : null;
      const tensors = withOutputs
        ? GATHERED_OUTPUTS.filter((k) => out[k] instanceof Tensor).map((k) => {
          const t = out[k] as Tensor;
          return { name: k, shape: [...t.shape], data: Float32Array.from(t.toHost()) };
        })
        : [];
      return { loss, count, tensors };
    });
    const all = group.allGather(pack(mine));
    for (let k = 0; k < N && round * N + k < numBatches; k++) {
      const p = unpack(all[k]);
      if (withOutputs && !p.tensors.length) throw new TunekitError(`distributed evaluation: batch ${round * N + k} returned none of ${GATHERED_OUTPUTS.join(", ")}`);
      tidy(() => replay(round * N + k, { loss: p.loss ?? undefined, count: p.count,
        outputs: Object.fromEntries(p.tensors.map((t) => [t.name, Tensor.from(t.shape, t.data)])) }));
    }
  }
}

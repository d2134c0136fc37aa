// The autograd engine: a tape of Nodes hanging off the tensors they produced. backward() walks the
// graph from a scalar in reverse topological order, hands each node its output gradient, then frees
// every intermediate (activations, saved statistics, non-leaf gradients) so a training step leaves
// only parameters, their gradients and what the caller retained.
import { native } from "../native";
import { TunekitError } from "../errors";
import { Node, Tensor, parameterStorage } from "./tensor";
import { Storage, acquire, release } from "./storage";

let gradEnabled = true;

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn without recording a graph: no activation is kept for a backward (inference, frozen bodies). */
export function noGrad<T>(fn: () => T): T {
  const before = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = before;
  }
}

/** True when an op on these inputs must record a node. */
export function needsGrad(...inputs: (Tensor | null | undefined)[]): boolean {
  return gradEnabled && inputs.some((t) => t != null && (t.requiresGrad || t.node !== null));
}

export function record(out: Tensor, node: Node): Tensor {
  out.node = node;
  out.requiresGrad = true;
  return out;
}

// Gradient buffers of the tensors in the graph being differentiated. Leaves keep theirs in .grad.
let grads: Map<Tensor, Storage> | null = null;

function wantsGrad(t: Tensor): boolean {
  return t.requiresGrad || t.node !== null;
}

/**
 * The buffer to ACCUMULATE (+=) t's gradient into (zeroed when new), or null when t needs none.
 * Parameters get their .grad allocated here, lazily: frozen ones never get one.
 */
export function gradBuffer(t: Tensor): Storage | null {
  if (!wantsGrad(t)) return null;
  if (!t.node) {
    if (!t.grad) t.grad = parameterStorage(t);
    t.gradTouched = true;
    return t.grad;
  }
  let g = grads!.get(t);
  if (!g) {
    g = acquire(t.size, t.device);
    grads!.set(t, g);
  }
  return g;
}

/**
 * For kernels that OVERWRITE their input gradient: write(out) fills `out`; when t already holds a
 * gradient (t used twice), the result goes through a temporary and is added.
 */
export function writeGrad(t: Tensor, write: (out: Storage) => void): void {
  if (!wantsGrad(t)) return;
  const existing = t.node ? grads!.get(t) : t.grad;
  if (!existing) {
    if (!t.node) t.gradTouched = true;
    const g = t.node ? acquire(t.size, t.device, "f32", false) : parameterStorage(t); // write() fills all of it
    write(g);
    if (t.node) grads!.set(t, g);
    else t.grad = g;
    return;
  }
  if (!t.node && !t.gradTouched) {
    // A leaf whose gradient lives in an arena slot that still holds zeros: overwrite it.
    write(existing);
    t.gradTouched = true;
    return;
  }
  const tmp = acquire(t.size, t.device, "f32", false);
  write(tmp);
  native.add({ n: t.size, a: existing.handle, b: tmp.handle, y: existing.handle });
  release(tmp);
}

/**
 * For kernels that can either overwrite or accumulate (a GEMM's beta): write(out, 0) fills a fresh
 * gradient, write(out, 1) adds into the one t already has, with no temporary and no separate add.
 */
export function accumulateGrad(t: Tensor, write: (out: Storage, beta: 0 | 1) => void): void {
  if (!wantsGrad(t)) return;
  const existing = t.node ? grads!.get(t) : t.grad;
  if (existing && (t.node || t.gradTouched)) {
    write(existing, 1);
    return;
  }
  writeGrad(t, (out) => write(out, 0));
}

/**
 * Hands t a gradient the caller computed into g (a buffer it acquired): g becomes t's gradient when t
 * has none yet (no copy), else it is added to the existing one; g is the callee's afterwards.
 */
export function giveGrad(t: Tensor, g: Storage): void {
  if (wantsGrad(t) && t.node && !grads!.get(t)) {
    grads!.set(t, g);
    return;
  }
  writeGrad(t, (dst) => dst.copyFromStorage(g));
  release(g);
}

/**
 * Differentiates root (a scalar loss, or any tensor with `gradient` given). `onLeafReady` is called
 * with each leaf (parameter) as soon as its gradient is complete: right after the last node that
 * uses it ran, while the rest of the backward goes on (DDP reduces gradient buckets there).
 */
export function backward(root: Tensor, gradient?: ArrayLike<number>, onLeafReady?: (leaf: Tensor) => void): void {
  if (!root.node) throw new TunekitError("backward: the tensor was not produced by an op that requires grad (is every parameter frozen, or was it computed under noGrad?)");
  if (!gradient && root.size !== 1)
    throw new TunekitError(`backward: called on a tensor of shape [${root.shape.join(", ")}]; expected a scalar loss (or pass the output gradient)`);
  if (grads) throw new TunekitError("backward: already running (re-entrant backward is not supported)");
  // Reverse topological order by iterative DFS.
  const order: Tensor[] = [];
  const seen = new Set<Tensor>();
  const stack: [Tensor, number][] = [[root, 0]];
  seen.add(root);
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [t, i] = top;
    const inputs = t.node ? t.node.inputs : [];
    if (i < inputs.length) {
      top[1]++;
      const c = inputs[i];
      if (c.node && !seen.has(c)) {
        seen.add(c);
        stack.push([c, 0]);
      }
    } else {
      stack.pop();
      order.push(t);
    }
  }
  // The leaves whose last use is order[i] (the backward runs i downward), for onLeafReady.
  const readyAt = new Map<number, Tensor[]>();
  if (onLeafReady) {
    const seenLeaf = new Set<Tensor>();
    for (let i = 0; i < order.length; i++)
      for (const c of order[i].node?.inputs ?? [])
        if (!c.node && c.requiresGrad && !seenLeaf.has(c)) {
          seenLeaf.add(c);
          const at = readyAt.get(i) ?? [];
          at.push(c);
          readyAt.set(i, at);
        }
  }
  grads = new Map();
  try {
    const g0 = acquire(root.size, root.device, "f32", false);
    if (gradient) g0.copyFrom(gradient);
    else g0.fill(1);
    grads.set(root, g0);
    for (let i = order.length - 1; i >= 0; i--) {
      const t = order[i];
      const g = grads.get(t);
      const node = t.node!;
      if (g) node.backward(g);
      grads.delete(t);
      if (g) release(g);
      for (const s of node.saved ?? []) release(s);
      node.saved = undefined;
      for (const leaf of readyAt.get(i) ?? []) onLeafReady!(leaf);
    }
  } finally {
    for (const g of grads.values()) release(g);
    grads = null;
    // Free the graph: every intermediate's memory, unless the caller retained it.
    for (const t of order) {
      t.node = null;
      if (!t.retained && t !== root) t.dispose();
    }
  }
}

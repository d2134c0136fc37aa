// Gradient reduction of data-parallel training (torch DDP's Reducer): the optimizer's gradients are
// grouped into buckets in the reverse of the model's parameter order (the order the backward reaches
// them), and each bucket is all-reduced as soon as the backward has finished every gradient in it,
// while the backward goes on. Buckets launch in a fixed order, the same on every rank. A bucket whose
// gradients lie back to back in the gradient arena is reduced in place; any other is gathered into a
// staging buffer and scattered back.
import { TunekitError } from "../errors";
import { Storage, allocate, release } from "../tensor/storage";
import type { Tensor } from "../tensor/tensor";
import type { Parameter } from "../nn/module";
import type { AdamW } from "../train/optimizer";
import type { ProcessGroup } from "./process_group";

interface Bucket {
  params: Parameter[];
  /** The arena range reduced in place, or null when staged. */
  range: Storage | null;
  staging: Storage | null;
  /** Each staged parameter's offset in staging. */
  offsets: number[];
  pending: number;
  ticket: number;
}

/** What one reduction cost the training step. */
export interface ReduceTiming {
  /** Seconds the training step was blocked waiting for the last buckets. */
  waitSeconds: number;
}

export class Reducer {
  readonly buckets: Bucket[] = [];
  private readonly bucketOf = new Map<Tensor, number>();
  private next = 0;
  private active = false;

  constructor(readonly group: ProcessGroup, private readonly optimizer: AdamW, model: { namedParameters(): Iterable<[string, Parameter]> }, bucketCapMb = group.bucketCapMb) {
    const grads = optimizer.grads;
    const slotOf = new Map<Parameter, number>(optimizer.parameters.map((p, i) => [p, i]));
    // torch's order: the model's parameters reversed; the first bucket small (1 MB) so that the first
    // reduction starts early.
    // A tied weight (GPT-2's wte and lm_head) is listed once: it must be reduced once.
    const order = [...new Set([...model.namedParameters()].map(([, p]) => p))].filter((p) => slotOf.has(p)).reverse();
    if (order.length !== slotOf.size) throw new TunekitError("distributed: the optimizer holds parameters the model does not list");
    let current: Parameter[] = [], bytes = 0;
    const cap = () => (this.buckets.length === 0 ? 1 : bucketCapMb) * 1024 * 1024;
    const close = () => {
      if (!current.length) return;
      const slots = current.map((p) => grads.slots[slotOf.get(p)!]).sort((a, b) => a.offset - b.offset);
      const contiguous = slots.every((s, i) => i === 0 || s.offset === slots[i - 1].offset + slots[i - 1].length);
      const length = slots.reduce((n, s) => n + s.length, 0);
      let at = 0;
      const offsets = current.map((p) => ((at += p.size), at - p.size));
      this.buckets.push({
        params: current, pending: 0, ticket: 0, offsets,
        range: contiguous ? grads.storage.view(slots[0].offset, length) : null,
        staging: contiguous ? null : allocate(length, grads.storage.device, "f32", "a gradient bucket"),
      });
      current.forEach((p) => this.bucketOf.set(p, this.buckets.length - 1));
      current = [];
      bytes = 0;
    };
    for (const p of order) {
      if (bytes > 0 && bytes + p.size * 4 > cap()) close();
      current.push(p);
      bytes += p.size * 4;
    }
    close();
  }

  /** Before the backward of a step's last micro-batch: every bucket waits for its gradients again. */
  prepare(): void {
    for (const b of this.buckets) b.pending = b.params.length;
    this.next = 0;
    this.active = true;
  }

  /** The backward's onLeafReady: counts the parameter done and launches every bucket now complete, in order. */
  readonly onGradReady = (leaf: Tensor): void => {
    const i = this.bucketOf.get(leaf);
    if (!this.active || i === undefined) return;
    this.buckets[i].pending--;
    while (this.next < this.buckets.length && this.buckets[this.next].pending === 0) this.launch(this.next++);
  };

  private launch(i: number): void {
    const b = this.buckets[i];
    if (b.staging) b.params.forEach((p, k) => b.staging!.view(b.offsets[k], p.size).copyFromStorage(p.grad!));
    b.ticket = this.group.allReduceStart((b.range ?? b.staging)!.handle as Float32Array);
  }

  /**
   * After the backward (or instead of it, when this rank had no examples in the step): launches the
   * buckets not launched yet (gradients no backward reached here are zeros, and still take part), waits
   * for all of them and puts staged results back in place.
   */
  finish(): ReduceTiming {
    if (!this.active) this.prepare();
    while (this.next < this.buckets.length) this.launch(this.next++);
    this.active = false;
    const waitSeconds = this.buckets.length ? this.group.wait(this.buckets[this.buckets.length - 1].ticket) : 0;
    for (const b of this.buckets)
      if (b.staging) b.params.forEach((p, k) => p.grad!.copyFromStorage(b.staging!.view(b.offsets[k], p.size)));
    return { waitSeconds };
  }

  dispose(): void {
    for (const b of this.buckets) if (b.staging) release(b.staging);
  }
}

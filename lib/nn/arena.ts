// Arenas (llm.c): one storage for many tensors of one device, each tensor's storage a view of it. The
// parameters of a model live in one arena per dtype, the gradients of its trainable parameters in
// another, AdamW's m and v in two more with the gradients' layout; so zero-grad, the gradient norm,
// clipping and the AdamW step are one native call each over the whole model, and moving a model to a
// device is one allocation and one copy per arena.
import { TunekitError } from "../errors";
import { Storage, Device, DType, allocate, release } from "../tensor/storage";
import type { Tensor } from "../tensor/tensor";

export interface Slot {
  offset: number;
  length: number;
}

export class Arena {
  readonly storage: Storage;
  readonly slots: Slot[];

  /** Lays out `lengths` back to back in one fresh zeroed storage. */
  constructor(lengths: number[], device: Device, dtype: DType = "f32", what = "an arena") {
    let offset = 0;
    this.slots = lengths.map((length) => {
      const s = { offset, length };
      offset += length;
      return s;
    });
    this.storage = allocate(offset, device, dtype, what);
  }

  get length(): number {
    return this.storage.length;
  }

  view(i: number): Storage {
    const s = this.slots[i];
    if (!s) throw new TunekitError(`Arena: no slot ${i} (it has ${this.slots.length})`);
    return this.storage.view(s.offset, s.length);
  }

  free(): void {
    release(this.storage);
  }
}

/**
 * Moves the values of `tensors` (distinct, one dtype) into one new arena on `device` and points each
 * tensor's storage at its slot (the old storage is released).
 */
export function packInto(tensors: Tensor[], device: Device, dtype: DType = "f32"): Arena {
  const stray = tensors.find((t) => t.dtype !== dtype);
  if (stray) throw new TunekitError(`packInto: a ${stray.dtype} tensor for an arena of ${dtype}; expected one dtype (packByDtype splits them)`);
  const arena = new Arena(tensors.map((t) => t.size), device, dtype, `the parameters (${tensors.length} tensors)`);
  tensors.forEach((t, i) => {
    const view = arena.view(i);
    view.copyFromStorage(t.storage);
    release(t.storage);
    t.storage = view;
  });
  return arena;
}

/** packInto for tensors of several dtypes: one arena per dtype (in order of first appearance). */
export function packByDtype(tensors: Tensor[], device: Device): Arena[] {
  const byDtype = new Map<DType, Tensor[]>();
  for (const t of tensors) {
    let list = byDtype.get(t.dtype);
    if (!list) byDtype.set(t.dtype, (list = []));
    list.push(t);
  }
  return [...byDtype].map(([dtype, list]) => packInto(list, device, dtype));
}

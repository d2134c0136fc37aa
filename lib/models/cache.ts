// The key/value cache of a decoder (HF's DynamicCache, with a fixed capacity): per layer K and V of
// (B, Tmax, Hkv, D) on the model's device, filled left to right. A batch of prompts is left-padded,
// so every row's next token sits at the same cache index; `mask` records which cached tokens are
// padding and `positions` each row's next position (HF's generate: position_ids = cumsum(mask) − 1).
import { native } from "../native";
import { TunekitError } from "../errors";
import { Tensor } from "../tensor/tensor";
import { Storage, Device, allocate, release, fromHost } from "../tensor/storage";
import { HeadsView } from "../tensor/ops";

export class KVCache {
  readonly k: Storage[];
  readonly v: Storage[];
  /** Tokens stored per row (the same for every row). */
  length = 0;
  /** (B, Tmax): 1 where a real token is cached, 0 for padding (and the unused tail). */
  readonly mask: Uint8Array;
  /** Each row's count of real tokens so far: the position of its next token. */
  readonly positions: Int32Array;
  // This step's view of the mask, (B, length + T), one array shared by every layer's attention.
  private stepMask: Uint8Array | null = null;

  constructor(readonly B: number, readonly Tmax: number, readonly numLayers: number, readonly Hkv: number, readonly D: number, readonly device: Device) {
    const n = B * Tmax * Hkv * D;
    this.k = Array.from({ length: numLayers }, () => allocate(n, device, "f32", "the key cache"));
    this.v = Array.from({ length: numLayers }, () => allocate(n, device, "f32", "the value cache"));
    this.mask = new Uint8Array(B * Tmax);
    this.positions = new Int32Array(B);
  }

  /**
   * Starts a forward of T new tokens per row with their attention mask (B·T, 1 = real): records the
   * mask and returns the tokens' positions (B·T; a padding token gets position 1, as HF does).
   */
  begin(attentionMask: Uint8Array, T: number): Int32Array {
    const { B, Tmax } = this;
    if (attentionMask.length !== B * T) throw new TunekitError(`KVCache: attention mask of ${attentionMask.length} for ${B} rows × ${T} tokens`);
    if (this.length + T > Tmax) throw new TunekitError(`KVCache: ${this.length} + ${T} tokens exceed its capacity of ${Tmax}; make the cache larger (maxNewTokens + prompt length)`);
    const pos = new Int32Array(B * T);
    for (let b = 0; b < B; b++)
      for (let t = 0; t < T; t++) {
        const real = attentionMask[b * T + t] ? 1 : 0;
        this.mask[b * Tmax + this.length + t] = real;
        pos[b * T + t] = real ? this.positions[b]++ : 1;
      }
    const Tk = this.length + T;
    this.stepMask = new Uint8Array(B * Tk);
    for (let b = 0; b < B; b++) this.stepMask.set(this.mask.subarray(b * Tmax, b * Tmax + Tk), b * Tk);
    return pos;
  }

  /** The keys every query of this step may see: (B, length + T) of begin(). */
  get keyMask(): Uint8Array {
    if (!this.stepMask) throw new TunekitError("KVCache: begin() was not called for this step");
    return this.stepMask;
  }

  /** Writes layer's new keys and values (B, T, Hkv·D, read through their views) at [length, length + T). */
  append(layer: number, k: HeadsView, v: HeadsView, T: number): void {
    const W = this.Hkv * this.D;
    for (const [src, dst] of [[k, this.k[layer]], [v, this.v[layer]]] as [HeadsView, Storage][])
      for (let b = 0; b < this.B; b++)
        native.copyStrided({
          rows: T, cols: W,
          src: src.t.storage.view(b * T * src.ld + src.col, (T - 1) * src.ld + W).handle, srcLd: src.ld,
          dst: dst.view((b * this.Tmax + this.length) * W, T * W).handle, dstLd: W,
        });
  }

  /** Ends the step: its T tokens are now part of the cache. */
  end(T: number): void {
    this.length += T;
    this.stepMask = null;
  }

  free(): void {
    for (const s of [...this.k, ...this.v]) release(s);
  }
}

/**
 * Attention of the step's queries (B, T, H·D) over the cache: the new tokens (already appended) and
 * everything before them. Prefill (T > 1) needs an empty cache before the step: the keys are then
 * exactly the step's own. One query per row (T = 1) runs the decode kernel over the whole cache.
 */
export function cachedAttention(q: HeadsView, k: HeadsView, v: HeadsView, cache: KVCache, layer: number, T: number, numHeads: number, window = 0): Tensor {
  const { B, Hkv, D, Tmax } = cache;
  const Tk = cache.length + T;
  const out = Tensor.empty([B, T, numHeads * D], q.t.device);
  const maskS = fromHost(cache.keyMask, q.t.device);
  try {
    if (T === 1) {
      native.attentionDecode({
        B, H: numHeads, Hkv, Tk, Tmax, D,
        q: q.t.storage.view(q.col).handle, ldq: q.ld,
        k: cache.k[layer].handle, v: cache.v[layer].handle, ldk: Hkv * D, ldv: Hkv * D,
        o: out.storage.handle, ldo: numHeads * D, keyMask: maskS.handle, window,
      });
      return out;
    }
    if (cache.length !== 0) throw new TunekitError(`cachedAttention: ${T} queries on a cache of ${cache.length} tokens; only a prefill of an empty cache or one token at a time is supported`);
    const lse = allocate(B * numHeads * T, q.t.device);
    const at = (x: HeadsView) => x.t.storage.view(x.col).handle;
    native.attentionForward({
      B, H: numHeads, Hkv, Tq: T, Tk: T, D,
      q: at(q), ldq: q.ld, k: at(k), ldk: k.ld, v: at(v), ldv: v.ld,
      o: out.storage.handle, ldo: numHeads * D, lse: lse.handle,
      keyMask: maskS.handle, causal: true, window, scale: 1 / Math.sqrt(D),
    });
    release(lse);
    return out;
  } finally {
    if (q.t.device !== "cpu") release(maskS);
  }
}

// Dynamic loss scaling, as torch.amp.GradScaler: the loss is multiplied by `scale` before the
// backward so small fp16/bf16 gradients do not flush to zero; the gradients are divided by it again
// before the optimizer (folded into the update's gradient multiplier here, no extra pass). A step
// whose scaled gradients overflowed (inf/NaN) is skipped and the scale backs off; after
// `growthInterval` good steps in a row it grows. The update is torch's _amp_update_scale_:
//   found inf: scale *= backoffFactor, tracker = 0
//   else:      tracker += 1; if tracker == growthInterval: scale *= growthFactor (only if finite), tracker = 0
// The scale seeds a float32 backward, so like torch's float32 scale tensor it stays finite in float32.
import { TunekitError } from "../errors";

export interface LossScalerOptions {
  /** torch default 2^16. */
  initScale?: number;
  /** torch default 2.0. */
  growthFactor?: number;
  /** torch default 0.5. */
  backoffFactor?: number;
  /** Good steps in a row before the scale grows; torch default 2000. */
  growthInterval?: number;
}

export interface LossScalerState {
  scale: number;
  growthTracker: number;
}

export class LossScaler {
  private s: number;
  private tracker = 0;
  readonly growthFactor: number;
  readonly backoffFactor: number;
  readonly growthInterval: number;

  constructor(o: LossScalerOptions = {}) {
    this.s = o.initScale ?? 65536;
    this.growthFactor = o.growthFactor ?? 2;
    this.backoffFactor = o.backoffFactor ?? 0.5;
    this.growthInterval = o.growthInterval ?? 2000;
    if (!(this.s > 0 && Number.isFinite(Math.fround(this.s)))) throw new TunekitError(`LossScaler: initScale must be > 0 and finite in float32 (at most ~3.4e38), got ${o.initScale}`);
    if (!(this.growthFactor > 1)) throw new TunekitError(`LossScaler: growthFactor must be > 1, got ${o.growthFactor}`);
    if (!(this.backoffFactor > 0 && this.backoffFactor < 1)) throw new TunekitError(`LossScaler: backoffFactor must be in (0, 1), got ${o.backoffFactor}`);
    if (!(Number.isInteger(this.growthInterval) && this.growthInterval >= 1)) throw new TunekitError(`LossScaler: growthInterval must be a positive integer, got ${o.growthInterval}`);
  }

  /** The factor the loss (the backward's seed gradient) is multiplied by this step. */
  get scale(): number {
    return this.s;
  }

  /** The factor that undoes the scale on the gradients (torch's unscale_). */
  get inverse(): number {
    return 1 / this.s;
  }

  /** Records the outcome of one step (foundInf: its gradients were not finite) and adjusts the scale. */
  update(foundInf: boolean): void {
    if (foundInf) {
      this.s *= this.backoffFactor;
      this.tracker = 0;
      return;
    }
    this.tracker++;
    if (this.tracker === this.growthInterval) {
      const grown = this.s * this.growthFactor;
      if (Number.isFinite(Math.fround(grown))) this.s = grown;  // torch keeps the scale in float32
      this.tracker = 0;
    }
  }

  state(): LossScalerState {
    return { scale: this.s, growthTracker: this.tracker };
  }

  load(st: LossScalerState): void {
    if (!(st && st.scale > 0 && Number.isInteger(st.growthTracker) && st.growthTracker >= 0))
      throw new TunekitError(`LossScaler: bad saved state ${JSON.stringify(st)}`);
    this.s = st.scale;
    this.tracker = st.growthTracker;
  }
}

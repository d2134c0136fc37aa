// The Trainer's view of a learning-rate schedule: the multiplier of the base lr at an optimizer step.
export type ScheduleName = "linear" | "cosine" | "constant" | "constant_with_warmup" | "slanted_triangular";

export function scheduleMultiplier(name: ScheduleName, step: number, o: { warmupSteps: number; totalSteps: number }): number {
  const { warmupSteps: w, totalSteps: T } = o;
  switch (name) {
    case "constant":
      return 1;
    case "constant_with_warmup":
      return step < w ? step / Math.max(1, w) : 1;
    case "linear":
      return step < w ? step / Math.max(1, w) : Math.max(0, (T - step) / Math.max(1, T - w));
    case "cosine": {
      if (step < w) return step / Math.max(1, w);
      const p = (step - w) / Math.max(1, T - w);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * p)));
    }
    case "slanted_triangular": {
      const cut = Math.max(1, Math.floor(T * 0.1)), ratio = 32;
      const p = step < cut ? step / cut : 1 - (step - cut) / (cut * (1 / 0.1 - 1));
      return (1 + p * (ratio - 1)) / ratio;
    }
  }
}

// Rotary embedding frequencies as HF's modeling_rope_utils computes them: the default
// 1 / theta^(2i/D), and rope_scaling type "llama3" (Llama 3.1+: low frequencies divided by `factor`,
// a smooth blend between the two wavelength bounds). Other rope types are refused by the config parser.
import { TunekitError } from "../errors";

export interface RopeScaling {
  ropeType: "llama3";
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalMaxPositionEmbeddings: number;
}

/** inv_freq (D/2 values, float32) for head dimension D. */
export function ropeInvFreq(D: number, theta: number, scaling: RopeScaling | null = null): Float32Array {
  if (!(Number.isInteger(D) && D > 0 && D % 2 === 0)) throw new TunekitError(`rope: head_dim ${D} must be a positive even integer`);
  if (!(theta > 0)) throw new TunekitError(`rope: rope_theta ${theta} must be > 0`);
  const half = D / 2;
  const inv = new Float32Array(half);
  const f = new Float32Array(1);
  for (let i = 0; i < half; i++) {
    f[0] = (2 * i) / D; // float32, as torch.arange(0, D, 2).float() / D
    inv[i] = 1 / Math.pow(theta, f[0]);
  }
  if (!scaling) return inv;
  const { factor, lowFreqFactor, highFreqFactor, originalMaxPositionEmbeddings: old } = scaling;
  const lowWavelen = old / lowFreqFactor, highWavelen = old / highFreqFactor;
  for (let i = 0; i < half; i++) {
    const wavelen = (2 * Math.PI) / inv[i];
    let v = wavelen > lowWavelen ? inv[i] / factor : inv[i];
    if (!(wavelen < highWavelen) && !(wavelen > lowWavelen)) {
      const smooth = (old / wavelen - lowFreqFactor) / (highFreqFactor - lowFreqFactor);
      v = (1 - smooth) * (v / factor) + smooth * v;
    }
    inv[i] = v;
  }
  return inv;
}

/**
 * Fresh weights with the official initialisations (docs/design.md §3.7): PyTorch's default Conv/Linear
 * init for the U-Nets, N(0, 0.02) convs and zero biases inside the SPADE blocks, unit-norm random
 * spectral-norm vectors, and the discriminator's variance-scaling uniform init (scale ~0 for the
 * `conv2`/`final_conv` layers, as `init_scale=0.` does).
 */
import type { NetConfig, NetKind } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import { paramSpec } from '../nn/models.js';
import { SeededNoise } from '../util/noise.js';
import { numel } from '../util/tensor.js';

function fans(shape: number[]): { fanIn: number; fanOut: number } {
  const rf = shape.length > 2 ? numel(shape.slice(2)) : 1;
  return { fanIn: (shape[1] ?? 1) * rf, fanOut: shape[0]! * rf };
}

export function initWeights(kind: NetKind, cfg: NetConfig, seed: number): StateDict {
  const rng = new SeededNoise(seed);
  const sd: StateDict = new Map();
  const spec = paramSpec(kind, cfg);
  const uniform = (n: number, b: number) => Float32Array.from({ length: n }, () => (rng.uniform() * 2 - 1) * b);
  for (const [key, shape] of spec) {
    const n = numel(shape);
    let data: Float32Array;
    if (key.endsWith('.g')) data = new Float32Array(n).fill(1);
    else if (key.endsWith('.weight_u') || key.endsWith('.weight_v')) {
      data = rng.normal([n]);
      const norm = Math.hypot(...data) || 1;
      for (let i = 0; i < n; i++) data[i] = data[i]! / norm;
    } else if (kind === 'discriminator') {
      if (key.endsWith('.bias')) data = new Float32Array(n);
      else {
        const { fanIn, fanOut } = fans(shape);
        const zeroInit = /(^|\.)conv2\.0\.weight$|^final_conv\.weight$/.test(key);
        const scale = zeroInit ? 1e-10 : 1;
        data = uniform(n, Math.sqrt((3 * scale) / Math.max(1, (fanIn + fanOut) / 2)));
      }
    } else if (/\.4\.(conv_[01]|norm_[01])\./.test(key)) {
      // SPADE block: BaseNetwork.init_weights('normal', 0.02)
      data = key.endsWith('.bias') ? new Float32Array(n) : rng.normal([n]).map((v) => v * 0.02);
    } else {
      // PyTorch default: kaiming_uniform(a=sqrt(5)) = U(±1/sqrt(fan_in)) for weights and biases
      const wShape = key.endsWith('.bias') ? spec.get(key.replace(/\.bias$/, '.weight')) ?? spec.get(key.replace(/\.bias$/, '.weight_orig')) ?? shape : shape;
      data = uniform(n, 1 / Math.sqrt(fans(wShape).fanIn));
    }
    sd.set(key, { shape: [...shape], data });
  }
  return sd;
}

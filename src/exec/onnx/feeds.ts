/**
 * A network's graph inputs, by name and in the exported shape, from the sampler's NetInputs, as
 * host tensors: onnxruntime-node (calibrate.ts) and onnxruntime-web (src/browser/runtime.ts) wrap
 * them in their own Tensor classes. No runtime import.
 */
import type { F32Tensor } from '../../util/tensor.js';
import type { NetConfig, NetInputs, NetKind } from '../types.js';
import { describeModel, type ExportShape } from './export.js';

/** The graph's feeds for one NetInputs (the discriminator's image input is named `y`), checked against describeModel. */
export function hostFeeds(kind: NetKind, cfg: NetConfig, inputs: NetInputs): { shape: ExportShape; feeds: Record<string, { data: Float32Array; dims: number[] }> } {
  if (inputs.x.shape.length !== 4) throw new Error(`${kind}: input must be NCHW (got [${inputs.x.shape}])`);
  const [B, , H, W] = inputs.x.shape as [number, number, number, number];
  const shape = { batch: B, height: H, width: W };
  const desc = describeModel(kind, cfg, shape);
  const host: Record<string, F32Tensor | undefined> = {
    x: kind === 'discriminator' ? undefined : inputs.x,
    y: kind === 'discriminator' ? inputs.x : undefined,
    mu: inputs.mu,
    S: inputs.S,
    t: { shape: [inputs.t.length], data: Float32Array.from(inputs.t) },
  };
  const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
  for (const d of desc.inputs) {
    const v = host[d.name];
    if (!v) throw new Error(`the ${kind} network needs input ${d.name}`);
    if (v.shape.length !== d.shape.length || v.shape.some((n, i) => n !== d.shape[i])) {
      throw new Error(`${kind}: input ${d.name} has shape [${v.shape}], expected [${d.shape}]`);
    }
    feeds[d.name] = { data: v.data, dims: d.shape };
  }
  return { shape, feeds };
}

/**
 * The WebGPU export variant (exportOnnx's splitFirstConv, onnxruntime issue #29651): the first
 * conv of each bundled network over at most 3 input channels at a time computes the same function
 * as the plain graph (float rounding apart), and only the first conv with more than 3 channels is split.
 */
import { describe, it, expect } from 'vitest';
import * as ort from 'onnxruntime-node';
import { loadModel } from '../src/model/checkpoints.js';
import { exportOnnx } from '../src/exec/onnx/export.js';
import { hostFeeds } from '../src/exec/onnx/feeds.js';
import { SeededNoise } from '../src/util/noise.js';
import { NET_KINDS } from '../src/nn/models.js';
import type { NetInputs } from '../src/exec/types.js';
import { DEFAULT_MODEL_DIR } from '../src/model/checkpoints.js';

const S = 32;

describe('exportOnnx splitFirstConv (the WebGPU graphs)', () => {
  it('computes what the plain graph computes, for each bundled network', async () => {
    const model = loadModel([DEFAULT_MODEL_DIR]);
    const noise = new SeededNoise(3);
    const u = (c: number) => ({ shape: [1, c, S, S], data: noise.normal([1, c, S, S]).map((v) => 0.5 + 0.25 * v) });
    for (const kind of NET_KINDS) {
      const inputs: NetInputs = kind === 'discriminator' ? { x: u(3), S: u(1), t: [20] } : kind === 'texture' ? { x: u(3), mu: u(3), S: u(1), t: [20] } : { x: u(1), mu: u(1), t: [20] };
      const { feeds } = hostFeeds(kind, model.configs[kind], inputs);
      const tensors = Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, new ort.Tensor('float32', v.data, v.dims)]));
      const outs: Float32Array[] = [];
      const convs: number[] = [];
      for (const splitFirstConv of [false, true]) {
        const bytes = exportOnnx(kind, model.configs[kind], model.weights[kind], { batch: 1, height: S, width: S }, { splitFirstConv });
        const session = await ort.InferenceSession.create(bytes);
        outs.push((await session.run(tensors)).out!.data as Float32Array);
        await session.release();
        convs.push(Buffer.from(bytes).toString('latin1').split('Conv').length);
      }
      let d = 0;
      let m = 0;
      for (let i = 0; i < outs[0]!.length; i++) {
        d = Math.max(d, Math.abs(outs[0]![i]! - outs[1]![i]!));
        m = Math.max(m, Math.abs(outs[0]![i]!));
      }
      expect(d, kind).toBeLessThanOrEqual(1e-5 * Math.max(1, m));
      // texture (6 channels: 3 + 3) and discriminator (4: 3 + 1) gain one Conv; structure (2) none
      expect(convs[1]! - convs[0]!, kind).toBe(kind === 'structure' ? 0 : 1);
    }
  });
});

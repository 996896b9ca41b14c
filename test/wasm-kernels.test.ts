/**
 * The wasm backend's replacement gradient kernels (src/exec/tfjs-wasm-kernels.ts) against the cpu
 * backend's own kernels, and the project's gradient registrations against finite differences.
 */
import { describe, it, expect, beforeAll } from 'vitest';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-backend-wasm';
import { registerWasmGradKernels, registerTfGradients } from '../src/exec/tfjs-wasm-kernels.js';

function rnd(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed >>> 0;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    a[i] = s / 2 ** 32 - 0.5;
  }
  return a;
}

const size = (s: number[]) => s.reduce((a, b) => a * b, 1);

type Pad = 'valid' | 'same' | number | [[number, number], [number, number], [number, number], [number, number]];

/** gradients of sum(y·sin(y)) w.r.t. input and filter of one (depthwise) convolution, on `backend` */
async function convGrads(backend: string, xs: number[], ws: number[], stride: number, pad: Pad, depthwise: boolean): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const x = tf.tensor(rnd(size(xs), 1), xs);
  const w = tf.tensor(rnd(size(ws), 2), ws);
  const f = (a: tf.Tensor, b: tf.Tensor) => {
    const y = depthwise
      ? tf.depthwiseConv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad as never)
      : tf.conv2d(a as tf.Tensor4D, b as tf.Tensor4D, stride, pad as never);
    return tf.sum(tf.mul(y, tf.sin(y)));
  };
  const g = tf.grads(f)([x, w]);
  const out = [await g[0]!.data() as Float32Array, await g[1]!.data() as Float32Array];
  tf.dispose([x, w, ...g]);
  return out;
}

const P1: Pad = [[0, 0], [1, 1], [1, 1], [0, 0]];
const CASES: [string, number[], number[], number, Pad, boolean][] = [
  ['3x3 s1 p1', [2, 9, 9, 3], [3, 3, 3, 5], 1, P1, false],
  ['3x3 s1 same', [2, 8, 7, 3], [3, 3, 3, 4], 1, 'same', false],
  ['3x3 s2 p1 (even)', [2, 10, 10, 3], [3, 3, 3, 5], 2, P1, false],
  ['3x3 s2 valid (unread rows)', [2, 12, 12, 3], [3, 3, 3, 4], 2, 'valid', false],
  ['4x4 s2 p1 (U-Net downsample)', [2, 9, 8, 3], [4, 4, 3, 5], 2, P1, false],
  ['1x1 s1 (matmul path)', [2, 9, 9, 4], [1, 1, 4, 6], 1, 'valid', false],
  ['1x1 s1, more inputs than outputs (transposed matmul path)', [2, 9, 9, 7], [1, 1, 7, 3], 1, 'valid', false],
  ['1x1 s2 (cropped dy)', [2, 9, 9, 4], [1, 1, 4, 6], 2, 'valid', false],
  ['7x7 s1 p3 (init_conv)', [2, 12, 12, 2], [7, 7, 2, 4], 1, [[0, 0], [3, 3], [3, 3], [0, 0]], false],
  ['3x3 s1 asymmetric pad', [1, 7, 9, 2], [3, 3, 2, 3], 1, [[0, 0], [0, 2], [2, 1], [0, 0]], false],
  ['depthwise FIR 4x4 s2 p1', [2, 8, 8, 4], [4, 4, 4, 1], 2, P1, true],
  ['depthwise 4x4 s2 p1 (odd)', [2, 9, 7, 3], [4, 4, 3, 1], 2, P1, true],
  ['depthwise 3x3 s1 same', [2, 9, 9, 4], [3, 3, 4, 1], 1, 'same', true],
];

describe('wasm gradient kernels vs the cpu backend', () => {
  beforeAll(() => {
    registerWasmGradKernels();
  });

  for (const [label, xs, ws, stride, pad, dw] of CASES) {
    it(`${dw ? 'DepthwiseConv2dNativeBackprop' : 'Conv2DBackprop'}{Input,Filter}: ${label}`, async () => {
      const ref = await convGrads('cpu', xs, ws, stride, pad, dw);
      const got = await convGrads('wasm', xs, ws, stride, pad, dw);
      for (let i = 0; i < 2; i++) {
        let err = 0;
        let mx = 0;
        for (let k = 0; k < ref[i]!.length; k++) {
          err = Math.max(err, Math.abs(ref[i]![k]! - got[i]![k]!));
          mx = Math.max(mx, Math.abs(ref[i]![k]!));
        }
        expect(got[i]!.length).toBe(ref[i]!.length);
        expect(err).toBeLessThanOrEqual(2e-6 * Math.max(1, mx));
      }
    });
  }

  it('UnsortedSegmentSum (the gradient of gather / nearest upsampling) and the fast Slice / BatchMatMul', async () => {
    const run = async (backend: string) => {
      await tf.setBackend(backend);
      return tf.tidy(() => {
        const x = tf.tensor(rnd(2 * 3 * 4 * 5, 3), [2, 3, 4, 5]);
        const g = tf.grad((v: tf.Tensor) => {
          const up = tf.gather(tf.gather(v, tf.tensor1d([0, 0, 1, 1, 2, 2, 3, 3], 'int32'), 2), tf.tensor1d([0, 0, 1, 1, 2, 2, 3, 3, 4, 4], 'int32'), 3);
          const q = tf.reshape(tf.slice(tf.reshape(up, [2, 3, 1, 8, 10]), [0, 1, 0, 0, 0], [2, 2, 1, 8, 10]), [4, 8, 10]);
          return tf.sum(tf.mul(tf.matMul(q, q, true, false), tf.mean(tf.matMul(q, q, false, true))));
        })(x);
        return [g.dataSync().slice(), tf.matMul(tf.reshape(x, [6, 4, 5]), tf.reshape(x, [6, 5, 4]), true, true).dataSync().slice()];
      });
    };
    const [gc, mc] = await run('cpu');
    const [gw, mw] = await run('wasm');
    for (let k = 0; k < gc!.length; k++) expect(Math.abs(gc![k]! - gw![k]!)).toBeLessThanOrEqual(1e-4 * (1 + Math.abs(gc![k]!)));
    for (let k = 0; k < mc!.length; k++) expect(Math.abs(mc![k]! - mw![k]!)).toBeLessThanOrEqual(1e-5);
  });
});

describe('registered gradients vs finite differences (cpu)', () => {
  it('every op the networks and losses differentiate', async () => {
    registerTfGradients();
    await tf.setBackend('cpu');
    const n = 6;
    const x0 = Float32Array.from(rnd(n, 9), (v) => v * 1.6 + 0.05);
    const w = tf.tensor(rnd(n * n, 4), [n, n]);
    const f = (x: tf.Tensor): tf.Scalar => tf.tidy(() => {
      const a = tf.reshape(x, [1, n]);
      const h = tf.matMul(a, w, false, true);
      const parts = [
        tf.abs(h), tf.sqrt(tf.add(tf.square(h), 1)), tf.exp(tf.mul(h, 0.3)), tf.sin(h), tf.cos(h), tf.erf(h),
        tf.sigmoid(h), tf.relu(h), tf.leakyRelu(h, 0.2), tf.softplus(h), tf.softmax(h), tf.div(h, tf.add(tf.abs(h), 1)),
        tf.sub(tf.neg(h), tf.maximum(h, 0.1)),
      ];
      const cat = tf.concat(parts, 1);
      const sl = tf.slice(cat, [0, 2], [1, 5 * n]);
      const g = tf.gather(sl, tf.tensor1d([0, 3, 3, 7], 'int32'), 1);
      return tf.add(tf.add(tf.sum(tf.mul(cat, cat)), tf.mean(sl)), tf.sum(tf.mul(tf.transpose(g), 2))) as tf.Scalar;
    });
    const g = tf.grad(f)(tf.tensor(x0, [n]));
    const an = g.dataSync();
    const h = 1e-2;
    for (let i = 0; i < n; i++) {
      const xp = Float32Array.from(x0); xp[i] = xp[i]! + h;
      const xm = Float32Array.from(x0); xm[i] = xm[i]! - h;
      const fd = (f(tf.tensor(xp, [n])).dataSync()[0]! - f(tf.tensor(xm, [n])).dataSync()[0]!) / (2 * h);
      expect(Math.abs(fd - an[i]!)).toBeLessThanOrEqual(2e-2 * (1 + Math.abs(fd)));
    }
  });
});

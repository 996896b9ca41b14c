/**
 * `npm run bench -- --fill [--repeat 10] [--json]`
 *
 * The cost of each texture-mean fill (src/sde/fill.ts) per 128 px window, measured in the same run
 * as the ratio to Navier–Stokes: on the README example's window (the hole on the stem: `bridge`
 * joins two edges there) and on a smooth ramp with the same hole (no edge: `bridge` searches and
 * finds nothing). The network calls of a window cost seconds; a fill should stay a small part.
 */
import { readImage, toRgbFloat } from '../src/image/io.js';
import { FILLS, holeFill, prepareFill } from '../src/sde/fill.js';
import { findBridges } from '../src/sde/bridge.js';
import type { F32Tensor } from '../src/util/tensor.js';

const S = 128;

function arg(args: string[], name: string, def: string): string {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : def;
}

/** The S×S window of the README example centred on its hole: planar RGB and the mask (1 = known). */
async function exampleWindow(): Promise<{ x: Float32Array; m: Float32Array }> {
  const img = await readImage('examples/ladybird.jpg');
  const mask = await readImage('examples/ladybird_mask.png', 'mask');
  const W0 = img.width, hw0 = W0 * img.height;
  const rgb = toRgbFloat(img);
  let sx = 0, sy = 0, n = 0;
  for (let p = 0; p < hw0; p++) if (mask.data[p * mask.channels]! >= 128) { sx += p % W0; sy += (p / W0) | 0; n++; }
  const x0 = Math.round(sx / n - S / 2), y0 = Math.round(sy / n - S / 2);
  const x = new Float32Array(3 * S * S), m = new Float32Array(S * S);
  for (let y = 0; y < S; y++) for (let xx = 0; xx < S; xx++) {
    const P = (y + y0) * W0 + xx + x0, p = y * S + xx;
    for (let c = 0; c < 3; c++) x[c * S * S + p] = rgb[c * hw0 + P]!;
    m[p] = mask.data[P * mask.channels]! >= 128 ? 0 : 1;
  }
  return { x, m };
}

export async function main(args: string[]): Promise<void> {
  const repeat = Number(arg(args, '--repeat', '10'));
  const json = args.includes('--json');
  const example = await exampleWindow();
  const ramp = Float32Array.from({ length: 3 * S * S }, (_, i) => 0.2 + 0.6 * ((i % (S * S)) % S) / S);
  const cases = { example, ramp: { x: ramp, m: example.m } };
  const fills = FILLS.filter((f) => f !== 'zero');
  for (const f of fills) await prepareFill(f);
  const out: Record<string, Record<string, { ms: number; vsNs: number }> & { bridges: number }> = {};
  for (const [name, { x, m }] of Object.entries(cases)) {
    const xt: F32Tensor = { shape: [1, 3, S, S], data: x };
    const mt: F32Tensor = { shape: [1, 1, S, S], data: m };
    const ms: Record<string, number> = {};
    for (const f of fills) {
      holeFill(f, xt, mt); // warm-up (JIT, OpenCV's heap)
      const t0 = performance.now();
      for (let k = 0; k < repeat; k++) holeFill(f, xt, mt);
      ms[f] = (performance.now() - t0) / repeat;
    }
    const bridges = findBridges(x, holeFill('ns', xt, mt), m, 3, S, S).length;
    out[name] = { bridges } as never;
    for (const f of fills) (out[name] as Record<string, unknown>)[f] = { ms: ms[f]!, vsNs: ms[f]! / ms.ns! };
  }
  if (json) {
    console.log(JSON.stringify({ size: S, repeat, cases: out }));
    return;
  }
  console.log(`fill cost per ${S} px window (mean of ${repeat}; ratio to ns in the same run)`);
  for (const [name, r] of Object.entries(out)) {
    console.log(`  ${name} (${r.bridges} bridge${r.bridges === 1 ? '' : 's'}):`);
    for (const f of fills) {
      const v = (r as unknown as Record<string, { ms: number; vsNs: number }>)[f]!;
      console.log(`    ${f.padEnd(7)} ${v.ms.toFixed(1).padStart(7)} ms  ×${v.vsNs.toFixed(2)}`);
    }
  }
}

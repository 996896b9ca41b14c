/**
 * The diagnostic `oracle` structure guide: the exact structure posterior towards the window's own
 * structure x0 (the ground truth's in eval). The runner's x̂0 is that x0 for every kind; through
 * the pipeline the structure process's x̂0 in the hole is the window's gray (gray2edge) or Canny
 * edges (edge2edge), recovered from the recorded states; the texture result differs from the
 * network guide's; texture-only samplers ignore it as they ignore `fill`; eval accepts it and
 * every entry point that fills holes for real refuses it with one line.
 */
import { describe, it, expect } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { IRSDE } from '../src/sde/irsde.js';
import { SeededNoise, type NoiseSource } from '../src/util/noise.js';
import { knownStructureRunner, oracleStructureRunner, parseDiagnosticStructureGuide, parseStructureGuide } from '../src/sampler/fill-structure.js';
import { structureEnds, STRUCTURE_KINDS } from '../src/structure/kinds.js';
import { structureOf } from '../src/structure/index.js';
import { FIXTURE } from '../src/nn/config.js';
import { initWeights } from '../src/train/init.js';
import { writeSafetensors } from '../src/weights/safetensors.js';
import { loadModel, writeModelJson } from '../src/model/checkpoints.js';
import { inpaint, inpaintDiagnostic, type DiagnosticInpaintOptions } from '../src/inpaint/index.js';
import { loadModel as loadLibraryModel, inpaint as packageInpaint } from '../src/inpaint/pipeline.js';
import { modelMethod } from '../src/eval/methods.js';
import { queueModelMethod } from '../src/eval/queue-method.js';
import { writeImage, type RasterImage } from '../src/image/io.js';
import { fixture } from './fixtures.js';

const ROOT = resolve(__dirname, '..');
const NETS = fixture('parity/nets');
const root = mkdtempSync(join(tmpdir(), 'sd-oracle-'));
const REFUSAL = (subject: string) => `${subject} guides the fill by the pixels under the hole (the ground truth in eval): it is a diagnostic for eval, not a way to fill a hole`;
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** a model folder of fixture-size networks (random weights) with `meta` in its model.json */
function folder(name: string, kinds: ('structure' | 'texture' | 'discriminator')[], meta: Record<string, unknown>, spade = true): string {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  for (const k of kinds) writeSafetensors(join(dir, `${k}.safetensors`), initWeights(k, k === 'texture' ? { ...FIXTURE.texture, spade } : FIXTURE[k], 1));
  writeModelJson(dir, { T: 10, ...meta });
  return dir;
}

/** 32×32: a bright diagonal band and a vertical bar crossing the hole (so its gray and its edges are not what a fill would guess) */
const S = 32;
const photo: RasterImage = {
  width: S,
  height: S,
  channels: 3,
  bitDepth: 8,
  data: Uint8Array.from({ length: S * S * 3 }, (_, i) => {
    const p = Math.floor(i / 3), c = i % 3, x = p % S, y = Math.floor(p / S);
    const band = Math.abs(x - y) < 4 ? 220 : 30;
    const bar = x >= 14 && x < 17 ? 160 : 0;
    return Math.min(255, band + bar + c * 15);
  }),
};
const holeMask: RasterImage = { width: S, height: S, channels: 1, bitDepth: 8, data: Uint8Array.from({ length: S * S }, (_, p) => (Math.abs((p % S) - 15) < 6 && Math.abs(Math.floor(p / S) - 14) < 6 ? 255 : 0)) };
function cli(...args: string[]) {
  const r = spawnSync(process.execPath, [join(ROOT, 'bin/strdiffusion.js'), ...args], { cwd: ROOT, encoding: 'utf8' });
  return { status: r.status, out: r.stdout, err: r.stderr.trim() };
}
const zeros: NoiseSource = { normal: (shape) => new Float32Array(shape.reduce((a, b) => a * b, 1)) };

describe('oracle structure runner', () => {
  it('predicts x̂0 = the kind\'s clean structure of the given gray / edges (hole included) at every level, for every kind', async () => {
    const sde = new IRSDE({ T: 30 });
    const H = 12;
    const shape = [1, 1, H, H];
    const gray = { shape, data: Float32Array.from({ length: H * H }, (_, i) => ((i * 7) % 13) / 12) };
    const edge = { shape, data: Float32Array.from({ length: H * H }, (_, i) => (i % 5 === 0 ? 1 : 0)) };
    const rng = new SeededNoise(4);
    for (const kind of STRUCTURE_KINDS) {
      const g = structureEnds(kind, gray.data, edge.data).x0;
      const runner = oracleStructureRunner(sde, kind, gray, edge);
      const mu = rng.normal(shape).map((v) => Math.abs(v) * 0.3);
      for (const t of [1, 12, 30]) {
        const x = sde.generateStates(rng.normal(shape).map((v) => 0.5 + 0.2 * v), mu, t, rng.normal(shape), shape);
        const eps = await runner.run({ x: { shape, data: x }, mu: { shape, data: mu }, t: [t] });
        const x0 = sde.predictX0(x, mu, eps.data, t, shape);
        let err = 0;
        for (let i = 0; i < x0.length; i++) err = Math.max(err, Math.abs(x0[i]! - g[i]!));
        expect(err, `${kind} at t=${t}`).toBeLessThan(t === 30 ? 1e-3 : 1e-5);
      }
    }
    // the one runner for a fixed estimate: an arbitrary g comes back as x̂0
    const g = Float32Array.from({ length: H * H }, (_, i) => (i % 3) / 2);
    const x = rng.normal(shape);
    const mu = new Float32Array(H * H);
    const eps = await knownStructureRunner(sde, g).run({ x: { shape, data: x }, mu: { shape, data: mu }, t: [5] });
    const x0 = sde.predictX0(x, mu, eps.data, 5, shape);
    for (let i = 0; i < g.length; i++) expect(Math.abs(x0[i]! - g[i]!)).toBeLessThan(1e-5);
  });

  it('guide parsing: inpaint\'s refuses oracle with the one line, eval\'s accepts it', () => {
    expect(() => parseStructureGuide('oracle')).toThrow(new Error(REFUSAL('--structure oracle')));
    expect(() => parseStructureGuide('edges')).toThrow(/^--structure must be one of network, fill \(got "edges"\)$/);
    expect(parseDiagnosticStructureGuide('oracle')).toBe('oracle');
    expect(parseDiagnosticStructureGuide('fill')).toBe('fill');
    expect(() => parseDiagnosticStructureGuide('edges')).toThrow(/^--structure must be one of network, fill, oracle \(got "edges"\)$/);
  });
});

describe('oracle guide through the pipeline', () => {
  /**
   * A run with zero noise, the no-resampling sampler and the posterior solver: every early step
   * moves the hole's structure state to the posterior mean from x_s towards the step's x̂0, which
   * is affine in x̂0, so x̂0 = (x_t − P(0)) / (P(1) − P(0)) per pixel with P(g) the posterior step
   * towards g (μS is 0 in the hole). Returns the x̂0 of each early step, the window and the image.
   */
  async function structureX0s(dir: string, structure: DiagnosticInpaintOptions['structure']) {
    const states: { t: number; x: Float32Array }[] = [];
    const res = await inpaintDiagnostic(photo, holeMask, {
      checkpoints: dir,
      size: S,
      sampler: 'no-resampling',
      solver: 'posterior',
      structure,
      noise: zeros,
      warn: () => {},
      onState: (t, _y, x) => {
        if (x) states.push({ t, x: Float32Array.from(x) });
      },
    });
    const sde = new IRSDE({ T: 10 });
    const shape = [1, 1, S, S];
    const n = S * S;
    const x0s: Float32Array[] = [];
    // x_T = μS + λ·0 = μS: 0 in the hole
    let prev: Float32Array = new Float32Array(n);
    for (const { t, x } of states) {
      const p0 = sde.posteriorStep(prev, new Float32Array(n), new Float32Array(n), t, new Float32Array(n), shape);
      const p1 = sde.posteriorStep(prev, new Float32Array(n).fill(1), new Float32Array(n), t, new Float32Array(n), shape);
      x0s.push(Float32Array.from(x, (v, i) => (v - p0[i]!) / (p1[i]! - p0[i]!)));
      prev = x;
    }
    return { x0s, steps: states.map((s) => s.t), res };
  }

  for (const kind of ['gray2edge', 'edge2edge'] as const) {
    it(`${kind}: the structure x̂0 in the hole is the window's own ${kind === 'gray2edge' ? 'gray' : 'Canny edges'} at every early step; the result differs from the network guide's`, async () => {
      const dir = folder(`guided-${kind}`, ['structure', 'texture', 'discriminator'], { structureKind: kind });
      const oracle = await structureX0s(dir, 'oracle');
      // official stage switch int(0.4·10) = 4: the structure process runs at t = 10 … 4
      expect(oracle.steps).toEqual([10, 9, 8, 7, 6, 5, 4]);
      const w = oracle.res.window!;
      const st = structureOf(w.rgb, S, S, 2);
      const want = kind === 'gray2edge' ? st.gray : st.edge;
      const hole = [...w.mask.keys()].filter((p) => w.mask[p] === 0);
      expect(hole.length).toBe(121);
      // the hole's structure is not trivial: a wrong estimate (a fill, the other map) would show
      const other = kind === 'gray2edge' ? st.edge : st.gray;
      expect(Math.max(...hole.map((p) => Math.abs(want[p]! - other[p]!)))).toBeGreaterThan(0.5);
      if (kind === 'edge2edge') expect(hole.filter((p) => want[p] === 1).length).toBeGreaterThan(5);
      for (const [k, x0] of oracle.x0s.entries()) {
        let err = 0;
        for (const p of hole) err = Math.max(err, Math.abs(x0[p]! - want[p]!));
        expect(err, `step ${k}`).toBeLessThan(1e-3);
      }
      // the structure network (random weights) gives another x̂0 and another texture
      const net = await structureX0s(dir, 'network');
      let gap = 0;
      for (const p of hole) gap = Math.max(gap, Math.abs(net.x0s[0]![p]! - want[p]!));
      expect(gap).toBeGreaterThan(0.05);
      const a = oracle.res.image.data, b = net.res.image.data;
      let changed = 0;
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) changed++;
      expect(changed).toBeGreaterThan(0);
    }, 120_000);
  }

  it('a texture-only model ignores the guide (no structure process), as it ignores fill', async () => {
    const plain = folder('plain', ['texture'], { structureKind: 'none' }, false);
    const run = (structure: DiagnosticInpaintOptions['structure']) => inpaintDiagnostic(photo, holeMask, { checkpoints: plain, size: S, seed: 3, structure, warn: () => {} });
    const [n, o, f] = [await run('network'), await run('oracle'), await run('fill')];
    expect(Buffer.from(o.image.data).equals(Buffer.from(n.image.data))).toBe(true);
    expect(Buffer.from(f.image.data).equals(Buffer.from(n.image.data))).toBe(true);
  }, 120_000);
});

describe('oracle is refused wherever a hole is filled for real', () => {
  const dir = folder('refuse', ['structure', 'texture', 'discriminator'], {});

  it('the library: inpaint(), loadModel().inpaint() and the package inpaint(), with one line (eval\'s entry accepts it)', async () => {
    const line = new RegExp(`^${esc(REFUSAL('options.structure "oracle"'))}$`);
    await expect(inpaint(photo, holeMask, { checkpoints: dir, size: S, structure: 'oracle' as never })).rejects.toThrow(line);
    await expect(packageInpaint(photo, holeMask, { checkpoints: dir, size: S, structure: 'oracle' as never })).rejects.toThrow(line);
    const m = await loadLibraryModel(dir);
    try {
      await expect(m.inpaint(photo, holeMask, { size: S, structure: 'oracle' as never })).rejects.toThrow(line);
    } finally {
      await m.dispose();
    }
    // another unknown guide still lists the user guides only
    await expect(inpaint(photo, holeMask, { checkpoints: dir, structure: 'edges' as never })).rejects.toThrow(/^options\.structure must be one of network, fill \(got the string "edges"\)$/);
    const ok = await inpaintDiagnostic(photo, holeMask, { checkpoints: dir, size: S, seed: 1, structure: 'oracle', warn: () => {} });
    expect(ok.holePixels).toBe(121);
  }, 120_000);

  it('model.json structureGuide "oracle": refused when written and when read', () => {
    expect(() => writeModelJson(join(root, 'never'), { structureGuide: 'oracle' })).toThrow(new RegExp(`refusing to write: ${esc(REFUSAL('structureGuide "oracle"'))}$`));
    const bad = folder('bad-guide', ['structure', 'texture', 'discriminator'], {});
    writeFileSync(join(bad, 'model.json'), JSON.stringify({ T: 10, structureGuide: 'oracle' }));
    expect(() => loadModel([bad])).toThrow(new RegExp(`model\\.json: ${esc(REFUSAL('structureGuide "oracle"'))}$`));
  });

  it('eval on queue workers refuses it (the workers run inpaint())', () => {
    expect(() => queueModelMethod({ redis: 'redis://127.0.0.1:1', queue: 'q', maxJobBytes: 1 }, { checkpoints: [dir], structure: 'oracle' })).toThrow(/^--structure oracle is a diagnostic that runs in-process only .*: drop --redis$/);
  });

  it('the CLI: inpaint --structure oracle is one line, exit 1, nothing written', async () => {
    await writeImage(join(root, 'photo.png'), photo);
    await writeImage(join(root, 'mask.png'), holeMask);
    const r = cli('inpaint', '--image', join(root, 'photo.png'), '--mask', join(root, 'mask.png'), '--out', join(root, 'never.png'), '--checkpoints', dir, '--structure', 'oracle', '-q');
    expect(r.status).toBe(1);
    expect(r.err).toBe(`strdiffusion: ${REFUSAL('--structure oracle')}`);
    expect(() => readFileSync(join(root, 'never.png'))).toThrow();
  }, 120_000);
});

describe('eval --structure oracle', () => {
  it('the eval method runs the oracle (another result than the network guide) and names it', async () => {
    const image = photo;
    const holes = Uint8Array.from(holeMask.data, (v) => (v ? 1 : 0));
    const oracle = modelMethod({ checkpoints: NETS, T: 10, size: S, structure: 'oracle' });
    const network = modelMethod({ checkpoints: NETS, T: 10, size: S, structure: 'network' });
    expect(oracle.label).toContain("oracle structure guide (the ground truth's structure");
    await oracle.prepare!();
    await network.prepare!();
    const a = await oracle.run(image, holes, { seed: 5 });
    const b = await network.run(image, holes, { seed: 5 });
    expect(Buffer.from(a.data).equals(Buffer.from(b.data))).toBe(false);
    expect(oracle.info!().structure).toBe('oracle');
  }, 120_000);

  it('the CLI runs it on a fixture model and reports it in the method description and settings', async () => {
    const images = join(root, 'eval-images');
    mkdirSync(images, { recursive: true });
    await writeImage(join(images, 'a.png'), photo);
    const out = join(root, 'eval-out');
    const r = cli('eval', '--images', images, '--mask-ratios', '0.1-0.3', '--count', '1', '--size', String(S), '--T', '10', '--checkpoints', NETS, '--baselines', 'none', '--grid', '0', '--structure', 'oracle', '--out', out, '-q');
    expect(r.status, r.err).toBe(0);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    expect(report).toContain("oracle structure guide (the ground truth's structure: a perfect structure network)");
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8'));
    expect(json.settings.structure).toBe('oracle');
    expect(json.methods[0].info.structure).toBe('oracle');
    // inpaint's list is not eval's: an unknown guide names all three
    const bad = cli('eval', '--images', images, '--structure', 'edges', '--out', join(root, 'never-eval'));
    expect(bad.status).toBe(1);
    expect(bad.err).toBe('strdiffusion: --structure must be one of network, fill, oracle (got "edges")');
  }, 180_000);
});

/**
 * The browser build's library on its own, in headless Chromium: `npm run build:web`'s output (built
 * here into a temp folder) behind a plain static server, a test page that imports strdiffusion.js
 * and inpaints the README example on wasm. The hole must agree with the Node library's result for
 * the same seed (hole PSNR >= 40 dB: the two onnxruntimes round floats differently), the known
 * pixels must be identical, nothing may be fetched from another origin, the weights come from the
 * Cache API on a second load, bad inputs fail with one line, and Cancel stops a run.
 * WebGPU: where the browser offers an adapter, the same comparison against wasm; else a skip saying why.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import type { Browser, Page } from 'playwright-core';
import { buildWeb } from '../scripts/build-web.js';
import { loadModel } from '../src/index.js';
import { holesFromRaster } from '../src/inpaint/mask.js';
import { encodeSafetensors, readSafetensors } from '../src/weights/safetensors.js';
import { holePsnr, launchChromium, ownOriginOnly, PAGE_IMAGE_DATA, serveStatic, skipBrowser, type StaticServer } from './web-helpers.js';

const EXAMPLE = resolve(__dirname, '../examples/ladybird.jpg');
const EXAMPLE_MASK = resolve(__dirname, '../examples/ladybird_mask.png');
const SEED = 3;

/** The test page: decodes PNGs with the browser, runs the API, hands back plain arrays. */
const TEST_PAGE = `<!doctype html><meta charset="utf-8"><title>api test</title><script type="module">
import * as sd from './strdiffusion.js';
${PAGE_IMAGE_DATA}window.sd = sd;
window.imageData = imageData;
window.ready = true;
</script>`;

describe.skipIf(skipBrowser)('browser API (strdiffusion.js in headless Chromium)', () => {
  let dir: string;
  let srv: StaticServer;
  let browser: Browser;
  let apiPage: Page;
  const external: string[] = [];
  const pageErrors: string[] = [];
  let image: { data: Buffer; width: number; height: number };
  let holes: Uint8Array;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strdiffusion-web-api-'));
    await buildWeb(join(dir, 'web'));
    // lossless inputs: the JPEG is decoded once, here, so both sides see the same pixels
    const { data, info } = await sharp(EXAMPLE).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    image = { data, width: info.width, height: info.height };
    writeFileSync(join(dir, 'web', 'example.png'), await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }).png().toBuffer());
    writeFileSync(join(dir, 'web', 'example-mask.png'), await sharp(EXAMPLE_MASK).png().toBuffer());
    writeFileSync(join(dir, 'web', 'api-test.html'), TEST_PAGE);
    const m = await sharp(EXAMPLE_MASK).raw().toBuffer({ resolveWithObject: true });
    holes = holesFromRaster({ width: m.info.width, height: m.info.height, channels: m.info.channels as 1, bitDepth: 8, data: m.data });
    srv = await serveStatic(join(dir, 'web'), { isolated: true });
    browser = await launchChromium();
    const context = await browser.newContext();
    await ownOriginOnly(context, srv.url, external);
    apiPage = await context.newPage();
    apiPage.on('pageerror', (e) => pageErrors.push(e.message));
    await apiPage.goto(srv.url + 'api-test.html');
    await apiPage.waitForFunction(() => (window as any).ready === true);
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await srv?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('inpaints the README example on wasm like the Node library: known pixels identical, hole >= 40 dB', async () => {
    const res = await apiPage.evaluate(async (seed) => {
      const w = window as any;
      let downloads = 0;
      const model = await w.sd.loadModel('./models/default/', { executionProviders: ['wasm'], onDownload: () => downloads++ });
      const steps: number[] = [];
      const out = await model.inpaint(await w.imageData('./example.png'), await w.imageData('./example-mask.png'), { seed, onProgress: (p: any) => steps.push(p.step) });
      const info = model.info;
      await model.dispose();
      return { data: Array.from(out.data as Uint8ClampedArray), width: out.width, height: out.height, steps, info, downloads, crossOriginIsolated: w.crossOriginIsolated };
    }, SEED);
    expect([res.width, res.height]).toEqual([image.width, image.height]);
    expect(res.info.provider).toBe('wasm');
    expect(res.info.fromCache).toBe(false);
    expect(res.downloads).toBeGreaterThan(0);
    expect(res.crossOriginIsolated).toBe(true);
    expect(res.steps.at(-1)).toBe(res.steps.length);

    const node = await loadModel();
    const ref = await node.inpaint({ data: Buffer.from(image.data), width: image.width, height: image.height, channels: 3 }, EXAMPLE_MASK, { seed: SEED });
    await node.dispose();
    const nodeData = ref.image.data;
    let knownDiff = 0;
    let holeCount = 0;
    for (let i = 0; i < holes.length; i++) {
      if (holes[i]) {
        holeCount++;
        continue;
      }
      for (let c = 0; c < 3; c++) if (res.data[i * 4 + c] !== image.data[i * 3 + c] || nodeData[i * 3 + c] !== image.data[i * 3 + c]) knownDiff++;
      if (res.data[i * 4 + 3] !== 255) knownDiff++;
    }
    expect(holeCount).toBeGreaterThan(1000);
    expect(knownDiff).toBe(0);
    // the hole really was filled (not left as the input) and agrees with Node's fill
    expect(holePsnr(res.data, 4, image.data, 3, holes)).toBeLessThan(40);
    const psnr = holePsnr(res.data, 4, nodeData, 3, holes);
    let same = 0;
    for (let i = 0; i < holes.length; i++) if (holes[i] && [0, 1, 2].every((c) => res.data[i * 4 + c] === nodeData[i * 3 + c])) same++;
    console.log(`browser (wasm, ${res.info.threads} threads) vs Node: hole PSNR ${psnr.toFixed(1)} dB, ${same} of ${holeCount} hole pixels identical`);
    expect(psnr).toBeGreaterThanOrEqual(40);
    expect(external).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 600_000);

  it('a second load takes the weights from the Cache API; bad inputs fail with one line; cancel stops a run', async () => {
    const res = await apiPage.evaluate(async () => {
      const w = window as any;
      const errors: string[] = [];
      const catchMsg = async (f: () => Promise<unknown>) => {
        try {
          await f();
          errors.push('no error');
        } catch (e) {
          errors.push(String((e as Error).message));
        }
      };
      await catchMsg(() => w.sd.loadModel('./models/default/', { executionProviders: ['cuda'] }));
      await catchMsg(() => w.sd.loadModel('./no-such-model/'));
      // (the first load fills the cache, if no earlier test did)
      await (await w.sd.loadModel('./models/default/')).dispose();
      const model = await w.sd.loadModel('./models/default/');
      const img = await w.imageData('./example.png');
      const mask = await w.imageData('./example-mask.png');
      await catchMsg(() => model.inpaint(img, mask, { seed: -1 }));
      await catchMsg(() => model.inpaint(img, mask, { steps: 100 }));
      await catchMsg(() => model.inpaint(img, mask, { sedd: 1 }));
      await catchMsg(() => model.inpaint(img, new ImageData(4, 4)));
      await catchMsg(() => model.inpaint(img, new ImageData(img.width, img.height)));
      // cancel after the first step: the run rejects as cancelled, and the model still works after it
      const ctrl = new AbortController();
      let lastStep = 0;
      let cancelled = false;
      try {
        await model.inpaint(img, mask, { signal: ctrl.signal, onProgress: (p: any) => ((lastStep = p.step), p.step === 1 && ctrl.abort()) });
      } catch (e) {
        cancelled = (e as any).cancelled === true;
      }
      const again = await model.inpaint(img, mask, { steps: 2 });
      const info = model.info;
      await model.dispose();
      await catchMsg(() => model.inpaint(img, mask));
      return { errors, fromCache: info.fromCache, cancelled, lastStep, againWidth: again.width };
    });
    expect(res.fromCache).toBe(true);
    // new weights at the same URL are fetched again, not masked by the cache
    const tex = join(dir, 'web', 'models', 'default', 'texture.safetensors');
    writeFileSync(tex, encodeSafetensors(readSafetensors(tex), { note: 'changed' }));
    const again = await apiPage.evaluate(async () => {
      const m = await (window as any).sd.loadModel('./models/default/');
      const fromCache = m.info.fromCache;
      await m.dispose();
      return fromCache;
    });
    expect(again).toBe(false);
    expect(res.cancelled).toBe(true);
    expect(res.lastStep).toBeLessThan(5);
    expect(res.againWidth).toBe(image.width);
    const [badEp, missing, seed, steps, unknown, size, empty, disposed] = res.errors;
    expect(badEp).toMatch(/executionProviders must be a non-empty list of wasm, webgpu/);
    expect(missing).toMatch(/no-such-model\/model\.json: HTTP 404/);
    expect(seed).toMatch(/options\.seed must be a non-negative safe integer/);
    expect(steps).toMatch(/steps 100 is more than the model's diffusion length T = 50/);
    expect(unknown).toMatch(/options\.sedd is not an option/);
    expect(size).toMatch(/mask is 4x4 but the image is 480x300/);
    expect(empty).toMatch(/the mask has no hole/);
    expect(disposed).toMatch(/disposed/);
    for (const e of res.errors) expect(e.split('\n')).toHaveLength(1);
  }, 600_000);

  it('WebGPU agrees with wasm on the real networks where an adapter exists (else skipped, saying why)', async (ctx) => {
    // STRDIFFUSION_WEBGPU=swiftshader: Chromium's software Vulkan adapter (minutes per network under load)
    let page = apiPage;
    let gpuBrowser: Browser | null = null;
    if (process.env.STRDIFFUSION_WEBGPU === 'swiftshader') {
      gpuBrowser = await launchChromium(['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader']);
      page = await gpuBrowser.newPage();
      await page.goto(srv.url + 'api-test.html');
      await page.waitForFunction(() => (window as any).ready === true);
    }
    ctx.onTestFinished(() => gpuBrowser?.close());
    const why = await page.evaluate(async () => {
      const gpu = (navigator as any).gpu;
      if (!gpu) return 'headless Chromium here has no navigator.gpu';
      const a = await gpu.requestAdapter().catch((e: Error) => null);
      return a ? null : 'headless Chromium here offers no WebGPU adapter (no GPU, or WebGPU disabled)';
    });
    if (why !== null) {
      // the fallback path is still checked: asking for WebGPU gives wasm with a visible note
      const info = await page.evaluate(async () => {
        const m = await (window as any).sd.loadModel('./models/default/', { executionProviders: ['webgpu', 'wasm'] });
        const i = m.info;
        await m.dispose();
        return i;
      });
      expect(info.provider).toBe('wasm');
      expect(info.note).toMatch(/WebGPU is not available/);
      console.log(`WebGPU comparison skipped: ${why} (STRDIFFUSION_WEBGPU=swiftshader runs it on Chromium's software adapter)`);
      ctx.skip();
      return;
    }
    // the networks compared at load, then a whole (2-step) inpainting on each provider
    const { info, gpuOut, cpuOut } = await page.evaluate(async (seed) => {
      const w = window as any;
      const img = await w.imageData('./example.png');
      const mask = await w.imageData('./example-mask.png');
      const m = await w.sd.loadModel('./models/default/', { executionProviders: ['webgpu', 'wasm'] });
      const i = m.info;
      const gpu = i.provider === 'webgpu' ? Array.from((await m.inpaint(img, mask, { seed, steps: 2 })).data as Uint8ClampedArray) : null;
      await m.dispose();
      const c = await w.sd.loadModel('./models/default/', { executionProviders: ['wasm'] });
      const cpu = gpu ? Array.from((await c.inpaint(img, mask, { seed, steps: 2 })).data as Uint8ClampedArray) : null;
      await c.dispose();
      return { info: i, gpuOut: gpu, cpuOut: cpu };
    }, SEED);
    if (gpuOut && cpuOut) {
      const psnr = holePsnr(gpuOut, 4, cpuOut, 4, holes);
      console.log(`WebGPU vs wasm, whole inpainting (2 steps): hole PSNR ${psnr.toFixed(1)} dB`);
      expect(psnr).toBeGreaterThanOrEqual(40);
      let knownDiff = 0;
      for (let i = 0; i < holes.length; i++) if (!holes[i]) for (let c = 0; c < 4; c++) if (gpuOut[i * 4 + c] !== cpuOut[i * 4 + c]) knownDiff++;
      expect(knownDiff).toBe(0);
    }
    console.log(`WebGPU vs wasm: ${JSON.stringify(info.webgpuCheck)} -> ${info.provider}${info.note ? ` (${info.note})` : ''}`);
    expect(info.webgpuCheck).toHaveLength(3);
    // WebGPU is enabled exactly when every network agrees; otherwise the note says which did not
    const agree = info.webgpuCheck.every((c: { maxAbsDiff: number; maxAbs: number }) => c.maxAbsDiff <= 1e-2 * Math.max(1, c.maxAbs));
    expect(info.provider).toBe(agree ? 'webgpu' : 'wasm');
    if (!agree) expect(info.note).toMatch(/WebGPU miscomputes the \w+ network/);
  }, 1_800_000);
});

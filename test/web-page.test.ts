/**
 * The static build's page in headless Chromium, with no server of ours behind it (a plain static
 * file server): open the README example, zoom and pan by events, paint a mask with pointer events,
 * undo/redo, run in the browser on wasm and compare the result with the Node library's for the
 * same mask and seed (known pixels identical, hole PSNR >= 40 dB); the compare slider and
 * hold-to-see-original; at 390×844 nothing overflows sideways and every control is on screen, and
 * touch paints and pinches. Screenshots go to a temp folder (STRDIFFUSION_WEB_SHOTS=<dir> keeps them).
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { buildWeb } from '../scripts/build-web.js';
import { loadModel } from '../src/index.js';
import { holePsnr, launchChromium, ownOriginOnly, paintStroke, serveStatic, skipBrowser, type StaticServer } from './web-helpers.js';
import { startServer } from '../src/server/index.js';
import { fixture } from './fixtures.js';

const EXAMPLE = resolve(__dirname, '../examples/ladybird.jpg');
const SEED = 7;
const SHOTS = process.env.STRDIFFUSION_WEB_SHOTS ? resolve(process.env.STRDIFFUSION_WEB_SHOTS) : null;

async function box(page: Page, sel: string) {
  const b = await page.locator(sel).boundingBox();
  if (!b) throw new Error(`${sel} is not visible`);
  return b;
}

/** Drag the mouse over the mask canvas through points given in image pixels. */
const paint = (page: Page, W: number, H: number, pts: [number, number][]) => paintStroke(page, W, H, pts, 6);

describe.skipIf(skipBrowser)('static web page (headless Chromium, no server of ours)', () => {
  let dir: string;
  let shots: string;
  let srv: StaticServer;
  let browser: Browser;
  const external: string[] = [];
  const pageErrors: string[] = [];
  let png: Buffer;
  let rgb: { data: Buffer; width: number; height: number };

  async function open(viewport: { width: number; height: number }, touch = false): Promise<{ context: BrowserContext; page: Page }> {
    const context = await browser.newContext({ viewport, hasTouch: touch, acceptDownloads: true, colorScheme: 'light', deviceScaleFactor: 1 });
    await ownOriginOnly(context, srv.url, external);
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(srv.url);
    // a static host: only "this device" is offered, with the bundled model's settings
    await expect.poll(() => page.evaluate(() => [...(document.getElementById('run-on') as HTMLSelectElement).options].map((o) => o.value))).toEqual(['wasm', 'webgpu']);
    await expect.poll(() => page.inputValue('#diffusion-T')).toBe('50');
    // before any run the live previews are blank boxes, not broken images showing their alt text
    await expect.poll(() => page.evaluate(() => ['preview-texture', 'preview-structure'].map((id) => { const i = document.getElementById(id) as HTMLImageElement; return i.complete && i.naturalWidth > 0; }))).toEqual([true, true]);
    await page.setInputFiles('#file-image', { name: 'ladybird.png', mimeType: 'image/png', buffer: png });
    await page.waitForSelector('#canvas-box:not([hidden])');
    await expect.poll(() => page.textContent('#status')).toContain('480 × 300');
    return { context, page };
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strdiffusion-web-page-'));
    shots = SHOTS ?? join(dir, 'shots');
    mkdirSync(shots, { recursive: true });
    await buildWeb(join(dir, 'web'));
    const r = await sharp(EXAMPLE).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    rgb = { data: r.data, width: r.info.width, height: r.info.height };
    png = await sharp(r.data, { raw: { width: r.info.width, height: r.info.height, channels: 3 } }).png().toBuffer();
    srv = await serveStatic(join(dir, 'web'), { isolated: true });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await srv?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('zooms and pans by events, paints, undoes, runs on wasm like the Node library, compares before/after', async () => {
    const { context, page } = await open({ width: 1280, height: 800 });
    const W = rgb.width, H = rgb.height;
    const fitBox = await box(page, '#mask-canvas');
    const zoomText = async () => Number((await page.textContent('#zoom-value'))!.replace('%', ''));
    const fitZoom = await zoomText();

    // + and the wheel zoom in; F fits again
    await page.locator('#mask-canvas').focus();
    await page.keyboard.press('+');
    expect(await zoomText()).toBeGreaterThan(fitZoom);
    expect((await box(page, '#mask-canvas')).width).toBeCloseTo(fitBox.width * 1.25, 0);
    const before = await zoomText();
    await page.mouse.move(fitBox.x + fitBox.width / 2, fitBox.y + fitBox.height / 2);
    await page.mouse.wheel(0, -300);
    await expect.poll(zoomText).toBeGreaterThan(before);
    await page.click('#zoom-out');
    // Space + drag pans by the drag and paints nothing
    // (the focus is on the − button: Space over the image still pans, it does not press the button)
    const b0 = await box(page, '#mask-canvas');
    const z0 = await zoomText();
    const st = await box(page, '#stage');
    const [sx, sy] = [st.x + st.width / 2, st.y + st.height / 2];
    await page.mouse.move(sx, sy);
    await page.keyboard.down(' ');
    await page.mouse.down();
    await page.mouse.move(sx + 60, sy - 30, { steps: 5 });
    await page.mouse.up();
    await page.keyboard.up(' ');
    const b1 = await box(page, '#mask-canvas');
    expect(b1.x - b0.x).toBeCloseTo(60, 0);
    expect(b1.y - b0.y).toBeCloseTo(-30, 0);
    expect(await page.isEnabled('#clear')).toBe(false);
    expect(await zoomText()).toBe(z0);
    await page.keyboard.press('f');
    expect(await zoomText()).toBe(fitZoom);
    expect((await box(page, '#mask-canvas')).x).toBeCloseTo(fitBox.x, 0);

    // paint over the ladybird; undo and redo it
    await page.fill('#brush-size', '50');
    await page.locator('#brush-size').dispatchEvent('input');
    await paint(page, W, H, [[322, 140], [345, 150], [360, 160], [340, 175], [320, 165]]);
    expect(await page.isEnabled('#clear')).toBe(true);
    await page.keyboard.press('Control+z');
    expect(await page.isEnabled('#clear')).toBe(false);
    await page.keyboard.press('Control+Shift+Z');
    expect(await page.isEnabled('#clear')).toBe(true);

    const [maskDl] = await Promise.all([page.waitForEvent('download'), page.click('#download-mask')]);
    const maskPng = readFileSync((await maskDl.path())!);
    const m = await sharp(maskPng).raw().toBuffer({ resolveWithObject: true });
    const holes = new Uint8Array(W * H);
    let nHoles = 0;
    for (let i = 0; i < W * H; i++) nHoles += holes[i] = m.data[i * m.info.channels]! >= 128 ? 1 : 0;
    expect(nHoles).toBeGreaterThan(1500);

    await page.fill('#seed', String(SEED));
    await page.click('#run');
    await page.waitForFunction(() => /^(Done|Failed)/.test(document.getElementById('status')!.textContent ?? ''), null, { timeout: 540_000 });
    const status = (await page.textContent('#status'))!;
    expect(status).toMatch(/^Done in [\d.]+ s on this device \(wasm\)/);
    expect(await page.getAttribute('#toggle', 'aria-pressed')).toBe('true');
    await page.screenshot({ path: join(shots, 'desktop-result.png') });

    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download-result')]);
    expect(dl.suggestedFilename()).toBe('ladybird-inpainted.png');
    const out = await sharp(readFileSync((await dl.path())!)).raw().toBuffer({ resolveWithObject: true });
    expect([out.info.width, out.info.height]).toEqual([W, H]);
    const node = await loadModel();
    const ref = await node.inpaint({ data: Buffer.from(rgb.data), width: W, height: H, channels: 3 }, maskPng, { seed: SEED });
    await node.dispose();
    let knownDiff = 0;
    for (let i = 0; i < W * H; i++) if (!holes[i]) for (let c = 0; c < 3; c++) if (out.data[i * out.info.channels + c] !== rgb.data[i * 3 + c]) knownDiff++;
    expect(knownDiff).toBe(0);
    expect(holePsnr(out.data, out.info.channels, rgb.data, 3, holes)).toBeLessThan(40);
    const psnr = holePsnr(out.data, out.info.channels, ref.image.data, 3, holes);
    console.log(`page (wasm) vs Node library: hole PSNR ${psnr.toFixed(1)} dB over ${nHoles} painted hole pixels`);
    expect(psnr).toBeGreaterThanOrEqual(40);

    // the compare slider shows the original over the left part; holding shows it all
    expect(await page.isHidden('#before-canvas')).toBe(true);
    await page.fill('#compare', '50');
    await page.locator('#compare').dispatchEvent('input');
    expect(await page.isVisible('#before-canvas')).toBe(true);
    expect(await page.evaluate(() => document.getElementById('before-canvas')!.style.clipPath)).toBe('inset(0px 50% 0px 0px)');
    await page.screenshot({ path: join(shots, 'desktop-compare.png') });
    const hold = await box(page, '#hold-original');
    await page.mouse.move(hold.x + 5, hold.y + 5);
    await page.mouse.down();
    expect(await page.getAttribute('#canvas-box', 'class')).not.toContain('result');
    expect(await page.isHidden('#before-canvas')).toBe(true);
    await page.mouse.up();
    expect(await page.getAttribute('#canvas-box', 'class')).toContain('result');
    expect(await page.isVisible('#before-canvas')).toBe(true);
    await context.close();
    expect(external).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 600_000);

  it('at 390×844 nothing overflows sideways, every control is on screen, touch paints and pinches', async () => {
    const { context, page } = await open({ width: 390, height: 844 }, true);
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390);
    const offscreen = await page.evaluate(() => {
      const out: string[] = [];
      for (const el of document.querySelectorAll<HTMLElement>('button, select, input:not(.visually-hidden), label.button, a.button, output')) {
        const r = el.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue; // hidden
        if (r.left < 0 || r.right > 390) out.push(`${el.id || el.textContent} at ${r.left.toFixed(0)}..${r.right.toFixed(0)}`);
      }
      return out;
    });
    expect(offscreen).toEqual([]);
    await page.screenshot({ path: join(shots, 'phone.png'), fullPage: true });

    // a finger paints (a tap: one dot)
    const b = await box(page, '#mask-canvas');
    await page.touchscreen.tap(b.x + b.width * 0.7, b.y + b.height * 0.5);
    await expect.poll(() => page.isEnabled('#clear')).toBe(true);
    // two fingers spread: zoom in, no paint
    await page.click('#undo');
    const zoom0 = Number((await page.textContent('#zoom-value'))!.replace('%', ''));
    const cdp = await context.newCDPSession(page);
    const cx = b.x + b.width / 2, cy = b.y + b.height / 2;
    const touch = (type: 'touchStart' | 'touchMove' | 'touchEnd', d: number) => cdp.send('Input.dispatchTouchEvent', { type, touchPoints: type === 'touchEnd' ? [] : [{ x: cx - d, y: cy, id: 1 }, { x: cx + d, y: cy, id: 2 }] });
    await touch('touchStart', 20);
    for (const d of [30, 45, 60, 80]) await touch('touchMove', d);
    await touch('touchEnd', 0);
    await expect.poll(async () => Number((await page.textContent('#zoom-value'))!.replace('%', ''))).toBeGreaterThan(zoom0 * 2);
    expect(await page.isEnabled('#clear')).toBe(false);
    await page.screenshot({ path: join(shots, 'phone-zoomed.png') });
    await context.close();
    expect(external).toEqual([]);
    expect(pageErrors).toEqual([]);
  }, 300_000);

  it('a large photo is painted on a screen-sized canvas; the mask comes out at full resolution', async () => {
    const { context, page } = await open({ width: 1280, height: 800 });
    const [BW, BH] = [6000, 4000];
    const big = await sharp({ create: { width: BW, height: BH, channels: 3, background: { r: 90, g: 140, b: 60 } } }).png({ compressionLevel: 1 }).toBuffer();
    await page.setInputFiles('#file-image', { name: 'big.png', mimeType: 'image/png', buffer: big });
    await expect.poll(() => page.textContent('#status')).toContain('6000 × 4000');
    const backing = await page.evaluate(() => {
      const c = document.getElementById('mask-canvas') as HTMLCanvasElement;
      return c.width * c.height;
    });
    expect(backing).toBeLessThanOrEqual(4e6);
    await paint(page, BW, BH, [[1000, 1000], [3000, 2000], [5000, 1000]]);
    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download-mask')]);
    const m = await sharp(readFileSync((await dl.path())!)).raw().toBuffer({ resolveWithObject: true });
    expect([m.info.width, m.info.height]).toEqual([BW, BH]);
    const at = (x: number, y: number) => m.data[(y * BW + x) * m.info.channels]!;
    expect(at(3000, 2000)).toBe(255);
    expect(at(2000, 1500)).toBe(255);
    expect(at(3000, 3500)).toBe(0);
    await context.close();
    expect(pageErrors).toEqual([]);
  }, 300_000);

  it('`strdiffusion serve` with the build serves the same page: this device or the server, cross-origin isolated', async () => {
    const server = await startServer({ port: 0, checkpoints: [fixture('parity/nets')], T: 10, size: 32, webBuild: join(dir, 'web') });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    try {
      const page = await context.newPage();
      page.on('pageerror', (e) => pageErrors.push(e.message));
      await page.goto(server.url);
      await expect.poll(() => page.evaluate(() => [...(document.getElementById('run-on') as HTMLSelectElement).options].map((o) => o.value))).toEqual(['wasm', 'webgpu', 'server']);
      expect(await page.inputValue('#run-on')).toBe('server');
      expect(await page.evaluate(() => crossOriginIsolated)).toBe(true);
      // on this device: the bundled model's settings, two steps, in the page (CSP allows the wasm and the worker)
      await page.selectOption('#run-on', 'wasm');
      expect(await page.inputValue('#diffusion-T')).toBe('50');
      await page.setInputFiles('#file-image', { name: 'ladybird.png', mimeType: 'image/png', buffer: png });
      await page.waitForSelector('#canvas-box:not([hidden])');
      await paint(page, rgb.width, rgb.height, [[100, 100], [140, 120]]);
      await page.fill('#steps', '2');
      await page.locator('#steps').dispatchEvent('input');
      await page.click('#run');
      await page.waitForFunction(() => /^(Done|Failed)/.test(document.getElementById('status')!.textContent ?? ''), null, { timeout: 300_000 });
      expect(await page.textContent('#status')).toMatch(/^Done in [\d.]+ s on this device \(wasm\)/);
      expect(server.jobs.jobs.size).toBe(0);
      expect(pageErrors).toEqual([]);
    } finally {
      await context.close();
      await server.close();
    }
  }, 400_000);
});

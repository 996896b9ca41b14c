/**
 * The web page end to end in headless Chromium: open an image, paint, run with the fixture model,
 * watch the progress, download the result and check it pixel by pixel; a page on another origin
 * cannot submit jobs. Also takes the README's screenshot: to a temporary file, unless
 * STRDIFFUSION_SCREENSHOT=1 (refreshes docs/screenshot.png) or STRDIFFUSION_SCREENSHOT=<path>.
 */
import { describe, it, expect, beforeAll, afterAll } from 'vitest';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import sharp from 'sharp';
import { chromium, type Browser, type Page } from 'playwright-core';
import { startServer, type RunningServer } from '../src/server/index.js';
import { fixture } from './fixtures.js';
import { ownOriginOnly, paintStroke } from './web-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const NETS = fixture('parity/nets');
// tests never modify tracked files: the README's docs/screenshot.png is refreshed only on request
const SHOT_ENV = process.env.STRDIFFUSION_SCREENSHOT ?? '';
const SCREENSHOT =
  SHOT_ENV === '1' ? resolve(__dirname, '../docs/screenshot.png') : SHOT_ENV !== '' && SHOT_ENV !== '0' ? resolve(SHOT_ENV) : join(tmpdir(), `strdiffusion-e2e-screenshot-${process.pid}.png`);
// in CI the browser is installed by .ci/apt-packages, so a missing one is a failure there
const skip = !existsSync(CHROMIUM) && !process.env.CI;

const W = 480, H = 320;

/** A small synthetic landscape (smooth, so the screenshot stays small). */
async function landscape(): Promise<{ png: Buffer; rgb: Buffer }> {
  const d = Buffer.alloc(W * H * 3);
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const hill = 200 + 30 * Math.sin(x / 45) + 15 * Math.sin(x / 13 + 1);
      const sun = (x - 360) ** 2 + (y - 80) ** 2 < 32 ** 2;
      let rgb: number[];
      if (sun) rgb = [255, 214, 102];
      else if (y < hill) rgb = [90 + y / 3, 150 + y / 4, 230];
      else {
        const stripe = Math.sin((x + 3 * y) / 9) > 0.6 ? 18 : 0;
        rgb = [60 + stripe, 130 + (y - hill) / 2 + stripe, 60];
      }
      for (let c = 0; c < 3; c++) d[(y * W + x) * 3 + c] = Math.max(0, Math.min(255, Math.round(rgb[c]!)));
    }
  }
  return { png: await sharp(d, { raw: { width: W, height: H, channels: 3 } }).png().toBuffer(), rgb: d };
}

async function rawOf(buf: Buffer): Promise<{ width: number; height: number; channels: number; data: Buffer }> {
  const { data, info } = await sharp(buf).raw().toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, channels: info.channels, data };
}

/** Drag the mouse over the mask canvas through points given in image pixels. */
const paint = (page: Page, pts: [number, number][]) => paintStroke(page, W, H, pts, 8);

describe.skipIf(skip)('web page (headless Chromium)', () => {
  let srv: RunningServer;
  let browser: Browser;
  let page: Page;
  const external: string[] = [];
  const pageErrors: string[] = [];

  beforeAll(async () => {
    srv = await startServer({ port: 0, checkpoints: [NETS], T: 10, size: 32 });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run'],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 760 }, acceptDownloads: true, colorScheme: 'light' });
    // the page may talk only to its own server
    await ownOriginOnly(context, srv.url, external);
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  afterAll(async () => {
    await browser?.close();
    await srv?.close();
  });

  it('opens an image, paints, runs, shows progress and downloads an exact result', async () => {
    const { png, rgb } = await landscape();
    await page.goto(srv.url);
    await expect.poll(() => page.inputValue('#diffusion-T')).toBe('10');
    expect(await page.inputValue('#steps')).toBe('10');
    // the sampler, like the solver, defaults to the model's (the fixture model names none: official)
    expect(await page.inputValue('#sampler')).toBe('');
    expect(await page.textContent('#sampler option:first-child')).toBe('model default (official)');
    // the solver and the grid spacing likewise come from the model (the fixture model: the official step on every level)
    expect(await page.textContent('#solver option:first-child')).toBe('model default (sde)');
    expect(await page.textContent('#spacing option:first-child')).toBe('model default (uniform)');
    await page.setInputFiles('#file-image', { name: 'landscape.png', mimeType: 'image/png', buffer: png });
    await page.waitForSelector('#canvas-box:not([hidden])');
    await expect.poll(() => page.textContent('#status')).toContain('480 × 320');

    // paint a stroke over the hills; undo and redo it from the keyboard
    await page.fill('#brush-size', '60');
    await page.locator('#brush-size').dispatchEvent('input');
    await paint(page, [[120, 190], [180, 215], [250, 230], [300, 210]]);
    expect(await page.isEnabled('#clear')).toBe(true);
    await page.keyboard.press('Control+z');
    expect(await page.isEnabled('#clear')).toBe(false);
    await page.keyboard.press('Control+Shift+Z');
    expect(await page.isEnabled('#clear')).toBe(true);
    await page.keyboard.press(']');
    expect(Number(await page.inputValue('#brush-size'))).toBeGreaterThan(60);

    // the mask the page will send, at the image's resolution
    const [maskDl] = await Promise.all([page.waitForEvent('download'), page.click('#download-mask')]);
    const mask = await rawOf(readFileSync((await maskDl.path())!));
    expect([mask.width, mask.height]).toEqual([W, H]);
    const hole = new Uint8Array(W * H);
    let holes = 0;
    for (let i = 0; i < W * H; i++) holes += hole[i] = mask.data[i * mask.channels]! >= 128 ? 1 : 0;
    expect(holes).toBeGreaterThan(2000);
    expect(holes).toBeLessThan(W * H / 3);

    // record every status line, since the fixture model's steps can be quicker than polling
    await page.evaluate(() => {
      const log: string[] = ((window as any).__status = []);
      const el = document.getElementById('status')!;
      new MutationObserver(() => log.push(el.textContent ?? '')).observe(el, { childList: true, characterData: true, subtree: true });
    });
    await page.fill('#seed', '11');
    await page.click('#run');
    await page.waitForFunction(() => /^Done/.test(document.getElementById('status')!.textContent ?? ''), null, { timeout: 60_000 });
    const log = (await page.evaluate(() => (window as any).__status)) as string[];
    expect(log.some((s) => /^Step \d+ \/ 10 · (early|late) stage/.test(s))).toBe(true);
    expect(log.some((s) => s.startsWith('Step 10 / 10'))).toBe(true);
    expect(await page.getAttribute('#preview-texture', 'src')).toMatch(/^data:image\/png;base64,/);
    expect(await page.getAttribute('#preview-structure', 'src')).toMatch(/^data:image\/png;base64,/);
    expect(await page.getAttribute('#toggle', 'aria-pressed')).toBe('true');

    mkdirSync(resolve(SCREENSHOT, '..'), { recursive: true });
    const shot = await page.screenshot();
    // a palette PNG keeps the committed screenshot small
    writeFileSync(SCREENSHOT, await sharp(shot).png({ palette: true, colours: 128, compressionLevel: 9 }).toBuffer());

    const [dl] = await Promise.all([page.waitForEvent('download'), page.click('#download-result')]);
    expect(dl.suggestedFilename()).toBe('landscape-inpainted.png');
    const out = await rawOf(readFileSync((await dl.path())!));
    expect([out.width, out.height, out.channels]).toEqual([W, H, 3]);
    let knownDiff = 0, holeDiff = 0;
    for (let i = 0; i < W * H; i++) {
      for (let c = 0; c < 3; c++) {
        const d = out.data[i * 3 + c] !== rgb[i * 3 + c] ? 1 : 0;
        if (hole[i]) holeDiff += d;
        else knownDiff += d;
      }
    }
    expect(knownDiff).toBe(0);
    expect(holeDiff).toBeGreaterThan(0);

    // before/after toggle from the keyboard
    await page.locator('#toggle').focus();
    await page.keyboard.press('t');
    expect(await page.getAttribute('#toggle', 'aria-pressed')).toBe('false');

    // the result can become the next input
    await page.click('#adopt');
    await expect.poll(() => page.textContent('#status')).toContain('landscape-inpainted.png: 480 × 320');
    expect(await page.isEnabled('#clear')).toBe(false);
  });

  it('cancels a running job and paints from the keyboard', async () => {
    // (the adopted result starts with an empty mask)
    expect(await page.isEnabled('#clear')).toBe(false);
    await page.locator('#mask-canvas').focus();
    await page.keyboard.down(' ');
    for (let i = 0; i < 5; i++) await page.keyboard.press('ArrowRight');
    await page.keyboard.up(' ');
    expect(await page.isEnabled('#clear')).toBe(true);

    await page.fill('#diffusion-T', '400');
    await page.dispatchEvent('#diffusion-T', 'change');
    await page.click('#run');
    await page.waitForFunction(() => /^Step [1-9]/.test(document.getElementById('status')!.textContent ?? ''), null, { timeout: 60_000 });
    await page.keyboard.press('Escape');
    await page.waitForFunction(() => document.getElementById('status')!.textContent === 'Cancelled.', null, { timeout: 30_000 });
    expect(await page.isEnabled('#run')).toBe(true);
    expect(external).toEqual([]);
    expect(pageErrors).toEqual([]);
  });
  it('refuses jobs that a page on another origin submits (directly, and from a sandboxed iframe: Origin null)', async () => {
    const img = await sharp(Buffer.alloc(40 * 30 * 3, 120), { raw: { width: 40, height: 30, channels: 3 } }).png().toBuffer();
    const hole = Buffer.alloc(40 * 30);
    for (let y = 10; y < 18; y++) for (let x = 10; x < 20; x++) hole[y * 40 + x] = 255;
    const msk = await sharp(hole, { raw: { width: 40, height: 30, channels: 1 } }).png().toBuffer();
    // what a hostile page would run: a real multipart job submission (no-cors needs no preflight)
    const attack = `(async () => {
      const b64 = (s) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
      const f = new FormData();
      f.append('image', new Blob([b64('${img.toString('base64')}')], { type: 'image/png' }), 'i.png');
      f.append('mask', new Blob([b64('${msk.toString('base64')}')], { type: 'image/png' }), 'm.png');
      f.append('T', '10');
      try { await fetch('${srv.url}api/jobs', { method: 'POST', body: f, mode: 'no-cors' }); } catch {}
    })();`;
    const page = `<!doctype html><title>elsewhere</title><body><script>${attack}
      const frame = document.createElement('iframe');
      frame.sandbox = 'allow-scripts';
      frame.srcdoc = '<script>' + ${JSON.stringify(attack)} + '<' + '/script>';
      document.body.appendChild(frame);
    </script></body>`;
    const evil = createServer((_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
      res.end(page);
    });
    await new Promise<void>((ok) => evil.listen(0, '127.0.0.1', ok));
    const evilOrigin = `http://127.0.0.1:${(evil.address() as AddressInfo).port}`;
    const seen: { status: number; origin: string | undefined; site: string | undefined }[] = [];
    const watch = (req: IncomingMessage, res: ServerResponse) => {
      if (req.method === 'POST' && req.url === '/api/jobs') res.on('finish', () => seen.push({ status: res.statusCode, origin: req.headers.origin, site: req.headers['sec-fetch-site'] as string | undefined }));
    };
    srv.server.on('request', watch);
    const before = srv.jobs.jobs.size;
    const context = await browser.newContext();
    try {
      const p = await context.newPage();
      await p.goto(`${evilOrigin}/`);
      await expect.poll(() => seen.length, { timeout: 30_000 }).toBe(2);
      expect(seen.map((s) => s.origin).sort()).toEqual([evilOrigin, 'null']);
      expect(seen.map((s) => s.status)).toEqual([403, 403]);
      expect(srv.jobs.jobs.size).toBe(before);
    } finally {
      srv.server.off('request', watch);
      await context.close();
      await new Promise<void>((ok) => evil.close(() => ok()));
    }
  });
});

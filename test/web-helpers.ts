/**
 * Shared by the browser-build tests: a plain static file server (node:http, nothing of ours behind
 * it), Debian's chromium through playwright-core, and the build itself into a temp folder.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { extname, join, normalize, sep } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';

export const CHROMIUM = '/usr/bin/chromium';

/** In-page JavaScript for test and bench pages: `imageData(url)` decodes a file to exact ImageData (no colour conversion, no premultiplied alpha). */
export const PAGE_IMAGE_DATA = `async function imageData(url) {
  const bmp = await createImageBitmap(await (await fetch(url)).blob(), { colorSpaceConversion: 'none', premultiplyAlpha: 'none' });
  const c = new OffscreenCanvas(bmp.width, bmp.height);
  const g = c.getContext('2d');
  g.drawImage(bmp, 0, 0);
  return g.getImageData(0, 0, bmp.width, bmp.height);
}
`;
// in CI the browser is installed by .ci/apt-packages, so a missing one is a failure there
export const skipBrowser = !existsSync(CHROMIUM) && !process.env.CI;

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wasm': 'application/wasm',
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
};

export interface StaticServer {
  url: string;
  /** paths requested, in order */
  requests: string[];
  close(): Promise<void>;
}

/** Serves `root` as any static host would; `isolated` adds COOP/COEP (wasm threads need them). */
export async function serveStatic(root: string, opts: { isolated?: boolean } = {}): Promise<StaticServer> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    const file = normalize(join(root, path.endsWith('/') ? path + 'index.html' : path));
    if (!file.startsWith(root + sep) || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404).end('not found');
      return;
    }
    const headers: Record<string, string | number> = { 'content-type': TYPES[extname(file)] ?? 'application/octet-stream', 'content-length': statSync(file).size };
    if (opts.isolated) {
      headers['cross-origin-opener-policy'] = 'same-origin';
      headers['cross-origin-embedder-policy'] = 'require-corp';
    }
    res.writeHead(200, headers);
    createReadStream(file).pipe(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return { url: `http://127.0.0.1:${port}/`, requests, close: () => new Promise((r) => server.close(() => r())) };
}

export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-quic', '--no-first-run', ...extraArgs],
  });
}

/** Hole PSNR (dB) of two RGB(A) byte arrays over the pixels where `holes` is 1; Infinity when equal. */
export function holePsnr(a: ArrayLike<number>, ca: number, b: ArrayLike<number>, cb: number, holes: Uint8Array): number {
  let se = 0;
  let n = 0;
  for (let i = 0; i < holes.length; i++) {
    if (!holes[i]) continue;
    for (let c = 0; c < 3; c++) {
      const d = a[i * ca + c]! - b[i * cb + c]!;
      se += d * d;
      n++;
    }
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255) / (se / n));
}

/** Lets the context's pages talk only to `origin` (and data:/blob: URLs); every other request is aborted and recorded in `external`. */
export async function ownOriginOnly(context: BrowserContext, origin: string, external: string[]): Promise<void> {
  const own = new URL(origin).origin;
  await context.route('**/*', (route) => {
    const u = new URL(route.request().url());
    if (u.origin === own || u.protocol === 'data:' || u.protocol === 'blob:') return route.continue();
    external.push(route.request().url());
    return route.abort();
  });
}

/** Drags the mouse over the page's mask canvas through points given in image pixels of a W×H image, `steps` mouse moves per segment. */
export async function paintStroke(page: Page, W: number, H: number, pts: [number, number][], steps: number): Promise<void> {
  const b = (await page.locator('#mask-canvas').boundingBox())!;
  const at = ([x, y]: [number, number]) => [b.x + (x / W) * b.width, b.y + (y / H) * b.height] as const;
  await page.mouse.move(...at(pts[0]!));
  await page.mouse.down();
  for (const p of pts.slice(1)) await page.mouse.move(...at(p), { steps });
  await page.mouse.up();
}

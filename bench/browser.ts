/**
 * `npm run bench -- --browser [--threads 1,2] [--webgpu] [--seed 0] [--json]`: seconds per image of
 * the browser build (headless Debian chromium, wasm with 1 and 2 threads; WebGPU where the browser
 * offers an adapter) against the Node library and the CLI on the same machine, in the same run, on
 * the README example (examples/ladybird.jpg + its mask, the bundled model's defaults). Each
 * figure is the second of two runs on a loaded model (the first builds the sessions); the CLI's is
 * one whole process (start-up and session creation included). Also the first-load download: the
 * bytes a first visit fetches from the static folder to load the page and run once.
 * Only ratios from one run mean anything on a machine whose load changes.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import sharp from 'sharp';
import { buildWeb } from '../scripts/build-web.js';
import { loadModel } from '../src/index.js';
import { launchChromium, PAGE_IMAGE_DATA, serveStatic } from '../test/web-helpers.js';

const ROOT = resolve(import.meta.dirname, '..');
const IMAGE = join(ROOT, 'examples/ladybird.jpg');
const MASK = join(ROOT, 'examples/ladybird_mask.png');

const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
import * as sd from './strdiffusion.js';
${PAGE_IMAGE_DATA}window.bench = async (threads, providers, seed) => {
  const t0 = performance.now();
  const m = await sd.loadModel('./models/default/', { executionProviders: providers, threads });
  const load = (performance.now() - t0) / 1000;
  const img = await imageData('./example.png');
  const mask = await imageData('./example-mask.png');
  const runs = [];
  for (let i = 0; i < 2; i++) {
    const t = performance.now();
    await m.inpaint(img, mask, { seed });
    runs.push({ seconds: (performance.now() - t) / 1000, network: m.lastRun.networkSeconds });
  }
  const info = m.info;
  await m.dispose();
  return { load, runs, provider: info.provider, threads: info.threads, note: info.note };
};
window.ready = true;
</script>`;

export async function main(args: string[]): Promise<void> {
  const opt = (name: string) => {
    const i = args.indexOf(name);
    return i >= 0 ? args[i + 1] : undefined;
  };
  const threadsList = (opt('--threads') ?? '1,2').split(',').map(Number);
  const seed = Number(opt('--seed') ?? 0);
  const json = args.includes('--json');
  const dir = mkdtempSync(join(tmpdir(), 'strdiffusion-bench-browser-'));
  const results: Record<string, unknown> = { image: 'examples/ladybird.jpg (480x300) + ladybird_mask.png', seed };
  try {
    const web = join(dir, 'web');
    await buildWeb(web);
    const { data, info } = await sharp(IMAGE).removeAlpha().raw().toBuffer({ resolveWithObject: true });
    writeFileSync(join(web, 'example.png'), await sharp(data, { raw: { width: info.width, height: info.height, channels: 3 } }).png().toBuffer());
    writeFileSync(join(web, 'example-mask.png'), await sharp(MASK).png().toBuffer());
    writeFileSync(join(web, 'bench.html'), PAGE);

    // first-load download: what a first visit to the page fetches to load it and run once (wasm)
    const files = ['index.html', 'app.js', 'style.css', 'strdiffusion.js'];
    const srv = await serveStatic(web, { isolated: true });
    // --webgpu: Chromium's software adapter (SwiftShader): a check of the code path, not a GPU's speed
    const browser = await launchChromium(args.includes('--webgpu') ? ['--enable-unsafe-webgpu', '--use-webgpu-adapter=swiftshader'] : []);
    try {
      const page = await browser.newPage();
      await page.goto(srv.url + 'bench.html');
      await page.waitForFunction(() => (window as any).ready === true);
      const browserRuns: unknown[] = [];
      for (const threads of threadsList) {
        const r = await page.evaluate(([t, s]) => (window as any).bench(t, ['wasm'], s), [threads, seed] as const);
        browserRuns.push(r);
        if (!json) console.log(`browser wasm, ${threads} thread(s): load ${r.load.toFixed(1)} s, per image ${r.runs.map((x: { seconds: number }) => x.seconds.toFixed(1)).join(' / ')} s (networks ${r.runs[1].network.toFixed(1)} s)`);
      }
      const gpu = await page.evaluate(async () => {
        const a = await (navigator as any).gpu?.requestAdapter().catch(() => null);
        return a ? null : (navigator as any).gpu ? 'no WebGPU adapter' : 'no navigator.gpu';
      });
      if (gpu === null) {
        const r = await page.evaluate(([s]) => (window as any).bench(1, ['webgpu', 'wasm'], s), [seed] as const);
        browserRuns.push(r);
        if (!json) console.log(`browser webgpu: ${JSON.stringify(r)}`);
      } else if (!json) console.log(`browser webgpu: skipped (${gpu})`);
      results.browser = browserRuns;
      results.webgpu = gpu ?? 'measured';
      const fetched = new Set(srv.requests.map((p) => p.replace(/^\//, '')));
      for (const f of fetched) if (/^(chunks|ort|models)\//.test(f)) files.push(f);
      const bytes = [...new Set(files)].reduce((s, f) => s + statSync(join(web, f)).size, 0);
      results.firstLoadBytes = bytes;
      results.firstLoadFiles = [...new Set(files)].sort();
      if (!json) console.log(`first-load download (page + bundle + onnxruntime-web wasm + OpenCV.js + model): ${(bytes / 2 ** 20).toFixed(1)} MiB in ${new Set(files).size} files`);
    } finally {
      await browser.close();
      await srv.close();
    }

    // the Node library on the same machine, same image, same seed (onnxruntime-node, all cores)
    const model = await loadModel();
    const nodeRuns: number[] = [];
    for (let i = 0; i < 2; i++) {
      const t = performance.now();
      await model.inpaint(IMAGE, MASK, { seed });
      nodeRuns.push((performance.now() - t) / 1000);
    }
    await model.dispose();
    results.node = nodeRuns;
    if (!json) console.log(`Node library: per image ${nodeRuns.map((x) => x.toFixed(1)).join(' / ')} s`);
    const t = performance.now();
    execFileSync(process.execPath, [join(ROOT, 'bin/strdiffusion.js'), 'inpaint', '--image', IMAGE, '--mask', MASK, '--out', join(dir, 'cli.png'), '--seed', String(seed)], { stdio: 'ignore' });
    results.cli = (performance.now() - t) / 1000;
    if (!json) console.log(`Node CLI (one process): ${(results.cli as number).toFixed(1)} s`);
    if (json) console.log(JSON.stringify(results, null, 2));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

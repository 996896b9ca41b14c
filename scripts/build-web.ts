/**
 * `npm run build:web [-- --out DIR]`: the static browser build (default dist/web/): the page
 * (web/), one ES module `strdiffusion.js` (src/browser/index.ts bundled by esbuild, with its lazily
 * loaded chunks: onnxruntime-web's JS and OpenCV.js), onnxruntime-web's .mjs/.wasm files in ort/
 * and the bundled model in models/default/. Any static file server can serve the folder; nothing
 * is fetched from elsewhere. Exported as buildWeb() for the tests, which build into a temp dir.
 */
import { build, type Plugin } from 'esbuild';
import { cpSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { createRequire } from 'node:module';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** onnxruntime-web's runtime files the two builds we load (ort.wasm, ort.webgpu) fetch. */
const ORT_FILES = ['ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm'];

/**
 * OpenCV.js is a sloppy-mode UMD script (it assigns the undeclared global `Module`), which fails in
 * a bundle's strict ES module code, and its module object has a `then` that would make a dynamic
 * import's namespace a never-settling thenable. So it is loaded as a small ES module around the
 * script: its globals declared, its CommonJS export as the default export (image/opencv.ts reads
 * `default`).
 */
const openCvAsEsm: Plugin = {
  name: 'opencv-esm',
  setup(b) {
    // its Emscripten glue names Node modules in branches a browser never takes; anywhere else a
    // Node module is a mistake the build refuses (the browser bundle has no Node-only import)
    b.onResolve({ filter: /^(node:)?(fs|path|crypto|url|os|module|worker_threads|child_process|http|https|stream|zlib|buffer|util)$/ }, (args) => {
      if (/opencv-js[\\/]dist[\\/]opencv\.js$/.test(args.importer)) return { path: args.path, external: true };
      return { errors: [{ text: `Node-only import "${args.path}" in the browser bundle (from ${args.importer})` }] };
    });
    b.onLoad({ filter: /@techstark[\\/]opencv-js[\\/]dist[\\/]opencv\.js$/ }, (args) => ({
      contents: `var Module, define; var module = { exports: {} }; var exports = module.exports;\n${readFileSync(args.path, 'utf8')}\nexport default module.exports;\n`,
      loader: 'js',
    }));
  },
};

export interface WebBuild {
  out: string;
  /** bytes per file, relative to out */
  files: Record<string, number>;
}

function sizes(dir: string, base = dir, acc: Record<string, number> = {}): Record<string, number> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) sizes(p, base, acc);
    else acc[p.slice(base.length + 1)] = statSync(p).size;
  }
  return acc;
}

export async function buildWeb(out = join(ROOT, 'dist', 'web'), opts: { minify?: boolean; model?: string } = {}): Promise<WebBuild> {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  await build({
    entryPoints: { strdiffusion: join(ROOT, 'src/browser/index.ts') },
    bundle: true,
    format: 'esm',
    splitting: true,
    platform: 'browser',
    target: 'es2022',
    outdir: out,
    chunkNames: 'chunks/[name]-[hash]',
    minify: opts.minify ?? true,
    sourcemap: false,
    // onnxruntime-web's builds that load their .mjs/.wasm from env.wasm.wasmPaths (our ort/)
    conditions: ['onnxruntime-web-use-extern-wasm'],
    plugins: [openCvAsEsm],
    logLevel: 'warning',
    legalComments: 'none',
  });
  const ortDist = dirname(createRequire(import.meta.url).resolve('onnxruntime-web/ort-wasm-simd-threaded.wasm'));
  mkdirSync(join(out, 'ort'));
  for (const f of ORT_FILES) cpSync(join(ortDist, f), join(out, 'ort', f));
  cpSync(join(ROOT, 'web'), out, { recursive: true });
  const model = opts.model ?? join(ROOT, 'models', 'default');
  mkdirSync(join(out, 'models', 'default'), { recursive: true });
  for (const f of readdirSync(model)) cpSync(join(model, f), join(out, 'models', 'default', f));
  // COOP/COEP for hosts that read a _headers file (Netlify, Cloudflare Pages): wasm threads need them
  writeFileSync(join(out, '_headers'), '/*\n  Cross-Origin-Opener-Policy: same-origin\n  Cross-Origin-Embedder-Policy: require-corp\n');
  return { out, files: sizes(out) };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const i = process.argv.indexOf('--out');
  const out = i > 0 ? resolve(process.argv[i + 1]!) : undefined;
  const { out: dir, files } = await buildWeb(out);
  const total = Object.values(files).reduce((s, n) => s + n, 0);
  console.log(`${dir}: ${Object.keys(files).length} files, ${(total / 2 ** 20).toFixed(1)} MiB`);
}

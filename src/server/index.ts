/**
 * `strdiffusion serve`: a small HTTP server for the web page in web/ and its JSON/SSE API.
 *
 *   POST   /api/jobs             multipart: files image, mask; fields seed, sampler, T, steps, solver, spacing (stepRule: older name of solver) -> {id}
 *   GET    /api/jobs/:id         status JSON
 *   GET    /api/jobs/:id/events  Server-Sent Events: queued, progress, preview, done, error
 *   GET    /api/jobs/:id/result  the result PNG
 *   DELETE /api/jobs/:id         cancel (a finished job is forgotten)
 *   GET    /api/info             model and limits, for the page
 *
 * Limits: uploads up to maxUploadBytes, images up to maxPixels (413, read from the header before
 * anything is decoded), at most maxQueue jobs waiting (503 + Retry-After), one job running at a
 * time on at most maxWorkers model workers (jobs.ts). The main thread never decodes an image.
 * A queue place is taken only by a complete, checked upload; slow clients get 408 within seconds
 * (headersTimeoutMs, requestTimeoutMs, idleTimeoutMs). An error on any stream of a request ends
 * that request only.
 * Requests from other origins are refused (403): a page elsewhere must not run jobs through the
 * user's browser (see `crossSite`).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { existsSync, realpathSync, statSync, createReadStream } from 'node:fs';
import { dirname, extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';
import { isStepRule, STEP_RULES, SOLVERS, SPACINGS, type SamplerVariant } from '../sampler/index.js';
import { GUIDED_VARIANTS, isOneOf, SAMPLER_VARIANTS, TEXTURE_VARIANTS } from '../options.js';
import { textureOnly } from '../sampler/strdiffusion.js';

/** The samplers a model runs: the texture-only ones for an IR-SDE model (its default sampler is one), else the guided ones. */
function samplersFor(modelSampler: SamplerVariant): readonly SamplerVariant[] {
  return textureOnly(modelSampler) ? TEXTURE_VARIANTS : GUIDED_VARIANTS;
}
import { checkDecodes, inspectUpload, maskCoverage } from './images.js';
import { HttpError } from './errors.js';
import { DEFAULT_MAX_QUEUE, DEFAULT_MAX_WORKERS, JobManager, jobSampling, type Job } from './jobs.js';
import { RemoteRunner, type RemoteQueue } from './remote.js';
import { DEFAULT_MAX_MEGAPIXELS } from '../image/io.js';
import type { ExecutorName } from '../exec/registry.js';

export const WEB_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../web');

export interface ServerOptions {
  port?: number;
  host?: string;
  checkpoints?: string[];
  /** default steps (undefined: the model's T) */
  T?: number;
  /** model window size (default: the model's, else 256) */
  size?: number;
  executor?: ExecutorName;
  /** largest accepted request body in bytes (default 20 MB) */
  maxUploadBytes?: number;
  /** largest accepted image in pixels (default DEFAULT_MAX_MEGAPIXELS = 50 megapixels) */
  maxPixels?: number;
  /** jobs allowed to wait behind the running one; past it POST /api/jobs answers 503 (default 8) */
  maxQueue?: number;
  /** model workers alive at once, one per step count in use (default 2) */
  maxWorkers?: number;
  /** result PNGs kept for clients, in bytes (default 512 MB; the newest is always kept) */
  maxResultBytes?: number;
  /** event streams open at once; past it GET …/events answers 503 (default 64) */
  maxEventStreams?: number;
  /** the request line and headers must arrive within this (default 10 s; Node's server.headersTimeout) */
  headersTimeoutMs?: number;
  /** the body, an upload included, must arrive within this after the headers (default 30 s): 408,
   * then the connection is closed */
  requestTimeoutMs?: number;
  /** an upload that sends nothing for this long gets 408 (default 10 s) */
  idleTimeoutMs?: number;
  /** log one line per job to this function */
  log?: (msg: string) => void;
  webRoot?: string;
  /** run the jobs on queue workers through this Redis (`serve --redis`, src/server/remote.ts) */
  remote?: RemoteQueue;
  /** the browser build (`npm run build:web`) whose strdiffusion.js, onnxruntime-web files and model
   * let the page run on the user's device too; served for paths web/ does not have (default
   * dist/web of the package when it exists; null: none, the page then offers the server only) */
  webBuild?: string | null;
}

export interface RunningServer {
  url: string;
  port: number;
  host: string;
  server: Server;
  jobs: JobManager;
  close(): Promise<void>;
}

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.wasm': 'application/wasm',
  '.safetensors': 'application/octet-stream',
};

// The page must make no external requests; the policy enforces that for anything it loads.
// 'wasm-unsafe-eval': onnxruntime-web and OpenCV.js compile WebAssembly (the page's "this device" mode)
const CSP = "default-src 'self'; img-src 'self' data: blob:; connect-src 'self' blob:; style-src 'self'; script-src 'self' 'wasm-unsafe-eval'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/**
 * The browser build's scripts: the worker that strdiffusion.js starts gets its policy from this
 * response, and OpenCV.js's Emscripten bindings build functions with `new Function` there
 * ('unsafe-eval'); the page itself keeps the policy above.
 */
const BUILD_CSP = "default-src 'self'; script-src 'self' 'unsafe-eval' 'wasm-unsafe-eval'; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

/** The browser build beside the package's sources (dist/web), if `npm run build:web` made one. */
export const WEB_BUILD = resolve(dirname(fileURLToPath(import.meta.url)), '../../dist/web');

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

export const DEFAULT_HEADERS_TIMEOUT_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 30_000;
export const DEFAULT_IDLE_TIMEOUT_MS = 10_000;

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(text), 'Cache-Control': 'no-store', ...headers });
  res.end(text);
}

/**
 * Why a request must be refused as coming from another site, or null. A page elsewhere (another
 * origin, or an opaque one: `Origin: null` from a sandboxed iframe, a data: URL or some redirects)
 * could otherwise make the user's browser submit jobs here. Requests without these headers (curl,
 * scripts) are not from a browser page and pass; the Host check against DNS rebinding is separate.
 */
function crossSite(req: IncomingMessage, api: boolean): string | null {
  const origin = req.headers.origin;
  if (origin !== undefined) {
    if (origin === 'null') return 'cross-origin request refused: Origin "null" (a sandboxed frame, a file: or data: page, or a redirect); open the page from this server instead';
    let host: string | null = null;
    try {
      const u = new URL(origin);
      // the scheme is not compared: behind a TLS proxy this server's own page is https
      if ((u.protocol === 'http:' || u.protocol === 'https:') && u.pathname === '/' && !u.search && !u.username) host = u.host;
    } catch {}
    const own = (req.headers.host ?? '').toLowerCase();
    const ownDefault = own.replace(/:(80|443)$/, '');
    if (host === null || !own || (host !== own && host !== ownDefault)) return `cross-origin request refused: Origin "${origin}" is not this server (${own || 'no Host header'})`;
  }
  // browsers say where a request comes from; a page on another port of this host is "same-site"
  const site = req.headers['sec-fetch-site'];
  if (api && site !== undefined && site !== 'same-origin' && site !== 'none') return `cross-origin request refused: Sec-Fetch-Site: ${site} (only this server's own page may use the API)`;
  return null;
}

function sendError(res: ServerResponse, status: number, message: string, headers: Record<string, string> = {}): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, status, { error: message, status }, headers);
}

function isLoopback(host: string): boolean {
  return host === '127.0.0.1' || host === '::1' || host === 'localhost' || host.startsWith('127.');
}

function int(v: string | undefined, name: string, min: number, max: number): number | undefined {
  if (v === undefined || v.trim() === '') return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < min || n > max) throw new HttpError(400, `${name} must be an integer from ${min} to ${max} (got "${v}")`);
  return n;
}

interface Upload {
  files: Map<string, Buffer>;
  fields: Map<string, string>;
}

interface ReadLimits {
  /** files and fields together */
  maxBytes: number;
  /** 408 when no byte arrives for this long */
  idleMs: number;
  /** 408 when the request is not complete `timeoutMs` after it `arrived` (Date.now()) */
  arrived: number;
  timeoutMs: number;
  /** asks for room for `n` more body bytes among all uploads being read; false: 503 */
  hold: (n: number) => boolean;
}

const seconds = (ms: number) => `${+(ms / 1000).toFixed(1)} s`;

/** Reads a multipart body within `limits`. Any error of the request, the parser or a file part
 * rejects (never an unhandled 'error' event, which would end the process). */
function readMultipart(req: IncomingMessage, limits: ReadLimits): Promise<Upload> {
  const { maxBytes } = limits;
  return new Promise((resolvePromise, reject) => {
    const type = req.headers['content-type'] ?? '';
    if (!/^multipart\/form-data/i.test(type)) {
      reject(new HttpError(415, 'POST /api/jobs needs a multipart/form-data body with the files "image" and "mask"'));
      return;
    }
    const tooLarge = () => new HttpError(413, `the upload is larger than this server's limit of ${(maxBytes / 1e6).toFixed(1)} MB`);
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBytes) {
      reject(tooLarge());
      return;
    }
    let bb: busboy.Busboy;
    try {
      bb = busboy({ headers: req.headers, limits: { fileSize: maxBytes, files: 2, fields: 10, parts: 12, fieldSize: 1024 } });
    } catch (e) {
      reject(new HttpError(400, `bad multipart body: ${(e as Error).message}`));
      return;
    }
    const files = new Map<string, Buffer>();
    const fields = new Map<string, string>();
    let total = 0;
    let failed = false;
    let idle: NodeJS.Timeout | undefined;
    const late = () => fail(new HttpError(408, `the upload took longer than this server's limit of ${seconds(limits.timeoutMs)}`));
    const deadline = setTimeout(late, Math.max(0, limits.arrived + limits.timeoutMs - Date.now()));
    const stall = () => fail(new HttpError(408, `the upload stalled: no data for ${seconds(limits.idleMs)}`));
    const stopTimers = () => {
      clearTimeout(deadline);
      clearTimeout(idle);
    };
    const fail = (e: HttpError) => {
      stopTimers();
      if (failed) return;
      failed = true;
      req.unpipe(bb);
      // frees the parser and its open file stream (whose error is handled below); not at once, since
      // busboy goes on with the part that emitted the event that failed
      setImmediate(() => bb.destroy());
      reject(e);
    };
    const badBody = (e: Error) => fail(new HttpError(400, `bad multipart body: ${e.message}`));
    bb.on('file', (name, stream) => {
      const chunks: Buffer[] = [];
      stream.on('error', badBody);
      stream.on('data', (c: Buffer) => {
        total += c.length;
        if (total > maxBytes) fail(tooLarge());
        else if (!failed) chunks.push(c);
      });
      stream.on('limit', () => fail(tooLarge()));
      stream.on('end', () => {
        if (name !== 'image' && name !== 'mask') return;
        if (files.has(name)) fail(new HttpError(400, `the file "${name}" was sent twice`));
        files.set(name, Buffer.concat(chunks));
      });
    });
    bb.on('field', (name, value) => {
      total += value.length;
      fields.set(name, value);
    });
    bb.on('filesLimit', () => fail(new HttpError(400, 'too many files: send only "image" and "mask"')));
    bb.on('partsLimit', () => fail(new HttpError(400, 'too many form parts')));
    bb.on('error', badBody);
    bb.on('close', () => {
      stopTimers();
      if (!failed) resolvePromise({ files, fields });
    });
    req.on('data', (c: Buffer) => {
      if (failed) return;
      if (!limits.hold(c.length)) return fail(new HttpError(503, 'the server is reading too many uploads at once; try again in a few seconds', { 'Retry-After': '5' }));
      clearTimeout(idle);
      idle = setTimeout(stall, limits.idleMs);
    });
    idle = setTimeout(stall, limits.idleMs);
    req.on('aborted', () => fail(new HttpError(400, 'the upload was aborted')));
    req.on('error', (e: Error) => fail(new HttpError(400, `the upload failed: ${e.message}`)));
    req.pipe(bb);
  });
}

/** A positive timeout option in milliseconds, or its default. */
function timeoutOption(v: number | undefined, name: string, fallback: number): number {
  if (v === undefined) return fallback;
  if (!(Number.isFinite(v) && v > 0)) throw new Error(`${name} must be a positive number of milliseconds (got ${v})`);
  return v;
}

export async function startServer(opts: ServerOptions = {}): Promise<RunningServer> {
  const host = opts.host ?? '127.0.0.1';
  const maxUploadBytes = opts.maxUploadBytes ?? 20e6;
  const maxPixels = opts.maxPixels ?? DEFAULT_MAX_MEGAPIXELS * 1e6;
  if (!(maxPixels > 0)) throw new Error(`maxPixels must be a positive number (got ${maxPixels})`);
  const size = opts.size;
  const log = opts.log ?? (() => {});
  const webRoot = realpathSync(opts.webRoot ?? WEB_ROOT);
  const buildDir = opts.webBuild === null ? null : opts.webBuild ?? (existsSync(join(WEB_BUILD, 'strdiffusion.js')) ? WEB_BUILD : null);
  const webBuild = buildDir === null ? null : realpathSync(buildDir);
  const maxQueue = opts.maxQueue ?? DEFAULT_MAX_QUEUE;
  const maxWorkers = opts.maxWorkers ?? DEFAULT_MAX_WORKERS;
  // checked before the model loads, so a bad value costs no worker
  const headersTimeout = timeoutOption(opts.headersTimeoutMs, 'headersTimeoutMs', DEFAULT_HEADERS_TIMEOUT_MS);
  const requestTimeout = timeoutOption(opts.requestTimeoutMs, 'requestTimeoutMs', DEFAULT_REQUEST_TIMEOUT_MS);
  const idleTimeout = timeoutOption(opts.idleTimeoutMs, 'idleTimeoutMs', DEFAULT_IDLE_TIMEOUT_MS);
  const remote = opts.remote ? new RemoteRunner(opts.remote, opts.checkpoints, opts.T) : undefined;
  const jobs = new JobManager({ checkpoints: opts.checkpoints, T: opts.T, size, executor: opts.executor, maxPixels, maxQueue, maxWorkers, maxResultBytes: opts.maxResultBytes, remote });
  const model = await jobs.start();
  const sampling = (job: Job) => jobSampling(job, model);
  const loopbackOnly = isLoopback(host);
  // the Host names a loopback server answers to: the usual ones and the address it is bound to
  const ownNames = new Set([...LOOPBACK_NAMES, host.toLowerCase(), `[${host.toLowerCase()}]`]);

  // bodies of the uploads being read and checked, all together: as much as a full queue holds, so
  // that many clients uploading at once cannot exhaust memory (a queued job holds its own bytes)
  const maxReadingBytes = maxUploadBytes * (maxQueue + 1);
  let readingBytes = 0;

  async function createJob(req: IncomingMessage, res: ServerResponse, arrived: number): Promise<void> {
    // a full queue refuses before the body is read (it costs no memory); the place itself is taken
    // only when the upload is complete and checked, so a slow or idle upload holds none
    jobs.checkRoom();
    let held = 0;
    const hold = (n: number) => {
      if (readingBytes + n > maxReadingBytes) return false;
      readingBytes += n;
      held += n;
      return true;
    };
    try {
      await readAndSubmit(req, res, { maxBytes: maxUploadBytes, idleMs: idleTimeout, arrived, timeoutMs: requestTimeout, hold });
    } finally {
      readingBytes -= held;
    }
  }

  async function readAndSubmit(req: IncomingMessage, res: ServerResponse, reading: ReadLimits): Promise<void> {
    const up = await readMultipart(req, reading);
    const imageBuf = up.files.get('image');
    const maskBuf = up.files.get('mask');
    if (!imageBuf || imageBuf.length === 0) throw new HttpError(400, 'missing the file "image"');
    if (!maskBuf || maskBuf.length === 0) throw new HttpError(400, 'missing the file "mask" (white = hole)');
    const seed = int(up.fields.get('seed'), 'seed', 0, 2 ** 31 - 1) ?? Math.floor(Math.random() * 2 ** 31);
    // no sampler: the model's (model.json), as for the CLI
    const sampler = (up.fields.get('sampler') || model.sampler) as SamplerVariant;
    if (!(SAMPLER_VARIANTS as readonly string[]).includes(sampler)) throw new HttpError(400, `sampler must be one of ${SAMPLER_VARIANTS.join(', ')} (got "${sampler}")`);
    const usable = samplersFor(model.sampler);
    if (!usable.includes(sampler)) throw new HttpError(400, `sampler ${sampler} does not run on this model (${textureOnly(model.sampler) ? 'a texture-only IR-SDE model' : 'a structure-guided model'}): use one of ${usable.join(', ')}`);
    const stepRule = up.fields.get('stepRule') || undefined;
    if (stepRule !== undefined && !isStepRule(stepRule)) throw new HttpError(400, `stepRule must be sde or posterior (got "${stepRule}")`);
    const solverField = up.fields.get('solver') || undefined;
    const solver = isOneOf(SOLVERS, solverField) ? solverField : undefined;
    if (solverField !== undefined && solver === undefined) throw new HttpError(400, `solver must be one of ${SOLVERS.join(', ')} (got "${solverField}")`);
    const spacingField = up.fields.get('spacing') || undefined;
    const spacing = isOneOf(SPACINGS, spacingField) ? spacingField : undefined;
    if (spacingField !== undefined && spacing === undefined) throw new HttpError(400, `spacing must be one of ${SPACINGS.join(', ')} (got "${spacingField}")`);
    const T = int(up.fields.get('T'), 'T', 2, 2000);
    const steps = int(up.fields.get('steps'), 'steps', 1, 2000);
    // headers first (format, size, pixel limit), then streaming decodes; the pixels are decoded for
    // good in the model worker when the job runs
    const limits = { maxPixels };
    const image = await inspectUpload(imageBuf, 'image', limits);
    const mask = await inspectUpload(maskBuf, 'mask', limits);
    if (mask.width !== image.width || mask.height !== image.height) {
      throw new HttpError(422, `the mask is ${mask.width}x${mask.height} but the image is ${image.width}x${image.height}; they must be the same size`);
    }
    await checkDecodes(imageBuf, 'image', limits);
    const coverage = await maskCoverage(maskBuf, mask, limits);
    if (coverage === 'none') throw new HttpError(422, 'the mask has no hole: paint (white) the region to fill');
    if (coverage === 'all') throw new HttpError(422, 'the mask covers the whole image: there is no known pixel to inpaint from');
    const job = jobs.submit({ image: imageBuf, mask: maskBuf, width: image.width, height: image.height, seed, sampler, stepRule, T, steps, solver, spacing });
    log(`job ${job.id}: ${image.width}x${image.height}, seed ${seed}, ${sampler}, T=${job.T}`);
    job.listeners.add((ev, d) => {
      if (ev === 'done') log(`job ${job.id}: done in ${(d.seconds as number).toFixed(1)}s`);
      if (ev === 'error') log(`job ${job.id}: ${d.message}`);
    });
    sendJson(res, 202, { id: job.id, status: job.status, seed, sampler, ...sampling(job), ...jobs.position(job), events: `/api/jobs/${job.id}/events`, result: `/api/jobs/${job.id}/result` }, { Location: `/api/jobs/${job.id}` });
  }

  function status(job: Job): Record<string, unknown> {
    return { id: job.id, status: job.status, seed: job.seed, sampler: job.sampler, ...sampling(job), width: job.width, height: job.height, ...jobs.position(job), progress: job.last.progress ?? null, error: job.last.error ?? null };
  }

  // each open stream holds a socket and a subscription: bounded like the queue
  const maxEventStreams = opts.maxEventStreams ?? 64;
  let openStreams = 0;

  function events(req: IncomingMessage, res: ServerResponse, job: Job): void {
    if (openStreams >= maxEventStreams) {
      return sendError(res, 503, `too many open event streams (${maxEventStreams}); retry later or poll GET /api/jobs/${job.id}`, { 'Retry-After': '5' });
    }
    openStreams++;
    res.writeHead(200, { 'Content-Type': 'text/event-stream; charset=utf-8', 'Cache-Control': 'no-store', Connection: 'keep-alive', 'X-Accel-Buffering': 'no' });
    res.write('retry: 2000\n\n');
    let closed = false;
    const ping = setInterval(() => res.write(': ping\n\n'), 15_000);
    const end = () => {
      if (closed) return;
      closed = true;
      openStreams--;
      clearInterval(ping);
      unsubscribe();
      res.end();
    };
    const unsubscribe = jobs.subscribe(job, (event, data) => {
      if (closed) return;
      res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
      // the stream ends with the job; a client reconnecting gets the final event again
      if (event === 'done' || event === 'error') setImmediate(end);
    });
    req.on('close', end);
  }

  function serveStatic(req: IncomingMessage, res: ServerResponse, rawPath: string): void {
    let path: string;
    try {
      path = decodeURIComponent(rawPath);
    } catch {
      sendError(res, 400, 'bad path');
      return;
    }
    // refuse any dot-dot segment (after decoding) rather than trying to normalise it away
    if (path.includes('\0') || path.includes('\\') || path.split('/').some((s) => s === '..' || s === '.')) {
      sendError(res, 404, 'not found');
      return;
    }
    if (path === '/' || path === '') path = '/index.html';
    // the page from web/, the browser build's files (bundle, onnxruntime-web, model) from webBuild
    let real = '';
    let root = webRoot;
    for (const r of webBuild ? [webRoot, webBuild] : [webRoot]) {
      try {
        real = realpathSync(resolve(r, `.${path}`));
        root = r;
        break;
      } catch {
        // not in this folder
      }
    }
    if (real === '' || !real.startsWith(root + sep) || !statSync(real).isFile() || !TYPES[extname(real)]) {
      sendError(res, 404, 'not found');
      return;
    }
    const st = statSync(real);
    res.writeHead(200, {
      'Content-Type': TYPES[extname(real)]!,
      'Content-Length': st.size,
      'Cache-Control': 'no-cache',
      'Content-Security-Policy': root === webRoot ? CSP : BUILD_CSP,
      // cross-origin isolation: onnxruntime-web runs wasm threads only in an isolated page
      'Cross-Origin-Opener-Policy': 'same-origin',
      'Cross-Origin-Embedder-Policy': 'require-corp',
      'X-Content-Type-Options': 'nosniff',
      'Referrer-Policy': 'no-referrer',
    });
    if (req.method === 'HEAD') res.end();
    else createReadStream(real).on('error', () => res.destroy()).pipe(res);
  }

  async function handle(req: IncomingMessage, res: ServerResponse, arrived: number): Promise<void> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const rawPath = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    const method = req.method ?? 'GET';
    // a page on another site must not drive this server through the user's browser
    if (loopbackOnly) {
      const hostName = (req.headers.host ?? '').replace(/:\d+$/, '').toLowerCase();
      if (!ownNames.has(hostName)) return sendError(res, 403, `unexpected Host header "${req.headers.host ?? ''}"`);
    }
    const refused = crossSite(req, rawPath.startsWith('/api/'));
    if (refused) return sendError(res, 403, refused);
    if (!rawPath.startsWith('/api/')) {
      if (method !== 'GET' && method !== 'HEAD') return sendError(res, 405, 'method not allowed', { Allow: 'GET, HEAD' });
      return serveStatic(req, res, rawPath);
    }
    if (rawPath === '/api/info' && method === 'GET') {
      return sendJson(res, 200, { T: model.T, fixedT: model.fixedT, size, sampler: model.sampler, samplers: samplersFor(model.sampler), steps: model.steps, solver: model.solver, solvers: SOLVERS, spacing: model.spacing, spacings: SPACINGS, stepRules: STEP_RULES, maxUploadBytes, maxPixels, maxQueue, formats: ['image/png', 'image/jpeg', 'image/webp'] });
    }
    if (rawPath === '/api/jobs') {
      if (method !== 'POST') return sendError(res, 405, 'use POST to create a job', { Allow: 'POST' });
      return createJob(req, res, arrived);
    }
    const m = /^\/api\/jobs\/([^/]+)(\/events|\/result)?$/.exec(rawPath);
    if (!m) return sendError(res, 404, `no API route ${rawPath}`);
    let id: string;
    try {
      id = decodeURIComponent(m[1]!);
    } catch {
      return sendError(res, 404, `no job with id "${m[1]}"`);
    }
    const job = jobs.get(id);
    const sub = m[2];
    if (!sub) {
      if (method === 'GET') return sendJson(res, 200, status(job));
      if (method === 'DELETE') {
        const was = job.status;
        jobs.cancel(job.id);
        const now = was === 'queued' || was === 'running' ? 'cancelling' : was === 'done' ? 'deleted' : was;
        return sendJson(res, 200, { id: job.id, status: now });
      }
      return sendError(res, 405, 'method not allowed', { Allow: 'GET, DELETE' });
    }
    if (method !== 'GET') return sendError(res, 405, 'method not allowed', { Allow: 'GET' });
    if (sub === '/events') return events(req, res, job);
    if (job.status !== 'done' || !job.result) {
      const why = job.status === 'error' || job.status === 'cancelled' ? `the job ${job.status === 'error' ? 'failed' : 'was cancelled'}` : `the job is ${job.status}`;
      return sendError(res, 409, `no result: ${why}`);
    }
    res.writeHead(200, {
      'Content-Type': 'image/png',
      'Content-Length': job.result.length,
      'Content-Disposition': `inline; filename="inpainted-${job.id}.png"`,
      'Cache-Control': 'no-store',
    });
    res.end(job.result);
  }

  // Node's own limits cover the headers (which no handler sees) and back up the upload's timers (its
  // requestTimeout counts from the first byte, the upload's from the headers); Node checks them every
  // connectionsCheckingInterval, so that is kept well under the headers timeout
  const serverOptions = { headersTimeout, requestTimeout: headersTimeout + requestTimeout, connectionsCheckingInterval: Math.max(50, Math.min(1000, headersTimeout / 4)) };
  const server = createServer(serverOptions, (req, res) => {
    const arrived = Date.now();
    // a client gone mid-request (reset, bad framing) ends this request only; Node closes the socket
    req.on('error', () => {});
    res.on('error', () => {});
    handle(req, res, arrived).catch((e: unknown) => refuse(req, res, e));
  });

  function refuse(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    const err = e instanceof HttpError ? e : new HttpError(500, (e as Error).message ?? String(e));
    // a full queue (503) is an answer, not a fault
    if (err.status >= 500 && err.status !== 503) console.error(e);
    if (!req.complete) {
      if (!res.headersSent) res.setHeader('Connection', 'close');
      // a slow client is not waited for: the connection closes once the answer is out
      if (err.status === 408) res.on('finish', () => req.socket.destroy());
      else drain(req);
    }
    sendError(res, err.status, err.message, err.headers);
  }

  /** After an early refusal the rest of the upload is discarded (a client reads the answer only once
   * it has sent its body), then the connection closed; Node's requestTimeout bounds the wait. */
  function drain(req: IncomingMessage): void {
    let drained = 0;
    req.on('data', (c: Buffer) => {
      drained += c.length;
      if (drained > 4 * maxUploadBytes) req.destroy();
    });
    req.resume();
  }
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(opts.port ?? 8080, host, () => ok());
  });
  const addr = server.address() as AddressInfo;
  const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  return {
    url: `http://${shownHost === '0.0.0.0' || shownHost === '[::]' ? 'localhost' : shownHost}:${addr.port}/`,
    port: addr.port,
    host,
    server,
    jobs,
    async close() {
      await jobs.close();
      server.closeAllConnections();
      await new Promise<void>((ok) => server.close(() => ok()));
    },
  };
}

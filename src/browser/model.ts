/**
 * A model folder fetched over HTTP (model.json + three .safetensors files), checked as the Node
 * loader checks a folder (model/checkpoints.ts: loadModel) with the same Node-free pieces:
 * model.json's validation, configs from the weights' shapes, strict name/shape matching, finite
 * weights. Downloads go through the Cache API when the page has one (a secure context), so the
 * ~20 MB of weights are fetched once per browser; `onProgress` reports bytes as they arrive.
 */
import { NET_KINDS, checkWeights, paramSpec } from '../nn/models.js';
import type { DiscConfig, ModelConfigs, UNetConfig } from '../nn/config.js';
import type { NetKind } from '../exec/types.js';
import type { StateDict } from '../weights/types.js';
import { BytesSource } from '../weights/bytes.js';
import { parseSafetensors } from '../weights/safetensors-parse.js';
import { loadStrict, stripModulePrefix } from '../weights/strict.js';
import { checkT, inferDiscConfig, inferUNetConfig, predictionIn, validateModelMeta, type Model, type ModelMeta } from '../model/meta.js';
import { IRSDE } from '../sde/irsde.js';
import { withLevelTables } from '../sde/prediction.js';
import { StrDiffusionError } from '../util/errors.js';

/** Bytes received so far of the model's files (total: the sum of their Content-Length, 0 while unknown). */
export interface DownloadProgress {
  file: string;
  loaded: number;
  total: number;
  /** true when the bytes came from the browser's cache */
  cached: boolean;
}

/** Cache API bucket; the version changes when the cached format would. */
export const MODEL_CACHE = 'strdiffusion-model-v1';

const bad = (msg: string) => new StrDiffusionError('BAD_CHECKPOINT', msg);

/** One file's bytes: from the cache, else fetched (and cached); `onBytes(n, total)` as they arrive. */
async function fetchBytes(url: string, useCache: boolean, onBytes: (loaded: number, total: number, cached: boolean) => void): Promise<Uint8Array> {
  const cache = useCache && typeof caches !== 'undefined' ? await caches.open(MODEL_CACHE).catch(() => null) : null;
  let res = cache ? await cache.match(url) : undefined;
  // a cached file is used only while the server still has the same one (new weights at the same
  // URL must not be masked by the cache); offline, the cached copy is used as it is
  if (res) {
    const head = await fetch(url, { method: 'HEAD', cache: 'no-store' }).catch(() => null);
    if (head?.ok && sourceTag(head) !== res.headers.get('x-strdiffusion-source')) res = undefined;
  }
  const cached = res !== undefined;
  let tag = '';
  if (!res) {
    try {
      res = await fetch(url);
    } catch (e) {
      throw bad(`cannot fetch ${url}: ${(e as Error).message}`);
    }
    if (!res.ok) throw bad(`cannot fetch ${url}: HTTP ${res.status} ${res.statusText}`);
    tag = sourceTag(res);
  }
  const total = Number(res.headers.get('content-length') ?? 0);
  let bytes: Uint8Array;
  if (!res.body) bytes = new Uint8Array(await res.arrayBuffer());
  else {
    const reader = res.body.getReader();
    const parts: Uint8Array[] = [];
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      n += value.length;
      onBytes(n, total, cached);
    }
    bytes = new Uint8Array(n);
    let o = 0;
    for (const p of parts) {
      bytes.set(p, o);
      o += p.length;
    }
  }
  onBytes(bytes.length, total || bytes.length, cached);
  // only complete, successful downloads are cached (a failed put only costs the next load a download)
  if (cache && !cached) await cache.put(url, new Response(bytes.slice(), { headers: { 'content-type': 'application/octet-stream', 'content-length': String(bytes.length), 'x-strdiffusion-source': tag } })).catch(() => {});
  return bytes;
}

/** What identifies a server's version of a file: its validators and length. */
function sourceTag(res: Response): string {
  const h = res.headers;
  return [h.get('etag') ?? '', h.get('last-modified') ?? '', h.get('content-length') ?? ''].join('|');
}

/** The default file of each network in a folder (the names `train` and package-model write). */
const DEFAULT_FILES: Record<NetKind, string> = { structure: 'structure.safetensors', texture: 'texture.safetensors', discriminator: 'discriminator.safetensors' };

/**
 * Fetch and check the model at `baseUrl` (a folder URL; model.json must name T). The result is
 * what the Node loader returns for one folder (`files` are URLs).
 */
export async function fetchModel(baseUrl: string, opts: { cache?: boolean; onProgress?: (p: DownloadProgress) => void } = {}): Promise<Model> {
  const base = baseUrl.endsWith('/') ? baseUrl : baseUrl + '/';
  const useCache = opts.cache ?? true;
  const metaUrl = new URL('model.json', base).href;
  let meta: ModelMeta;
  try {
    // model.json is small and may change with the weights: always fetched fresh
    const res = await fetch(metaUrl, { cache: 'no-cache' });
    if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
    meta = validateModelMeta(JSON.parse(await res.text()));
  } catch (e) {
    throw bad(`${metaUrl}: ${e instanceof SyntaxError ? 'not valid JSON (' + e.message + ')' : (e as Error).message}`);
  }
  if (meta.T === undefined) throw bad(`${metaUrl} does not say the diffusion length T ({"T": N}): it cannot be inferred from the weights`);
  const T = checkT(meta.T);
  // a texture-only (IR-SDE, structureKind "none") model needs the irsde/repaint samplers on a model
  // without structure or discriminator networks: the browser build runs structure-guided models only
  if (meta.structureKind === 'none') throw bad(`${metaUrl}: a texture-only model (structureKind "none") is not supported in the browser; run it with the CLI or \`serve\``);
  const structureKind = meta.structureKind ?? 'gray2edge';
  const urls = {} as Record<NetKind, string>;
  for (const kind of NET_KINDS) {
    const name = meta.files?.[kind] ?? DEFAULT_FILES[kind];
    if (!name.endsWith('.safetensors')) throw bad(`${metaUrl}: the browser reads .safetensors weights only (files.${kind} is "${name}"; convert it with \`strdiffusion convert\`)`);
    urls[kind] = new URL(name, base).href;
  }
  // progress over all three files: the sum of what each has received
  const got = new Map<NetKind, { loaded: number; total: number }>();
  const bytes = await Promise.all(
    NET_KINDS.map((kind) =>
      fetchBytes(urls[kind], useCache, (loaded, total, cached) => {
        got.set(kind, { loaded, total });
        const all = [...got.values()];
        const known = all.length === NET_KINDS.length && all.every((g) => g.total > 0);
        opts.onProgress?.({ file: urls[kind], loaded: all.reduce((s, g) => s + g.loaded, 0), total: known ? all.reduce((s, g) => s + g.total, 0) : 0, cached });
      }),
    ),
  );
  const weights = {} as Record<NetKind, StateDict>;
  const configs = {} as ModelConfigs;
  const sde = new IRSDE({ T });
  NET_KINDS.forEach((kind, i) => {
    const url = urls[kind];
    // names and shapes are checked from the header before the tensors are decoded
    const reader = parseSafetensors(new BytesSource(bytes[i]!, url));
    const headers = stripModulePrefix(reader.headers);
    let cfg: UNetConfig | DiscConfig = kind === 'discriminator' ? inferDiscConfig(headers, url) : inferUNetConfig(headers, url);
    if (kind === 'texture' && (cfg as UNetConfig).inNc !== 3) throw bad(`${url}: expected the texture network, but the checkpoint has ${(cfg as UNetConfig).inNc} image channel(s), not 3 (is it the structure network?)`);
    if (kind === 'texture' && !(cfg as UNetConfig).spade) throw bad(`${url}: the texture network has no SPADE blocks (an unguided IR-SDE texture network): texture-only models are not supported in the browser; run it with the CLI or \`serve\``);
    if (kind === 'structure' && (cfg as UNetConfig).spade) throw bad(`${url}: expected the structure network, but the checkpoint has SPADE blocks (is it the texture network?)`);
    loadStrict(headers, paramSpec(kind, cfg), `${url} (${kind} network)`);
    weights[kind] = checkWeights(kind, cfg, stripModulePrefix(reader.read()), url);
    if (kind !== 'discriminator' && predictionIn(meta, kind) === 'x0') cfg = withLevelTables({ ...(cfg as UNetConfig), prediction: 'x0' }, sde);
    (configs as Record<NetKind, UNetConfig | DiscConfig>)[kind] = cfg;
  });
  return { T, configs, weights, files: urls, meta, size: meta.size, fill: meta.fill ?? 'zero', structureKind };
}

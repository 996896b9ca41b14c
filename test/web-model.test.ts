/**
 * The browser build's model loader (src/browser/model.ts) in Node, with `fetch` serving the bundled
 * model's files: the structure kind it reports, and the one-line refusal of a texture-only model.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fetchModel } from '../src/browser/model.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'models', 'default');

/** `fetch` reading models/default, with `override` merged into its model.json. */
function serve(override: Record<string, unknown>) {
  vi.stubGlobal('fetch', async (url: string) => {
    const name = new URL(url).pathname.split('/').pop()!;
    let body: Uint8Array<ArrayBuffer> = new Uint8Array(readFileSync(join(DIR, name)));
    if (name === 'model.json') body = new TextEncoder().encode(JSON.stringify({ ...JSON.parse(Buffer.from(body).toString()), ...override }));
    return new Response(body, { headers: { 'content-length': String(body.length) } });
  });
}

describe('browser fetchModel and structure kinds', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('reports the structure kind (gray2edge by default, model.json otherwise) and the ns fill', async () => {
    serve({});
    expect((await fetchModel('http://x/m/', { cache: false })).structureKind).toBe('gray2edge');
    serve({ structureKind: 'edge2edge', fill: 'ns' });
    const m = await fetchModel('http://x/m/', { cache: false });
    expect([m.structureKind, m.fill]).toEqual(['edge2edge', 'ns']);
  });

  it('refuses a texture-only model and a bad structureKind with one line', async () => {
    serve({ structureKind: 'none' });
    await expect(fetchModel('http://x/m/', { cache: false })).rejects.toThrow(/^[^\n]*texture-only model \(structureKind "none"\) is not supported in the browser[^\n]*$/);
    serve({ structureKind: 'bogus' });
    await expect(fetchModel('http://x/m/', { cache: false })).rejects.toThrow(/structureKind must be one of .*"none" \(got "bogus"\)/);
  });
});

/**
 * The browser build's model loader (src/browser/model.ts) in Node, fetching the bundled model's
 * files over HTTP from a real local server: the structure kind it reports, and the one-line
 * refusal of a texture-only model.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchModel } from '../src/browser/model.js';

const DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'models', 'default');

/** model.json overrides by folder name: /<name>/model.json is the bundled one with these merged in */
const VARIANTS: Record<string, Record<string, unknown>> = {
  plain: {},
  edge: { structureKind: 'edge2edge', fill: 'ns' },
  none: { structureKind: 'none' },
  bogus: { structureKind: 'bogus' },
};

let server: Server;
let base = '';

beforeAll(async () => {
  server = createServer((req, res) => {
    const [, variant, name] = (req.url ?? '').split('/');
    const override = VARIANTS[variant ?? ''];
    if (!override || !name || name.includes('..')) return void res.writeHead(404).end();
    let body: Buffer;
    try {
      body = readFileSync(join(DIR, name));
    } catch {
      return void res.writeHead(404).end();
    }
    if (name === 'model.json') body = Buffer.from(JSON.stringify({ ...JSON.parse(body.toString()), ...override }));
    res.writeHead(200, { 'content-length': String(body.length) }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(() => new Promise<void>((r) => server.close(() => r())));

describe('browser fetchModel and structure kinds', () => {
  it('reports the structure kind (gray2edge by default, model.json otherwise) and the ns fill', async () => {
    expect((await fetchModel(`${base}/plain/`, { cache: false })).structureKind).toBe('gray2edge');
    const m = await fetchModel(`${base}/edge/`, { cache: false });
    expect([m.structureKind, m.fill]).toEqual(['edge2edge', 'ns']);
  });

  it('refuses a texture-only model and a bad structureKind with one line', async () => {
    await expect(fetchModel(`${base}/none/`, { cache: false })).rejects.toThrow(/^[^\n]*texture-only model \(structureKind "none"\) is not supported in the browser[^\n]*$/);
    await expect(fetchModel(`${base}/bogus/`, { cache: false })).rejects.toThrow(/structureKind must be one of .*"none" \(got "bogus"\)/);
  });
});

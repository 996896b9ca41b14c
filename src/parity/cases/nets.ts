/** Network forward cases: each network on each selected executor vs the official outputs. */
import type { CaseHandler, ParityCase, ParityContext, CheckResult } from '../types.js';
import { check } from '../types.js';
import type { NetKind } from '../../exec/types.js';
import { fixtureRunner } from '../fixture-nets.js';
import { maxAbsDiff, type F32Tensor } from '../../util/tensor.js';

const runner = fixtureRunner;

function f32(ctx: ParityContext, entry: any): F32Tensor {
  const a = ctx.load(entry);
  return { shape: a.shape, data: a.data instanceof Float32Array ? a.data : Float32Array.from(a.data) };
}

function steps(ctx: ParityContext, c: ParityCase, batch: number): number[] {
  if (c.files.t) return Array.from(ctx.load(c.files.t).data);
  const t = c.config?.t;
  const list = Array.isArray(t) ? t : [t];
  return list.length === batch ? list : Array(batch).fill(list[0]);
}

function forward(kind: NetKind): CaseHandler {
  return async (c, ctx) => {
    const f = c.files;
    const x = f32(ctx, kind === 'discriminator' ? f.y : kind === 'texture' ? f.y_t : f.x_t);
    const inputs = {
      x,
      mu: f.mu ? f32(ctx, f.mu) : undefined,
      S: f.S ? f32(ctx, f.S) : undefined,
      t: steps(ctx, c, x.shape[0]!),
    };
    const ref = ctx.load(f.out);
    const tol = c.tolerance?.atol ?? 1e-4;
    const results: CheckResult[] = [];
    for (const exec of ctx.executors) {
      const out = await (await runner(ctx, exec, kind)).run(inputs);
      if (out.data.length !== ref.data.length) {
        results.push(check(c.name, exec, Infinity, tol, `output shape [${out.shape}] vs reference [${ref.shape}]`));
        continue;
      }
      results.push(check(c.name, exec, maxAbsDiff(out.data, ref.data), tol));
    }
    return results;
  };
}

export const handlers: Record<string, CaseHandler> = {
  forward_structure: forward('structure'),
  forward_texture: forward('texture'),
  forward_discriminator: forward('discriminator'),
};

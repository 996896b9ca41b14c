/** Network configs and weights of a fixtures folder, read from its manifest (never assumed). */
import type { DiscConfig, UNetConfig } from '../nn/config.js';
import type { NetConfig, NetKind } from '../exec/types.js';
import type { ParityContext } from './types.js';
import type { StateDict } from '../weights/types.js';
import { readPth } from '../weights/pth.js';
import { checkWeights } from '../nn/models.js';
import type { NetRunner } from '../exec/types.js';
import { getExecutor } from '../exec/registry.js';

/** Translate an official constructor description ({class, in_nc, nf, ...}) into our config. */
export function configFromOfficial(c: any): { kind: NetKind; cfg: NetConfig } {
  switch (c.class) {
    case 'ConditionalUNets':
    case 'ConditionalUNet': {
      const cfg: UNetConfig = { inNc: c.in_nc, outNc: c.out_nc, nf: c.nf, depth: c.depth ?? 4, spade: c.class === 'ConditionalUNet' };
      return { kind: cfg.spade ? 'texture' : 'structure', cfg };
    }
    case 'Discriminator': {
      const cfg: DiscConfig = { nc: c.nc ?? 4, ngf: c.ngf, tEmbDim: c.t_emb_dim ?? 256 };
      return { kind: 'discriminator', cfg };
    }
    default:
      throw new Error(`unknown official network class "${c.class}"`);
  }
}

const cache = new Map<string, StateDict>();

/** The config of a network kind in this fixtures folder and its (strictly checked) weights file. */
export function fixtureNet(ctx: ParityContext, kind: NetKind, weightsFile?: string): { cfg: NetConfig; weights: StateDict } {
  const w = ctx.manifest.groups?.nets?.weights?.[kind];
  if (!w) throw new Error(`manifest has no groups.nets.weights.${kind}`);
  const { cfg } = configFromOfficial(w.config);
  const file = weightsFile ?? w.file;
  const path = ctx.path(file);
  let sd = cache.get(path);
  if (!sd) {
    sd = checkWeights(kind, cfg, readPth(path), file);
    cache.set(path, sd);
  }
  return { cfg, weights: sd };
}

const runners = new Map<string, Promise<NetRunner>>();

/** One runner per (fixtures folder, executor, network), shared by every case of a parity run. */
export function fixtureRunner(ctx: ParityContext, exec: string, kind: NetKind): Promise<NetRunner> {
  const key = `${ctx.dir}|${exec}|${kind}`;
  let r = runners.get(key);
  if (!r) {
    const { cfg, weights } = fixtureNet(ctx, kind);
    r = getExecutor(exec).then((e) => e.createRunner(kind, cfg, weights));
    runners.set(key, r);
  }
  return r;
}

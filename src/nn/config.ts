/** Network configurations, named after the official constructors' arguments. */
export interface UNetConfig {
  /** image channels: 1 for the structure net, 3 for the texture net (network input is 2*inNc) */
  inNc: number;
  outNc: number;
  nf: number;
  depth: number;
  /** texture net: one SPADE block after each down level, guided by the structure */
  spade: boolean;
  /**
   * What the last conv predicts (not in the official code; default 'eps', the official noise ε̂).
   * 'x0': a residual r on the SDE mean, x̂0 = μ + r, which the network converts in its own graph
   * to ε̂ = (x − μ − r·e_t)/σ̄_t (e_t = exp(−θ̄_t·dt)), so every sampler still receives ε̂. With r = 0
   * the network predicts x̂0 = μ, which keeps x̂0 well conditioned at high noise levels, where
   * ε-prediction multiplies its errors by σ̄_t/e_t (≈ 20 at T); it needs `levelTables`.
   */
  prediction?: Prediction;
  /**
   * 'x0' prediction only: e_t and σ̄_t per level 0..T of the model's SDE. Attached at run time
   * (sde/prediction.ts: withLevelTables) as a non-enumerable property, so it never reaches JSON.
   */
  readonly levelTables?: LevelTables;
}

export { PREDICTIONS, type Prediction } from '../options.js';
import { PREDICTIONS, type Prediction } from '../options.js';

export function isPrediction(v: unknown): v is Prediction {
  return (PREDICTIONS as readonly unknown[]).includes(v);
}

export interface LevelTables {
  /** e_t = exp(−θ̄_t·dt), index = level */
  meanFactor: Float32Array;
  /** σ̄_t, index = level */
  sigmaBar: Float32Array;
}

/** A network's configuration: a U-Net's or the discriminator's. */
export type NetConfig = UNetConfig | DiscConfig;

export interface DiscConfig {
  /** channels of cat(y, S): 4 */
  nc: number;
  ngf: number;
  tEmbDim: number;
}

export interface ModelConfigs {
  structure: UNetConfig;
  texture: UNetConfig;
  discriminator: DiscConfig;
}

export const OFFICIAL: ModelConfigs = {
  structure: { inNc: 1, outNc: 1, nf: 64, depth: 4, spade: false },
  texture: { inNc: 3, outNc: 3, nf: 64, depth: 4, spade: true },
  discriminator: { nc: 4, ngf: 64, tEmbDim: 256 },
};

/** Configuration of the parity fixtures' small networks (same topology, nf = ngf = 4). */
export const FIXTURE: ModelConfigs = {
  structure: { ...OFFICIAL.structure, nf: 4 },
  texture: { ...OFFICIAL.texture, nf: 4 },
  discriminator: { ...OFFICIAL.discriminator, ngf: 4 },
};

/** Compact configuration for training on a CPU. */
export const MINI: ModelConfigs = {
  structure: { ...OFFICIAL.structure, nf: 16 },
  texture: { ...OFFICIAL.texture, nf: 16 },
  discriminator: { ...OFFICIAL.discriminator, ngf: 16 },
};

/** The bundled default model's configuration: small enough to train on a 2-core CPU. */
export const SMALL: ModelConfigs = {
  structure: { ...OFFICIAL.structure, nf: 8 },
  texture: { ...OFFICIAL.texture, nf: 8 },
  discriminator: { ...OFFICIAL.discriminator, ngf: 8 },
};

export function presetConfigs(name: string): ModelConfigs {
  switch (name) {
    case 'official': return OFFICIAL;
    case 'mini': return MINI;
    case 'small': return SMALL;
    case 'fixture': case 'tiny': return FIXTURE;
    default: throw new Error(`unknown config preset "${name}" (expected official, mini, small or tiny)`);
  }
}

export function validateUNetConfig(c: UNetConfig): void {
  if (!(Number.isInteger(c.nf) && c.nf >= 4 && c.nf % 2 === 0)) throw new Error(`nf must be an even integer >= 4 (got ${c.nf})`);
  if (!(Number.isInteger(c.depth) && c.depth >= 1)) throw new Error(`depth must be a positive integer (got ${c.depth})`);
}

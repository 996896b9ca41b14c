/**
 * The SDE's per-level tables for U-Nets with 'x0' prediction (nn/config.ts: UNetConfig.prediction):
 * e_t = exp(−θ̄_t·dt) and σ̄_t, attached to a copy of the network config as a non-enumerable
 * property, so configs written to JSON (run folders, model.json, ONNX metadata) stay as they were.
 */
import type { NetConfig } from '../exec/types.js';
import type { LevelTables, UNetConfig } from '../nn/config.js';
import type { IRSDE } from './irsde.js';

export function levelTables(sde: IRSDE): LevelTables {
  const meanFactor = new Float32Array(sde.T + 1);
  const sigmaBar = new Float32Array(sde.T + 1);
  for (let t = 0; t <= sde.T; t++) {
    meanFactor[t] = sde.meanFactor(t);
    sigmaBar[t] = sde.sigmaBar(t);
  }
  return { meanFactor, sigmaBar };
}

/** `cfg` itself for ε-prediction networks and the discriminator; else a copy with the tables. */
export function withLevelTables<C extends NetConfig>(cfg: C, sde: IRSDE): C {
  if ((cfg as UNetConfig).prediction !== 'x0') return cfg;
  const copy = { ...cfg };
  Object.defineProperty(copy, 'levelTables', { value: levelTables(sde), enumerable: false });
  return copy;
}

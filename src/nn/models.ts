/** The three networks by kind: their parameter specs and strict weight loading. */
import type { ModelConfigs } from './config.js';
import type { NetConfig } from './config.js';
import { NET_KINDS as KINDS, type NetKind } from '../options.js';
import type { ParamSpec, StateDict } from '../weights/types.js';
import { unetParamSpec } from './unet.js';
import { discParamSpec } from './discriminator.js';
import type { DiscConfig, UNetConfig } from './config.js';
import { loadStrict } from '../weights/strict.js';

export const NET_KINDS: readonly NetKind[] = KINDS;

export function paramSpec(kind: NetKind, cfg: NetConfig): ParamSpec {
  return kind === 'discriminator' ? discParamSpec(cfg as DiscConfig) : unetParamSpec(cfg as UNetConfig);
}

export function configOf(configs: ModelConfigs, kind: NetKind): NetConfig {
  return configs[kind];
}

/** Check a state_dict against the network's keys and shapes (strict, like load_state_dict(strict=True)). */
export function checkWeights(kind: NetKind, cfg: NetConfig, sd: StateDict, source: string = kind): StateDict {
  return loadStrict(sd, paramSpec(kind, cfg), `${source} (${kind} network)`);
}

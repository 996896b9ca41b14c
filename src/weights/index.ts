export type { StateDict, ParamSpec } from './types.js';
export { readPth } from './pth.js';
export {
  readSafetensors,
  readSafetensorsWithMetadata,
  writeSafetensors,
  encodeSafetensors,
  type SafetensorsContents,
} from './safetensors.js';
export { loadCheckpoint, loadStrict, stripModulePrefix } from './statedict.js';
export { readNpy, writeNpy, parseNpy, encodeNpy, type NpyArray } from './npy.js';

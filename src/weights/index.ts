export type { StateDict, ParamSpec, TensorHeader, CheckpointReader } from './types.js';
export { readPth, openPth } from './pth.js';
export {
  readSafetensors,
  readSafetensorsWithMetadata,
  openSafetensors,
  writeSafetensors,
  encodeSafetensors,
  type SafetensorsContents,
  type SafetensorsReader,
} from './safetensors.js';
export { loadCheckpoint, openCheckpoint, loadStrict, stripModulePrefix, type LoadCheckpointOptions } from './statedict.js';
export { readNpy, writeNpy, parseNpy, encodeNpy, type NpyArray } from './npy.js';

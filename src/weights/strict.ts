/**
 * Matching a state_dict (or a checkpoint's headers) against what a network expects, strictly: the
 * official test code loads non-strictly (docs/design.md §3.5), silently leaving random layers when
 * the wrong file is given; here every mismatch is reported at once. No file access (core-safe).
 */
import type { ParamSpec } from './types.js';

/** Anything with shapes by name: a state_dict, or a checkpoint's headers before its data is read. */
export type Shaped = { shape: readonly number[] };

const fmt = (s: readonly number[]) => `[${s.join(', ')}]`;

/** DataParallel saves keys as `module.<key>`; strip the prefix only when every key has it. */
export function stripModulePrefix<T extends Shaped>(sd: ReadonlyMap<string, T>): Map<string, T> {
  const keys = [...sd.keys()];
  if (keys.length === 0 || !keys.every((k) => k.startsWith('module.'))) return new Map(sd);
  return new Map(keys.map((k) => [k.slice('module.'.length), sd.get(k)!]));
}

const MAX_LISTED = 5;

const isSpade = (k: string) => /^downs\.\d+\.4\./.test(k);
const isDisc = (k: string) => /^(t_embed|start_conv|end_linear|conv\d)\./.test(k);
const isUNet = (k: string) => /^(init_conv|time_mlp|downs|ups|mid_block\d|mid_attn|final_res_block)\./.test(k);

/** Guesses which StrDiffusion network a mismatching checkpoint belongs to. */
function architectureHint(missing: string[], unexpected: string[], sd: ReadonlyMap<string, Shaped>, spec: ParamSpec): string | undefined {
  if (unexpected.length > 0 && unexpected.every(isDisc) && missing.some(isUNet)) return 'the checkpoint looks like a discriminator checkpoint, not a U-Net';
  if (unexpected.length > 0 && unexpected.some(isUNet) && missing.some(isDisc)) return 'the checkpoint looks like a U-Net checkpoint, not a discriminator';
  const specSpade = [...spec.keys()].some(isSpade);
  const sdSpade = [...sd.keys()].some(isSpade);
  if (!specSpade && sdSpade && unexpected.some(isSpade)) return 'the checkpoint has SPADE keys downs.*.4.*: it looks like a texture network checkpoint, but a structure network was expected';
  if (specSpade && !sdSpade && missing.some(isSpade)) return 'the checkpoint has no SPADE keys downs.*.4.*: it looks like a structure network checkpoint, but a texture network was expected';
  return undefined;
}

/**
 * Returns the checkpoint's tensors in spec order (after stripping `module.`), or throws one
 * one-line error listing missing keys, unexpected keys and wrong shapes. Works on headers too
 * (`CheckpointReader.headers`), so a checkpoint can be checked before its data is read.
 */
export function loadStrict<T extends Shaped>(sd: ReadonlyMap<string, T>, spec: ParamSpec, what: string): Map<string, T> {
  const src = stripModulePrefix(sd);
  const missing: string[] = [];
  const problems: string[] = [];
  const out = new Map<string, T>();
  for (const [key, shape] of spec) {
    const t = src.get(key);
    if (!t) {
      missing.push(key);
      problems.push(`missing key "${key}" (expected shape ${fmt(shape)})`);
      continue;
    }
    const same = t.shape.length === shape.length && t.shape.every((d, i) => d === shape[i]);
    if (!same) problems.push(`key "${key}": checkpoint has shape ${fmt(t.shape)}, network expects ${fmt(shape)}`);
    else out.set(key, t);
  }
  const unexpected = [...src.keys()].filter((k) => !spec.has(k));
  for (const k of unexpected) problems.push(`unexpected key "${k}" with shape ${fmt(src.get(k)!.shape)}`);
  if (problems.length === 0) return out;

  const counts = [
    missing.length && `${missing.length} missing`,
    unexpected.length && `${unexpected.length} unexpected`,
    problems.length - missing.length - unexpected.length && `${problems.length - missing.length - unexpected.length} wrong shape`,
  ].filter(Boolean);
  let msg = `${what}: checkpoint does not match the network (${counts.join(', ')}): ${problems.slice(0, MAX_LISTED).join('; ')}`;
  if (problems.length > MAX_LISTED) msg += ` (and ${problems.length - MAX_LISTED} more)`;
  const hint = architectureHint(missing, unexpected, src, spec);
  if (hint) msg += `; hint: ${hint}`;
  throw new Error(msg.replace(/\s*\n\s*/g, " "));
}

/**
 * The three official training objectives (docs/design.md §4.2–4.4) as functions of
 * (network parameters, batch, t per sample, noise draws):
 *
 * - `prepareObjective` does everything that carries no gradient on the host, with the
 *   float32-emulated IR-SDE (marginal samples, posterior-mean targets, the structure guide S,
 *   the discriminator's anchor input), so these match the official tensors to an ulp;
 * - the differentiable part (the network call(s), the reverse mean step and the loss) is
 *   ./loss-ops.ts, written once against the operator interface for both trainers.
 *
 * The randomness (t ∈ {2..T}, then one normal draw for the state, then one for the structure
 * state in texture/discriminator training — the official call order) goes through `drawTraining`,
 * so a recorded tape and injected t reproduce the official iteration.
 */
import type { IRSDE } from '../sde/irsde.js';
import type { NoiseSource } from '../util/noise.js';
import type { NetConfig, NetKind } from '../exec/types.js';
import type { F32Tensor } from '../util/tensor.js';
import { filledMean, parseFill, type Fill } from '../sde/fill.js';
import { parseTextureGuideKind, structureEnds, type TextureGuideKind } from '../structure/kinds.js';

const fr = Math.fround;

/** One training batch, NCHW host tensors in [0,1]; mask [B,1,H,W] with 1 = known, 0 = hole. */
export interface ObjectiveBatch {
  GT: F32Tensor;
  gray: F32Tensor;
  edge: F32Tensor;
  mask: F32Tensor;
  /**
   * What the texture mean μ holds in the hole (src/sde/fill.ts; texture and discriminator
   * objectives only): `zero` (default, official) μ = GT ⊙ m, `mean` / `telea` μ = GT ⊙ m + F ⊙ (1 − m)
   * with F computed from the known pixels of each sample. `telea` needs OpenCV.js loaded
   * (`await prepareFill('telea')` once before training).
   */
  fill?: Fill;
  /**
   * The structure process (src/structure/kinds.ts; default gray2edge, official): the structure
   * network's x0 and μS, and the texture / discriminator guide S. `none` (texture only): an IR-SDE
   * texture network without guide, no S and no structure draw.
   */
  structureKind?: TextureGuideKind;
}

/** The batch's structure kind (default gray2edge). */
function kindOf(batch: ObjectiveBatch): TextureGuideKind {
  return batch.structureKind === undefined ? 'gray2edge' : parseTextureGuideKind(batch.structureKind, 'ObjectiveBatch.structureKind');
}

/** The random inputs of one iteration. */
export interface TrainDraws {
  /** level per sample, in {2..T} */
  t: number[];
  /** N(0,1) draw of the trained SDE's state (x_t for structure, y_t otherwise) */
  z: Float32Array;
  /** texture / discriminator: N(0,1) draw of the structure state at the same t */
  zS?: Float32Array;
}

/** A NoiseSource that can also draw uniforms (for t); SeededNoise is one. */
export type TrainNoise = NoiseSource & { uniform?: () => number };

/** Draw t (unless given) and the noise in the official order. */
export function drawTraining(kind: NetKind, sde: IRSDE, batch: ObjectiveBatch, noise: TrainNoise, t?: number[]): TrainDraws {
  const B = batch.GT.shape[0]!;
  let levels = t;
  if (!levels) {
    const u = noise.uniform;
    if (!u) throw new Error('drawTraining: the noise source has no uniform(); pass t explicitly');
    levels = sde.trainingTimesteps(B, () => u.call(noise));
  }
  if (levels.length !== B) throw new Error(`drawTraining: ${levels.length} levels for a batch of ${B}`);
  for (const l of levels) if (!Number.isInteger(l) || l < 1 || l > sde.T) throw new Error(`drawTraining: level ${l} outside 1..${sde.T}`);
  const stateShape = kind === 'structure' ? batch.gray.shape : batch.GT.shape;
  const z = noise.normal([...stateShape]);
  const sk = kindOf(batch);
  if (sk === 'none' && kind !== 'texture') throw new Error(`structure kind "none" is for the texture network only (got the ${kind} network)`);
  const zS = kind === 'structure' || sk === 'none' ? undefined : noise.normal([...batch.gray.shape]);
  return { t: levels, z, zS };
}

/** Host inputs of the differentiable part of one objective. */
export interface PreparedObjective {
  kind: NetKind;
  t: number[];
  /** mask [B,1,H,W] */
  mask: F32Tensor;
  /** U-Nets: the noisy state x_t / y_t; D: y_t (the "fake") */
  state: F32Tensor;
  /** U-Nets: SDE mean μ (edge⊙m, or GT⊙m + F⊙(1−m) with the batch's fill; F = 0 for `zero`) */
  mu: F32Tensor;
  /** posterior mean x*_{t−1} / y*_{t−1}: the U-Net target, the D's "real" */
  target: F32Tensor;
  /** texture / D: structure guide S = x*_{t−1} of the structure SDE */
  S?: F32Tensor;
  /** D: anchor input m⊙y* + (1−m)⊙y_t */
  anchor?: F32Tensor;
  /** the clean x0 of the trained SDE (gray / RGB): the target of 'x0' prediction */
  clean?: F32Tensor;
  /** per-sample θ_t, σ_t², σ̄_t and dt for reverse_sde_step_mean */
  coefs: { theta: Float32Array; sigma2: Float32Array; sigmaBar: Float32Array; dt: number };
}

/** x ⊙ m with a [B,1,H,W] mask broadcast over the channels of x (float32). */
export function maskMul(x: F32Tensor, m: F32Tensor, invert = false): Float32Array {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  if (m.shape[0] !== B || m.shape[1] !== 1 || m.shape[2] !== H || m.shape[3] !== W) {
    throw new Error(`mask [${m.shape}] does not broadcast to [${x.shape}]`);
  }
  const hw = H * W;
  const out = new Float32Array(x.data.length);
  for (let b = 0; b < B; b++) {
    for (let c = 0; c < C; c++) {
      const o = (b * C + c) * hw;
      const mo = b * hw;
      for (let k = 0; k < hw; k++) {
        const mv = invert ? fr(1 - m.data[mo + k]!) : m.data[mo + k]!;
        out[o + k] = fr(x.data[o + k]! * mv);
      }
    }
  }
  return out;
}

/**
 * Host side of one objective: the states, targets and guide of the official iteration.
 * Structure: μS = edge⊙m, x_t ~ marginal(x0 = gray), target x*_{t−1} (other structure kinds: their
 * own x0 and μS end, src/structure/kinds.ts; `none`: a texture objective without S). Texture / D: μ = GT⊙m,
 * y_t ~ marginal(x0 = GT), target y*_{t−1}, and S = x*_{t−1} of a structure state at the same t.
 * With `batch.fill` other than `zero`, μ = GT⊙m + F⊙(1−m) for y_t, y*_{t−1}, the U-Net's μ input
 * and (through y_t, y*) the discriminator's three inputs; μS is always edge⊙m.
 */
export function prepareObjective(kind: NetKind, sde: IRSDE, batch: ObjectiveBatch, draws: TrainDraws): PreparedObjective {
  const { t } = draws;
  const m = batch.mask;
  const sk = kindOf(batch);
  // x0 and the unmasked μS end of the structure process (gray2edge: gray, edge)
  const ends = sk === 'none' ? null : structureEnds(sk, batch.gray, batch.edge);
  if (!ends && kind !== 'texture') throw new Error(`structure kind "none" is for the texture network only (got the ${kind} network)`);
  const muS = ends ? { shape: [...batch.gray.shape], data: maskMul(ends.end, m) } : null;
  const coefs = {
    theta: Float32Array.from(t, (l) => sde.thetas[l]!),
    sigma2: Float32Array.from(t, (l) => fr(sde.sigmas[l]! * sde.sigmas[l]!)),
    sigmaBar: Float32Array.from(t, (l) => sde.sigmaBar(l)),
    dt: sde.dt,
  };
  if (kind === 'structure') {
    const shape = batch.gray.shape;
    const x0 = ends!.x0;
    const xt = sde.generateStates(x0.data, muS!.data, t, draws.z, shape);
    const target = sde.reverseOptimumStep(xt, x0.data, muS!.data, t, shape);
    return { kind, t, mask: m, state: { shape: [...shape], data: xt }, mu: muS!, target: { shape: [...shape], data: target }, clean: x0, coefs };
  }
  if (ends && !draws.zS) throw new Error(`${kind} objective: the structure-state draw zS is missing`);
  const shape = batch.GT.shape;
  const fill = batch.fill === undefined ? 'zero' : parseFill(batch.fill, 'ObjectiveBatch.fill');
  const mu = { shape: [...shape], data: filledMean(fill, batch.GT, m) };
  const yt = sde.generateStates(batch.GT.data, mu.data, t, draws.z, shape);
  const ystar = sde.reverseOptimumStep(yt, batch.GT.data, mu.data, t, shape);
  const prep: PreparedObjective = {
    kind, t, mask: m, coefs,
    state: { shape: [...shape], data: yt },
    mu,
    clean: batch.GT,
    target: { shape: [...shape], data: ystar },
  };
  if (ends) {
    const xt = sde.generateStates(ends.x0.data, muS!.data, t, draws.zS!, batch.gray.shape);
    prep.S = { shape: [...batch.gray.shape], data: sde.reverseOptimumStep(xt, ends.x0.data, muS!.data, t, batch.gray.shape) };
  }
  if (kind === 'discriminator') {
    const a = maskMul(prep.target, m);
    const b = maskMul(prep.state, m, true);
    prep.anchor = { shape: [...shape], data: Float32Array.from(a, (v, i) => fr(v + b[i]!)) };
  }
  return prep;
}

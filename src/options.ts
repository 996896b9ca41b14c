/**
 * Every list of named choices, defined once: the CLI, the server (and through its /api/info the
 * web page), the library's option checks and the trainer all read them from here. A leaf module
 * (no imports), so every layer can use it.
 */

/** The three networks of a model. */
export const NET_KINDS = ['structure', 'texture', 'discriminator'] as const;
export type NetKind = (typeof NET_KINDS)[number];

/**
 * The structure-guided sampler variants (docs/design.md §5): the official algorithm and its ablations /
 * fixes, and `one-call` (not in the official code): the texture network's own x̂0 at t = T, one network
 * call, no structure network, no steps (the regression estimate: the highest PSNR, the least texture);
 * `split` (not in the official code): that estimate's low frequencies with a `no-resampling`
 * sample's detail above them (src/sampler/variants/split.ts), one network call more than the sample.
 */
export const GUIDED_VARIANTS = ['official', 'improved', 'no-resampling', 'no-discriminator', 'one-call', 'split'] as const;
export type GuidedVariant = (typeof GUIDED_VARIANTS)[number];
/** The variants whose resampled candidates a discriminator judges: the only ones that need one. */
export const SCORING_VARIANTS = ['official', 'improved'] as const satisfies readonly GuidedVariant[];
/** The structure-guided variants a model without a discriminator runs (named in the refusals). */
export const UNSCORED_VARIANTS: readonly GuidedVariant[] = GUIDED_VARIANTS.filter((v) => !(SCORING_VARIANTS as readonly string[]).includes(v));
/**
 * Texture-only samplers (no structure process), for an IR-SDE texture network without SPADE:
 * `irsde` the plain reverse SDE (IR-SDE's own inpainting), `repaint` RePaint's jump-back resampling
 * with the known region pasted at every level (the paper's ablation A).
 */
export const TEXTURE_VARIANTS = ['irsde', 'repaint'] as const;
export type TextureVariant = (typeof TEXTURE_VARIANTS)[number];
/** Every sampler variant. */
export const SAMPLER_VARIANTS = [...GUIDED_VARIANTS, ...TEXTURE_VARIANTS] as const;
export type SamplerVariant = (typeof SAMPLER_VARIANTS)[number];

/**
 * What the structure process diffuses between: `<x0>2<μ>`, x0 the clean structure at t = 0 and μ
 * (masked) the mean it reverts to at t = T. gray2edge is the paper's choice, the official code's and
 * the default (a model.json without `structureKind` is gray2edge); the others are the paper's
 * sparsity study.
 */
export const STRUCTURE_KINDS = ['gray2edge', 'gray2gray', 'edge2edge', 'edge2gray'] as const;
export type StructureKind = (typeof STRUCTURE_KINDS)[number];
/** A texture network's guide: one of the structure kinds, or `none` (an IR-SDE texture network without SPADE). */
export const TEXTURE_GUIDE_KINDS = [...STRUCTURE_KINDS, 'none'] as const;
export type TextureGuideKind = (typeof TEXTURE_GUIDE_KINDS)[number];

/**
 * How one network call moves a state from grid level s to the next level t < s (src/sampler/solvers/):
 * `sde` the official Euler–Maruyama reverse-SDE step (one level at a time only), `posterior` the exact
 * posterior q(x_t | x_s, x̂0) (= MR Sampler's first-order SDE solver), and MR Sampler's data-prediction
 * solvers: `mr-ode-1`, `mr-ode-2` (probability-flow ODE, first / second order multistep) and
 * `mr-sde-2` (reverse SDE, second order multistep).
 */
export const SOLVERS = ['sde', 'posterior', 'mr-ode-1', 'mr-ode-2', 'mr-sde-2'] as const;
export type Solver = (typeof SOLVERS)[number];
/** The first two solvers under their former name (`--step-rule`, model.json `stepRule`), kept as an alias of `solver`. */
export const STEP_RULES = ['sde', 'posterior'] as const satisfies readonly Solver[];
export type StepRule = (typeof STEP_RULES)[number];

/** How the sampling grid T = t_0 > … > t_N = 0 spaces its integer levels (src/sampler/grid.ts). */
export const SPACINGS = ['uniform', 'quadratic', 'logsnr'] as const;
export type Spacing = (typeof SPACINGS)[number];

/** The texture network's structure guide: the structure diffusion, or the analytic posterior towards the Telea-filled grayscale. */
export const STRUCTURE_GUIDES = ['network', 'fill'] as const;
export type StructureGuide = (typeof STRUCTURE_GUIDES)[number];
/**
 * Every structure guide the pipeline runs: the user guides and `oracle`, the analytic posterior
 * towards the structure of the window's own pixels, the hole included (in eval: the ground truth's
 * structure, so the score of a perfect structure network). A diagnostic: `eval` and the pipeline
 * accept it; `inpaint`, the library's inpaint(), the browser and model.json refuse it
 * (diagnosticGuideRefusal).
 */
export const DIAGNOSTIC_STRUCTURE_GUIDES = [...STRUCTURE_GUIDES, 'oracle'] as const;
export type DiagnosticStructureGuide = (typeof DIAGNOSTIC_STRUCTURE_GUIDES)[number];

/** Whether `v` is a diagnostic guide that is not a user guide (`oracle`). */
export function isDiagnosticOnlyGuide(v: unknown): v is Exclude<DiagnosticStructureGuide, StructureGuide> {
  return isOneOf(DIAGNOSTIC_STRUCTURE_GUIDES, v) && !isOneOf(STRUCTURE_GUIDES, v);
}

/** The one line refusing a diagnostic guide where a hole is filled for real; `subject` names it as the caller spells it (e.g. `--structure oracle`). */
export function diagnosticGuideRefusal(subject: string): string {
  return `${subject} guides the fill by the pixels under the hole (the ground truth in eval): it is a diagnostic for eval, not a way to fill a hole`;
}

/** What the SDE mean holds in the hole (zero: official). */
export const FILLS = ['zero', 'mean', 'telea', 'ns', 'bridge'] as const;
export type Fill = (typeof FILLS)[number];

/** What a U-Net's last conv predicts: the noise (official) or the clean image. */
export const PREDICTIONS = ['eps', 'x0'] as const;
export type Prediction = (typeof PREDICTIONS)[number];

/** Arithmetic of the onnx executor's convolutions. */
export const PRECISIONS = ['fp32', 'int8', 'int8-static'] as const;
export type Precision = (typeof PRECISIONS)[number];

/** Where the networks run (inference). onnxruntime is the only one; the list stays so another can be added. */
export const EXECUTOR_NAMES = ['onnx'] as const;
export type ExecutorName = (typeof EXECUTOR_NAMES)[number];

/** Where training runs. */
export const TRAIN_EXECUTORS = ['onnx'] as const;
export type TrainExecutor = (typeof TRAIN_EXECUTORS)[number];

/** Whether `v` is one of `list` (a type guard for the list's union). */
export function isOneOf<const L extends readonly string[]>(list: L, v: unknown): v is L[number] {
  return (list as readonly unknown[]).includes(v);
}

/** `v` if it is one of `list`, else one error line naming `what` and the choices. */
export function parseChoice<const L extends readonly string[]>(list: L, v: unknown, what: string): L[number] {
  if (isOneOf(list, v)) return v;
  throw new Error(`${what} must be one of ${list.join(', ')} (got ${JSON.stringify(v) ?? String(v)})`);
}

/**
 * Errors for the caller's mistakes, with a stable machine-readable `code` next to the one-line
 * message (the message is for people and may be reworded; the code is for programs):
 * - `BAD_INPUT`: an image or mask argument (path, raster, file contents) cannot be used;
 * - `BAD_OPTION`: an option has the wrong type or value, or is not an option;
 * - `BAD_CHECKPOINT`: a model folder or weight file cannot be used.
 * When an option fixes the problem, `option` names it (`'T'`) and the message words it for the
 * library (`options.T`); a front end rewords it with `wordedFor` (the CLI: `--T`).
 */
export type StrDiffusionErrorCode = 'BAD_INPUT' | 'BAD_OPTION' | 'BAD_CHECKPOINT';

/**
 * How a front end names one of its options, alone or with a value: the library says `options.T`
 * and `options.T = 20`, the CLI `--T` and `--T 20` (src/cli/main.ts).
 */
export type OptionNamer = (option: string, value?: unknown) => string;

export const LIBRARY_OPTION: OptionNamer = (option, value) => (value === undefined ? `options.${option}` : `options.${option} = ${JSON.stringify(value)}`);

/** A message that names options through whichever front end shows it. */
export type Wording = (name: OptionNamer) => string;

export class StrDiffusionError extends Error {
  override readonly name: string = 'StrDiffusionError';
  /** the option that fixes the problem, in the library's name (`T`, `checkpoints`), when there is one */
  readonly option?: string;
  readonly #wording?: Wording;

  /** `message` as a Wording names options the library's way (`options.T`); `wordedFor` rewords it. */
  constructor(
    readonly code: StrDiffusionErrorCode,
    message: string | Wording,
    options?: ErrorOptions & { option?: string },
  ) {
    super(typeof message === 'string' ? message : message(LIBRARY_OPTION), options);
    if (options?.option !== undefined) this.option = options.option;
    if (typeof message !== 'string') this.#wording = message;
  }

  /** The message with its options named as a front end names them (the CLI: `--T`). */
  wordedFor(name: OptionNamer): string {
    return this.#wording ? this.#wording(name) : this.message;
  }
}

export function isStrDiffusionError(e: unknown, code?: StrDiffusionErrorCode): e is StrDiffusionError {
  return e instanceof StrDiffusionError && (code === undefined || e.code === code);
}

/** A short description of a value for error messages: `the string "abc"`, `the number NaN`, `an array`… */
export function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (v === undefined) return 'undefined';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string': return `the string ${JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v)}`;
    case 'number': return `the number ${v}`;
    case 'bigint': return `the bigint ${v}n`;
    case 'boolean': return `${v}`;
    case 'function': return 'a function';
    case 'symbol': return 'a symbol';
    default: {
      const name = (v as object).constructor?.name;
      return name && name !== 'Object' ? `a ${name}` : 'an object';
    }
  }
}

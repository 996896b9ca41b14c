/**
 * Errors for the caller's mistakes, with a stable machine-readable `code` next to the one-line
 * message (the message is for people and may be reworded; the code is for programs):
 * - `BAD_INPUT`: an image or mask argument (path, raster, file contents) cannot be used;
 * - `BAD_OPTION`: an option has the wrong type or value, or is not an option;
 * - `BAD_CHECKPOINT`: a model folder or weight file cannot be used.
 */
export type StrDiffusionErrorCode = 'BAD_INPUT' | 'BAD_OPTION' | 'BAD_CHECKPOINT';

export class StrDiffusionError extends Error {
  override readonly name: string = 'StrDiffusionError';

  constructor(
    readonly code: StrDiffusionErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
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

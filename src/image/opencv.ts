/**
 * OpenCV.js (@techstark/opencv-js 4.5, with the photo module's `cv.inpaint`), loaded once.
 *
 * A leaf module (no project imports) so that every layer can use it: the eval baselines, the
 * training batches and the sampler (the `telea` fill of the SDE mean, src/sde/fill.ts).
 * Loading is asynchronous (the Emscripten runtime initialises after the import); once
 * `loadOpenCv()` has resolved, `loadedOpenCv()` returns the same object synchronously. No Node
 * API here: a dynamic import works in Node and in bundlers alike, so the `core` entry can use it.
 */

/** The slice of the OpenCV.js API used in this project (the package's own typings are large and loose). */
export interface CvMat {
  data: Uint8Array;
  data16U: Uint16Array;
  delete(): void;
}
export interface Cv {
  Mat: new (rows?: number, cols?: number, type?: number) => CvMat;
  CV_8UC1: number;
  CV_8UC3: number;
  CV_16UC1: number;
  INPAINT_TELEA: number;
  INPAINT_NS: number;
  inpaint(src: CvMat, mask: CvMat, dst: CvMat, radius: number, flags: number): void;
  onRuntimeInitialized?: () => void;
}

// The Emscripten module object has a `then` method: resolving a promise with it directly makes
// the promise machinery follow that `then` forever, so it always travels wrapped in an object.
let cvPromise: Promise<{ cv: Cv }> | null = null;
let loaded: Cv | null = null;

/**
 * The package's module object. In Node through `require` (reached via process.getBuiltinModule, so
 * this module has no static Node import): a dynamic import of this CommonJS package may hand back a
 * namespace carrying the Emscripten object's `then`, which some module loaders (vitest's) then await
 * forever. Elsewhere (browsers, bundlers, Node < 20.16) a dynamic import, whose default is the module.
 * Wrapped in an object: returning the thenable itself from an async function would await it.
 */
async function requireOpenCv(): Promise<{ cv: Cv }> {
  const getBuiltin = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process?.getBuiltinModule;
  if (typeof getBuiltin === 'function') {
    const { createRequire } = getBuiltin('node:module') as { createRequire: (url: string) => (id: string) => unknown };
    return { cv: createRequire(import.meta.url)('@techstark/opencv-js') as Cv };
  }
  return { cv: ((await import('@techstark/opencv-js')) as unknown as { default: Cv }).default };
}

/** OpenCV.js, once its Emscripten runtime is ready (the module object exists before that). */
export async function loadOpenCv(): Promise<{ cv: Cv }> {
  if (!cvPromise) {
    cvPromise = (async () => {
      const { cv: c } = await requireOpenCv();
      if (typeof (c as Partial<Cv>).Mat !== 'function') {
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error('OpenCV.js did not initialise within 60 s')), 60_000);
          c.onRuntimeInitialized = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
      if (typeof c.inpaint !== 'function' || c.INPAINT_TELEA === undefined || c.INPAINT_NS === undefined) {
        throw new Error('this OpenCV.js build has no photo module (cv.inpaint): Telea / Navier–Stokes inpainting is unavailable');
      }
      loaded = c;
      return { cv: c };
    })();
    cvPromise.catch(() => (cvPromise = null));
  }
  return cvPromise;
}

/** The OpenCV.js module if `loadOpenCv()` has already resolved, else null. */
export function loadedOpenCv(): Cv | null {
  return loaded;
}

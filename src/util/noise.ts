/**
 * Noise sources for the SDE steps. The official code draws with `torch.randn_like`; a port
 * either replays those draws from a recorded tape (parity) or uses its own seeded stream.
 */
import { numel } from './tensor.js';
// (no file access here: a recorded tape is read from disk by parity/tape.ts)

export interface NoiseSource {
  /** the next N(0, 1) draw of `shape` (float32) */
  normal(shape: number[]): Float32Array;
}


/**
 * xoshiro128** (seeded through splitmix32) with Box–Muller normals. Deterministic across
 * platforms: only 32-bit integer ops and IEEE double math, each normal rounded to float32.
 */
export class SeededNoise implements NoiseSource {
  private s0 = 0;
  private s1 = 0;
  private s2 = 0;
  private s3 = 0;
  private spare: number | null = null;

  constructor(readonly seed: number) {
    let x = seed >>> 0;
    const hi = Math.floor(seed / 4294967296) >>> 0;
    x = (x ^ hi) >>> 0;
    const sm = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.s0 = sm();
    this.s1 = sm();
    this.s2 = sm();
    this.s3 = sm();
    // Seeds from 2^32 on: their high word is mixed into s1 as well, through a bijection of it that
    // is 0 only for 0. s0 gives back the folded word x (sm is a bijection), so (x, hi) and thus the
    // seed is recoverable from (s0, s1): no two safe integers share a stream (0 and 2^32 + 1 did,
    // folding alone). Seeds below 2^32 keep their streams exactly.
    if (seed >= 4294967296) this.s1 = (this.s1 ^ fmix32(hi)) >>> 0;
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** next uint32 */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5) >>> 0, 7), 9) >>> 0;
    const t = (this.s1 << 9) >>> 0;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    this.s0 >>>= 0;
    this.s1 >>>= 0;
    this.s2 >>>= 0;
    return result;
  }

  /** uniform on [0, 1) with 53 random bits */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** one standard normal (double) */
  gauss(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    // 1 − u ∈ (0, 1] keeps log finite.
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const a = 2 * Math.PI * u2;
    this.spare = r * Math.sin(a);
    return r * Math.cos(a);
  }

  normal(shape: number[]): Float32Array {
    const out = new Float32Array(numel(shape));
    for (let i = 0; i < out.length; i++) out[i] = this.gauss();
    return out;
  }
}

/** MurmurHash3's finalizer: a bijection of uint32 with fmix32(0) = 0 */
function fmix32(h: number): number {
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}

export interface TapeDraw {
  shape: number[];
  data: Float32Array;
}

/** Replays recorded draws in order; a draw of another shape or past the end is an error, not a silent desync. */
export class TapeNoise implements NoiseSource {
  private pos = 0;

  constructor(private readonly draws: readonly TapeDraw[], readonly label = 'tape') {}

  get position(): number {
    return this.pos;
  }

  get length(): number {
    return this.draws.length;
  }

  get remaining(): number {
    return this.draws.length - this.pos;
  }

  normal(shape: number[]): Float32Array {
    const i = this.pos;
    const d = this.draws[i];
    if (!d) throw new Error(`${label(this)}: exhausted — draw ${i} requested with shape [${shape.join(', ')}], the tape has ${this.draws.length} draws`);
    const ok = d.shape.length === shape.length && d.shape.every((v, k) => v === shape[k]);
    if (!ok) throw new Error(`${label(this)}: draw ${i} was recorded with shape [${d.shape.join(', ')}], requested [${shape.join(', ')}]`);
    this.pos++;
    return Float32Array.from(d.data);
  }

  /** move to draw `i` (teacher-forced replays start mid-tape) */
  seek(i: number): void {
    if (!Number.isInteger(i) || i < 0 || i > this.draws.length) throw new Error(`${label(this)}: cannot seek to ${i} of ${this.draws.length}`);
    this.pos = i;
  }
}

function label(t: TapeNoise): string {
  return `TapeNoise(${t.label})`;
}

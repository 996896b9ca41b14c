/**
 * Learning-rate schedule of the official U-Net trainings: `MultiStepLR_Restart` with the yml's
 * milestones and its hard-coded factor 0.5 (`gamma_`), no restarts, no warm-up, stepped once per
 * iteration after the optimizer. The discriminator's LR is constant (its scheduler is never
 * attached), which is this class with no milestones.
 */
export class MultiStepLR {
  /** scheduler steps taken (PyTorch's `last_epoch`) */
  lastEpoch = 0;

  constructor(readonly baseLr: number, readonly milestones: readonly number[] = [], readonly gamma = 0.5) {
    for (const m of milestones) if (!Number.isInteger(m) || m < 1) throw new Error(`MultiStepLR: milestone ${m} is not a positive integer`);
  }

  /** LR after `epoch` scheduler steps: base · γ^(number of milestones ≤ epoch, counted with repeats). */
  lrAt(epoch: number): number {
    let n = 0;
    for (const m of this.milestones) if (m <= epoch) n++;
    return this.baseLr * this.gamma ** n;
  }

  /** the LR the next optimizer step uses */
  get lr(): number {
    return this.lrAt(this.lastEpoch);
  }

  step(): void {
    this.lastEpoch++;
  }
}

/** Official U-Net schedule: lr 1e-4 halved at 2M, 4M and 6M iterations (of 8M). */
export function officialUNetSchedule(): MultiStepLR {
  return new MultiStepLR(1e-4, [2_000_000, 4_000_000, 6_000_000], 0.5);
}

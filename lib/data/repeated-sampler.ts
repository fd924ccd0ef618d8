// Repeated augmentation (Hoffer et al. 2020; Berman et al. 2019) as DeiT's RASampler does it
// (imagenet/samplers.py of the paper's code): each epoch takes a random permutation of the n
// images, repeats every index `repeats` times in a row (p0 p0 p0 p1 p1 p1 ...), and keeps the
// first floor(n / 256) x 256 positions: an epoch still has about n samples, but only about n /
// repeats distinct images, each seen `repeats` times with its own random augmentation. DeiT
// spreads the list over its data-parallel replicas position by position (replica r takes
// positions r, r + R, r + 2R, ...), so the copies of an image go to different replicas of the
// same step; ImageLoader's `replicas` option arranges each batch the same way. The 256 is
// DeiT's constant (its per-GPU batch), kept as it is. The permutation comes from the loader's
// seeded stream of the epoch (DeiT seeds torch's generator with the epoch alone).
import type { ImageRng } from './image-rng';

/** DeiT's rounding of the epoch's length: whole multiples of 256 samples. */
export const REPEATED_AUG_ALIGN = 256;

/**
 * An epoch's length for n images over R replicas: R floor(floor(n / 256) x 256 / R) (DeiT's
 * num_selected_samples on each).
 */
export function repeatedAugmentationLength(n: number, replicas = 1): number {
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`n: expected a positive integer, got ${String(n)}`);
  if (!Number.isSafeInteger(replicas) || replicas < 1)
    throw new Error(`replicas: expected a positive integer, got ${String(replicas)}`);
  const length = replicas * Math.floor((Math.floor(n / REPEATED_AUG_ALIGN) * REPEATED_AUG_ALIGN) / replicas);
  if (length === 0)
    throw new Error(
      `n: repeated augmentation keeps whole multiples of ${REPEATED_AUG_ALIGN} samples per epoch; ${n} images give none`,
    );
  return length;
}

/** The positions of one epoch, as dataset indices (repeatedAugmentationLength of them). Cost: a permutation of n. */
export function repeatedAugmentationOrder(n: number, repeats: number, rng: ImageRng, replicas = 1): Int32Array {
  const length = repeatedAugmentationLength(n, replicas);
  if (!Number.isSafeInteger(repeats) || repeats < 1)
    throw new Error(`repeats: expected a positive integer, got ${String(repeats)}`);
  const perm = rng.permutation(n);
  const out = new Int32Array(length);
  for (let k = 0; k < length; k++) out[k] = perm[Math.floor(k / repeats)];
  return out;
}

// Patch embedding of a vision transformer: a convolution with kernel = stride = patch size p,
// computed as an unfold and a linear layer. patchify cuts images [B, C, H, W] into the
// N = (H/p)(W/p) patches in row-major order, each flattened as (channel, row, column), which is
// the order of a convolution weight [dim, C, p, p] flattened: so the Linear(C p p, dim) weight
// is that convolution's weight reshaped, and its init is PyTorch's Conv2d default (uniform in
// +-1/sqrt(C p p)). Built from reshape and permute, so autograd gives the gradient.
import { permute, reshape } from '../ops/layout';
import type { Device } from '../native';
import { Linear } from '../nn/linear';
import { Module } from '../nn/module';
import type { Generator } from '../random';
import { shapeString } from '../shape';
import { checkTensor, Tensor } from '../tensor';

/** images [B, C, H, W] -> patches [B, (H/p)(W/p), C p p]. */
export function patchify(images: Tensor, patchSize: number): Tensor {
  checkTensor(images, 'images');
  if (!Number.isInteger(patchSize) || patchSize < 1)
    throw new Error(`patchSize: expected a positive integer, got ${String(patchSize)}`);
  if (images.ndim !== 4) throw new Error(`images: expected [B, C, H, W], got shape ${shapeString(images.shape)}`);
  const [B, C, H, W] = images.shape;
  const p = patchSize;
  if (H % p !== 0 || W % p !== 0) {
    throw new Error(
      `images: height and width ${H} x ${W} must be multiples of the patch size ${p}, got shape ${shapeString(images.shape)}`,
    );
  }
  const gh = H / p,
    gw = W / p;
  // [B, C, gh, p, gw, p] -> [B, gh, gw, C, p, p]
  const blocks = permute(reshape(images, [B, C, gh, p, gw, p]), [0, 2, 4, 1, 3, 5]);
  return reshape(blocks, [B, gh * gw, C * p * p]);
}

export interface PatchEmbedOptions {
  device?: Device;
  generator?: Generator;
}

export class PatchEmbed extends Module {
  readonly proj: Linear;
  readonly numPatches: number;

  constructor(
    readonly imageSize: number,
    readonly patchSize: number,
    readonly channels: number,
    readonly dim: number,
    opts: PatchEmbedOptions = {},
  ) {
    super();
    if (
      !Number.isInteger(imageSize) ||
      !Number.isInteger(patchSize) ||
      patchSize < 1 ||
      imageSize < patchSize ||
      imageSize % patchSize !== 0
    ) {
      throw new Error(
        `patchSize: expected a positive integer dividing imageSize ${String(imageSize)}, got ${String(patchSize)}`,
      );
    }
    this.numPatches = (imageSize / patchSize) ** 2;
    this.proj = this.registerModule('proj', new Linear(channels * patchSize * patchSize, dim, opts));
  }

  /** images [B, C, imageSize, imageSize] -> [B, numPatches, dim]. */
  forward(images: Tensor): Tensor {
    checkTensor(images, 'images');
    const s = this.imageSize;
    if (images.ndim !== 4 || images.shape[1] !== this.channels || images.shape[2] !== s || images.shape[3] !== s) {
      throw new Error(`images: expected shape [B, ${this.channels}, ${s}, ${s}], got ${shapeString(images.shape)}`);
    }
    return this.proj.forward(patchify(images, this.patchSize));
  }
}

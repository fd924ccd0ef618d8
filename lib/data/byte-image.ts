// 8-bit images as PIL and sharp hold them: interleaved [height, width, channels] bytes, row-major.
// The DeiT pipeline works on these until the last step (timm's transforms act on PIL images, and
// ToTensor comes after RandAugment), so every resampling and colour operation rounds to bytes
// exactly where PIL does; toPlanarFloat then gives the model's [channels, height, width] in [0, 1].
export interface ByteImage {
  data: Uint8Array;
  width: number;
  height: number;
  /** 1 (grey) or 3 (RGB) for Pillow's operations; resizing, cropping and flipping take any number. */
  channels: number;
}

/** A box inside an image, in pixels. */
export interface CropBox {
  top: number;
  left: number;
  height: number;
  width: number;
}

/** Throws unless img is a well-formed ByteImage; `what` names it. */
export function checkByteImage(img: ByteImage, what: string): ByteImage {
  if (img === null || typeof img !== 'object' || !(img.data instanceof Uint8Array))
    throw new Error(`${what}: expected { data: Uint8Array, width, height, channels }`);
  const { width, height, channels } = img;
  if (!Number.isInteger(width) || width < 1 || !Number.isInteger(height) || height < 1)
    throw new Error(`${what}: expected a positive integer width and height, got ${width}x${height}`);
  if (!Number.isInteger(channels) || channels < 1)
    throw new Error(`${what}: expected a positive integer number of channels, got ${String(channels)}`);
  if (img.data.length !== width * height * channels)
    throw new Error(`${what}: ${img.data.length} bytes for ${width}x${height}x${channels}`);
  return img;
}

/** Throws unless `box` lies inside a width x height image. */
export function checkBox(box: CropBox, width: number, height: number): void {
  const ok =
    [box.top, box.left, box.height, box.width].every(Number.isInteger) &&
    box.top >= 0 &&
    box.left >= 0 &&
    box.height >= 1 &&
    box.width >= 1 &&
    box.top + box.height <= height &&
    box.left + box.width <= width;
  if (!ok) throw new Error(`box: ${JSON.stringify(box)} is not inside a ${height}x${width} image`);
}

/** An interleaved image of planar bytes [channels, height, width] (Fashion-MNIST, CIFAR-10). */
export function fromPlanarBytes(planar: Uint8Array, channels: number, height: number, width: number): ByteImage {
  const plane = height * width;
  const data = new Uint8Array(channels * plane);
  for (let c = 0; c < channels; c++) {
    for (let p = 0; p < plane; p++) data[p * channels + c] = planar[c * plane + p];
  }
  return { data, width, height, channels };
}

/** [channels, height, width] floats in [0, 1] (torchvision's ToTensor). */
export function toPlanarFloat(img: ByteImage): Float32Array {
  const { width, height, channels, data } = img;
  const plane = width * height;
  const out = new Float32Array(channels * plane);
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < channels; c++) out[c * plane + p] = data[p * channels + c] / 255;
  }
  return out;
}

/** The pixels of `box` (PIL's Image.crop inside the image). */
export function crop(img: ByteImage, box: CropBox): ByteImage {
  checkBox(box, img.width, img.height);
  const { channels } = img;
  const data = new Uint8Array(box.width * box.height * channels);
  const rowBytes = box.width * channels;
  for (let y = 0; y < box.height; y++) {
    const from = ((box.top + y) * img.width + box.left) * channels;
    data.set(img.data.subarray(from, from + rowBytes), y * rowBytes);
  }
  return { data, width: box.width, height: box.height, channels };
}

/** The image mirrored left-right (PIL's FLIP_LEFT_RIGHT). */
export function flipHorizontal(img: ByteImage): ByteImage {
  const { width, height, channels } = img;
  const data = new Uint8Array(img.data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const from = (y * width + x) * channels,
        to = (y * width + width - 1 - x) * channels;
      for (let c = 0; c < channels; c++) data[to + c] = img.data[from + c];
    }
  }
  return { data, width, height, channels };
}

// An ImageNet-style folder (torchvision's ImageFolder layout): dir/<class>/**/<image>, the classes
// being the sorted names of dir's subfolders and the samples every .jpg/.jpeg/.png file (any case)
// below them, in sorted path order. Images are decoded by sharp (libvips, on libuv's worker
// threads, so decoding overlaps the caller's work) and converted to RGB (alpha dropped, grey
// replicated) or to one grey channel: decode(i) gives the whole image at its own size (what the
// DeiT transforms crop from), get(i) the image at size x size, its shorter side resized to size
// (Pillow's bilinear) and its centre cropped (torchvision's Resize(size) + CenterCrop(size)).
// Nothing is cached on disk. Hidden files and folders (names starting with '.') are skipped, as are plain files
// beside the class folders; any other file inside a class folder is an error, so no sample is
// dropped unnoticed.
import * as fs from 'node:fs';
import * as path from 'node:path';
import sharp from 'sharp';
import { toPlanarFloat } from './byte-image';
import { checkOptionKeys, checkSampleIndex, DecodedSample, ImageDataset, ImageSample } from './image-dataset';
import { resizeAndCenterCrop } from './resample';

const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png'];

export interface ImageFolderOptions {
  /** The side of the square images get() returns (default 224, DeiT's). */
  size?: number;
  /** 3 (RGB, default) or 1 (grey). */
  channels?: 1 | 3;
}

const byCodePoint = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function visibleEntries(dir: string): fs.Dirent[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .filter((e) => !e.name.startsWith('.'))
    .sort((a, b) => byCodePoint(a.name, b.name));
}

/** The image files below a class folder, recursively, in sorted order. */
function listImages(dir: string, out: string[]): void {
  for (const e of visibleEntries(dir)) {
    const full = path.join(dir, e.name);
    const isDir = e.isDirectory() || (e.isSymbolicLink() && fs.statSync(full).isDirectory());
    if (isDir) listImages(full, out);
    else if (IMAGE_EXTENSIONS.includes(path.extname(e.name).toLowerCase())) out.push(full);
    else throw new Error(`${full}: not an image file (expected ${IMAGE_EXTENSIONS.join(', ')} in the class folders)`);
  }
}

class ImageFolderDataset implements ImageDataset {
  readonly name: string;
  readonly length: number;
  readonly numClasses: number;
  readonly height: number;
  readonly width: number;

  constructor(
    dir: string,
    readonly classNames: string[],
    private readonly files: string[],
    private readonly labels: Int32Array,
    size: number,
    readonly channels: 1 | 3,
  ) {
    this.name = `image-folder:${dir}`;
    this.length = files.length;
    this.numClasses = classNames.length;
    this.height = size;
    this.width = size;
  }

  async get(i: number): Promise<ImageSample> {
    const { image, label } = await this.decode(i);
    return { pixels: toPlanarFloat(resizeAndCenterCrop(image, this.height, 1, 'bilinear')), label };
  }

  async decode(i: number): Promise<DecodedSample> {
    checkSampleIndex(this.name, this.length, i);
    const file = this.files[i];
    let decoded: { data: Buffer; info: sharp.OutputInfo };
    try {
      decoded = await sharp(file)
        .removeAlpha()
        .toColourspace(this.channels === 3 ? 'srgb' : 'b-w')
        .raw({ depth: 'uchar' })
        .toBuffer({ resolveWithObject: true });
    } catch (e) {
      throw new Error(`${file}: cannot decode the image (${(e as Error).message})`, { cause: e });
    }
    const { data, info } = decoded;
    if (info.channels !== this.channels || data.length !== info.width * info.height * this.channels) {
      throw new Error(
        `${file}: decoded to ${data.length} bytes as ${info.width}x${info.height}x${info.channels}, expected ${this.channels} channels`,
      );
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.length);
    return {
      image: { data: bytes, width: info.width, height: info.height, channels: this.channels },
      label: this.labels[i],
    };
  }
}

export function loadImageFolder(dir: string, opts?: ImageFolderOptions): ImageDataset {
  checkOptionKeys(opts, ['size', 'channels'], 'loadImageFolder options');
  const size = opts?.size ?? 224;
  const channels = opts?.channels ?? 3;
  if (!Number.isInteger(size) || size < 1) throw new Error(`size: expected a positive integer, got ${String(size)}`);
  if (channels !== 1 && channels !== 3) throw new Error(`channels: expected 1 or 3, got ${String(channels)}`);
  if (typeof dir !== 'string' || !fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) {
    throw new Error(`${String(dir)}: image folder not found (expected <dir>/<class>/*.jpg|jpeg|png)`);
  }
  const classNames = visibleEntries(dir)
    .filter((e) => e.isDirectory() || (e.isSymbolicLink() && fs.statSync(path.join(dir, e.name)).isDirectory()))
    .map((e) => e.name);
  if (classNames.length === 0) throw new Error(`${dir}: no class subfolders (expected <dir>/<class>/*.jpg|jpeg|png)`);
  const files: string[] = [];
  const labels: number[] = [];
  classNames.forEach((name, label) => {
    const classFiles: string[] = [];
    listImages(path.join(dir, name), classFiles);
    if (classFiles.length === 0)
      throw new Error(`${path.join(dir, name)}: class folder has no ${IMAGE_EXTENSIONS.join('/')} files`);
    files.push(...classFiles);
    for (let k = 0; k < classFiles.length; k++) labels.push(label);
  });
  return new ImageFolderDataset(dir, classNames, files, Int32Array.from(labels), size, channels);
}

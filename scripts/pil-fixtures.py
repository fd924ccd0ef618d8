#!/usr/bin/python3
"""Writes test/fixtures/pil-ops.json: Pillow's outputs for the resampling and RandAugment
operations that lib/data/resample.ts and lib/data/image-ops.ts reproduce, on small images made by
a formula (test/data-pil.test.ts makes the same images and compares every byte).

Run with Debian's Python and Pillow (apt install python3-pil; Pillow 9.4):
    /usr/bin/python3 scripts/pil-fixtures.py
Each operation is called the way timm 0.3.2 (timm/data/auto_augment.py, transforms.py) and
torchvision 0.8 (Resize, CenterCrop, resized_crop on PIL images) call Pillow.
"""
import base64
import json
import os

import PIL
from PIL import Image, ImageEnhance, ImageOps


def make(width, height, mode):
    """Pixel (x, y) channel c = (53 x + 97 y + 71 c + 13 x y) mod 256, with a saturated corner."""
    channels = 3 if mode == 'RGB' else 1
    data = bytearray()
    for y in range(height):
        for x in range(width):
            for c in range(channels):
                v = (53 * x + 97 * y + 71 * c + 13 * x * y) % 256
                if x < 3 and y < 2:
                    v = 255 if (x + c) % 2 else 0
                data.append(v)
    return Image.frombytes(mode, (width, height), bytes(data))


INPUTS = {
    'rgb19x14': make(19, 14, 'RGB'),
    'grey19x14': make(19, 14, 'L'),
    'rgb37x29': make(37, 29, 'RGB'),
    'flat5x4': Image.new('RGB', (5, 4), (7, 200, 90)),
}
FILL = (124, 116, 104)  # timm's img_mean for the ImageNet mean
FILTERS = {'bilinear': Image.BILINEAR, 'bicubic': Image.BICUBIC}


def solarize_add(img, add, thresh=128):
    lut = [min(255, i + add) if i < thresh else i for i in range(256)]
    return img.point(lut * len(img.getbands()))


def affine(img, matrix, f):
    return img.transform(img.size, Image.AFFINE, matrix, resample=FILTERS[f], fillcolor=FILL if img.mode == 'RGB' else FILL[0])


def tv_resize_shorter(img, size, f):
    """torchvision 0.8 F.resize(img, int) on a PIL image."""
    w, h = img.size
    if (w <= h and w == size) or (h <= w and h == size):
        return img
    if w < h:
        return img.resize((size, int(size * h / w)), FILTERS[f])
    return img.resize((int(size * w / h), size), FILTERS[f])


def tv_center_crop(img, size):
    """torchvision 0.8 F.center_crop on a PIL image."""
    w, h = img.size
    top, left = int(round((h - size) / 2.)), int(round((w - size) / 2.))
    return img.crop((left, top, left + size, top + size))


def cases():
    out = []

    def add(input_name, op, args, fn):
        out.append((input_name, op, args, fn(INPUTS[input_name])))

    for f in FILTERS:
        add('rgb37x29', 'resize', [16, 12, f], lambda im, f=f: im.resize((16, 12), FILTERS[f]))
        add('rgb37x29', 'resize', [50, 41, f], lambda im, f=f: im.resize((50, 41), FILTERS[f]))
        add('rgb37x29', 'resize', [37, 10, f], lambda im, f=f: im.resize((37, 10), FILTERS[f]))
        add('rgb37x29', 'resize', [9, 29, f], lambda im, f=f: im.resize((9, 29), FILTERS[f]))
        # torchvision's resized_crop: crop (top 3, left 5, height 17, width 20), then resize.
        add('rgb37x29', 'resizedCrop', [3, 5, 17, 20, 16, 16, f], lambda im, f=f: im.crop((5, 3, 25, 20)).resize((16, 16), FILTERS[f]))
        add('grey19x14', 'resize', [7, 11, f], lambda im, f=f: im.resize((7, 11), FILTERS[f]))
    add('rgb37x29', 'resizeAndCenterCrop', [16, 0.8, 'bicubic'], lambda im: tv_center_crop(tv_resize_shorter(im, 20, 'bicubic'), 16))
    add('rgb37x29', 'resizeAndCenterCrop', [13, 1, 'bilinear'], lambda im: tv_center_crop(tv_resize_shorter(im, 13, 'bilinear'), 13))

    for name in ['rgb19x14', 'grey19x14', 'flat5x4']:
        add(name, 'autoContrast', [], ImageOps.autocontrast)
        add(name, 'equalize', [], ImageOps.equalize)
        add(name, 'contrast', [0.1], lambda im: ImageEnhance.Contrast(im).enhance(0.1))
        add(name, 'sharpness', [1.9], lambda im: ImageEnhance.Sharpness(im).enhance(1.9))
    add('rgb19x14', 'invert', [], ImageOps.invert)
    for bits in [0, 1, 3, 4, 7]:
        add('rgb19x14', 'posterize', [bits], lambda im, bits=bits: ImageOps.posterize(im, bits))
    for t in [0, 128, 201, 256]:
        add('rgb19x14', 'solarize', [t], lambda im, t=t: ImageOps.solarize(im, t))
    add('rgb19x14', 'solarizeAdd', [40], lambda im: solarize_add(im, 40))
    add('rgb19x14', 'solarizeAdd', [99], lambda im: solarize_add(im, 99))
    for factor in [0.1, 0.55, 1.0, 1.37, 1.9]:
        add('rgb19x14', 'color', [factor], lambda im, x=factor: ImageEnhance.Color(im).enhance(x))
        add('rgb19x14', 'contrast', [factor], lambda im, x=factor: ImageEnhance.Contrast(im).enhance(x))
        add('rgb19x14', 'brightness', [factor], lambda im, x=factor: ImageEnhance.Brightness(im).enhance(x))
        add('rgb19x14', 'sharpness', [factor], lambda im, x=factor: ImageEnhance.Sharpness(im).enhance(x))
    for f in FILTERS:
        for deg in [17.3, -29.1]:
            add('rgb19x14', 'rotate', [deg, f], lambda im, d=deg, f=f: im.rotate(d, resample=FILTERS[f], fillcolor=FILL))
        add('grey19x14', 'rotate', [8.5, f], lambda im, f=f: im.rotate(8.5, resample=FILTERS[f], fillcolor=FILL[0]))
        add('rgb19x14', 'shearX', [0.27, f], lambda im, f=f: affine(im, (1, 0.27, 0, 0, 1, 0), f))
        add('rgb19x14', 'shearY', [-0.21, f], lambda im, f=f: affine(im, (1, 0, 0, -0.21, 1, 0), f))
        add('rgb19x14', 'translateX', [0.405 * 19, f], lambda im, f=f: affine(im, (1, 0, 0.405 * 19, 0, 1, 0), f))
        add('rgb19x14', 'translateY', [-0.3 * 14, f], lambda im, f=f: affine(im, (1, 0, 0, 0, 1, -0.3 * 14), f))
    return out


def main():
    rows = []
    for input_name, op, args, img in cases():
        rows.append({
            'input': input_name, 'op': op, 'args': args,
            'width': img.size[0], 'height': img.size[1], 'channels': len(img.getbands()),
            'data': base64.b64encode(img.tobytes()).decode('ascii'),
        })
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'test', 'fixtures', 'pil-ops.json')
    with open(path, 'w') as f:
        f.write('{"pillow": %s, "cases": [\n' % json.dumps(PIL.__version__))
        f.write(',\n'.join(json.dumps(r) for r in rows))
        f.write('\n]}\n')
    print(f'{path}: {len(rows)} cases (Pillow {PIL.__version__})')


if __name__ == '__main__':
    main()

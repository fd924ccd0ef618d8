// Throughput of the DeiT image pipeline (lib/data: sharp decodes, then timm's transforms in
// JavaScript) against the training step it feeds. On a folder of JPEGs at ImageNet's typical
// sizes (made here with sharp unless --dir names one), it times, alternating over --rounds:
//   decode     sharp's decode of every file to RGB bytes (libvips on libuv's worker threads)
//   transform  the deit-tiny training transform (crop of the full image, bicubic resize to 224,
//              flip, RandAugment rand-m9-mstd0.5-inc1, normalisation, random erasing) of images
//              already decoded: the JavaScript on the event loop
//   train      ImageLoader epochs as training reads them (decode + transform + mixup/CutMix)
//   eval       ImageLoader epochs with the evaluation transform (resize 256, centre 224)
// and, with --model, one deit-tiny training step (forward, backward, AdamW) per attention kind at
// --batch, so the images/s of the two sides compare. Prints a table (images per second of wall
// clock, and per CPU-second of the process, sharp's threads included: on a shared machine the
// second moves less), min-max over rounds, and the machine's load average; writes JSON with --out.
//   npx ts-node scripts/bench-image-pipeline.ts [--images 128] [--batch 32] [--rounds 3] [--model]
//     [--dir <folder>] [--out f.json]
import { Command } from 'commander';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import sharp from 'sharp';
import * as ff from '../lib';
import { VIT_PRESETS } from '../lib/cli/presets';
import { resolveAugment, transformImage } from '../lib/data/augment';
import type { ByteImage } from '../lib/data/byte-image';
import { loadImageFolder } from '../lib/data/image-folder';
import { ImageLoader } from '../lib/data/image-loader';
import { deriveSeed, ImageRng } from '../lib/data/image-rng';
import { evaluationAugment } from '../lib/data/augment';

/** ImageNet's most common sizes (about 3 in 4 images are 500 x 375, 375 x 500 or 500 x 333). */
const SIZES: [number, number][] = [
  [500, 375],
  [375, 500],
  [500, 333],
  [500, 400],
  [640, 480],
];

/** `n` JPEGs (quality 90) of smooth colour fields with texture, in 4 class folders. */
async function makeFolder(dir: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const [w, h] = SIZES[i % SIZES.length];
    const rng = new ImageRng(deriveSeed(99, i));
    const data = Buffer.alloc(w * h * 3);
    const f = [rng.uniform(0.01, 0.05), rng.uniform(0.01, 0.05), rng.uniform(0, 6)];
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        for (let c = 0; c < 3; c++) {
          const v = 128 + 90 * Math.sin(f[0] * x * (c + 1) + f[1] * y + f[2]) + 30 * (rng.uniform() - 0.5);
          data[(y * w + x) * 3 + c] = Math.max(0, Math.min(255, v));
        }
      }
    }
    const cls = path.join(dir, `class${i % 4}`);
    fs.mkdirSync(cls, { recursive: true });
    await sharp(data, { raw: { width: w, height: h, channels: 3 } })
      .jpeg({ quality: 90 })
      .toFile(path.join(cls, `${i}.jpg`));
  }
}

/** Images per wall-clock second and per CPU second of this process (all its threads: sharp's included). */
interface Rate {
  wall: number;
  cpu: number;
}

async function time(fn: () => Promise<number>): Promise<Rate> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  const n = await fn();
  const c = process.cpuUsage(c0);
  return { wall: n / ((performance.now() - t0) / 1000), cpu: n / ((c.user + c.system) / 1e6) };
}

async function main(): Promise<void> {
  const o = new Command()
    .option('--images <n>', 'JPEGs to make', (v) => Number(v), 128)
    .option('--batch <n>', 'batch size of the loaders and the model step', (v) => Number(v), 32)
    .option('--rounds <n>', 'alternating rounds', (v) => Number(v), 3)
    .option('--model', 'also time deit-tiny training steps (fourier and dot) on the cpu', false)
    .option('--dir <folder>', 'an image folder (<dir>/<class>/*.jpg) instead of made-up JPEGs')
    .option('--out <file>', 'write the measurements as JSON')
    .parse(process.argv)
    .opts<{ images: number; batch: number; rounds: number; model: boolean; dir?: string; out?: string }>();
  const load0 = os.loadavg();
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ff-bench-images-'));
  if (!o.dir) await makeFolder(dir, o.images);
  const ds = loadImageFolder(dir);
  const preset = VIT_PRESETS['deit-tiny'];
  const trainAugment = { ...preset.augment, imageSize: 224 };
  const trainLoader = new ImageLoader(ds, {
    batchSize: o.batch,
    shuffle: true,
    seed: 1,
    dropLast: true,
    augment: trainAugment,
    prefetch: 4,
  });
  const evalLoader = new ImageLoader(ds, { batchSize: o.batch, augment: evaluationAugment(trainAugment), prefetch: 4 });
  const decoded: ByteImage[] = [];
  for (let i = 0; i < ds.length; i++) decoded.push((await ds.decode(i)).image);
  const resolved = resolveAugment(trainAugment, 3, 224, 224);

  const results: Record<string, Rate[]> = { decode: [], transform: [], train: [], eval: [] };
  const epoch = async (loader: ImageLoader, e: number) => {
    let n = 0;
    for await (const b of loader.epoch(e)) n += b.batchSize;
    return n;
  };
  for (let r = 0; r < o.rounds; r++) {
    results.decode.push(
      await time(async () => {
        await Promise.all(Array.from({ length: ds.length }, (_, i) => ds.decode(i)));
        return ds.length;
      }),
    );
    results.transform.push(
      await time(async () => {
        decoded.forEach((img, i) => transformImage(img, resolved, new ImageRng(deriveSeed(r, i))));
        return decoded.length;
      }),
    );
    results.train.push(await time(() => epoch(trainLoader, r)));
    results.eval.push(await time(() => epoch(evalLoader, 0)));
  }

  if (o.model) {
    for (const attention of ['fourier', 'dot'] as const) {
      const key = `deit-tiny step (${attention})`;
      results[key] = [];
      const model = new ff.models.VisionTransformer(
        { ...preset.model, channels: 3, numClasses: 1000, attention },
        { device: 'cpu', generator: new ff.Generator(0) },
      );
      const opt = new ff.optim.AdamW(ff.optim.weightDecayGroups(model, 0.05), { lr: 1e-3 });
      const images = ff.tensor(new Float32Array(o.batch * 3 * 224 * 224).fill(0.1), [o.batch, 3, 224, 224]);
      const target = ff.tensor(
        Float32Array.from({ length: o.batch }, (_, i) => i % 1000),
        [o.batch],
      );
      for (let r = 0; r < Math.max(2, o.rounds); r++) {
        const rate = await time(async () => {
          ff.tidy(() => {
            opt.zeroGrad();
            ff.crossEntropy(model.forward(images), target).backward();
            opt.step();
          });
          return o.batch;
        });
        if (r > 0) results[key].push(rate); // the first step warms up
      }
      images.dispose();
      target.dispose();
      opt.dispose();
      model.dispose();
    }
  }

  const load1 = os.loadavg();
  const cpus = os.cpus();
  console.log(
    `${ds.length} JPEGs (${o.dir ?? 'made up: ' + SIZES.map((s) => s.join('x')).join(', ')}), batch ${o.batch}, ${o.rounds} rounds; ` +
      `${cpus[0]?.model ?? 'cpu'} x ${cpus.length}, UV_THREADPOOL_SIZE ${process.env.UV_THREADPOOL_SIZE ?? 4}, sharp concurrency ${sharp.concurrency()}`,
  );
  console.log('| stage | images/s (mean) | min - max | images per CPU-second (mean) | min - max |');
  console.log('|---|---:|---:|---:|---:|');
  const cells = (v: number[]) =>
    `${(v.reduce((a, b) => a + b, 0) / v.length).toFixed(1)} | ${Math.min(...v).toFixed(1)} - ${Math.max(...v).toFixed(1)}`;
  for (const [k, v] of Object.entries(results))
    console.log(`| ${k} | ${cells(v.map((x) => x.wall))} | ${cells(v.map((x) => x.cpu))} |`);
  console.log(
    `load average ${load0.map((x) => x.toFixed(1)).join(' ')} at the start, ${load1.map((x) => x.toFixed(1)).join(' ')} at the end`,
  );
  if (o.out)
    fs.writeFileSync(
      o.out,
      JSON.stringify({ images: ds.length, batch: o.batch, results, load: [load0, load1] }, null, 2) + '\n',
    );
  if (!o.dir) fs.rmSync(dir, { recursive: true, force: true });
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});

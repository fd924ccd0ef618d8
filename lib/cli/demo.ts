// `fourierformer demo [--vision] [--attention <kinds>]`: the README's first experiment, sized for a
// 2-core CPU. It trains a small model per kind of attention (Fourier and dot-product by default;
// any list of fourier, dot, neural) with the same data, seed and time budget, evaluates them and
// prints the table and where results.md and the plot are:
//   demo            the brown-small language model on the Brown corpus: validation and test
//                   perplexity (sliding window, stride 32, on the first 16384 tokens of each) and
//                   head redundancy, then a sample of each model's text;
//   demo --vision   the fashion-small vision transformer on Fashion-MNIST: top-1/top-5 accuracy
//                   and head redundancy.
// The first model trains for --time-limit seconds (its schedule fitted to the time); the others
// then train for the same number of steps, capped by the same time. With the evaluations and
// loading, the default demo (two models) takes under 10 minutes. --linear adds a Performer and an
// FLT model (linear attention), trained the same way: about twice as long.
import { Command } from 'commander';
import { TEXT_SAMPLING } from '../train/lm-text';
import { SAMPLE_TOKENS, sampleRuns, trainLanguageModels } from '../train/run-lm';
import { trainVisionTransformers } from '../train/run-vit';
import { formatDuration } from '../train/progress';
import { defaultDeviceName, deviceName, positiveNumber } from './options';
import {
  attentionFlag,
  attentionsOf,
  lmConfigFromFlags,
  printComparison,
  runContext,
  vitConfigFromFlags,
  checkOut,
} from './train';
import type { Device } from '../native';

interface DemoFlags {
  vision?: boolean;
  attention: string;
  linear?: boolean;
  timeLimit: number;
  out?: string;
  device?: Device;
  quiet?: boolean;
}

/** One sample of each trained language model's text (`fourierformer generate` gives more). */
function printSamples(out: string, device: Device): void {
  const samples = sampleRuns(out, device, (line) => process.stderr.write(line + '\n'));
  const { temperature, topK, topP } = TEXT_SAMPLING;
  process.stdout.write(
    `\nSamples (${SAMPLE_TOKENS} tokens from the start of a sentence; temperature ${temperature}, top-k ${topK}, top-p ${topP}, seed 1):\n`,
  );
  for (const s of samples) process.stdout.write(`  ${s.attention}: ${s.text}\n`);
  process.stdout.write(`More: fourierformer generate --checkpoint ${out}/fourier --prompt "The jury said"\n`);
}

/** Seconds of training per model by default: 2 x 240 s plus evaluation and loading stays under 10 minutes. */
export const DEMO_SECONDS_PER_MODEL = 240;

export function demoCommand(): Command {
  return new Command('demo')
    .description(
      'train a small Fourier and a small dot-product model (or the kinds of --attention) with the same data, seed and steps and compare them (under 10 minutes on 2 CPU cores)',
    )
    .option(
      '--vision',
      'the vision transformer on Fashion-MNIST (accuracy) instead of the language model on the Brown corpus (perplexity)',
      false,
    )
    .option(
      '--attention <kinds>',
      'the kinds of attention to compare: a comma-separated list of fourier, dot, neural, performer, flt (e.g. fourier,dot,neural); both = fourier,dot',
      attentionFlag,
      'both',
    )
    .option(
      '--linear',
      'also train a Performer (FAVOR+) and an FLT (Performer with learned spectral RPE) model: linear attention',
      false,
    )
    .option(
      '--time-limit <seconds>',
      'training time of the first model, which sets the steps of all (the others are capped by the same time)',
      positiveNumber,
      DEMO_SECONDS_PER_MODEL,
    )
    .option('--out <dir>', 'output folder (default: runs/demo-lm, or runs/demo-vision with --vision)')
    .option('--device <device>', 'cpu, cuda or cuda-emu (default: $FOURIERFORMER_DEVICE, else cpu)', deviceName)
    .option('--quiet', 'no progress bar: a progress line every 20 steps (as without a terminal)', false)
    .action(async (flags: DemoFlags) => {
      const t0 = performance.now();
      const out = checkOut(flags.out ?? (flags.vision ? 'runs/demo-vision' : 'runs/demo-lm'));
      const chosen = attentionsOf(flags.attention);
      const kinds = flags.linear
        ? [...chosen, ...(['performer', 'flt'] as const).filter((k) => !chosen.includes(k))]
        : chosen;
      const attention = flags.linear ? kinds.join(',') : flags.attention;
      const common = {
        attention,
        timeLimit: flags.timeLimit,
        device: flags.device ?? deviceName(defaultDeviceName()),
        quiet: flags.quiet,
      };
      const argv = [
        'demo',
        ...(flags.vision ? ['--vision'] : []),
        ...(flags.attention !== 'both' ? ['--attention', flags.attention] : []),
        ...(flags.linear ? ['--linear'] : []),
        ...(flags.timeLimit !== DEMO_SECONDS_PER_MODEL ? ['--time-limit', String(flags.timeLimit)] : []),
      ];
      if (flags.vision) {
        const f = { ...common, preset: 'fashion-small' };
        const cmp = await trainVisionTransformers(vitConfigFromFlags(f), kinds, runContext(f, out, argv));
        printComparison(cmp, out);
      } else {
        const f = { ...common, preset: 'brown-small' };
        const cmp = await trainLanguageModels(lmConfigFromFlags(f), kinds, runContext(f, out, argv));
        printComparison(cmp, out);
        if (cmp !== null) printSamples(out, common.device);
      }
      process.stdout.write(`demo wall time: ${formatDuration((performance.now() - t0) / 1000)}\n`);
    });
}

// `fourierformer eval lm|vit --checkpoint <file | run folder | output folder>`: rebuilds each model
// from the configuration its checkpoint holds, evaluates it (language model: validation and test
// perplexity with the sliding window; vision: top-1/top-5 on valid and test) and the heads'
// redundancy, and prints the markdown table that training writes.
import { Command } from 'commander';
import type { Device } from '../native';
import { RunResult, resultsMarkdown } from '../train/results-table';
import { checkpointsIn } from '../train/run-folder';
import { evaluateLMCheckpoint, LMEvalSettings } from '../train/run-lm';
import { evaluateViTCheckpoint } from '../train/run-vit';
import { checkFolder, defaultDeviceName, deviceName, nonNegativeInt, positiveInt } from './options';

interface EvalFlags {
  checkpoint: string;
  device?: Device;
  data?: string;
}

interface LMEvalFlags extends EvalFlags {
  stride?: number;
  tokens?: number;
  batchSize?: number;
  redundancyWindows?: number;
}

interface ViTEvalFlags extends EvalFlags {
  limitEval?: number;
}

const log = (line: string) => process.stderr.write(line + '\n');

function common(cmd: Command, what: string): Command {
  return cmd
    .requiredOption(
      '--checkpoint <path>',
      `a checkpoint (.safetensors), a run folder (its best.safetensors, else last), or an output folder of ${what} runs (each run in it)`,
    )
    .option('--device <device>', 'cpu, cuda or cuda-emu (default: $FOURIERFORMER_DEVICE, else cpu)', deviceName)
    .option(
      '--data <dir>',
      "the data folder, when it moved since training (default: the one in the checkpoint's config)",
    );
}

/** Evaluates each checkpoint that --checkpoint names, in turn, and prints the table of their results. */
async function evaluateEach(checkpoint: string, evaluate: (file: string) => Promise<RunResult>): Promise<void> {
  const results: RunResult[] = [];
  for (const file of checkpointsIn(checkpoint)) results.push(await evaluate(file));
  process.stdout.write(resultsMarkdown(`Evaluation of ${checkpoint}`, results) + '\n');
}

export function evalLMCommand(): Command {
  return common(
    new Command('lm').description(
      'evaluate language-model checkpoints: valid/test perplexity (sliding window) and head redundancy',
    ),
    'language-model',
  )
    .option('--stride <n>', "sliding-window stride, 1 for the paper's (default: the run's --final-stride)", positiveInt)
    .option(
      '--tokens <n>',
      "evaluate the first n tokens of valid and test, 0 for all (default: the run's --final-tokens)",
      nonNegativeInt,
    )
    .option('--batch-size <n>', "windows per forward pass (default: the run's)", positiveInt)
    .option(
      '--redundancy-windows <n>',
      "windows of the train and of the test split for head redundancy (default: the run's)",
      positiveInt,
    )
    .action(async (flags: LMEvalFlags) => {
      if (flags.data !== undefined)
        checkFolder(flags.data, '--data', 'wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens');
      const ev: Partial<LMEvalSettings> = {};
      if (flags.stride !== undefined) ev.finalStride = flags.stride;
      if (flags.tokens !== undefined) ev.finalTokens = flags.tokens;
      if (flags.batchSize !== undefined) ev.batchSize = flags.batchSize;
      if (flags.redundancyWindows !== undefined) ev.redundancyWindows = flags.redundancyWindows;
      const device = flags.device ?? deviceName(defaultDeviceName());
      await evaluateEach(flags.checkpoint, (file) =>
        evaluateLMCheckpoint(file, { dataDir: flags.data, device, eval: ev, log }),
      );
    });
}

export function evalViTCommand(): Command {
  return common(
    new Command('vit').description(
      'evaluate vision checkpoints: valid/test top-1 and top-5 accuracy and head redundancy',
    ),
    'vision',
  )
    .option(
      '--limit-eval <n>',
      "evaluate on n valid and n test images spread over the sets (default: the run's)",
      positiveInt,
    )
    .action(async (flags: ViTEvalFlags) => {
      if (flags.data !== undefined) checkFolder(flags.data, '--data', 'the images');
      const device = flags.device ?? deviceName(defaultDeviceName());
      await evaluateEach(flags.checkpoint, (file) =>
        evaluateViTCheckpoint(file, { dataDir: flags.data, device, limitEval: flags.limitEval, log }),
      );
    });
}

export function evalCommand(): Command {
  return new Command('eval')
    .description('evaluate checkpoints written by `fourierformer train` and print the results table')
    .addCommand(evalLMCommand())
    .addCommand(evalViTCommand());
}

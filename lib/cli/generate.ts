// `fourierformer generate --checkpoint <file | run folder | output folder> --prompt "..."`: text
// from a trained language model. The prompt is tokenised with the run's vocabulary (words it does
// not hold read as <unk>, said on stderr), continued token by token with the key-value cache
// (LanguageModel.generate), each token written to stdout as it is drawn, and the speed printed on
// stderr at the end. `--prompt -` reads the prompt from stdin. An output folder of several runs
// (Fourier and dot) gives one continuation per run, from the same prompt and seed.
import { Command, InvalidArgumentError } from 'commander';
import type { Device } from '../native';
import { checkpointsIn } from '../train/run-folder';
import { encodePrompt, TEXT_SAMPLING, tokenText } from '../train/lm-text';
import { lmRecordOf, loadLMForText } from '../train/run-lm';
import { checkFolder, defaultDeviceName, deviceName, nonNegativeInt, nonNegativeNumber, positiveInt } from './options';

interface GenerateFlags {
  checkpoint: string;
  prompt: string;
  tokens: number;
  temperature: number;
  topK: number | null;
  topP: number;
  seed: number;
  shift: number;
  cache: boolean;
  device?: Device;
  data?: string;
}

function topK(value: string): number | null {
  if (value.trim() === 'none') return null;
  const n = Number(value);
  if (!/^\s*\d+\s*$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new InvalidArgumentError(
      "expected a positive integer (how many of the most likely tokens are kept), or 'none' to keep all.",
    );
  return n;
}

function topP(value: string): number {
  const n = Number(value);
  if (value.trim() === '' || !(n > 0 && n <= 1))
    throw new InvalidArgumentError('expected a probability in (0, 1] (1 keeps every token).');
  return n;
}

/** The prompt text: the flag's, or with `-` everything on stdin (a terminal ends it with Ctrl-D). */
async function promptText(flag: string): Promise<string> {
  if (flag !== '-') return flag;
  if (process.stdin.isTTY) process.stderr.write('reading the prompt from stdin (end it with Ctrl-D)\n');
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer | string));
  } catch (e) {
    throw new Error(`--prompt -: could not read the prompt from stdin (${(e as Error).message})`, { cause: e });
  }
  return Buffer.concat(chunks).toString('utf8');
}

function generateFrom(file: string, text: string, flags: GenerateFlags, label: string | null): void {
  const log = (line: string) => process.stderr.write(line + '\n');
  const device = flags.device ?? deviceName(defaultDeviceName());
  const { model, vocab } = loadLMForText(file, { device, dataDir: flags.data, log });
  try {
    const { ids, unknown } = encodePrompt(text, vocab);
    if (ids.length === 0) throw new Error('--prompt: the prompt is empty; give at least one word');
    if (unknown.length > 0) {
      const shown = [...new Set(unknown)]
        .slice(0, 10)
        .map((w) => JSON.stringify(w))
        .join(', ');
      log(
        `note: ${unknown.length} prompt word${unknown.length > 1 ? 's are' : ' is'} not in the vocabulary and read as <unk>: ${shown}${new Set(unknown).size > 10 ? ', ...' : ''}`,
      );
    }
    const context = model.config.context;
    if (ids.length > context)
      log(
        `note: the prompt has ${ids.length} tokens, more than the model's context of ${context}: its first ${ids.length - context} are dropped`,
      );
    if (label !== null) process.stdout.write(`== ${label} (${file}) ==\n`);
    let atLineStart = ids[ids.length - 1] === vocab.eosId;
    process.stdout.write(text.replace(/\s+$/, '') + (atLineStart ? '\n' : ''));
    let first = 0;
    const t0 = performance.now();
    const result = model.generate(ids, {
      maxNewTokens: flags.tokens,
      temperature: flags.temperature,
      topK: flags.topK ?? undefined,
      topP: flags.topP,
      seed: flags.seed,
      shift: flags.shift,
      useCache: flags.cache,
      onToken: (id) => {
        if (first === 0) first = performance.now();
        const piece = tokenText(id, vocab, atLineStart);
        atLineStart = piece === '\n';
        process.stdout.write(piece);
      },
    });
    const t1 = performance.now();
    process.stdout.write('\n');
    const n = result.tokens.length;
    const rate = n > 1 ? `${((n - 1) / ((t1 - first) / 1000)).toFixed(1)} tokens/s after the first` : 'one token';
    log(
      `${n} tokens in ${((t1 - t0) / 1000).toFixed(2)} s: ${rate} (the prompt's ${Math.min(ids.length, context)} tokens and the first draw took ${((first - t0) / 1000).toFixed(2)} s; ${flags.cache ? 'key-value cache' : 'no cache: the window recomputed per token'}, ${device})`,
    );
    if (result.windowDropped > 0) {
      log(
        `note: the text passed the model's context of ${context} tokens: the oldest ${result.windowDropped} left the window (${flags.shift} at a time, the cache rebuilt from what was left each time)`,
      );
    }
  } finally {
    model.dispose();
  }
}

export function generateCommand(): Command {
  return new Command('generate')
    .description(
      'continue a prompt with a trained language model (key-value cache, temperature / top-k / top-p sampling), streaming the text',
    )
    .requiredOption(
      '--checkpoint <path>',
      'a checkpoint (.safetensors), a run folder (its best.safetensors, else last), or an output folder (one continuation per run in it)',
    )
    .requiredOption(
      '--prompt <text>',
      "the text to continue, in the corpus's tokens (words and punctuation separated by spaces); - reads it from stdin",
    )
    .option('--tokens <n>', 'how many tokens to add', positiveInt, 100)
    .option(
      '--temperature <x>',
      'divides the log-probabilities before sampling; 0 is greedy (the most likely token each time)',
      nonNegativeNumber,
      TEXT_SAMPLING.temperature,
    )
    .option('--top-k <n>', "sample among the n most likely tokens only; 'none' for all", topK, TEXT_SAMPLING.topK)
    .option(
      '--top-p <p>',
      'sample among the most likely tokens that make up probability p only (nucleus); 1 for all',
      topP,
      TEXT_SAMPLING.topP,
    )
    .option(
      '--seed <n>',
      'seed of the draws: the same seed, checkpoint and flags give the same text on every device',
      nonNegativeInt,
      1,
    )
    .option(
      '--shift <n>',
      "past the model's context, how many of the oldest tokens leave the window at a time (1: every token reads a full context, the window recomputed per token; more: recomputed once per n tokens)",
      positiveInt,
      1,
    )
    .option(
      '--no-cache',
      'recompute the whole window for every token instead of keeping the key-value cache (slower; the same text)',
    )
    .option('--device <device>', 'cpu, cuda or cuda-emu (default: $FOURIERFORMER_DEVICE, else cpu)', deviceName)
    .option(
      '--data <dir>',
      "the WikiText folder, when the run folder has no vocab.json and the data moved since training (default: the one in the checkpoint's config)",
    )
    .action(async (flags: GenerateFlags) => {
      if (flags.data !== undefined)
        checkFolder(flags.data, '--data', 'wiki.train.tokens, wiki.valid.tokens and wiki.test.tokens');
      const files = checkpointsIn(flags.checkpoint);
      const text = await promptText(flags.prompt);
      if (text.trim() === '')
        throw new Error(
          `--prompt: the prompt is empty${flags.prompt === '-' ? ' (nothing on stdin)' : ''}; give at least one word`,
        );
      const records = files.map(lmRecordOf);
      for (const r of records) {
        if (flags.shift > r.modelConfig.context)
          throw new Error(`--shift: ${flags.shift} is more than the model's context of ${r.modelConfig.context}`);
      }
      files.forEach((file, i) => generateFrom(file, text, flags, files.length > 1 ? records[i].attention : null));
    });
}

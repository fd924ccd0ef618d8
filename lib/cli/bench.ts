// `fourierformer bench`: runs the repository's benchmarks, scripts/bench-attention.ts (fused
// attention fwd+bwd at the paper's shapes, against the TS reference and PyTorch when found) and
// scripts/bench-train.ts (training steps of the bench LM, against PyTorch), each in its own Node
// process (with ts-node), their tables printed as they come and their JSON written to --out.
// The scripts live in a clone of the repository, not in the npm package.
import { spawn } from 'child_process';
import { Command, Option } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import type { Device } from '../native';
import { packageRoot } from '../native';
import { defaultDeviceName, deviceName, positiveInt } from './options';

interface BenchFlags {
  device?: Device;
  only?: 'attention' | 'train';
  runs: number;
  rounds: number;
  steps: number;
  out: string;
}

/** Runs one script with ts-node, its output passed through; rejects when it fails. */
function runScript(script: string, args: string[]): Promise<void> {
  const file = path.join(packageRoot, 'scripts', script);
  if (!fs.existsSync(file)) throw new Error(`bench: ${file} not found; the benchmarks run from a clone of the repository (they are not in the npm package)`);
  let register: string;
  try {
    register = require.resolve('ts-node/register/transpile-only', { paths: [packageRoot] });
  } catch {
    throw new Error('bench: ts-node is not installed (a development dependency: run npm install in the clone)');
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', register, file, ...args], { cwd: packageRoot, stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) => (code === 0 ? resolve() : reject(new Error(`bench: scripts/${script} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`))));
  });
}

export function benchCommand(): Command {
  return new Command('bench')
    .description('run the attention and training benchmarks (from a clone of the repository) and print their tables')
    .option('--device <device>', 'cpu, cuda or cuda-emu (default: $FOURIERFORMER_DEVICE, else cpu)', deviceName)
    .addOption(new Option('--only <which>', 'run one benchmark only (default: both)').choices(['attention', 'train']))
    .option('--runs <n>', 'attention benchmark: timed runs per measurement (the best is kept)', positiveInt, 10)
    .option('--rounds <n>', 'training benchmark: rounds of measurements', positiveInt, 3)
    .option('--steps <n>', 'training benchmark: timed steps per round and attention kind', positiveInt, 4)
    .option('--out <dir>', 'folder for bench-attention.json and bench-train.json', '.')
    .action(async (flags: BenchFlags) => {
      const device = flags.device ?? deviceName(defaultDeviceName());
      fs.mkdirSync(flags.out, { recursive: true });
      const out = (name: string) => path.resolve(flags.out, name);
      if (flags.only !== 'train') {
        await runScript('bench-attention.ts', ['--device', device, '--runs', String(flags.runs), '--out', out('bench-attention.json')]);
      }
      if (flags.only !== 'attention') {
        await runScript('bench-train.ts', ['--device', device, '--rounds', String(flags.rounds), '--steps', String(flags.steps), '--out', out('bench-train.json')]);
      }
    });
}

// `fourierformer bench`: runs the repository's benchmark, scripts/bench.ts (fused attention
// fwd+bwd, a training step and memory, against PyTorch when one is found; the same as
// `npm run bench`), in its own Node process with ts-node, its output passed through. The
// scripts live in a clone of the repository, not in the npm package.
import { spawn } from 'child_process';
import { Command, Option } from 'commander';
import * as fs from 'fs';
import * as path from 'path';
import type { Device } from '../native';
import { packageRoot } from '../native';
import { deviceName, positiveInt } from './options';

interface BenchFlags {
  device?: Device;
  only?: 'attention' | 'train' | 'memory';
  rounds?: number;
  threads?: number;
  out?: string;
  docs?: boolean;
}

/** Runs one script with ts-node, its output passed through; rejects when it fails. */
function runScript(script: string, args: string[]): Promise<void> {
  const file = path.join(packageRoot, 'scripts', script);
  if (!fs.existsSync(file))
    throw new Error(
      `bench: ${file} not found; the benchmarks run from a clone of the repository (they are not in the npm package)`,
    );
  let register: string;
  try {
    register = require.resolve('ts-node/register/transpile-only', { paths: [packageRoot] });
  } catch {
    throw new Error('bench: ts-node is not installed (a development dependency: run npm install in the clone)');
  }
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-r', register, file, ...args], { cwd: packageRoot, stdio: 'inherit' });
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0
        ? resolve()
        : reject(
            new Error(`bench: scripts/${script} ${signal ? `was killed by ${signal}` : `exited with code ${code}`}`),
          ),
    );
  });
}

export function benchCommand(): Command {
  return new Command('bench')
    .description(
      'run the benchmarks against PyTorch (from a clone of the repository): the JSON, and for a full cpu run the docs and README table',
    )
    .option('--device <device>', 'cpu, cuda or cuda-emu (default: cpu)', deviceName)
    .addOption(
      new Option('--only <which>', 'run one part only (default: all)').choices(['attention', 'train', 'memory']),
    )
    .option('--rounds <n>', 'rounds, each timing every figure once on each side', positiveInt)
    .option('--threads <n>', 'threads of each side (default: OMP_NUM_THREADS, else every logical CPU)', positiveInt)
    .option('--out <file>', 'the JSON (default: docs/benchmarks.json for a full cpu run)')
    .option('--no-docs', 'do not regenerate docs/benchmarks.md and the README table')
    .action(async (flags: BenchFlags) => {
      const args: string[] = [];
      if (flags.device) args.push('--device', flags.device);
      if (flags.only) args.push('--only', flags.only);
      if (flags.rounds) args.push('--rounds', String(flags.rounds));
      if (flags.threads) args.push('--threads', String(flags.threads));
      if (flags.out) args.push('--out', path.resolve(flags.out));
      if (flags.docs === false) args.push('--no-docs');
      await runScript('bench.ts', args);
    });
}

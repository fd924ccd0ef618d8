// The property-based fuzz suite over the public API (test/fuzz/), from the command line:
//   npm run fuzz -- [--cases 20000] [--seed 1] [--device cpu,cuda-emu] [--chunk 200] [--jobs 1]
//                   [--only fourierAttention,invalid] [--case i] [--shrink-ms 20000]
// Cases run in child processes, --chunk at a time; a crash or a hang is reported with its case
// and the run goes on. --case i replays case i of the run with that seed. Exit status 1 when
// any case failed.
import { Command } from 'commander';
import * as ff from '../lib';
import { formatFailure, formatReport, runFuzz } from '../test/fuzz/runner';

const program = new Command()
  .option('--cases <n>', 'cases per device', '2000')
  .option('--seed <n>', "the run's seed", String(Date.now() % 2 ** 31))
  .option('--device <list>', 'devices, comma-separated', 'cpu,cuda-emu')
  .option('--chunk <n>', 'cases per child process', '200')
  .option('--jobs <n>', 'child processes at once', '1')
  .option('--only <list>', 'only these properties (comma-separated names or prefixes)')
  .option('--case <i>', 'run case i only (a replay)')
  .option('--shrink-ms <n>', 'time to shrink each failure', '20000')
  .option('--timeout-ms <n>', 'a case running longer is a hang', '120000')
  .parse();

async function main(): Promise<void> {
  const o = program.opts();
  const devices = String(o.device)
    .split(',')
    .map(
      (d) =>
        ff.DEVICES.find((x) => x === d.trim()) ??
        (() => {
          throw new Error(`--device: unknown device ${JSON.stringify(d)}`);
        })(),
    );
  const usable = (d: ff.Device) => ff.backends().some((b) => b.device === d && b.available);
  for (const d of devices)
    if (!usable(d))
      throw new Error(`--device: ${d} is not usable here (${ff.backends().find((b) => b.device === d)?.detail})`);
  const seed = Number(o.seed);
  const one = o.case !== undefined ? Number(o.case) : undefined;
  let seen = 0;
  const report = await runFuzz({
    seed,
    cases: one !== undefined ? one + 1 : Number(o.cases),
    first: one ?? 0,
    devices,
    chunk: Number(o.chunk),
    jobs: Number(o.jobs),
    only: o.only ? String(o.only).split(',') : undefined,
    shrinkMs: Number(o.shrinkMs),
    caseTimeoutMs: Number(o.timeoutMs),
    otherOf: (d) => (['cpu', 'cuda-emu'] as ff.Device[]).find((x) => x !== d && usable(x)) ?? null,
    onResult: (device, r) => {
      seen++;
      if (!r.ok)
        console.log(
          formatFailure(
            {
              device,
              index: r.index,
              property: r.property,
              kind: 'mismatch',
              message: r.error ?? '',
              case: r.case,
              shrunk: r.shrunk,
            },
            seed,
          ),
        );
      else if (one !== undefined)
        console.log(`[${device}] case ${r.index} (${r.property}) passed in ${r.ms} ms: ${JSON.stringify(r.case)}`);
      if (seen % 500 === 0) console.log(`... ${seen} cases`);
    },
  });
  console.log(formatReport(report));
  process.exitCode = report.failures.length > 0 ? 1 : 0;
}

main().catch((e) => {
  console.error((e as Error).message);
  process.exitCode = 2;
});

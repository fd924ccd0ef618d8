// The property-based fuzz suite (test/fuzz/) at a fixed seed, as CI runs it: FUZZ_CASES cases on
// this project's device, in child processes (a crash is reported with its case, not lost).
// Longer runs: npm run fuzz -- --cases 20000 [--seed S] [--device cpu,cuda-emu].
import * as ff from '../lib';
import { device } from './helpers/compare';
import { formatFailure, formatReport, runFuzz } from './fuzz/runner';

const SEED = 27;
const CASES = Number(process.env.FOURIERFORMER_FUZZ_CASES ?? 400);
const usable = (d: ff.Device) => ff.backends().some((b) => b.device === d && b.available);

test(`fuzz: ${CASES} cases at seed ${SEED} on ${device()}`, async () => {
  const report = await runFuzz({
    seed: SEED,
    cases: CASES,
    devices: [device()],
    chunk: CASES,
    shrinkMs: 5000,
    caseTimeoutMs: 60_000,
    otherOf: (d) => (['cpu', 'cuda-emu'] as ff.Device[]).find((x) => x !== d && usable(x)) ?? null,
  });
  const text = [formatReport(report), ...report.failures.map((f) => formatFailure(f, SEED))].join('\n');
  if (report.failures.length > 0) throw new Error(text);
  console.log(text);
}, 600_000);

// The benchmark's summaries and generated docs (scripts/bench/): the statistics of a figure, the
// README block and docs page rendered from a results file, the committed docs matching the
// committed results (after changing the generator: npm run bench:docs), and one small run of
// `npm run bench` without PyTorch writing a well-formed results file.
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { benchmarksMd, plotSpec, README_BEGIN, README_END, readmeBlock, updateReadme } from '../scripts/bench/docs';
import type { Results } from '../scripts/bench/results';
import { figure } from '../scripts/bench/stats';
import { runsFor } from '../scripts/bench/timing';

const ROOT = path.resolve(__dirname, '..');

/** A figure whose every run took `ms` (rounds of 3 runs). */
const flat = (ms: number, rounds = 2) =>
  figure(Array.from({ length: rounds }, () => ({ times_ms: [ms, ms, ms], cpu_per_wall: 2 })));

function results(allocator = 'tcmalloc'): Results {
  const shape = (name: string, N: number) => ({ name, B: 1, H: 8, N, D: 16, causal: true });
  return {
    schema: 1,
    date: '2026-01-02',
    command: 'npm run bench',
    duration_s: 300,
    machine: {
      cpu: 'Test CPU',
      logical_cpus: 2,
      os: 'Linux',
      loadavg_start: [0.1, 0.1, 0.1],
      loadavg_end: [1.5, 0.5, 0.2],
    },
    ours: {
      package: '0.1.0',
      commit: 'abc',
      node: 'v20',
      device: 'cpu',
      backend: 'host CPU',
      isa: 'avx2',
      threads: 2,
      threads_mechanism: 'OMP_NUM_THREADS',
      allocator: 'glibc',
    },
    peer: {
      python: 'python3',
      torch: '2.13.0+cpu',
      python_version: '3.11',
      threads: 2,
      interop_threads: 2,
      omp_num_threads: '2',
      cpu_capability: 'AVX2',
      flush_denormal: true,
      allocator: { name: allocator, path: allocator === 'tcmalloc' ? '/usr/lib/libtcmalloc_minimal.so.4' : null },
      device: 'cpu',
      cuda: null,
    },
    comparable:
      allocator === 'tcmalloc' ? { ok: true, why: [] } : { ok: false, why: ['PyTorch ran with glibc malloc'] },
    settings: { rounds: 2, threads: 2, attention_target_ms: 300, train_target_ms: 1000, materialised_gib: 4 },
    attention: [
      {
        shape: { ...shape('small LM', 256), B: 8 },
        group: 'model',
        figures: { ours_fourier: flat(10), ours_dot: flat(5), torch_sdpa: flat(20), torch_materialised: flat(1000) },
      },
      {
        shape: shape('N 1024', 1024),
        group: 'length',
        figures: {
          ours_fourier: flat(40),
          ours_dot: flat(20),
          torch_sdpa: flat(50),
          torch_materialised: { skipped: 'needs about 6.0 GiB, over the 4 GiB limit' },
        },
      },
      {
        shape: shape('N 4096', 4096),
        group: 'length',
        figures: {
          ours_fourier: flat(400),
          ours_dot: flat(200),
          torch_sdpa: flat(300),
          torch_materialised: { skipped: 'needs about 96 GiB, over the 4 GiB limit' },
        },
      },
    ],
    train: {
      config: { batch: 16, context: 128 },
      figures: { ours_dot: flat(200), ours_fourier: flat(300), torch_dot: flat(400), torch_fourier: flat(3000) },
    },
    memory: [
      {
        shape: shape('N 4096', 4096),
        mib: { ours_fourier: 30, ours_dot: 25, torch_sdpa: 40, torch_materialised: { skipped: 'too big' } },
      },
    ],
  };
}

describe('benchmark statistics', () => {
  test('a figure keeps every run, its median, range and per-round medians', () => {
    const f = figure([
      { times_ms: [3, 1, 2], cpu_per_wall: 1.9 },
      { times_ms: [10, 4], cpu_per_wall: null },
    ]);
    expect(f).toMatchObject({ min: 1, max: 10, median: 3, n: 5, round_medians: [2, 7], cpu_per_wall: [1.9] });
    expect(f.spread).toBeCloseTo(9 / 3);
    expect(f.times_ms).toEqual([3, 1, 2, 10, 4]);
  });

  test('runs per block: about the target time, within the bounds', () => {
    expect(runsFor(10, { targetMs: 300, minRuns: 2, maxRuns: 20 })).toBe(20);
    expect(runsFor(50, { targetMs: 300, minRuns: 2, maxRuns: 20 })).toBe(6);
    expect(runsFor(5000, { targetMs: 300, minRuns: 2, maxRuns: 20 })).toBe(2);
  });
});

describe('generated benchmark docs', () => {
  test("the README block: date, command, machine, the table's figures and ratios from the data", () => {
    const block = readmeBlock(results());
    expect(block).toContain('Measured 2026-01-02 with `npm run bench` on Test CPU (2 logical CPUs)');
    expect(block).toContain('PyTorch 2.13.0+cpu (Python 3.11) with tcmalloc, 2 threads');
    expect(block).toContain('| small LM (B8 H8 N256 D16 causal) | 10.0 | 5.00 | 20.0 | 1000 | 0.50x | 100x |');
    expect(block).toContain('| N 4096 (B1 H8 N4096 D16 causal) | 400 | 200 | 300 | does not fit | 1.33x | - |');
    expect(block).not.toContain('N 1024');
    expect(block).toContain("takes 200 ms with our dot-product attention against PyTorch's 400 ms (0.50x its time)");
    expect(block).toContain('grows peak resident memory by 30.0 MiB');
    expect(block).not.toMatch(/not comparable|busy/);
    expect(block).not.toMatch(/\d\d:\d\d/);
  });

  test('a peer without a fast allocator, or a busy host, is said next to the figures', () => {
    const r = results('glibc malloc');
    r.machine.loadavg_start = [6, 4, 2];
    for (const text of [readmeBlock(r), benchmarksMd(r)]) {
      expect(text).toContain('not comparable in this run: PyTorch ran with glibc malloc');
      expect(text).toContain('**The host was busy** (load average 6.0 at the start');
    }
    const starved = results();
    for (const figs of [...starved.attention!.map((a) => a.figures), starved.train!.figures])
      for (const f of Object.values(figs)) if ('cpu_per_wall' in f) f.cpu_per_wall = [0.3];
    expect(readmeBlock(starved)).toMatch(
      /The host was busy.*the timed runs kept 0\.\d\d CPUs busy on average, for 2 threads/,
    );
  });

  test('a load that rose after a run whose timed blocks had their CPUs is not called busy', () => {
    const r = results();
    r.machine.loadavg_end = [3.0, 1.0, 0.5];
    expect(readmeBlock(r)).not.toMatch(/busy/);
    expect(benchmarksMd(r)).toContain('3.00, 1.00, 0.50 at the end');
    delete r.machine.loadavg_end;
    for (const figs of [...r.attention!.map((a) => a.figures), r.train!.figures])
      for (const f of Object.values(figs)) if ('cpu_per_wall' in f) f.cpu_per_wall = [1.5];
    expect(readmeBlock(r)).toMatch(/The host was busy/);
  });

  test('docs/benchmarks.md lists every figure, skipped ones with the reason, and per-round ratio ranges', () => {
    const md = benchmarksMd(results());
    expect(md).toContain(
      '| N 1024 (B1 H8 N1024 D16 causal) | PyTorch, materialised Fourier | needs about 6.0 GiB, over the 4 GiB limit |',
    );
    expect(md).toContain('| small LM (B8 H8 N256 D16 causal) | ours, Fourier | 10.0 | 10.0 | 0.0% | 6 | 2.00 |');
    expect(md).toContain('| fourier | 0.10x | 0.75x |');
    expect(md).toContain('![fwd+bwd time against N, log-log](benchmarks.svg)');
    expect(md).toContain("Each row is this run's, at commit abc: later commits may differ");
  });

  test('the plot: the N series only, on log axes', () => {
    const spec = plotSpec(results()) as {
      data: { values: { N: number }[] };
      encoding: { x: { scale: { type: string } }; y: { scale: { type: string } } };
    };
    expect(new Set(spec.data.values.map((v) => v.N))).toEqual(new Set([1024, 4096]));
    expect(spec.data.values).toHaveLength(6);
    expect([spec.encoding.x.scale.type, spec.encoding.y.scale.type]).toEqual(['log', 'log']);
  });

  test('the committed docs and README table are what the committed JSON renders: no figure typed by hand', () => {
    const r = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs', 'benchmarks.json'), 'utf8')) as Results;
    expect(fs.readFileSync(path.join(ROOT, 'docs', 'benchmarks.md'), 'utf8')).toBe(benchmarksMd(r));
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    expect(updateReadme(readme, r)).toBe(readme);
  });

  test('updateReadme replaces only what lies between the markers', () => {
    const readme = `intro\n${README_BEGIN}\nold table\n${README_END}\nafter\n`;
    const out = updateReadme(readme, results());
    expect(out.startsWith(`intro\n${README_BEGIN}\nMeasured 2026-01-02`)).toBe(true);
    expect(out.endsWith(`${README_END}\nafter\n`)).toBe(true);
    expect(out).not.toContain('old table');
    expect(() => updateReadme('no markers', results())).toThrow(/markers/);
  });
});

// The benchmark measures the cpu backend: run once, in the cpu project.
(process.env.FOURIERFORMER_DEVICE === 'cpu' ? describe : describe.skip)('npm run bench', () => {
  test('without PyTorch: ours only, a results file marked not comparable', () => {
    const out = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ff-bench-')), 'bench.json');
    const r = spawnSync(
      process.execPath,
      [
        '-r',
        'ts-node/register/transpile-only',
        'scripts/bench.ts',
        '--no-peer',
        '--only',
        'attention',
        '--shapes',
        'N 256',
        '--rounds',
        '2',
        '--attention-ms',
        '1',
        '--threads',
        '1',
        '--out',
        out,
      ],
      { cwd: ROOT, encoding: 'utf8' },
    );
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const res = JSON.parse(fs.readFileSync(out, 'utf8')) as Results;
    expect(res.peer).toBeNull();
    expect(res.comparable).toEqual({ ok: false, why: ['no PyTorch peer'] });
    expect(res.ours.threads).toBe(1);
    expect(res.attention).toHaveLength(1);
    const f = res.attention![0].figures;
    expect(Object.keys(f)).toEqual(['ours_fourier', 'ours_dot', 'ours_neural']);
    for (const e of Object.values(f))
      expect(e).toMatchObject({ n: 4, round_medians: [expect.any(Number), expect.any(Number)] });
  });
});

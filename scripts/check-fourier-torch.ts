// A second opinion from PyTorch, run by hand (not in CI): the Fourier attention cases of the
// regime tests (stable at D = 64 and 128 with x = R (q - k) up to ~10, the default mode's deep
// underflow) through torch autograd in float64 (scripts/peer/fourier_float64_peer.py), compared
// with the package's float64 reference, with the kernels of every backend this machine runs, and
// with torch in float32 (what plain float32 arithmetic gives on the same inputs). Errors are
// max |a - b| / max |b| per tensor against torch float64; a case misses at 1e-4 (out) / 1e-3
// (gradients).
//   PY=$(/work/shared/tools/torch-peer) FOURIERFORMER_TORCH_PYTHON=$PY \
//     FOURIERFORMER_CPU_ISA=avx2 npx ts-node scripts/check-fourier-torch.ts
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import * as ff from '../lib';
import { findPeers, runPeer } from './torch-peer';

const { fourierAttentionRef, fourierAttentionGradRef, gaussian, refArray, relErr, uniform } = ff.reference;
const names = ['out', 'dq', 'dk', 'dv', 'dR'] as const;
type Grads = Record<(typeof names)[number], ArrayLike<number>>;

interface Case {
  label: string;
  H: number;
  N: number;
  D: number;
  RShape: number[];
  rLo: number;
  rHi: number;
  seed: number;
  opts: { causal: boolean; stable: boolean };
}

const cases: Case[] = [];
for (const D of [64, 128])
  for (const causal of [false, true])
    for (const r of [1, 2, 2.7, 3])
      for (const seed of [1, 2, 3])
        cases.push({
          label: `stable D${D} ${causal ? 'causal' : 'full'} R=${r} seed ${seed}`,
          H: 1,
          N: 12,
          D,
          RShape: [1],
          rLo: r,
          rHi: r,
          seed: 100 * seed,
          opts: { causal, stable: true },
        });
for (const D of [64, 128])
  for (const seed of [1, 11])
    cases.push({
      label: `stable D${D} causal R[2,${D}] in [1,3] seed ${seed}`,
      H: 2,
      N: 12,
      D,
      RShape: [2, D],
      rLo: 1,
      rHi: 3,
      seed,
      opts: { causal: true, stable: true },
    });
for (const seed of [3, 4, 5, 7])
  cases.push({
    label: `default D64 R=2 (deep underflow) seed ${seed}`,
    H: 1,
    N: 12,
    D: 64,
    RShape: [1],
    rLo: 2,
    rHi: 2,
    seed,
    opts: { causal: false, stable: false },
  });

const peer = findPeers()[0];
if (!peer) {
  console.error('no python with torch: set FOURIERFORMER_TORCH_PYTHON (see the header)');
  process.exit(1);
}
const devices = ff
  .backends()
  .filter((b) => b.available && b.device !== 'cuda')
  .map((b) => b.device);
const size = (s: number[]): number => s.reduce((a, b) => a * b, 1);
const inputs = cases.map((c) => {
  const qs = [1, c.H, c.N, c.D],
    vs = [1, c.H, c.N, 16];
  return {
    qs,
    vs,
    q: gaussian(size(qs), 0.6, c.seed),
    k: gaussian(size(qs), 0.6, c.seed + 1),
    v: gaussian(size(vs), 1, c.seed + 2),
    dout: gaussian(size(vs), 1, c.seed + 4),
    R: uniform(size(c.RShape), c.rLo, c.rHi, c.seed + 3),
  };
});
// the inputs go through a file (too long for one command-line argument)
const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ff-torch-')), 'cases.json');
fs.writeFileSync(
  file,
  JSON.stringify(
    cases.map((c, n) => ({
      q: Array.from(inputs[n].q),
      k: Array.from(inputs[n].k),
      v: Array.from(inputs[n].v),
      R: Array.from(inputs[n].R),
      dout: Array.from(inputs[n].dout),
      qshape: inputs[n].qs,
      kshape: inputs[n].qs,
      vshape: inputs[n].vs,
      rshape: c.RShape,
      power: 4,
      eps: 1e-6,
      ...c.opts,
    })),
  ),
);
const torch = runPeer<{ torch: string; results: { float64: Grads; float32: Grads }[] }>(
  peer,
  'fourier_float64_peer.py',
  [{ file }],
);
fs.rmSync(path.dirname(file), { recursive: true });

function kernel(device: ff.Device, c: Case, n: number): Grads {
  return ff.tidy(() => {
    const x = inputs[n];
    const t = (a: Float32Array, s: number[]): ff.Tensor => ff.tensor(a, s, { device, requiresGrad: true });
    const [q, k, v, R] = [t(x.q, x.qs), t(x.k, x.qs), t(x.v, x.vs), t(x.R, c.RShape)];
    const h = ff.fourierAttention(q, k, v, R, c.opts);
    h.backward(ff.tensor(x.dout, x.vs, { device }));
    const g = (a: ff.Tensor): Float32Array => (a.grad as ff.Tensor).toFloat32Array();
    return { out: h.toFloat32Array(), dq: g(q), dk: g(k), dv: g(v), dR: g(R) };
  });
}

const worst = (a: Grads, b: Grads): { out: number; grad: number } => ({
  out: relErr(a.out, b.out),
  grad: Math.max(...names.slice(1).map((m) => relErr(a[m], b[m]))),
});
const fmt = (e: { out: number; grad: number }): string =>
  `${e.out.toExponential(1).padStart(8)} ${e.grad.toExponential(1).padStart(8)}`;
const misses: Record<string, number> = {};
const miss = (who: string, e: { out: number; grad: number }): string => {
  const m = e.out > 1e-4 || e.grad > 1e-3;
  if (m) misses[who] = (misses[who] ?? 0) + 1;
  return m ? '*' : ' ';
};
const isa = process.env.FOURIERFORMER_CPU_ISA ?? 'default';
console.log(
  `torch ${torch.torch}; cpu ISA ${isa}; errors against torch float64 (out, worst gradient); * = over 1e-4 / 1e-3`,
);
console.log(
  `${'case'.padEnd(44)} ${'reference f64'.padEnd(18)} ${devices.map((d) => d.padEnd(18)).join(' ')} torch float32`,
);
cases.forEach((c, n) => {
  const t64 = torch.results[n].float64;
  const x = inputs[n];
  const refs = [refArray(x.q, x.qs), refArray(x.k, x.qs), refArray(x.v, x.vs), refArray(x.R, c.RShape)] as const;
  const g = fourierAttentionGradRef(...refs, refArray(x.dout, x.vs), c.opts);
  const ref = {
    out: fourierAttentionRef(...refs, c.opts).data,
    dq: g.dq.data,
    dk: g.dk.data,
    dv: g.dv.data,
    dR: g.dR.data,
  };
  const cols = [
    worst(ref, t64),
    ...devices.map((d) => worst(kernel(d, c, n), t64)),
    worst(torch.results[n].float32, t64),
  ];
  const who = ['reference', ...devices, 'torch float32'];
  console.log(`${c.label.padEnd(44)} ${cols.map((e, i) => fmt(e) + miss(who[i], e)).join(' ')}`);
});
console.log(`misses of ${cases.length} cases: ${JSON.stringify(misses)}`);

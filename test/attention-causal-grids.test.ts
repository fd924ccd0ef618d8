// The CUDA attention kernels' causal grids (csrc/cuda/attention_blocks.h): paired (a block runs
// row blocks r and nb - 1 - r) and unpaired, forced by FF_CUDA_CAUSAL_PAIRING in two child
// processes, must give the same bits (a row's sums run in the same order either way; the dR and
// weight partials are per row block), and the paired results must match the float64 reference.
// Shapes: odd row-block counts (the pairing's middle block runs alone), even ones, a last row
// block of one row, N below one row block, N = 1; every lane-group size G (row blocks of
// 128/G rows, 256/G for G >= 16), so every tile layout (padded for G >= 8) is read.
import { spawnSync } from 'child_process';
import * as path from 'path';
import * as ff from '../lib';
import { device, relErr } from './helpers/compare';
import { decodeGridResults, gridInputs, GridCase } from './helpers/causal-grids';

const { refArray } = ff.reference;

const CASES: GridCase[] = [
  // G 1 (128-row blocks): N = 3 (one row block); 3 row blocks, the last of 44 rows
  { kind: 'fourier', B: 1, H: 2, N: 3, D: 8, Dv: 8, seed: 10 },
  { kind: 'fourier', B: 1, H: 2, N: 300, D: 8, Dv: 8, seed: 20 },
  // G 2 (64): 3 row blocks, the last of 1 row; G 4 (32): 4 row blocks, ragged
  { kind: 'fourier', B: 2, H: 1, N: 129, D: 16, Dv: 16, seed: 30 },
  { kind: 'fourier', B: 1, H: 2, N: 97, D: 32, Dv: 32, seed: 40 },
  // G 8 (16-row blocks, padded tiles): 5 row blocks; G 32 (8): 3, ragged
  { kind: 'fourier', B: 1, H: 2, N: 80, D: 64, Dv: 64, seed: 50 },
  { kind: 'fourier', B: 1, H: 1, N: 21, D: 256, Dv: 256, seed: 60 },
  { kind: 'fourier-stable', B: 1, H: 2, N: 129, D: 16, Dv: 16, seed: 70 },
  { kind: 'fourier-stable', B: 1, H: 1, N: 160, D: 32, Dv: 32, seed: 80 },
  { kind: 'dot', B: 1, H: 1, N: 1, D: 8, Dv: 8, seed: 90 },
  { kind: 'dot', B: 1, H: 2, N: 50, D: 16, Dv: 16, seed: 100 },
  { kind: 'dot', B: 1, H: 2, N: 300, D: 8, Dv: 8, seed: 110 },
  { kind: 'dot', B: 2, H: 1, N: 200, D: 16, Dv: 16, seed: 120 },
  { kind: 'dot', B: 1, H: 2, N: 33, D: 64, Dv: 64, seed: 130 },
  { kind: 'dot', B: 1, H: 1, N: 40, D: 128, Dv: 128, seed: 140 },
  { kind: 'neural', B: 1, H: 1, N: 1, D: 4, Dv: 8, seed: 150 },
  { kind: 'neural', B: 1, H: 2, N: 129, D: 4, Dv: 16, seed: 160 },
  { kind: 'neural', B: 2, H: 1, N: 97, D: 4, Dv: 32, seed: 170 },
  { kind: 'neural', B: 1, H: 1, N: 80, D: 4, Dv: 64, seed: 180 },
];

const name = (c: GridCase) => `${c.kind} B ${c.B} H ${c.H} N ${c.N} D ${c.D} Dv ${c.Dv}`;

/** The cases' outputs and gradients in a child process with FF_CUDA_CAUSAL_PAIRING = mode. */
function runChild(mode: 'on' | 'off'): Record<string, Float32Array>[] {
  const helper = path.join(__dirname, 'helpers', 'causal-grids');
  const script = `const g = require(${JSON.stringify(helper)});
    process.stdout.write(g.runGridCasesJson(${JSON.stringify(CASES)}, ${JSON.stringify(device())}) + '\\n');`;
  const args = [...(__filename.endsWith('.ts') ? ['-r', 'ts-node/register/transpile-only'] : []), '-e', script];
  const r = spawnSync(process.execPath, args, {
    encoding: 'utf8',
    maxBuffer: 1 << 28,
    env: { ...process.env, FF_CUDA_CAUSAL_PAIRING: mode },
  });
  if (r.status !== 0) throw new Error(`child (pairing ${mode}) failed: ${r.stderr}`);
  return decodeGridResults(r.stdout.trim().split('\n').pop() as string);
}

/** The float64 reference's output and gradients for a case, by the same names. */
function reference(c: GridCase): Record<string, Float64Array | number[]> {
  const t = gridInputs(c).tensors;
  const r = (n: string) => refArray(t[n][0], t[n][1]);
  const opts = { causal: true };
  if (c.kind === 'dot') {
    const g = ff.reference.dotAttentionGradRef(r('q'), r('k'), r('v'), r('dout'), opts);
    return {
      out: ff.reference.dotAttentionRef(r('q'), r('k'), r('v'), opts).data,
      dq: g.dq.data,
      dk: g.dk.data,
      dv: g.dv.data,
    };
  }
  if (c.kind === 'neural') {
    const p = { w1: r('w1'), b1: r('b1'), w2: r('w2'), b2: r('b2'), w3: r('w3'), b3: r('b3') };
    const g = ff.reference.neuralAttentionGradRef(r('q'), r('k'), r('v'), p, r('dout'), opts);
    return {
      out: ff.reference.neuralAttentionRef(r('q'), r('k'), r('v'), p, opts).data,
      dq: g.dq.data,
      dk: g.dk.data,
      dv: g.dv.data,
      dw1: g.params.w1.data,
      db1: g.params.b1.data,
      dw2: g.params.w2.data,
      db2: g.params.b2.data,
      dw3: g.params.w3.data,
    };
  }
  const fo = { ...opts, stable: c.kind === 'fourier-stable' };
  const g = ff.reference.fourierAttentionGradRef(r('q'), r('k'), r('v'), r('R'), r('dout'), fo);
  return {
    out: ff.reference.fourierAttentionRef(r('q'), r('k'), r('v'), r('R'), fo).data,
    dq: g.dq.data,
    dk: g.dk.data,
    dv: g.dv.data,
    dR: g.dR.data,
  };
}

// On cpu the variable changes nothing: the comparison would hold trivially.
(device() === 'cpu' ? describe.skip : describe)(`causal attention grids, paired and unpaired, on ${device()}`, () => {
  let paired: Record<string, Float32Array>[] = [];
  let unpaired: Record<string, Float32Array>[] = [];
  beforeAll(() => {
    paired = runChild('on');
    unpaired = runChild('off');
  });

  CASES.forEach((c, n) => {
    test(name(c), () => {
      const on = paired[n],
        off = unpaired[n];
      expect(Object.keys(on).sort()).toEqual(Object.keys(off).sort());
      for (const key of Object.keys(on)) {
        // The same bits (NaN-free: every value finite).
        expect({ [key]: on[key].every(Number.isFinite) }).toEqual({ [key]: true });
        expect({ [key]: Buffer.compare(Buffer.from(on[key].buffer), Buffer.from(off[key].buffer)) }).toEqual({
          [key]: 0,
        });
      }
      const ref = reference(c);
      for (const [key, want] of Object.entries(ref)) {
        // The network's weight gradients are sums over every pair, some ~0 by the softmax's
        // shift invariance (rounding noise ~1e-7 against a reference of ~1e-16): absolute.
        const err =
          key.startsWith('dw') || key.startsWith('db')
            ? Math.max(...Array.from(on[key], (x, i) => Math.abs(x - want[i])))
            : relErr(on[key], want);
        expect({ [key]: err < (key === 'out' ? 1e-4 : 1e-3) ? 'ok' : err }).toEqual({ [key]: 'ok' });
      }
    });
  });
});

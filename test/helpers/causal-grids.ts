// Causal attention cases for test/attention-causal-grids.test.ts: seeded inputs, and every output
// and gradient of one case on a device. The test runs them in child processes, one with the
// CUDA kernels' causal row blocks paired and one unpaired (FF_CUDA_CAUSAL_PAIRING, read by the
// native code from the process's environment, which a jest test file cannot set for itself).
import * as ff from '../../lib';

export type Kind = 'fourier' | 'fourier-stable' | 'dot' | 'neural';

export interface GridCase {
  kind: Kind;
  B: number;
  H: number;
  N: number;
  D: number;
  Dv: number;
  seed: number;
}

export interface GridInputs {
  /** name -> [values, shape]; q, k, v, dout, and R (fourier) or the network's weights (neural). */
  tensors: Record<string, [Float32Array, number[]]>;
}

const NEURAL_D1 = 4,
  NEURAL_D2 = 2;

export function gridInputs(c: GridCase): GridInputs {
  const u = (shape: number[], lo: number, hi: number, seed: number): [Float32Array, number[]] => [
    ff.reference.uniform(
      shape.reduce((a, b) => a * b, 1),
      lo,
      hi,
      seed,
    ),
    shape,
  ];
  const t: Record<string, [Float32Array, number[]]> = {
    q: u([c.B, c.H, c.N, c.D], -0.8, 0.8, c.seed),
    k: u([c.B, c.H, c.N, c.D], -0.8, 0.8, c.seed + 1),
    v: u([c.B, c.H, c.N, c.Dv], -1, 1, c.seed + 2),
    dout: u([c.B, c.H, c.N, c.Dv], -1, 1, c.seed + 3),
  };
  // R small enough that no row's kernel sum underflows at D 64 (|x| <= 1.6 R).
  if (c.kind.startsWith('fourier')) t.R = u([c.H, c.D], 0.2, 0.6, c.seed + 4);
  if (c.kind === 'neural') {
    const w = (rows: number, cols: number, s: number) => u([rows, cols], -1 / Math.sqrt(cols), 1 / Math.sqrt(cols), s);
    Object.assign(t, {
      w1: w(NEURAL_D1, 2 * c.D, c.seed + 10),
      b1: u([NEURAL_D1], -0.5, 0.5, c.seed + 11),
      w2: w(NEURAL_D2, NEURAL_D1, c.seed + 12),
      b2: u([NEURAL_D2], -0.5, 0.5, c.seed + 13),
      w3: w(1, NEURAL_D2, c.seed + 14),
      b3: u([1], -0.5, 0.5, c.seed + 15),
    });
  }
  return { tensors: t };
}

/** The case's causal attention on `device`: out, then the gradient of every input but dout. */
export function runGridCase(c: GridCase, device: ff.Device): Record<string, Float32Array> {
  const { tensors } = gridInputs(c);
  return ff.tidy(() => {
    const x: Record<string, ff.Tensor> = {};
    for (const [name, [values, shape]] of Object.entries(tensors))
      x[name] = ff.tensor(values, shape, { device, requiresGrad: name !== 'dout' });
    let out: ff.Tensor;
    if (c.kind === 'dot') out = ff.dotProductAttention(x.q, x.k, x.v, { causal: true });
    else if (c.kind === 'neural') {
      const { w1, b1, w2, b2, w3, b3 } = x;
      out = ff.neuralAttention(x.q, x.k, x.v, { w1, b1, w2, b2, w3, b3 }, { causal: true });
    } else out = ff.fourierAttention(x.q, x.k, x.v, x.R, { causal: true, stable: c.kind === 'fourier-stable' });
    out.backward(x.dout);
    const result: Record<string, Float32Array> = { out: out.toFloat32Array() };
    for (const name of Object.keys(x)) {
      const g = x[name].grad;
      if (name !== 'dout' && g !== null) result[`d${name}`] = g.toFloat32Array();
    }
    return result;
  });
}

/** runGridCase over cases, as one line of JSON (Float32Arrays as base64 of their bytes). */
export function runGridCasesJson(cases: GridCase[], device: ff.Device): string {
  return JSON.stringify(
    cases.map((c) =>
      Object.fromEntries(
        Object.entries(runGridCase(c, device)).map(([name, a]) => [
          name,
          Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64'),
        ]),
      ),
    ),
  );
}

export function decodeGridResults(json: string): Record<string, Float32Array>[] {
  return (JSON.parse(json) as Record<string, string>[]).map((r) =>
    Object.fromEntries(
      Object.entries(r).map(([name, b64]) => {
        const bytes = Buffer.from(b64, 'base64');
        return [name, new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength))];
      }),
    ),
  );
}

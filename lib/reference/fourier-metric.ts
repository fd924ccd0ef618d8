// Pure-TypeScript float64 reference of the Fourier metric and its gradients, for tests only.
// Deliberately the plainest algorithm (no fusion, O(D^2) leave-one-out products), so that it
// shares no shortcut with the native kernels it checks.

/** A dense row-major float64 array with its shape. */
export interface RefArray {
  data: Float64Array;
  shape: number[];
}

export function refArray(data: ArrayLike<number>, shape: number[]): RefArray {
  return { data: Float64Array.from(data), shape: [...shape] };
}

/** sin(x)/x in float64; the series below 1e-4, where the closed form would lose digits. */
export function sincRef(x: number): number {
  if (Math.abs(x) < 1e-4) return 1 - (x * x) / 6;
  return Math.sin(x) / x;
}

/** d/dx sin(x)/x = (x cos x - sin x) / x^2 in float64. */
export function sincDerivRef(x: number): number {
  if (Math.abs(x) < 1e-4) return -x / 3 + (x * x * x) / 30;
  return (x * Math.cos(x) - Math.sin(x)) / (x * x);
}

interface Dims {
  B: number;
  H: number;
  Nq: number;
  Nk: number;
  D: number;
  /** R_hd for head h, feature d, after broadcasting R to [H, D]. */
  r: (h: number, d: number) => number;
}

function dims(q: RefArray, k: RefArray, R: RefArray): Dims {
  const [B, H, Nq, D] = q.shape;
  const Nk = k.shape[2];
  const rs = R.shape;
  const rH = rs.length === 2 ? rs[0] : 1;
  const rD = rs.length === 0 ? 1 : rs[rs.length - 1];
  return { B, H, Nq, Nk, D, r: (h, d) => R.data[(rH === 1 ? 0 : h) * rD + (rD === 1 ? 0 : d)] };
}

/** K [B,H,Nq,Nk] = prod_d sinc(R_hd (q_id - k_jd))^power. */
export function fourierMetricRef(q: RefArray, k: RefArray, R: RefArray, power = 4): RefArray {
  const { B, H, Nq, Nk, D, r } = dims(q, k, R);
  const out = new Float64Array(B * H * Nq * Nk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Nq; i++)
        for (let j = 0; j < Nk; j++) {
          let K = 1;
          for (let d = 0; d < D; d++) {
            const qv = q.data[((b * H + h) * Nq + i) * D + d];
            const kv = k.data[((b * H + h) * Nk + j) * D + d];
            K *= sincRef(r(h, d) * (qv - kv)) ** power;
          }
          out[((b * H + h) * Nq + i) * Nk + j] = K;
        }
  return { data: out, shape: [B, H, Nq, Nk] };
}

/** dq, dk, dR of sum(K * dK), with dR summed to R's own shape. */
export function fourierMetricGradRef(
  q: RefArray,
  k: RefArray,
  R: RefArray,
  dK: RefArray,
  power = 4,
): { dq: RefArray; dk: RefArray; dR: RefArray } {
  const { B, H, Nq, Nk, D, r } = dims(q, k, R);
  const dq = new Float64Array(q.data.length);
  const dk = new Float64Array(k.data.length);
  const dRfull = new Float64Array(H * D);
  const s = new Float64Array(D);
  const ds = new Float64Array(D);
  const x = new Float64Array(D);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < H; h++)
      for (let i = 0; i < Nq; i++)
        for (let j = 0; j < Nk; j++) {
          const g = dK.data[((b * H + h) * Nq + i) * Nk + j];
          const qo = ((b * H + h) * Nq + i) * D;
          const ko = ((b * H + h) * Nk + j) * D;
          for (let d = 0; d < D; d++) {
            x[d] = q.data[qo + d] - k.data[ko + d];
            s[d] = sincRef(r(h, d) * x[d]);
            ds[d] = sincDerivRef(r(h, d) * x[d]);
          }
          for (let d = 0; d < D; d++) {
            let others = 1;
            for (let e = 0; e < D; e++) if (e !== d) others *= s[e] ** power;
            // dK/d(R x_d) = p s_d^(p-1) s'_d prod_{e != d} s_e^p
            const dKdx = power * s[d] ** (power - 1) * ds[d] * others;
            const t = g * dKdx;
            dq[qo + d] += t * r(h, d);
            dk[ko + d] -= t * r(h, d);
            dRfull[h * D + d] += t * x[d];
          }
        }
  // Sum dR over the dimensions R was broadcast along.
  const rs = R.shape;
  const rH = rs.length === 2 ? rs[0] : 1;
  const rD = rs.length === 0 ? 1 : rs[rs.length - 1];
  const dR = new Float64Array(R.data.length);
  for (let h = 0; h < H; h++)
    for (let d = 0; d < D; d++) dR[(rH === 1 ? 0 : h) * rD + (rD === 1 ? 0 : d)] += dRfull[h * D + d];
  return {
    dq: { data: dq, shape: [...q.shape] },
    dk: { data: dk, shape: [...k.shape] },
    dR: { data: dR, shape: [...R.shape] },
  };
}

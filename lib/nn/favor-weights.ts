// The weights a Performer (FAVOR+) layer applies, for analysis only (attention maps, head
// redundancy, attention statistics): kappa_ij of csrc/common/favor.h, computed in float64 on the
// host from the layer's q, k [B, H, Nq, F], [B, H, Nk, F] and projection [M, F], row by row.
// Cost: O(B H (Nq + Nk) M F + B H Nq Nk M) host flops.
import type { Tensor } from '../tensor';

export interface FavorWeightOptions {
  causal: boolean;
  scale: number;
  eps: number;
}

/** exp(l - max l) of each row of x [rows, F] into out [rows, M]; returns the rows' max l. */
function features(
  x: Float32Array,
  rows: number,
  F: number,
  W: Float32Array,
  M: number,
  scale: number,
  out: Float64Array,
): Float64Array {
  const s = new Float64Array(rows);
  const alpha = Math.sqrt(scale);
  for (let r = 0; r < rows; r++) {
    let sq = 0;
    for (let f = 0; f < F; f++) sq += x[r * F + f] ** 2;
    let mx = -Infinity;
    for (let m = 0; m < M; m++) {
      let wx = 0;
      for (let f = 0; f < F; f++) wx += W[m * F + f] * x[r * F + f];
      const l = alpha * wx - 0.5 * scale * sq;
      out[r * M + m] = l;
      mx = Math.max(mx, l);
    }
    for (let m = 0; m < M; m++) out[r * M + m] = Math.exp(out[r * M + m] - mx);
    s[r] = mx;
  }
  return s;
}

/**
 * Calls visit(bh, i, w, n) for every query row: w[0 .. n) the row's unnormalised weights kappa_ij
 * over the keys it sees (n = Nk, or i + 1 when causal). w is reused between calls.
 */
export function favorWeightRows(
  q: Tensor,
  k: Tensor,
  projection: Tensor,
  o: FavorWeightOptions,
  visit: (bh: number, i: number, w: Float64Array, n: number) => void,
): void {
  const [B, H, Nq, F] = q.shape;
  const Nk = k.shape[2];
  const M = projection.shape[0];
  const W = projection.toFloat32Array();
  const phi = new Float64Array(B * H * Nq * M),
    e = new Float64Array(B * H * Nk * M);
  features(q.toFloat32Array(), B * H * Nq, F, W, M, o.scale, phi);
  const sk = features(k.toFloat32Array(), B * H * Nk, F, W, M, o.scale, e);
  const w = new Float64Array(Nk);
  for (let bh = 0; bh < B * H; bh++) {
    let running = -Infinity;
    let all = -Infinity;
    for (let j = 0; j < Nk; j++) all = Math.max(all, sk[bh * Nk + j]);
    for (let i = 0; i < Nq; i++) {
      const row = bh * Nq + i;
      const n = o.causal ? i + 1 : Nk;
      if (o.causal) running = Math.max(running, sk[bh * Nk + i]);
      const Mi = o.causal ? running : all;
      let sigma = 0;
      for (let m = 0; m < M; m++) sigma += phi[row * M + m] + o.eps;
      for (let j = 0; j < n; j++) {
        const col = bh * Nk + j;
        let p = 0;
        for (let m = 0; m < M; m++) p += (phi[row * M + m] + o.eps) * e[col * M + m];
        w[j] = Math.exp(sk[col] - Mi) * p + o.eps * sigma;
      }
      visit(bh, i, w, n);
    }
  }
}

// Head redundancy, the paper's Table 3: how different the heads of a layer attend. For each layer's
// attention maps A [B, H, N, N] (MultiHeadAttention.attentionMap, a model's attentionMaps), take
// for every example b and every pair of heads h < g the distance ||A[b, h] - A[b, g]||_F (L2 over
// the N x N map), then the mean and the standard deviation (population, over the B H (H - 1) / 2
// distances) per layer. The result averages the per-layer means and per-layer stds over layers.
// Larger distances: less redundant heads. Computed in float64 on the host; the accumulator takes
// the examples batch by batch (sums of d and d^2 per layer), so that long inputs need not hold every
// map at once.
import { shapeString } from '../shape';
import { checkTensor, Tensor } from '../tensor';

/** What the spread printed beside a redundancy means, for the tables and logs. */
export const REDUNDANCY_CONVENTION =
  'head redundancy: per layer, the L2 distances between the attention maps of every pair of heads ' +
  "of every example, their mean ± standard deviation (population), both averaged over the layers (the paper's Table 3 caption " +
  'says standard deviation; its text says variance)';

export interface HeadRedundancy {
  mean: number;
  std: number;
  perLayer: { mean: number; std: number }[];
}

/** Sums of the distances and their squares, per layer, over the examples added so far. */
export class HeadRedundancyAccumulator {
  private sums: { n: number; s: number; s2: number }[] | null = null;

  /** Adds a batch: one map [B, H, N, N] per layer (the same layers every time). */
  add(maps: Tensor[]): void {
    if (!Array.isArray(maps) || maps.length === 0)
      throw new Error('maps: expected a non-empty array of attention maps [B, H, N, N], one per layer');
    if (this.sums !== null && this.sums.length !== maps.length)
      throw new Error(`maps: expected ${this.sums.length} layers, as before, got ${maps.length}`);
    const sums = this.sums ?? maps.map(() => ({ n: 0, s: 0, s2: 0 }));
    maps.forEach((m, i) => {
      for (const d of layerDistances(m, `maps[${i}]`)) {
        sums[i].n++;
        sums[i].s += d;
        sums[i].s2 += d * d;
      }
    });
    this.sums = sums;
  }

  result(): HeadRedundancy {
    if (this.sums === null) throw new Error('HeadRedundancyAccumulator: no maps were added');
    const perLayer = this.sums.map(({ n, s, s2 }) => {
      const mean = s / n;
      return { mean, std: Math.sqrt(Math.max(0, s2 / n - mean * mean)) };
    });
    const avg = (f: (l: { mean: number; std: number }) => number) =>
      perLayer.reduce((a, l) => a + f(l), 0) / perLayer.length;
    return { mean: avg((l) => l.mean), std: avg((l) => l.std), perLayer };
  }
}

function layerDistances(map: Tensor, what: string): number[] {
  checkTensor(map, what);
  if (map.ndim !== 4 || map.shape[2] !== map.shape[3] || map.size === 0) {
    throw new Error(`${what}: expected attention maps [B, H, N, N], got shape ${shapeString(map.shape)}`);
  }
  const [B, H, N] = map.shape;
  if (H < 2) throw new Error(`${what}: head redundancy needs at least 2 heads, got shape ${shapeString(map.shape)}`);
  const a = map.toFloat32Array();
  const size = N * N;
  const distances: number[] = [];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let g = h + 1; g < H; g++) {
        const x = (b * H + h) * size,
          y = (b * H + g) * size;
        let s = 0;
        for (let i = 0; i < size; i++) {
          const d = a[x + i] - a[y + i];
          s += d * d;
        }
        distances.push(Math.sqrt(s));
      }
    }
  }
  return distances;
}

/** Mean and std of the pairwise L2 distances between heads' attention maps, per layer and averaged over layers. */
export function headRedundancy(maps: Tensor[]): HeadRedundancy {
  const acc = new HeadRedundancyAccumulator();
  acc.add(maps);
  return acc.result();
}

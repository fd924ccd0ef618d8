// Head redundancy, the paper's Table 3: how different the heads of a layer attend. For each layer's
// attention maps A [B, H, N, N] (MultiHeadAttention.attentionMap, a model's attentionMaps), take
// for every example b and every pair of heads h < g the distance ||A[b, h] - A[b, g]||_F (L2 over
// the N x N map), then the mean and the standard deviation (population, over the B H (H - 1) / 2
// distances) per layer. The result averages the per-layer means and per-layer stds over layers.
// Larger distances: less redundant heads. Computed in float64 on the host.
import { shapeString } from '../shape';
import { checkTensor, Tensor } from '../tensor';

export interface HeadRedundancy {
  mean: number;
  std: number;
  perLayer: { mean: number; std: number }[];
}

function layerRedundancy(map: Tensor, what: string): { mean: number; std: number } {
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
        const x = (b * H + h) * size, y = (b * H + g) * size;
        let s = 0;
        for (let i = 0; i < size; i++) {
          const d = a[x + i] - a[y + i];
          s += d * d;
        }
        distances.push(Math.sqrt(s));
      }
    }
  }
  const mean = distances.reduce((s, d) => s + d, 0) / distances.length;
  const variance = distances.reduce((s, d) => s + (d - mean) ** 2, 0) / distances.length;
  return { mean, std: Math.sqrt(variance) };
}

/** Mean and std of the pairwise L2 distances between heads' attention maps, per layer and averaged over layers. */
export function headRedundancy(maps: Tensor[]): HeadRedundancy {
  if (!Array.isArray(maps) || maps.length === 0) throw new Error('maps: expected a non-empty array of attention maps [B, H, N, N], one per layer');
  const perLayer = maps.map((m, i) => layerRedundancy(m, `maps[${i}]`));
  const avg = (f: (l: { mean: number; std: number }) => number) => perLayer.reduce((s, l) => s + f(l), 0) / perLayer.length;
  return { mean: avg((l) => l.mean), std: avg((l) => l.std), perLayer };
}

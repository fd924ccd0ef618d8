// The attention shapes of the benchmark and our side of them: one fwd+bwd of the fused Fourier,
// dot-product or Neural attention on inputs made once (q, k uniform in (-0.8, 0.8), v in (-1, 1),
// one radius per head in (1.5, 2.5), Neural Attention's projections and network in PyTorch's
// default init, the output's gradient all ones), the gradients of the run before freed first.
// scripts/peer/attention_peer.py builds the same inputs in PyTorch.
// 'performer': ff.performerAttention with 64 orthogonal random features of D; 'flt': the same op
// on FLT's extended rows, q and k of D + 128 features (64 frequencies' cos and sin), the scale
// 1/sqrt(D) (the snippets themselves, O(N m) elementwise work, are not part of the figure).
import * as ff from '../../lib';

export interface Shape {
  name: string;
  B: number;
  H: number;
  N: number;
  D: number;
  causal: boolean;
}

/**
 * The papers' models: FourierFormer's small and medium language models and DeiT-tiny, and Neural
 * Attention's language model (batch 1, context 1024, 8 heads of 64).
 */
export const MODEL_SHAPES: Shape[] = [
  { name: 'small LM', B: 8, H: 8, N: 256, D: 16, causal: true },
  { name: 'medium LM', B: 4, H: 8, N: 384, D: 32, causal: true },
  { name: 'DeiT-tiny', B: 8, H: 3, N: 197, D: 64, causal: false },
  { name: 'Neural Attention LM', B: 1, H: 8, N: 1024, D: 64, causal: true },
];

/** Time against sequence length: one sequence of the small LM's heads, N from 256 to 4096. */
export const LENGTH_SHAPES: Shape[] = [256, 512, 1024, 2048, 4096].map((N) => ({
  name: `N ${N}`,
  B: 1,
  H: 8,
  N,
  D: 16,
  causal: true,
}));

export const ALL_SHAPES = [...MODEL_SHAPES, ...LENGTH_SHAPES];

export function dims(s: Shape): string {
  return `B${s.B} H${s.H} N${s.N} D${s.D}${s.causal ? ' causal' : ''}`;
}

export type OurKind = 'fourier' | 'dot' | 'neural' | 'performer' | 'flt';

/**
 * Neural Attention's projection width for head dimension D: D / 32, at least 2 (the authors';
 * lib/nn/neural-score.ts).
 */
export const neuralWidth = (D: number): number => Math.min(8, Math.max(2, Math.floor(D / 32)));

/** FAVOR+'s random features in the 'performer' and 'flt' cases; FLT's added row features. */
export const BENCH_RANDOM_FEATURES = 64;
export const FLT_EXTRA_FEATURES = 128;

export interface Case {
  run(): void;
  dispose(): void;
}

/** q and k uniform in (-qkRange, qkRange): 0.8 keeps Fourier's |R (q - k)| within its polynomial bound. */
export function attentionCase(s: Shape, kind: OurKind, device: ff.Device, qkRange = 0.8): Case {
  const { uniform } = ff.reference;
  const n = s.B * s.H * s.N * s.D;
  const shape = [s.B, s.H, s.N, s.D];
  const F = s.D + (kind === 'flt' ? FLT_EXTRA_FEATURES : 0);
  const qk = [s.B, s.H, s.N, F];
  const q = ff.tensor(uniform((n / s.D) * F, -qkRange, qkRange, 1), qk, { device, requiresGrad: true });
  const k = ff.tensor(uniform((n / s.D) * F, -qkRange, qkRange, 2), qk, { device, requiresGrad: true });
  const v = ff.tensor(uniform(n, -1, 1, 3), shape, { device, requiresGrad: true });
  const R = ff.tensor(uniform(s.H, 1.5, 2.5, 4), [s.H, 1], { device, requiresGrad: true });
  const W = ff.orthogonalRandomFeatures(BENCH_RANDOM_FEATURES, F, { generator: new ff.Generator(5), device });
  const dout = ff.ones(shape, { device });
  // Neural Attention: the q and k projections [Fn, D] and the network, as torch.nn.Linear initialises them.
  const Fn = neuralWidth(s.D);
  const layer = (out: number, inF: number, seed: number) => {
    const b = 1 / Math.sqrt(inF);
    return [
      ff.tensor(uniform(out * inF, -b, b, seed), [out, inF], { device, requiresGrad: true }),
      ff.tensor(uniform(out, -b, b, seed + 1), [out], { device, requiresGrad: true }),
    ];
  };
  const net =
    kind === 'neural'
      ? [
          [Fn, s.D],
          [Fn, s.D],
          [Fn, 2 * Fn],
          [Fn >> 1, Fn],
          [1, Fn >> 1],
        ].flatMap(([o, i], n) => layer(o, i, 10 + 2 * n))
      : [];
  const leaves = [q, k, v, R, ...net];
  const forward = (): ff.Tensor => {
    if (kind === 'fourier') return ff.fourierAttention(q, k, v, R, { causal: s.causal });
    if (kind === 'dot') return ff.dotProductAttention(q, k, v, { causal: s.causal });
    if (kind === 'performer' || kind === 'flt')
      return ff.performerAttention(q, k, v, W, { causal: s.causal, scale: 1 / Math.sqrt(s.D) });
    const [wq, bq, wk, bk, w1, b1, w2, b2, w3, b3] = net;
    return ff.neuralAttention(
      ff.linear(q, wq, bq),
      ff.linear(k, wk, bk),
      v,
      { w1, b1, w2, b2, w3, b3 },
      { causal: s.causal },
    );
  };
  const freeGrads = () => {
    for (const t of leaves) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  return {
    run: () =>
      ff.tidy(() => {
        freeGrads();
        forward().backward(dout);
      }),
    dispose: () => {
      freeGrads();
      for (const t of [...leaves, W, dout]) t.dispose();
    },
  };
}

/**
 * The peak memory of PyTorch's materialised Fourier fwd+bwd (scripts/peer/attention_peer.py):
 * autograd keeps about a dozen float tensors of [B,H,N,N,D] alive at once (measured: 3.1 GiB of
 * peak resident memory growth at B8 H8 N256 D16, 256 MiB per such tensor).
 */
export function materialisedBytes(s: Shape): number {
  return s.B * s.H * s.N * s.N * s.D * 4 * 12;
}

/**
 * The peak memory of PyTorch's materialised Neural Attention fwd+bwd (the authors' way,
 * scripts/peer/attention_peer.py): about 16 floats per (i, j) pair at d' = 2 and 8 more per further
 * unit of d' (measured: 423 MiB of peak resident memory growth at B1 H8 N1024 D16, d' 2, 13 floats
 * per pair; 474 MiB at B1 H8 N512 D256, d' 8, 59 floats per pair).
 */
export function neuralMaterialisedBytes(s: Shape): number {
  return s.B * s.H * s.N * s.N * 4 * (16 + 8 * (neuralWidth(s.D) - 2));
}

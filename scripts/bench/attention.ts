// The attention shapes of the benchmark and our side of them: one fwd+bwd of the fused Fourier
// or dot-product attention on inputs made once (q, k uniform in (-0.8, 0.8), v in (-1, 1), one
// radius per head in (1.5, 2.5), the output's gradient all ones), the gradients of the run
// before freed first. scripts/peer/attention_peer.py builds the same inputs in PyTorch.
import * as ff from '../../lib';

export interface Shape {
  name: string;
  B: number;
  H: number;
  N: number;
  D: number;
  causal: boolean;
}

/** The paper's models: its small and medium language models and DeiT-tiny. */
export const MODEL_SHAPES: Shape[] = [
  { name: 'small LM', B: 8, H: 8, N: 256, D: 16, causal: true },
  { name: 'medium LM', B: 4, H: 8, N: 384, D: 32, causal: true },
  { name: 'DeiT-tiny', B: 8, H: 3, N: 197, D: 64, causal: false },
];

/** Time against sequence length: one sequence of the small LM's heads, N from 256 to 4096. */
export const LENGTH_SHAPES: Shape[] = [256, 512, 1024, 2048, 4096].map((N) => ({ name: `N ${N}`, B: 1, H: 8, N, D: 16, causal: true }));

export const ALL_SHAPES = [...MODEL_SHAPES, ...LENGTH_SHAPES];

export function dims(s: Shape): string {
  return `B${s.B} H${s.H} N${s.N} D${s.D}${s.causal ? ' causal' : ''}`;
}

export type OurKind = 'fourier' | 'dot';

export interface Case {
  run(): void;
  dispose(): void;
}

export function attentionCase(s: Shape, kind: OurKind, device: ff.Device): Case {
  const { uniform } = ff.reference;
  const n = s.B * s.H * s.N * s.D;
  const shape = [s.B, s.H, s.N, s.D];
  const q = ff.tensor(uniform(n, -0.8, 0.8, 1), shape, { device, requiresGrad: true });
  const k = ff.tensor(uniform(n, -0.8, 0.8, 2), shape, { device, requiresGrad: true });
  const v = ff.tensor(uniform(n, -1, 1, 3), shape, { device, requiresGrad: true });
  const R = ff.tensor(uniform(s.H, 1.5, 2.5, 4), [s.H, 1], { device, requiresGrad: true });
  const dout = ff.ones(shape, { device });
  const leaves = [q, k, v, R];
  const freeGrads = () => {
    for (const t of leaves) {
      t.grad?.dispose();
      t.grad = null;
    }
  };
  return {
    run: () => ff.tidy(() => {
      freeGrads();
      const h = kind === 'fourier' ? ff.fourierAttention(q, k, v, R, { causal: s.causal }) : ff.dotProductAttention(q, k, v, { causal: s.causal });
      h.backward(dout);
    }),
    dispose: () => {
      freeGrads();
      for (const t of [...leaves, dout]) t.dispose();
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

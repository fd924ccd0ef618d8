// Float64 references of the optimizer rules (PyTorch's torch.optim.Adam / AdamW / SGD with
// foreach=False), over plain arrays, one step at a time.

export interface AdamRefState {
  m: Float64Array;
  v: Float64Array;
  step: number;
}

export function adamStepRef(
  p: Float64Array,
  g: ArrayLike<number>,
  s: AdamRefState,
  o: { lr: number; beta1: number; beta2: number; eps: number; weightDecay: number; decoupled: boolean },
): void {
  s.step += 1;
  const bc1 = 1 - o.beta1 ** s.step;
  const bc2 = 1 - o.beta2 ** s.step;
  for (let i = 0; i < p.length; i++) {
    let gi = g[i];
    if (o.decoupled) p[i] *= 1 - o.lr * o.weightDecay;
    else gi += o.weightDecay * p[i];
    s.m[i] = o.beta1 * s.m[i] + (1 - o.beta1) * gi;
    s.v[i] = o.beta2 * s.v[i] + (1 - o.beta2) * gi * gi;
    p[i] -= (o.lr / bc1) * (s.m[i] / (Math.sqrt(s.v[i]) / Math.sqrt(bc2) + o.eps));
  }
}

export function sgdStepRef(
  p: Float64Array,
  g: ArrayLike<number>,
  buf: Float64Array | null,
  o: { lr: number; momentum: number; dampening: number; weightDecay: number; nesterov: boolean },
): Float64Array | null {
  let b = buf;
  if (o.momentum !== 0 && b === null) b = new Float64Array(p.length);
  for (let i = 0; i < p.length; i++) {
    let gi = g[i] + o.weightDecay * p[i];
    if (b !== null) {
      b[i] = buf === null ? gi : o.momentum * b[i] + (1 - o.dampening) * gi;
      gi = o.nesterov ? gi + o.momentum * b[i] : b[i];
    }
    p[i] -= o.lr * gi;
  }
  return b;
}

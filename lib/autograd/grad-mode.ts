// Whether ops record the graph: off inside Function.forward and inside noGrad(fn).
let enabled = true;

export function isGradEnabled(): boolean {
  return enabled;
}

/** Runs fn without recording autograd history (torch.no_grad). */
export function noGrad<T>(fn: () => T): T {
  const prev = enabled;
  enabled = false;
  try {
    return fn();
  } finally {
    enabled = prev;
  }
}

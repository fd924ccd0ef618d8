"""PyTorch's side of the attention figures of scripts/bench.ts: one fwd+bwd of the same shapes.

- 'sdpa': PyTorch's fused scaled_dot_product_attention, the dot-product baseline.
- 'materialised': the paper's Fourier attention as its reference code computes it, through a
  [B,H,N,N,D] tensor: K = prod_d sinc(R_h (q_id - k_jd))^4, h = K v / (sum_j K + eps). Its
  memory grows as N^2 D (scripts/bench/attention.ts decides where it fits).

The inputs are those of scripts/bench/attention.ts: q, k uniform in (-0.8, 0.8), v in (-1, 1),
one radius per head in (1.5, 2.5), the output's gradient all ones.
"""
import math

import torch

def fourier_materialised(q, k, v, R, causal, power=4, eps=1e-6):
    """R broadcasts against [B,H,N,N,D] (per head: [1,H,1,1,1]; per feature: [D])."""
    x = R * (q.unsqueeze(3) - k.unsqueeze(2))  # [B,H,N,N,D]
    K = torch.sinc(x / math.pi).pow(power).prod(-1)  # sinc(x / pi) = sin(x) / x, 1 at 0
    if causal:
        n = q.shape[2]
        K = K.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1), 0)
    return (K @ v) / (K.sum(-1, keepdim=True) + eps)


def attention_case(s, kind, device):
    """A function running one fwd+bwd of `kind` at shape s ({B, H, N, D, causal}) on fresh grads."""
    B, H, N, D, causal = s["B"], s["H"], s["N"], s["D"], s["causal"]
    g = torch.Generator().manual_seed(0)

    def leaf(lo, hi, *shape):
        return (lo + (hi - lo) * torch.rand(*shape, generator=g)).to(device).requires_grad_(True)

    q, k, v = leaf(-0.8, 0.8, B, H, N, D), leaf(-0.8, 0.8, B, H, N, D), leaf(-1, 1, B, H, N, D)
    R = leaf(1.5, 2.5, H)
    dout = torch.ones(B, H, N, D, device=device)

    if kind == "sdpa":
        def run():
            q.grad = k.grad = v.grad = None
            torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal).backward(dout)
    elif kind == "materialised":
        def run():
            q.grad = k.grad = v.grad = R.grad = None
            fourier_materialised(q, k, v, R.view(1, -1, 1, 1, 1), causal).backward(dout)
    else:
        raise ValueError(f"attention kind: expected 'sdpa' or 'materialised', got {kind!r}")
    return run

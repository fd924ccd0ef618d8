"""PyTorch's side of the attention figures of scripts/bench.ts: one fwd+bwd of the same shapes.

- 'sdpa': PyTorch's fused scaled_dot_product_attention, the dot-product baseline.
- 'materialised': the paper's Fourier attention as its reference code computes it, through a
  [B,H,N,N,D] tensor: K = prod_d sinc(R_h (q_id - k_jd))^4, h = K v / (sum_j K + eps). Its
  memory grows as N^2 D (scripts/bench/attention.ts decides where it fits).
- 'neural_materialised': Neural Attention as its authors' code computes it: q and k projected to
  d' = max(2, D // 32) features (shared by the heads), every pair's [q'_i; k'_j] built as a
  [B,H,N,N,2d'] tensor (from q' and k' repeated N times, as that code does), the network
  Linear(2d', d'), ReLU, Linear(d', d'/2), ReLU, Linear(d'/2, 1), the causal mask to -inf, a
  softmax, then times v. Its memory grows as N^2 d'.

The inputs are those of scripts/bench/attention.ts: q, k uniform in (-0.8, 0.8), v in (-1, 1),
one radius per head in (1.5, 2.5), the network in PyTorch's default init, the output's gradient
all ones.
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


def neural_width(D):
    """The projection width d' of Neural Attention for head dimension D (scripts/bench/attention.ts)."""
    return min(8, max(2, D // 32))


def neural_materialised(q, k, v, layers, causal):
    """layers: the q and k projections and the network's three Linear layers."""
    q_proj, k_proj, fc1, fc2, fc3 = layers
    qp, kp = q_proj(q), k_proj(k)  # [B,H,N,d']
    n = q.shape[2]
    pairs = torch.cat((qp.unsqueeze(3).repeat(1, 1, 1, n, 1), kp.unsqueeze(2).repeat(1, 1, n, 1, 1)), dim=-1)
    score = fc3(torch.relu(fc2(torch.relu(fc1(pairs))))).squeeze(-1)  # [B,H,N,N]
    if causal:
        score = score.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1), float("-inf"))
    return torch.softmax(score, dim=-1) @ v


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
    elif kind == "neural_materialised":
        F = neural_width(D)
        torch.manual_seed(0)
        layers = [torch.nn.Linear(a, b).to(device) for a, b in ((D, F), (D, F), (2 * F, F), (F, F // 2), (F // 2, 1))]
        params = [p for layer in layers for p in layer.parameters()]

        def run():
            for t in [q, k, v, *params]:
                t.grad = None
            neural_materialised(q, k, v, layers, causal).backward(dout)
    else:
        raise ValueError(f"attention kind: expected 'sdpa', 'materialised' or 'neural_materialised', got {kind!r}")
    return run

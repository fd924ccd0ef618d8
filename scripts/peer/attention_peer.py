"""PyTorch peer for scripts/bench-attention.ts: times fwd+bwd of the same shapes in PyTorch.

  python attention_peer.py '<json: {"shapes": [...], "threads": 2, "device": "cpu"}>'

For each shape {name, B, H, N, D, causal}: PyTorch's fused scaled_dot_product_attention (SDPA)
and the paper's materialised Fourier attention (K = prod_d sinc(R (q_id - k_jd))^4 over a
[B,H,N,N,D] tensor, h = K v / (sum_j K + eps)). Best of several runs, milliseconds; prints
one JSON object. Materialised Fourier is skipped where its [B,H,N,N,D] tensors would not fit.
"""
import json
import math
import sys
import time

import torch


def best_ms(fn, runs, warmup=2, sync=lambda: None):
    for _ in range(warmup):
        fn()
    sync()
    best = math.inf
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        best = min(best, (time.perf_counter() - t0) * 1e3)
    return best


def fourier_materialised(q, k, v, R, causal, power=4, eps=1e-6):
    x = R.view(1, -1, 1, 1, 1) * (q.unsqueeze(3) - k.unsqueeze(2))  # [B,H,N,N,D]
    s = torch.sinc(x / math.pi)  # sin(x)/x with s(0) = 1
    K = s.pow(power).prod(-1)
    if causal:
        n = q.shape[2]
        K = K.masked_fill(torch.ones(n, n, dtype=torch.bool, device=q.device).triu(1), 0)
    return (K @ v) / (K.sum(-1, keepdim=True) + eps)


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(int(cfg.get("threads", 2)))
    dev = cfg.get("device", "cpu")
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    budget = float(cfg.get("materialise_bytes", 6e9))
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "device": dev, "results": {}}
    for s in cfg["shapes"]:
        B, H, N, D, causal = s["B"], s["H"], s["N"], s["D"], s["causal"]
        g = torch.Generator().manual_seed(0)
        mk = lambda lo, hi, *shape: (lo + (hi - lo) * torch.rand(*shape, generator=g)).to(dev).requires_grad_(True)
        q, k, v = mk(-0.8, 0.8, B, H, N, D), mk(-0.8, 0.8, B, H, N, D), mk(-1, 1, B, H, N, D)
        R = mk(1.5, 2.5, H)
        runs = int(s.get("runs", 10))

        def sdpa():
            q.grad = k.grad = v.grad = None
            torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=causal).sum().backward()

        res = {"sdpa_ms": best_ms(sdpa, runs, sync=sync)}
        if B * H * N * N * D * 4 * 6 <= budget:
            def fourier():
                q.grad = k.grad = v.grad = R.grad = None
                fourier_materialised(q, k, v, R, causal).sum().backward()

            res["fourier_materialised_ms"] = best_ms(fourier, max(2, runs // 5), warmup=1, sync=sync)
        out["results"][s["name"]] = res
    print(json.dumps(out))


if __name__ == "__main__":
    main()

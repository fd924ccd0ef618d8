"""PyTorch peer for scripts/check-fourier-torch.ts: Fourier attention and its gradients by torch
autograd, in float64 (the second opinion on the package's float64 reference) and in float32 (what
plain float32 arithmetic gives on the same inputs).

  python fourier_float64_peer.py '<json: {"file": path of a JSON list of cases {q, k, v, R, dout,
      qshape, kshape, vshape, rshape, power, causal, eps, stable}}>'

The formulas of the README, materialised over [B,H,Nq,Nk,D]: x = R (q_i - k_j) (R broadcast to
[H, D]), s = sin(x)/x (torch.sinc, so s(0) = 1), K = prod_d s^p; default out = K v / (sum_j K +
eps), stable out = softmax_j(p sum_d log|s|) v (the eps = 0 estimate in the log domain); causal
masks j > i. Prints one JSON object: per case and dtype, out and the gradients of
sum(out * dout) for q, k, v and R (R's gradient in R's own shape).
"""
import json
import math
import sys

import torch


def attention(q, k, v, R, rshape, H, D, power, causal, eps, stable):
    # R is [], [1], [D], [H, 1] or [H, D]: as [rH, rD], broadcast to [H, D]
    rh = rshape[0] if len(rshape) == 2 else 1
    rd = rshape[-1] if len(rshape) > 0 else 1
    r = R.reshape(rh, rd).expand(H, D)
    x = r.reshape(1, H, 1, 1, D) * (q.unsqueeze(3) - k.unsqueeze(2))  # [B,H,Nq,Nk,D]
    s = torch.sinc(x / math.pi)
    nq, nk = q.shape[2], k.shape[2]
    mask = torch.ones(nq, nk, dtype=torch.bool).triu(1) if causal else torch.zeros(nq, nk, dtype=torch.bool)
    if stable:
        logk = power * torch.log(s.abs()).sum(-1)
        logk = logk.masked_fill(mask, -math.inf)
        return torch.softmax(logk, -1) @ v
    K = s.pow(power).prod(-1).masked_fill(mask, 0)
    return (K @ v) / (K.sum(-1, keepdim=True) + eps)


def run(case, dtype):
    B, H, Nq, D = case["qshape"]
    Nk, Dv = case["kshape"][2], case["vshape"][3]
    t = lambda name, shape: torch.tensor(case[name], dtype=dtype).reshape(shape).requires_grad_(True)
    q, k, v = t("q", case["qshape"]), t("k", case["kshape"]), t("v", case["vshape"])
    R = t("R", case["rshape"])
    out = attention(q, k, v, R, case["rshape"], H, D, case["power"], case["causal"], case["eps"], case["stable"])
    dout = torch.tensor(case["dout"], dtype=dtype).reshape(out.shape)
    (out * dout).sum().backward()
    flat = lambda a: a.detach().double().reshape(-1).tolist()
    return {"out": flat(out), "dq": flat(q.grad), "dk": flat(k.grad), "dv": flat(v.grad), "dR": flat(R.grad)}


def main():
    with open(json.loads(sys.argv[1])["file"]) as f:
        cases = json.load(f)
    torch.set_num_threads(1)
    results = [{"float64": run(c, torch.float64), "float32": run(c, torch.float32)} for c in cases]
    print(json.dumps({"torch": torch.__version__, "results": results}))


if __name__ == "__main__":
    main()

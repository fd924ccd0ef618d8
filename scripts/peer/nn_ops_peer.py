# PyTorch's side of scripts/bench-nn-ops.ts: the same ops at the same sizes, forward + backward,
# median milliseconds per case. Argument: JSON {"cases": [...], "reps": n}. Prints one JSON line.
import json
import sys
import time

import torch


def median_ms(fn, reps):
    fn()
    fn()
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return times[len(times) // 2]


def case_fn(c):
    g = torch.Generator().manual_seed(0)
    kind = c["op"]
    if kind == "linear":
        rows, i, o = c["rows"], c["in"], c["out"]
        x = torch.rand(rows, i, generator=g, requires_grad=True)
        lin = torch.nn.Linear(i, o)
        dy = torch.rand(rows, o, generator=g)
        return lambda: lin(x).backward(dy)
    rows, C = c["rows"], c["C"]
    x = torch.rand(rows, C, generator=g, requires_grad=True)
    if kind == "layernorm":
        ln = torch.nn.LayerNorm(C)
        dy = torch.rand(rows, C, generator=g)
        return lambda: ln(x).backward(dy)
    if kind == "softmax":
        dy = torch.rand(rows, C, generator=g)
        return lambda: torch.softmax(x, -1).backward(dy)
    if kind == "cross_entropy":
        t = torch.randint(0, C, (rows,), generator=g)
        ls = c.get("labelSmoothing", 0.0)
        return lambda: torch.nn.functional.cross_entropy(x, t, label_smoothing=ls).backward()
    raise ValueError(kind)


def main():
    cfg = json.loads(sys.argv[1])
    out = {"threads": torch.get_num_threads(), "ms": []}
    for c in cfg["cases"]:
        out["ms"].append(median_ms(case_fn(c), cfg["reps"]))
    print(json.dumps(out))


if __name__ == "__main__":
    main()

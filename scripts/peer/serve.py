"""The PyTorch peer of scripts/bench.ts (started by scripts/torch-peer.ts, which preloads a fast
allocator and sets OMP_NUM_THREADS):

  python serve.py '{"threads": 2, "device": "cpu"}'              serve requests, one JSON per line
  python serve.py '{"threads": 2, "device": "cpu"}' '<request>'  answer one request and exit

Set up as PyTorch's CPU performance guide says, before anything is timed: torch.set_num_threads
to the thread count ours is bounded to, denormals flushed to zero (our kernels flush them too;
the materialised Fourier kernel underflows at large D and subnormal arithmetic would slow it
down). Requests and their replies:

  {"op": "info"}  -> versions, thread counts, the CPU capability PyTorch dispatches to, and the
                     allocator mapped into this process (read from /proc/self/maps)
  {"op": "attention", "shape": {B, H, N, D, causal}, "kind": "sdpa" | "materialised",
   "target_ms": t, "min_runs": a, "max_runs": b}  -> {"times_ms": [...], "cpu_per_wall": x}
  {"op": "train", "config": {...}, "kind": "dot" | "fourier", ...the same}
                                                   -> the same, for training steps of the bench LM

Timed as scripts/bench/timing.ts times ours: one warm-up run, then about t ms of timed runs (as
many as the warm-up run's time says, at least a, at most b), each ended by a synchronisation of
the device.
  {"op": "memory", "shape": ..., "kind": ...}  -> {"peak_rss_growth_mib": x}: how far one fwd+bwd
                     raises the resident size (VmHWM, reset first through /proc/self/clear_refs)
                     above where it stood, inputs and gradients included, after a small one at
                     N = 16 (as scripts/bench/memory-probe.ts measures ours; one-shot processes)

cpu_per_wall is the process's CPU time over the wall time of the timed runs: about the thread
count when every thread was busy. A failed request replies {"error": "..."}.
"""
import gc
import json
import math
import os
import platform
import sys
import time

import torch

from attention_peer import attention_case
from train_peer import train_step


def allocator():
    with open("/proc/self/maps") as f:
        paths = {line.split()[-1] for line in f if len(line.split()) >= 6}
    for name in ("tcmalloc", "jemalloc", "mimalloc"):
        found = sorted(p for p in paths if name in os.path.basename(p))
        if found:
            return {"name": name, "path": found[0]}
    return {"name": "glibc malloc", "path": None}


def info(cfg):
    return {
        "torch": torch.__version__,
        "python_version": platform.python_version(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "flush_denormal": cfg["flush_denormal"],
        "allocator": allocator(),
        "device": cfg["device"],
        "cuda": torch.cuda.get_device_name() if cfg["device"] == "cuda" else None,
    }


def time_runs(fn, req, sync):
    t0 = time.perf_counter()
    fn()  # the warm-up run
    sync()
    warm_ms = (time.perf_counter() - t0) * 1e3
    runs = max(req["min_runs"], min(req["max_runs"], math.ceil(req["target_ms"] / max(warm_ms, 1e-3))))
    times = []
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append((time.perf_counter() - t0) * 1e3)
    wall = time.perf_counter() - wall0
    return {"times_ms": times, "cpu_per_wall": (time.process_time() - cpu0) / wall if wall > 0 else None}


def status_mib(field):
    """VmRSS (resident now) or VmHWM (its high-water mark) of /proc/self/status, in MiB."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


class Peer:
    def __init__(self, cfg):
        self.cfg = cfg
        self.device = cfg["device"]
        self.sync = torch.cuda.synchronize if self.device == "cuda" else (lambda: None)
        self.steps = {}  # one model per attention kind, kept across rounds

    def handle(self, req):
        op = req["op"]
        if op == "info":
            return info(self.cfg)
        if op == "attention":
            fn = attention_case(req["shape"], req["kind"], self.device)
            return time_runs(fn, req, self.sync)
        if op == "train":
            key = (json.dumps(req["config"], sort_keys=True), req["kind"])
            if key not in self.steps:
                self.steps[key] = train_step(req["config"], req["kind"], self.device)
            return time_runs(self.steps[key], req, self.sync)
        if op == "memory":
            small = dict(req["shape"], N=16)
            attention_case(small, req["kind"], self.device)()
            gc.collect()
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # the high-water mark := the resident size now
            before = status_mib("VmRSS")
            attention_case(req["shape"], req["kind"], self.device)()
            self.sync()
            return {"peak_rss_growth_mib": status_mib("VmHWM") - before}
        raise ValueError(f"op: expected info, attention, train or memory, got {op!r}")

    def reply(self, req):
        try:
            return self.handle(req)
        except Exception as e:  # the driver reports it and stops
            return {"error": f"{type(e).__name__}: {e}"}


def main():
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(int(cfg["threads"]))
    cfg["flush_denormal"] = torch.set_flush_denormal(True)  # False where the CPU cannot
    peer = Peer(cfg)
    if len(sys.argv) > 2:
        print(json.dumps(peer.reply(json.loads(sys.argv[2]))), flush=True)
        return
    for line in sys.stdin:
        if line.strip():
            print(json.dumps(peer.reply(json.loads(line))), flush=True)


if __name__ == "__main__":
    main()

"""Throughput of data-parallel training steps, and the share of each step spent in the all-reduce.

    OPENBLAS_NUM_THREADS=1 python benchmarks/data_parallel.py              # 1 process
    OPENBLAS_NUM_THREADS=1 mpiexec -n 2 python benchmarks/data_parallel.py # 2 processes

Two steps, each process with a fixed batch (so the global batch grows with P, as in data
parallelism): `digits`, demos/train_digits.py's MLP (64-256-256-10, 85 k parameters) on
the digits with batch 32; `W1`, the 784-256-256-10 ReLU MLP of the benchmark suite (269 k
parameters) on random data with batch 128; both float32, SGD, wrapped in
DistributedOptimizer. Rank 0 prints per step: samples per second of all processes
together, milliseconds per step, the milliseconds of it inside the all-reduce (including
waiting for the slowest process), and the milliseconds of a bare all-reduce of the same
buffer with no computation around it (the communication alone).
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "demos"))

import nn  # noqa: E402
import optim  # noqa: E402
from tinygrad_edu import Tensor, distributed, manual_seed  # noqa: E402
from train_digits import build_model, split_digits  # noqa: E402

WARMUP, STEPS, BARE_REPEATS = 10, 100, 200


def workloads() -> dict:
    """name -> (model, x, y): one batch per process."""
    manual_seed(0)
    x_digits, y_digits = split_digits()[:2]
    rng = np.random.default_rng(distributed.rank())
    layers = [nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10)]
    return {"digits, batch 32": (build_model("mlp"), x_digits[:32], y_digits[:32]),
            "W1, batch 128": (nn.Sequential(*layers), rng.standard_normal((128, 784)).astype(np.float32),
                              rng.integers(0, 10, 128))}


def measure(model: nn.Module, x: np.ndarray, y: np.ndarray) -> dict:
    """Seconds per step and per all-reduce inside it, then of a bare all-reduce of the buffer."""
    opt = distributed.DistributedOptimizer(optim.SGD(model.parameters(), lr=0.01))
    xb, yb = Tensor(x), Tensor(y)
    for i in range(WARMUP + STEPS):
        if i == WARMUP:
            distributed.barrier()
            tic, reduce_tic = time.perf_counter(), distributed.all_reduce_seconds()
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    step = (time.perf_counter() - tic) / STEPS
    inside = (distributed.all_reduce_seconds() - reduce_tic) / STEPS
    # the size of DistributedOptimizer's buffer: the gradients, the loss, the share, a flag per parameter
    buffer = Tensor(np.zeros(sum(p.numel() for p in model.parameters()) + 2 + len(model.parameters()),
                             dtype=np.float32))
    distributed.barrier()
    tic = time.perf_counter()
    for _ in range(BARE_REPEATS):
        distributed.all_reduce(buffer)
    bare = (time.perf_counter() - tic) / BARE_REPEATS
    return {"step": step, "inside": inside, "bare": bare, "bytes": buffer.numel() * 4, "rows": len(y)}


def main() -> None:
    processes = distributed.world_size()
    for name, (model, x, y) in workloads().items():
        m = measure(model, x, y)
        step = distributed.all_reduce(Tensor(np.array(m["step"])), "max").item()
        if distributed.rank() == 0:
            print(f"{name:17s} P={processes}: {processes * m['rows'] / step:7.0f} samples/s, "
                  f"{1e3 * step:6.2f} ms/step, all-reduce {1e3 * m['inside']:5.2f} ms/step inside it, "
                  f"bare {1e3 * m['bare']:5.2f} ms for {m['bytes'] / 1e6:.2f} MB")


if __name__ == "__main__":
    main()

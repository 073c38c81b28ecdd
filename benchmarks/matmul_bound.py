"""How much of W1's floor is matrix products: the bound that fusing elementwise calls
cannot pass, and the part of "eager against PyTorch" that is BLAS against BLAS.

    python -m benchmarks.matmul_bound

W1's floor (benchmarks/floors.py) makes eight matrix products per step: three forward,
three for the weights' gradients, two for the hidden layers' gradients. Fusion leaves
them to BLAS, so a fused step costs at least their time: this prints their median,
interleaved with the whole floor step, as a fraction of it. With PyTorch installed it
also times the same eight products in PyTorch (its own BLAS, MKL in the x86 wheels), one
thread each, as a ratio to NumPy's.
"""
from __future__ import annotations

import os
from typing import Callable

from benchmarks import THREAD_VARIABLES

for _variable in THREAD_VARIABLES:  # before NumPy loads: one BLAS thread, as `python -m benchmarks`
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

from benchmarks.common import MLP_BATCH, MLP_SIZES, interleave, mlp_problem  # noqa: E402
from benchmarks.floors import CASES  # noqa: E402

REPEATS = 300


def main() -> None:
    problem = mlp_problem("cpu")
    rng = np.random.default_rng(0)
    weights = [w for w in problem.initial if w.ndim == 2]
    deltas = [rng.standard_normal((MLP_BATCH, n)).astype(np.float32) for n in MLP_SIZES[1:]]
    inputs = [problem.x] + [rng.standard_normal((MLP_BATCH, n)).astype(np.float32) for n in MLP_SIZES[1:-1]]
    cases = {"floor step": CASES["W1"](problem)[""].run,
             "its 8 products (NumPy)": eight_products(weights, inputs, deltas)}
    try:
        import torch
        torch.set_num_threads(1)
        as_torch = lambda arrays: [torch.from_numpy(a) for a in arrays]  # noqa: E731
        cases["its 8 products (PyTorch)"] = eight_products(as_torch(weights), as_torch(inputs), as_torch(deltas))
    except ImportError:
        pass
    medians = interleave(cases, REPEATS)
    floor = medians["floor step"]
    for name, seconds in medians.items():
        print(f"{name:26} {seconds * 1e6:8.1f} µs  {seconds / floor:.2f}x the floor step")
    if "its 8 products (PyTorch)" in medians:
        print(f"PyTorch's products against NumPy's: "
              f"{medians['its 8 products (PyTorch)'] / medians['its 8 products (NumPy)']:.2f}x")


def eight_products(weights: list, inputs: list, deltas: list) -> Callable[[], None]:
    """W1's eight products on these arrays (NumPy's or PyTorch's): per layer input @ W.T and
    delta.T @ input, and delta @ W for every layer but the first."""
    def run() -> None:
        for i, (w, a, d) in enumerate(zip(weights, inputs, deltas)):
            a @ w.T
            d.T @ a
            if i:
                d @ w

    return run


if __name__ == "__main__":
    main()

"""How much of W1's step is matrix products: the bound that fusing elementwise calls
cannot pass, and the part of "eager against PyTorch" that is BLAS against BLAS.

    python -m benchmarks.matmul_bound

W1's floor (benchmarks/floors.py) makes eight matrix products per step: three forward,
three for the weights' gradients, two for the hidden layers' gradients. Fusion leaves
them to BLAS, so a fused step costs at least their time. This times, interleaved in one
process, the floor step, its eight products in NumPy, the engine's eager step and, with
PyTorch installed, PyTorch's eager step and the same eight products in PyTorch (its own
BLAS: MKL in the x86 wheels, where NumPy's is OpenBLAS), one thread each. The engine
against PyTorch with each side's products taken out compares what each library adds
around its BLAS.
"""
from __future__ import annotations

import os
from typing import Callable

from benchmarks import THREAD_VARIABLES

for _variable in THREAD_VARIABLES:  # before NumPy loads: one BLAS thread, as `python -m benchmarks`
    os.environ.setdefault(_variable, "1")

import numpy as np  # noqa: E402

from benchmarks import floors, reference, workloads  # noqa: E402
from benchmarks.common import MLP_BATCH, MLP_SIZES, interleave, mlp_problem  # noqa: E402

REPEATS = 300


def main() -> None:
    problem = mlp_problem("cpu")
    rng = np.random.default_rng(0)
    weights = [w for w in problem.initial if w.ndim == 2]
    deltas = [rng.standard_normal((MLP_BATCH, n)).astype(np.float32) for n in MLP_SIZES[1:]]
    inputs = [problem.x] + [rng.standard_normal((MLP_BATCH, n)).astype(np.float32) for n in MLP_SIZES[1:-1]]
    cases = {"floor step": floors.CASES["W1"](problem)[""].run,
             "its 8 products (NumPy)": eight_products(weights, inputs, deltas),
             "engine eager step": workloads.engine_step(problem)[""].run}
    torch = reference.optional_torch("cpu")
    if torch is not None:
        as_torch = lambda arrays: [torch.from_numpy(a) for a in arrays]  # noqa: E731
        cases["PyTorch eager step"] = reference.torch_step(problem)[""].run
        cases["its 8 products (PyTorch)"] = eight_products(as_torch(weights), as_torch(inputs), as_torch(deltas))
    medians = interleave(cases, REPEATS)
    floor = medians["floor step"]
    for name, seconds in medians.items():
        print(f"{name:26} {seconds * 1e6:8.1f} µs  {seconds / floor:.2f}x the floor step")
    if torch is not None:
        engine, theirs = medians["engine eager step"], medians["PyTorch eager step"]
        numpy_blas, torch_blas = medians["its 8 products (NumPy)"], medians["its 8 products (PyTorch)"]
        print(f"engine against PyTorch: {engine / theirs:.2f}x; their products alone: {numpy_blas / torch_blas:.2f}x; "
              f"with each side's products taken out: {(engine - numpy_blas) / (theirs - torch_blas):.2f}x")


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

"""The PyTorch column: each workload in PyTorch (eager on the CPU, CUDA with --device cuda),
where PyTorch is installed: a production engine measured against the same floor.

Where the code can be the same it is the same: common.mlp, common.cnn, common.sgd_step,
common.chain and common.tanh_mlp_loss run on torch.nn, torch.optim and torch tensors as they
run on tinygrad_edu's. PyTorch gets as many threads as BLAS (OMP_NUM_THREADS).
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from benchmarks.common import CHAIN_OPS, Case, HvpProblem, TrainingProblem, chain, sgd_step, tanh_mlp_loss


def optional_torch(device: str) -> Any:
    """PyTorch, or None where it (or, for "cuda", its GPU support) is missing."""
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    if "OMP_NUM_THREADS" in os.environ:
        torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return torch


def torch_step(problem: TrainingProblem) -> dict[str, Case]:
    """PyTorch's SGD step from the problem's initial weights."""
    torch = optional_torch(problem.device)
    if torch is None:
        return {}
    model = problem.build(torch.nn)
    with torch.no_grad():
        for p, w in zip(model.parameters(), problem.initial):
            p.copy_(torch.from_numpy(w))
    model.to(problem.device)
    x, y = torch.from_numpy(problem.x).to(problem.device), torch.from_numpy(problem.y).to(problem.device)
    return {"": Case(sgd_step(torch.nn, torch.optim, model, x, y),
                     lambda: [p.detach().cpu().numpy() for p in model.parameters()])}


def torch_chain(x0: np.ndarray) -> dict[str, Case]:
    """W2: the gradient of sum(chain(x)) by PyTorch's autograd."""
    torch = optional_torch("cpu")
    if torch is None:
        return {}

    def gradient() -> np.ndarray:
        x = torch.tensor(x0, requires_grad=True)
        chain(x, CHAIN_OPS).sum().backward()
        return x.grad.numpy()

    return {"": Case(gradient)}


def torch_hvp(problem: HvpProblem) -> dict[str, Case]:
    """W3: PyTorch's gradient, and its H·v by a double backward (graph rebuilt every call)."""
    torch = optional_torch("cpu")
    if torch is None:
        return {}
    leaves = [torch.tensor(p, requires_grad=True) for p in problem.params]
    v = [torch.from_numpy(d) for d in problem.v]
    X, y = torch.from_numpy(problem.X), torch.from_numpy(problem.y)

    def gradient() -> tuple:
        return torch.autograd.grad(tanh_mlp_loss(X, y, *leaves), leaves)

    def hvp() -> tuple:
        gs = torch.autograd.grad(tanh_mlp_loss(X, y, *leaves), leaves, create_graph=True)
        return torch.autograd.grad(gs, leaves, grad_outputs=v)

    return {"gradient": Case(gradient), "H·v (double backward)": Case(hvp)}


# What the runner's PyTorch column runs for each workload: problem -> {label: Case}
# ({} where PyTorch is missing).
CASES: dict[str, Callable[[Any], dict[str, Case]]] = {
    "W1": torch_step, "W2": torch_chain, "W3": torch_hvp, "W6": torch_step, "LARGE": torch_step,
}

"""tinygrad_edu against a hand-written NumPy floor (and PyTorch, when installed).

Run:  python demos/benchmark.py [--workloads W1,W2,...] [--repeats N] [--json PATH]
                                [--device cpu|cuda] [--quick]

Why a NumPy floor. The engine's forward and backward passes are NumPy calls. Someone who
derives the gradients by hand and writes the same computation straight in NumPy makes the
same array calls, without the Tensor objects, the graph and its backward walk. That code is
the floor: engine time / floor time is what automatic differentiation costs in this engine,
a ratio that stays put from machine to machine where absolute times do not. PyTorch (eager,
CPU) is an extra column where installed: a production engine measured against the same floor.

The workloads (CPU; the default runs them all):
  W1   one training step of a 784-256-256-10 ReLU MLP (softmax cross-entropy, batch 128,
       float32, SGD): matmul-bound, so the engine's overhead should nearly vanish.
       Target: <= 1.10x the floor.
  W2   200 chained elementwise ops (×(−1), +1, tanh, exp, in turn) on a 16-element float32
       vector, forward + backward: the arrays are tiny, so this is the engine's per-op
       overhead (Tensor, graph node, backward closure) in µs per op. Target: <= 4 µs/op.
  W3   a Hessian-vector product of mean((MLP(X) − y)²) for a 100-64-64-1 tanh MLP on 512
       samples, float64, with respect to all parameters. The floor is Pearlmutter's
       R-operator written by hand (forward, R-forward, backward, R-backward). The engine's
       H·v is timed two ways: the kept graph NewtonCG uses (the gradient with create_graph=True once, then
       one backward per product; its forward and first backward are not timed, as they are
       shared by every product at a point, so its ratio flatters it) and tinygrad_edu.hvp
       (graph rebuilt at every call: the like-for-like comparison with the floor).
       Targets: H·v <= 2.5x the engine's gradient, <= 1.5x the floor.
  W4   Newton-CG on L2-regularised logistic regression (n = 20000, d = 100, float64) from
       w = 0 to max|∇f| < 1e-6. Floor: SciPy's Newton-CG with hand-written NumPy gradient
       and Hessian-vector product. Also: the same algorithm as optim.NewtonCG written in
       NumPy (the floor when SciPy is missing; its iterations match NewtonCG's, so it
       isolates the cost of the derivatives), and SciPy driven by optim.scipy_fun.
       Target: <= 1.3x the floor.
  W5   the W2 chain with N = 1e3, 1e4, 1e5 ops, garbage collector on: µs per op must stay
       flat (linear total), tracemalloc's peak during forward + backward must grow in
       proportion to N, and after backward and `del` the graph's memory must be released.
       Targets: µs/op and peak bytes/op at the largest N within 1.5x of the smallest N's;
       <= 512 KiB kept after `del`
       (Python's own free lists of tuples and floats keep a couple of hundred KiB).
  W6   one training step of a small CNN: Conv2d 1->8 3x3, ReLU, MaxPool 2, Linear 72->10,
       batch 64 of the 8x8 digits, float32, SGD. Floor: im2col convolution, pooling and
       linear layer with hand-derived backward. Target: <= 1.5x the floor.
  MEM  1000 W1 steps: resident memory (RSS) at step 100 and 1000 must stay flat.
       Target: <= 1 MiB growth.
With --device cuda: W1 on CuPy, and LARGE, a 4096-4096-4096-10 MLP step (batch 4096,
float32): the floor is the same hand-written step on CuPy arrays, PyTorch CUDA the optional
column. Targets: LARGE >= 20x faster than the same engine on the CPU, <= 2x PyTorch CUDA.

Method. Each workload runs in a child process of its own (this file with a hidden
--run-workload flag), so one workload's heap and caches cannot slow the next. BLAS and
OpenMP threads are fixed before NumPy loads: OPENBLAS_NUM_THREADS, OMP_NUM_THREADS and
MKL_NUM_THREADS are 1 unless set in the environment, torch.set_num_threads gets the same
count, and the table's machine line reports them. Each workload first checks that every
engine computes the floor's numbers (loss, updated weights, gradient or H·v within a
tolerance), so a fast wrong answer cannot pass; then one warm-up call of each, then
repetitions in which every engine runs once in turn (A B C A B C ...), so that drift of the
machine hits all alike. Only medians and ratios are reported. "met?" compares this run's
medians with the targets; nothing here asserts them, since timings move with the machine.

--quick shrinks repetitions and sizes for a smoke test (the whole run in under 30 s);
--json PATH also writes every number to PATH.
"""
from __future__ import annotations

import os

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
for _variable in THREAD_VARIABLES:
    os.environ.setdefault(_variable, "1")  # before NumPy loads; the child processes inherit it

import argparse  # noqa: E402
import gc  # noqa: E402
import importlib.metadata  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any, Callable, Sequence  # noqa: E402

import numpy as np  # noqa: E402

import nn  # noqa: E402
import optim  # noqa: E402
import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu.data import load_digits  # noqa: E402

CPU_WORKLOADS = ("W1", "W2", "W3", "W4", "W5", "W6", "MEM")
CUDA_WORKLOADS = ("W1", "LARGE")
# Interleaved repetitions per workload: (default, --quick).
REPEATS = {"W1": (100, 5), "W2": (200, 10), "W3": (50, 5), "W4": (15, 2), "W5": (5, 2), "W6": (200, 5),
           "LARGE": (3, 2)}

LR = 0.01  # SGD learning rate of every training step
MLP_SIZES, MLP_BATCH = (784, 256, 256, 10), 128
LARGE_SIZES, LARGE_BATCH = (4096, 4096, 4096, 10), 4096
LARGE_QUICK_SIZES, LARGE_QUICK_BATCH = (1024, 1024, 1024, 10), 1024
CHAIN_OPS, CHAIN_LENGTH = 200, 16
DEEP_NS, DEEP_QUICK_NS = (1_000, 10_000, 100_000), (100, 1_000, 10_000)
HVP_SIZES, HVP_SAMPLES = (100, 64, 64, 1), 512
LOGISTIC_N, LOGISTIC_QUICK_N, LOGISTIC_D = 20_000, 2_000, 100
CNN_BATCH = 64
MEM_MARKS, MEM_QUICK_MARKS = (100, 1000), (50, 200)

GTOL = 1e-6  # W4: every run must end with max |∇f| below this
LAM = 1e-4  # W4: f(w) = mean BCE(Xw, y) + LAM/2 ‖w‖²
SCIPY_XTOL = 1e-6  # W4: SciPy stops on ‖Δw‖₁ ≤ d·xtol, not on the gradient; at 1e-6 it ends below GTOL
MAXITER = 100
MIB = 2 ** 20

# How each figure of a row reads in the table (its value, or a target's limit).
FIGURES = {
    "floor": "{:.2f}x floor",
    "us_per_op": "{:.2f} µs/op",
    "gradient": "{:.2f}x gradient",
    "time_growth": "µs/op {:.2f}x smallest N's",
    "memory_growth": "peak B/op {:.2f}x smallest N's",
    "kept_kib": "{:.0f} KiB kept after del",
    "rss_growth_mib": "RSS {:+.2f} MiB",
    "cpu_speedup": "{:.1f}x faster than CPU",
    "torch": "{:.2f}x PyTorch",
}


class Skipped(Exception):
    """The workload cannot run here (no CuPy or no GPU); the message says why."""


# ---- helpers shared by the workloads -----------------------------------------------------


def interleave(cases: dict[str, Callable[[], Any]], repeats: int,
               sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median seconds of each case: one warm-up call of each, then `repeats` rounds in which
    every case runs once, in turn. `sync` waits for the GPU before and after each call."""
    for case in cases.values():
        case()
    times: dict[str, list] = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():
            sync()
            start = time.perf_counter()
            case()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(ts) for name, ts in times.items()}


def row(engine: str, seconds: float, figures: dict[str, float] | None = None,
        targets: Sequence[tuple[str, str, float]] = ()) -> dict:
    """A table row: the median, figures by name (see FIGURES) and targets (figure, "<=" or
    ">=", limit), each judged on this run's figure."""
    figures = figures or {}
    judged = [{"figure": name, "op": op, "limit": limit,
               "met": figures[name] <= limit if op == "<=" else figures[name] >= limit}
              for name, op, limit in targets]
    return {"engine": engine, "median_s": seconds, "figures": figures, "targets": judged,
            "met": all(t["met"] for t in judged) if judged else None}


def optional_torch(device: str) -> Any:
    """PyTorch with as many threads as BLAS, or None where it (or, for "cuda", its GPU
    support) is missing."""
    try:
        import torch
    except ImportError:
        return None
    if device == "cuda" and not torch.cuda.is_available():
        return None
    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    return torch


def array_module(device: str) -> Any:
    """NumPy for "cpu", CuPy for "cuda" (Skipped, saying why, where CuPy or a GPU is missing)."""
    if device == "cpu":
        return np
    try:
        tg.zeros(1, device="cuda")
    except RuntimeError as e:
        raise Skipped(str(e)) from e
    import cupy
    return cupy


def synchronizer(device: str, torch: Any) -> Callable[[], None]:
    """Waits for the GPU's queued work (CuPy's and PyTorch's); nothing to wait for on the CPU."""
    if device == "cpu":
        return lambda: None
    import cupy

    def sync() -> None:
        cupy.cuda.Stream.null.synchronize()
        if torch is not None:
            torch.cuda.synchronize()

    return sync


def floor_name(device: str) -> str:
    return "NumPy by hand (floor)" if device == "cpu" else "CuPy by hand (floor)"


def torch_name(device: str) -> str:
    return "PyTorch eager" if device == "cpu" else "PyTorch CUDA"


def engine_name(device: str) -> str:
    return "tinygrad_edu" if device == "cpu" else "tinygrad_edu (cuda)"


# ---- training steps: W1, W6, MEM, LARGE ------------------------------------------------------


def mlp(lib: Any, sizes: Sequence[int]) -> Any:
    """Linear, ReLU, ..., Linear in `lib`: nn, or torch.nn (same names, same weight layout)."""
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [lib.Linear(fan_in, fan_out), lib.ReLU()]
    return lib.Sequential(*layers[:-1])


def cnn(lib: Any) -> Any:
    """W6's network in `lib`: nn, or torch.nn."""
    return lib.Sequential(lib.Conv2d(1, 8, 3), lib.ReLU(), lib.MaxPool2d(2), lib.Flatten(), lib.Linear(72, 10))


def sgd_step(lib_nn: Any, lib_optim: Any, model: Any, x: Any, y: Any) -> Callable[[], float]:
    """One SGD step on (x, y) with softmax cross-entropy; the same code drives tinygrad_edu
    (nn, optim) and PyTorch (torch.nn, torch.optim)."""
    opt = lib_optim.SGD(model.parameters(), lr=LR)
    loss_fn = lib_nn.CrossEntropyLoss()

    def step() -> float:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def softmax_cross_entropy(xp: Any, logits: Any, y: Any) -> tuple[float, Any]:
    """Mean cross-entropy of logits (N, C) against labels y, and its gradient with respect
    to the logits: (softmax − onehot) / N."""
    n = logits.shape[0]
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - xp.log(xp.exp(shifted).sum(axis=1, keepdims=True))
    rows = xp.arange(n)
    grad = xp.exp(log_probs)
    grad[rows, y] -= 1
    return float(-log_probs[rows, y].mean()), grad / n


def sgd_update(params: list, grads: list) -> None:
    for p, g in zip(params, grads):
        p -= LR * g


def numpy_mlp_step(xp: Any, params: list, x: Any, y: Any) -> float:
    """The floor of W1 and LARGE: forward, hand-derived backward and SGD update (in place)
    of the ReLU MLP with params = [W1, b1, W2, b2, ...], on NumPy or CuPy arrays (xp)."""
    inputs = [x]  # each layer's input
    for i in range(0, len(params) - 2, 2):
        inputs.append(xp.maximum(inputs[-1] @ params[i].T + params[i + 1], 0))
    loss, delta = softmax_cross_entropy(xp, inputs[-1] @ params[-2].T + params[-1], y)
    grads: list = []
    for i in reversed(range(0, len(params), 2)):
        a = inputs[i // 2]
        grads[:0] = [delta.T @ a, delta.sum(axis=0)]
        if i:
            delta = (delta @ params[i]) * (a > 0)  # through the layer, then ReLU' of its input
    sgd_update(params, grads)
    return loss


def numpy_cnn_step(xp: Any, params: list, x: Any, y: Any) -> float:
    """The floor of W6, with params = [conv weight (8, 1, 3, 3), conv bias, linear weight,
    linear bias]. im2col: every 3x3 window of the (N, 1, 8, 8) images becomes a row, one
    matmul applies the 8 filters to all of them. Channels-last inside (N, 6, 6, 8); the
    flattening is channels-first, as nn.Flatten after an NCHW layer. Max pooling gathers
    the four pixels of every 2x2 window into one contiguous array (NumPy reduces over its
    leading axes far faster than over the inner 2x2 axes of a reshaped image), and sends
    the gradient to the maxima of each window, split evenly between ties, as the engine
    does; the windows tile the image, so the gradient goes back by assignment."""
    conv_w, conv_b, lin_w, lin_b = params
    n = x.shape[0]
    cols = xp.lib.stride_tricks.sliding_window_view(x, (3, 3), axis=(2, 3)).transpose(0, 2, 3, 1, 4, 5)
    cols = cols.reshape(n * 36, 9)
    z = (cols @ conv_w.reshape(8, 9).T + conv_b).reshape(n, 6, 6, 8)
    a = xp.maximum(z, 0)
    offsets = [(i, j) for i in (0, 1) for j in (0, 1)]
    windows = xp.stack([a[:, i::2, j::2] for i, j in offsets])  # (4, N, 3, 3, 8)
    pooled = windows.max(axis=0)
    features = pooled.transpose(0, 3, 1, 2).reshape(n, 72)
    loss, delta = softmax_cross_entropy(xp, features @ lin_w.T + lin_b, y)
    d_pooled = (delta @ lin_w).reshape(n, 8, 3, 3).transpose(0, 2, 3, 1)
    at_max = windows == pooled
    d_windows = at_max * (d_pooled / at_max.sum(axis=0, dtype=x.dtype))
    d_a = xp.empty_like(a)
    for (i, j), d_window in zip(offsets, d_windows):
        d_a[:, i::2, j::2] = d_window
    d_z = (d_a * (z > 0)).reshape(n * 36, 8)
    sgd_update(params, [(d_z.T @ cols).reshape(8, 1, 3, 3), d_z.sum(axis=0), delta.T @ features, delta.sum(axis=0)])
    return loss


def engine_model(build: Callable[[Any], Any], device: str) -> Any:
    """build(nn) with the seeded initialisation, on `device`: the same weights every call."""
    tg.manual_seed(0)
    return build(nn).to(device)


def training_cases(build: Callable[[Any], Any], floor_step: Callable[..., float], x: np.ndarray, y: np.ndarray,
                   device: str, torch: Any) -> tuple[dict, dict]:
    """The engine's step, the floor's and PyTorch's (when given), all from the engine's
    initial weights; and for each a function returning its current weights as NumPy arrays."""
    xp = array_module(device)
    model = engine_model(build, device)
    floor_params = [xp.array(p.numpy()) for p in model.parameters()]
    fx, fy = xp.asarray(x), xp.asarray(y)
    steps = {engine_name(device): sgd_step(nn, optim, model, tg.tensor(x, device=device), tg.tensor(y, device=device)),
             floor_name(device): lambda: floor_step(xp, floor_params, fx, fy)}
    weights = {engine_name(device): lambda: [p.numpy() for p in model.parameters()],
               floor_name(device): lambda: [p if xp is np else xp.asnumpy(p) for p in floor_params]}
    if torch is not None:
        torch_model = build(torch.nn)
        with torch.no_grad():
            for p, q in zip(torch_model.parameters(), model.parameters()):
                p.copy_(torch.from_numpy(q.numpy()))
        torch_model.to(device)
        steps[torch_name(device)] = sgd_step(torch.nn, torch.optim, torch_model, torch.from_numpy(x).to(device),
                                             torch.from_numpy(y).to(device))
        weights[torch_name(device)] = lambda: [p.detach().cpu().numpy() for p in torch_model.parameters()]
    return steps, weights


def same_first_step(steps: dict, weights: dict, floor: str, rtol: float, atol: float) -> str:
    """One step of every engine from the same weights: each loss and every updated weight
    must match the floor's."""
    losses = {name: step() for name, step in steps.items()}
    floor_weights = weights[floor]()
    for name in steps:
        np.testing.assert_allclose(losses[name], losses[floor], rtol=rtol, err_msg=f"{name}: first loss")
        for i, (w, w_floor) in enumerate(zip(weights[name](), floor_weights)):
            np.testing.assert_allclose(w, w_floor, rtol=rtol, atol=atol, err_msg=f"{name}: parameter {i} after a step")
    return (f"first loss {losses[floor]:.6f} and every weight after one step agree with the floor "
            f"(rtol {rtol:g}, atol {atol:g}) for {', '.join(n for n in steps if n != floor)}")


def training_rows(medians: dict, floor: str, engine: str, limit: float) -> list:
    """Rows of a training-step workload: every engine against the floor; the target is the engine's."""
    return [row(name, t, {"floor": t / medians[floor]}, [("floor", "<=", limit)] if name == engine else ())
            for name, t in medians.items()]


def mlp_data(sizes: Sequence[int], batch: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, sizes[0])).astype(np.float32), rng.integers(0, sizes[-1], batch)


def w1_mlp_step(device: str, repeats: int, quick: bool) -> dict:
    torch = optional_torch(device)
    steps, weights = training_cases(lambda lib: mlp(lib, MLP_SIZES), numpy_mlp_step, *mlp_data(MLP_SIZES, MLP_BATCH),
                                    device, torch)
    check = same_first_step(steps, weights, floor_name(device), rtol=1e-4, atol=1e-6)
    medians = interleave(steps, repeats, synchronizer(device, torch))
    return {"title": f"MLP {'-'.join(map(str, MLP_SIZES))} step, batch {MLP_BATCH}, float32, SGD ({device})",
            "check": check, "rows": training_rows(medians, floor_name(device), engine_name(device), 1.10)}


def w6_cnn_step(device: str, repeats: int, quick: bool) -> dict:
    images, labels = load_digits()
    x, y = images[:CNN_BATCH, None], labels[:CNN_BATCH]
    torch = optional_torch(device)
    steps, weights = training_cases(cnn, numpy_cnn_step, x, y, device, torch)
    check = same_first_step(steps, weights, floor_name(device), rtol=1e-4, atol=1e-6)
    medians = interleave(steps, repeats)
    return {"title": f"CNN step (conv 1->8 3x3, ReLU, max-pool 2, linear 72->10), batch {CNN_BATCH} of 8x8, float32",
            "check": check, "rows": training_rows(medians, floor_name(device), engine_name(device), 1.5)}


def rss_bytes() -> int:
    """Resident memory now (/proc/self/statm); where /proc is missing, the peak so far."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def mem_steps(device: str, repeats: int, quick: bool) -> dict:
    steps, weights = training_cases(lambda lib: mlp(lib, MLP_SIZES), numpy_mlp_step, *mlp_data(MLP_SIZES, MLP_BATCH),
                                    device, None)
    check = same_first_step(steps, weights, floor_name(device), rtol=1e-4, atol=1e-6)
    step = steps[engine_name(device)]
    marks = MEM_QUICK_MARKS if quick else MEM_MARKS
    rss, times = {}, []
    for k in range(1, marks[-1] + 1):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        if k in marks:
            rss[k] = rss_bytes()
    growth = (rss[marks[-1]] - rss[marks[0]]) / MIB
    return {"title": f"{marks[-1]} W1 steps of the engine: resident memory",
            "check": check,
            "rows": [row(f"{engine_name(device)}, W1 step", statistics.median(times), {"rss_growth_mib": growth},
                         [("rss_growth_mib", "<=", 1.0)])],
            "tables": [{"title": "MEM: resident set size", "header": ["after step", "RSS (MiB)"],
                        "rows": [[str(k), f"{rss[k] / MIB:.1f}"] for k in marks]}]}


def large_mlp_step(device: str, repeats: int, quick: bool) -> dict:
    """LARGE: the engine on the GPU against the floor on the GPU, PyTorch CUDA and itself on the CPU."""
    sizes, batch = (LARGE_QUICK_SIZES, LARGE_QUICK_BATCH) if quick else (LARGE_SIZES, LARGE_BATCH)
    x, y = mlp_data(sizes, batch)
    torch = optional_torch(device)
    build = lambda lib: mlp(lib, sizes)  # noqa: E731
    steps, weights = training_cases(build, numpy_mlp_step, x, y, device, torch)
    cpu, cpu_model = "tinygrad_edu (cpu)", engine_model(build, "cpu")
    steps[cpu] = sgd_step(nn, optim, cpu_model, tg.tensor(x), tg.tensor(y))
    weights[cpu] = lambda: [p.numpy() for p in cpu_model.parameters()]
    engine, floor = engine_name(device), floor_name(device)
    check = same_first_step(steps, weights, floor, rtol=1e-3, atol=1e-5)  # float32 sums in other orders
    medians = interleave(steps, repeats, synchronizer(device, torch))
    figures = {"floor": medians[engine] / medians[floor], "cpu_speedup": medians[cpu] / medians[engine]}
    targets = [("cpu_speedup", ">=", 20.0)]
    if torch is not None:
        figures["torch"] = medians[engine] / medians[torch_name(device)]
        targets.append(("torch", "<=", 2.0))
    rows = [row(engine, medians[engine], figures, targets)]
    rows += [row(name, t, {"floor": t / medians[floor]}) for name, t in medians.items() if name != engine]
    import cupy
    gpu = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    return {"title": f"MLP {'-'.join(map(str, sizes))} step, batch {batch}, float32, SGD on {gpu}",
            "check": check, "rows": rows}


# ---- W2 and W5: chains of small elementwise ops ------------------------------------------------


def chain(y: Any, n_ops: int) -> Any:
    """n_ops elementwise ops on y, in turn ×(−1), +1, tanh, exp. Four of them map y to
    exp(tanh(1 − y)), whose fixed point 1 has derivative −1: however long the chain, neither
    the values nor the gradient vanish or blow up, so the check compares real numbers even
    at N = 1e5. The same code runs on tinygrad_edu and PyTorch tensors."""
    for i in range(n_ops):
        k = i % 4
        y = y * -1.0 if k == 0 else y + 1.0 if k == 1 else y.tanh() if k == 2 else y.exp()
    return y


def engine_chain(x0: np.ndarray, n_ops: int) -> np.ndarray:
    x = tg.tensor(x0, requires_grad=True)
    chain(x, n_ops).sum().backward()
    return x.grad.numpy()


def numpy_chain(x0: np.ndarray, n_ops: int) -> np.ndarray:
    """The floor: the chain with hand-derived derivatives; keep every output, walk back."""
    outputs, y = [], x0
    for i in range(n_ops):
        k = i % 4
        y = y * -1.0 if k == 0 else y + 1.0 if k == 1 else np.tanh(y) if k == 2 else np.exp(y)
        outputs.append(y)
    g = np.ones_like(y)
    for i in reversed(range(n_ops)):
        k = i % 4
        if k == 0:
            g = g * -1.0
        elif k == 2:
            g = g * (1 - outputs[i] * outputs[i])  # tanh' = 1 − tanh²
        elif k == 3:
            g = g * outputs[i]  # exp' = exp
    return g


def chain_input() -> np.ndarray:
    return np.linspace(-1, 1, CHAIN_LENGTH, dtype=np.float32)


def w2_small_ops(device: str, repeats: int, quick: bool) -> dict:
    x0, torch = chain_input(), optional_torch(device)
    cases = {engine_name(device): lambda: engine_chain(x0, CHAIN_OPS),
             floor_name(device): lambda: numpy_chain(x0, CHAIN_OPS)}
    if torch is not None:
        def torch_chain() -> np.ndarray:
            x = torch.tensor(x0, requires_grad=True)
            chain(x, CHAIN_OPS).sum().backward()
            return x.grad.numpy()

        cases[torch_name(device)] = torch_chain
    expected = numpy_chain(x0, CHAIN_OPS)
    for name, case in cases.items():
        np.testing.assert_allclose(case(), expected, rtol=1e-4, err_msg=f"{name}: gradient of the chain")
    medians = interleave(cases, repeats)
    floor = medians[floor_name(device)]
    rows = [row(name, t, {"us_per_op": t / CHAIN_OPS * 1e6, "floor": t / floor},
                [("us_per_op", "<=", 4.0)] if name == engine_name(device) else ())
            for name, t in medians.items()]
    return {"title": f"{CHAIN_OPS} elementwise ops on {CHAIN_LENGTH} float32, forward + backward",
            "check": "gradients agree with the floor (rtol 1e-4) for "
                     + ", ".join(n for n in cases if n != floor_name(device)),
            "rows": rows}


def traced_chain_memory(x0: np.ndarray, n_ops: int) -> tuple[int, int]:
    """(peak bytes during forward + backward, bytes still held after backward and `del` of
    the output), from tracemalloc, which NumPy's array buffers report to as well."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    x = tg.tensor(x0, requires_grad=True)
    y = chain(x, n_ops)
    loss = y.sum()
    loss.backward()
    del y, loss
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - base, kept - base  # x and its 16-element grad are still alive: a few hundred bytes


def w5_deep_chain(device: str, repeats: int, quick: bool) -> dict:
    x0, ns = chain_input(), DEEP_QUICK_NS if quick else DEEP_NS
    labels = [f"N={n:.0e}".replace("e+0", "e") for n in ns]
    rows, table, per_op, last = [], [], {}, 0.0
    for n, label in zip(ns, labels):
        np.testing.assert_allclose(engine_chain(x0, n), numpy_chain(x0, n), rtol=1e-4,
                                   err_msg=f"gradient of the {n}-op chain")
        medians = interleave({"engine": lambda: engine_chain(x0, n), "floor": lambda: numpy_chain(x0, n)}, repeats)
        peak, kept = traced_chain_memory(x0, n)
        us = medians["engine"] / n * 1e6
        per_op[n], last = (us, peak / n), medians["engine"]
        rows.append(row(f"{engine_name(device)}, {label}", medians["engine"],
                        {"us_per_op": us, "floor": medians["engine"] / medians["floor"], "kept_kib": kept / 1024},
                        [("kept_kib", "<=", 512.0)]))
        rows.append(row(f"{floor_name(device)}, {label}", medians["floor"], {"us_per_op": medians["floor"] / n * 1e6}))
        table.append([label, f"{us:.2f}", f"{medians['floor'] / n * 1e6:.2f}", f"{peak / MIB:.1f}", f"{peak / n:.0f}",
                      f"{kept / 1024:.0f}", "yes" if kept <= 512 * 1024 else "no"])
    (us_first, bytes_first), (us_last, bytes_last) = per_op[ns[0]], per_op[ns[-1]]
    rows.append(row(f"{engine_name(device)}, {labels[0]} -> {labels[-1]}", last,
                    {"time_growth": us_last / us_first, "memory_growth": bytes_last / bytes_first},
                    [("time_growth", "<=", 1.5), ("memory_growth", "<=", 1.5)]))
    return {"title": "deep chain of the W2 ops, forward + backward, gc on",
            "check": f"gradients agree with the floor (rtol 1e-4) at N = {', '.join(map(str, ns))}",
            "rows": rows,
            "tables": [{"title": "W5: time and memory per op",
                        "header": ["N", "engine µs/op", "floor µs/op", "peak MiB", "peak B/op", "KiB kept after del",
                                   "released?"],
                        "rows": table}]}


# ---- W3: Hessian-vector products --------------------------------------------------------------------


def tanh_mlp_loss(X: Any, y: Any, *params: Any) -> Any:
    """mean((MLP(X) − y)²) for the tanh MLP with params = (W1, b1, W2, b2, ...), a linear
    last layer; the same code runs on tinygrad_edu and PyTorch tensors."""
    h = X
    for i in range(0, len(params), 2):
        h = h @ params[i].T + params[i + 1]
        if i + 2 < len(params):
            h = h.tanh()
    return ((h - y) ** 2).mean()


def numpy_rop_hvp(X: np.ndarray, y: np.ndarray, params: list, v: list) -> tuple[float, list, list]:
    """The floor of W3: (loss, gradient, H·v) of tanh_mlp_loss, derived by hand, with H·v by
    Pearlmutter's R-operator R{q} = d/dr q(θ + r·v) at r = 0, applied to every line of the
    forward and the backward pass. For a layer z = a Wᵀ + b (direction V, c) feeding
    a' = tanh(z), with s = 1 − a'²:
        forward     R{z} = R{a} Wᵀ + a Vᵀ + c            R{a'} = s ⊙ R{z}
        backward    ∇W = δzᵀ a                            R{∇W} = R{δz}ᵀ a + δzᵀ R{a}
                    δa = δz W                             R{δa} = R{δz} W + δz V
                    δz = δa' ⊙ s                          R{δz} = R{δa'} ⊙ s − 2 δa' ⊙ a' ⊙ R{a'}
    where R{a} = 0 for the data X, so the first layer skips those terms."""
    n_layers = len(params) // 2
    inputs, r_inputs = [X], [None]  # each layer's input and its R{}; R{X} = 0
    for layer in range(n_layers):
        w, b = params[2 * layer], params[2 * layer + 1]
        z = inputs[-1] @ w.T + b
        r_z = inputs[-1] @ v[2 * layer].T + v[2 * layer + 1]
        if layer:
            r_z += r_inputs[-1] @ w.T
        if layer + 1 < n_layers:
            a = np.tanh(z)
            inputs.append(a)
            r_inputs.append((1 - a * a) * r_z)
    residual = z - y
    loss = float(np.mean(residual * residual))
    delta, r_delta = 2 * residual / residual.size, 2 * r_z / residual.size  # ∂L/∂out and its R{}
    grads: list = []
    hv: list = []
    for layer in reversed(range(n_layers)):
        a, r_a, w = inputs[layer], r_inputs[layer], params[2 * layer]
        grads[:0] = [delta.T @ a, delta.sum(axis=0)]
        r_grad_w = r_delta.T @ a
        if layer:
            r_grad_w += delta.T @ r_a
        hv[:0] = [r_grad_w, r_delta.sum(axis=0)]
        if layer:
            d_a, r_d_a = delta @ w, r_delta @ w + delta @ v[2 * layer]
            s = 1 - a * a
            delta, r_delta = d_a * s, r_d_a * s - 2 * d_a * a * r_a
    return loss, grads, hv


def w3_hvp(device: str, repeats: int, quick: bool) -> dict:
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((HVP_SAMPLES, HVP_SIZES[0])), rng.standard_normal((HVP_SAMPLES, 1))
    params: list = []
    for fan_in, fan_out in zip(HVP_SIZES[:-1], HVP_SIZES[1:]):
        params += [rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in), 0.1 * rng.standard_normal(fan_out)]
    v = [rng.standard_normal(p.shape) for p in params]

    tX, ty = tg.tensor(X), tg.tensor(y)
    leaves = tuple(tg.tensor(p, requires_grad=True) for p in params)
    tv = tuple(tg.tensor(d) for d in v)

    def loss_of(*ps: tg.Tensor) -> tg.Tensor:
        return tanh_mlp_loss(tX, ty, *ps)

    kept_gradient = tg.grad(loss_of(*leaves), leaves, create_graph=True)  # built once, as NewtonCG does at a point

    def kept_graph_hvp() -> tuple:
        return tg.grad(kept_gradient, leaves, grad_outputs=tv, retain_graph=True)

    gradient, kept, rebuilt = "tinygrad_edu gradient", "tinygrad_edu H·v, kept graph (NewtonCG)", "tinygrad_edu.hvp"
    floor = floor_name(device).replace("by hand", "R-operator")
    cases = {gradient: lambda: tg.grad(loss_of(*leaves), leaves), kept: kept_graph_hvp,
             rebuilt: lambda: tg.hvp(loss_of, leaves, tv), floor: lambda: numpy_rop_hvp(X, y, params, v)}
    gradient_of = {kept: gradient, rebuilt: gradient}  # each H·v: the gradient it is compared with
    torch = optional_torch(device)
    if torch is not None:
        torch_gradient_name, torch_hvp_name = "PyTorch gradient", "PyTorch H·v (double backward)"
        torch_leaves = [torch.tensor(p, requires_grad=True) for p in params]
        torch_v = [torch.from_numpy(d) for d in v]
        torch_X, torch_y = torch.from_numpy(X), torch.from_numpy(y)

        def torch_gradient() -> tuple:
            return torch.autograd.grad(tanh_mlp_loss(torch_X, torch_y, *torch_leaves), torch_leaves)

        def torch_hvp() -> tuple:
            gs = torch.autograd.grad(tanh_mlp_loss(torch_X, torch_y, *torch_leaves), torch_leaves, create_graph=True)
            return torch.autograd.grad(gs, torch_leaves, grad_outputs=torch_v)

        cases[torch_gradient_name], cases[torch_hvp_name] = torch_gradient, torch_hvp
        gradient_of[torch_hvp_name] = torch_gradient_name

    floor_loss, floor_grad, floor_hv = numpy_rop_hvp(X, y, params, v)
    np.testing.assert_allclose(loss_of(*leaves).item(), floor_loss, rtol=1e-12, err_msg="loss")
    for name in cases.keys() - {floor}:
        for i, (got, want) in enumerate(zip(cases[name](), floor_hv if name in gradient_of else floor_grad)):
            got = got.numpy() if isinstance(got, tg.Tensor) else got.detach().numpy()
            np.testing.assert_allclose(got, want, rtol=1e-8, atol=1e-12, err_msg=f"{name}: parameter {i}")
    medians = interleave(cases, repeats)
    rows = []
    for name, t in medians.items():
        figures = {"floor": t / medians[floor]}
        if name in gradient_of:
            figures["gradient"] = t / medians[gradient_of[name]]
        rows.append(row(name, t, figures, [("floor", "<=", 1.5), ("gradient", "<=", 2.5)] if name in (kept, rebuilt)
                        else ()))
    n_params = sum(p.size for p in params)
    return {"title": f"H·v of a {'-'.join(map(str, HVP_SIZES))} tanh MLP loss ({n_params} parameters), "
                     f"{HVP_SAMPLES} samples, float64",
            "check": "loss, gradient and H·v agree with the R-operator floor (rtol 1e-8) for "
                     + ", ".join(n for n in cases if n != floor),
            "rows": rows}


# ---- W4: Newton-CG on logistic regression ---------------------------------------------------------


def logistic_data(n: int, d: int) -> tuple[np.ndarray, np.ndarray]:
    """X (n, d): Gaussian features whose scales fall from 1 to 0.1 (a moderately
    ill-conditioned Hessian, so CG has work to do); y ∈ {0, 1} drawn from the logistic
    model with a random true weight vector."""
    rng = np.random.default_rng(0)
    scales = np.logspace(0, -1, d)
    X = rng.standard_normal((n, d)) * scales
    w_true = 2 * rng.standard_normal(d) / scales / np.sqrt(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ w_true))).astype(np.float64)
    return X, y


class NumpyLogistic:
    """The floor's derivatives, by hand:

    f(w) = mean(max(z, 0) − z·y + log(1 + e^−|z|)) + λ/2 ‖w‖²,  z = X w
    ∇f   = Xᵀ(σ(z) − y)/n + λ w
    H p  = Xᵀ(σ(z)(1 − σ(z)) ⊙ X p)/n + λ p     (σ'(z) cached for the last w, as anyone would)
    """

    def __init__(self, X: np.ndarray, y: np.ndarray):
        self.X, self.y, self.n = X, y, X.shape[0]
        self._w: np.ndarray | None = None
        self._s: np.ndarray | None = None

    def fun_and_grad(self, w: np.ndarray) -> tuple[float, np.ndarray]:
        z = self.X @ w
        f = float(np.mean(np.maximum(z, 0) - z * self.y + np.log1p(np.exp(-np.abs(z))))) + 0.5 * LAM * float(w @ w)
        sigma = 1 / (1 + np.exp(-z))
        return f, self.X.T @ (sigma - self.y) / self.n + LAM * w

    def hessp(self, w: np.ndarray, p: np.ndarray) -> np.ndarray:
        if self._w is None or not np.array_equal(w, self._w):
            sigma = 1 / (1 + np.exp(-(self.X @ w)))
            self._w, self._s = w.copy(), sigma * (1 - sigma)
        return self.X.T @ (self._s * (self.X @ p)) / self.n + LAM * p


def engine_logistic_loss(X: np.ndarray, y: np.ndarray) -> Callable[[tg.Tensor], tg.Tensor]:
    """The same f with tinygrad_edu ops; its derivatives come from the engine."""
    Xt, yt = tg.tensor(X), tg.tensor(y)

    def fun(w: tg.Tensor) -> tg.Tensor:
        return nn.F.binary_cross_entropy_with_logits(Xt @ w, yt) + 0.5 * LAM * (w * w).sum()

    return fun


def run_minimize(fun: Callable, d: int) -> dict:
    """optim.minimize; it tests gtol with the line search's evaluation at the new point."""
    res = optim.minimize(fun, tg.zeros(d, dtype="float64"), "newton-cg", options={"gtol": GTOL, "maxiter": MAXITER})
    return dict(x=res.x.numpy(), nit=res.nit, nfev=res.nfev, nhev=None)


def run_closure(fun: Callable, d: int) -> dict:
    """optim.NewtonCG stepped by hand, reading its counters. After a step the parameters sit
    where the line search last evaluated, so the convergence test reuses that gradient
    when the point matches (counted as an extra evaluation when it does not)."""
    w = tg.tensor(np.zeros(d), requires_grad=True)
    opt = optim.NewtonCG([w])
    last: dict = {}

    def closure() -> tg.Tensor:
        opt.zero_grad()
        loss = fun(w)
        loss.backward()
        last.update(w=w.data.copy(), g=w.grad.data.copy())
        return loss

    def gradient_norm() -> tuple[float, int]:
        if "w" in last and np.array_equal(last["w"], w.data):
            return float(np.abs(last["g"]).max()), 0
        closure()
        return float(np.abs(last["g"]).max()), 1

    gnorm, extra = gradient_norm()
    nit = 0
    while gnorm >= GTOL and nit < MAXITER:
        opt.step(closure)
        nit += 1
        gnorm, used = gradient_norm()
        extra += used
    return dict(x=w.numpy().copy(), nit=nit, nfev=opt.method_state["func_evals"] + extra, nhev=opt.method_state["hvp_evals"])


def run_scipy(scipy_minimize: Callable, fun: Callable, jac: Any, hessp: Callable, d: int) -> dict:
    """SciPy's Newton-CG; jac=True when fun returns (f, ∇f)."""
    res = scipy_minimize(fun, np.zeros(d), jac=jac, hessp=hessp, method="Newton-CG",
                         options={"xtol": SCIPY_XTOL, "maxiter": MAXITER})
    return dict(x=res.x, nit=res.nit, nfev=res.nfev, nhev=res.nhev)


def run_numpy_newton_cg(floor: NumpyLogistic, d: int) -> dict:
    """optim.NewtonCG's algorithm in NumPy with the hand-derived products: CG on H p = −g to
    ‖residual‖ ≤ min(0.5, √‖g‖)·‖g‖, then Armijo backtracking from t = 1. (No branch for
    negative curvature: with λ > 0 this Hessian is positive definite.) It reuses the line
    search's gradient at the new point, where the engine rebuilds the gradient's graph."""
    w = np.zeros(d)
    f, g = floor.fun_and_grad(w)
    nit, nfev, nhev = 0, 1, 0
    while np.abs(g).max() >= GTOL and nit < MAXITER:
        g_norm = float(np.linalg.norm(g))
        tolerance = min(0.5, math.sqrt(g_norm)) * g_norm
        p, r = np.zeros(d), -g
        direction, rr = r, float(r @ r)
        for _ in range(20 * d):  # NewtonCG's default max_cg_iter
            if math.sqrt(rr) <= tolerance:
                break
            hd = floor.hessp(w, direction)
            nhev += 1
            alpha = rr / float(direction @ hd)
            p, r = p + alpha * direction, r - alpha * hd
            rr_next = float(r @ r)
            direction, rr = r + (rr_next / rr) * direction, rr_next
        t, slope = 1.0, float(g @ p)
        f_new, g_new = floor.fun_and_grad(w + t * p)
        nfev += 1
        while not f_new <= f + 1e-4 * t * slope:  # NaN is no decrease
            t /= 2
            f_new, g_new = floor.fun_and_grad(w + t * p)
            nfev += 1
        w, f, g = w + t * p, f_new, g_new
        nit += 1
    return dict(x=w, nit=nit, nfev=nfev, nhev=nhev)


def w4_newton_cg(device: str, repeats: int, quick: bool) -> dict:
    n, d = LOGISTIC_QUICK_N if quick else LOGISTIC_N, LOGISTIC_D
    X, y = logistic_data(n, d)
    fun, floor = engine_logistic_loss(X, y), NumpyLogistic(X, y)
    minimize, closure = "optim.minimize newton-cg", "optim.NewtonCG + closure"
    by_hand = "NumPy Newton-CG by hand (NewtonCG's algorithm)"
    runs = {minimize: lambda: run_minimize(fun, d), closure: lambda: run_closure(fun, d),
            by_hand: lambda: run_numpy_newton_cg(floor, d)}
    floor_run = by_hand
    try:
        from scipy.optimize import minimize as scipy_minimize
    except ImportError:
        scipy_minimize = None
    if scipy_minimize is not None:
        floor_run = "SciPy Newton-CG, NumPy by hand (floor)"
        f_engine, jac_engine, hessp_engine = optim.scipy_fun(fun, tg.zeros(d, dtype="float64"))
        runs[floor_run] = lambda: run_scipy(scipy_minimize, floor.fun_and_grad, True, floor.hessp, d)
        runs["SciPy Newton-CG on optim.scipy_fun"] = lambda: run_scipy(scipy_minimize, f_engine, jac_engine,
                                                                        hessp_engine, d)

    rng = np.random.default_rng(1)  # the derivatives at a random point, then every run's answer
    w_np, v_np = rng.standard_normal(d) / np.sqrt(d), rng.standard_normal(d)
    w = tg.tensor(w_np, requires_grad=True)
    loss = fun(w)
    f_floor, g_floor = floor.fun_and_grad(w_np)
    np.testing.assert_allclose(loss.item(), f_floor, rtol=1e-10, err_msg="loss")
    np.testing.assert_allclose(tg.grad(loss, w)[0].numpy(), g_floor, rtol=1e-9, atol=1e-14, err_msg="gradient")
    np.testing.assert_allclose(tg.hvp(fun, w, tg.tensor(v_np)).numpy(), floor.hessp(w_np, v_np), rtol=1e-9,
                               atol=1e-14, err_msg="H·v")
    results = {name: run() for name, run in runs.items()}
    reference = results[by_hand]["x"]
    for name, r in results.items():
        r["gnorm"] = float(np.abs(floor.fun_and_grad(r["x"])[1]).max())
        assert r["gnorm"] < GTOL, f"{name}: final max|∇f| = {r['gnorm']:.1e} is not below {GTOL:g}"
        distance = float(np.linalg.norm(r["x"] - reference) / np.linalg.norm(reference))
        assert distance < 1e-4, f"{name}: solution {distance:.1e} (relative) away from {by_hand}'s"

    medians = interleave(runs, repeats)
    rows = [row(name, t, {"floor": t / medians[floor_run]},
                [("floor", "<=", 1.3)] if name in (minimize, closure) else ()) for name, t in medians.items()]
    table = [[name, str(r["nit"]), str(r["nfev"]), "—" if r["nhev"] is None else str(r["nhev"]), f"{r['gnorm']:.1e}"]
             for name, r in results.items()]
    return {"title": f"Newton-CG, L2 logistic regression n={n} d={d} float64, w0 = 0 to max|∇f| < {GTOL:g}"
                     + ("" if scipy_minimize is not None else " (SciPy not installed: the floor is NumPy by hand)"),
            "check": f"f, ∇f and H·v at a random point agree with NumPy (rtol 1e-9); every run ends below gtol "
                     f"within 1e-4 (relative) of {by_hand}'s solution",
            "rows": rows,
            "tables": [{"title": "W4: iterations (f evals count calls of f and ∇f together; SciPy stops on its "
                                 f"step size, xtol={SCIPY_XTOL:g})",
                        "header": ["run", "iterations", "f evals", "H·v", "final max|∇f|"], "rows": table}]}


# ---- the parent: one child per workload, the report -------------------------------------------------

WORKLOADS: dict[str, Callable[[str, int, bool], dict]] = {
    "W1": w1_mlp_step, "W2": w2_small_ops, "W3": w3_hvp, "W4": w4_newton_cg, "W5": w5_deep_chain,
    "W6": w6_cnn_step, "MEM": mem_steps, "LARGE": large_mlp_step,
}


def run_workload(name: str, device: str, repeats: int | None, quick: bool) -> dict:
    """In the child: one workload's result; a failed check gives no timings, only the reason."""
    result: dict = {"workload": name, "device": device}
    try:
        array_module(device)  # on "cuda", Skipped at once where CuPy or a GPU is missing
        default = REPEATS.get(name, (0, 0))[quick]  # MEM runs a fixed number of steps instead
        measured = WORKLOADS[name](device, repeats or default, quick)
    except Skipped as e:
        result["skipped"] = str(e)
    except AssertionError as e:
        result["check"] = {"passed": False, "detail": str(e).strip()}
        result["rows"] = []
    else:
        result.update(measured, check={"passed": True, "detail": measured["check"]})
    return result


def package_version(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas_name = f"{blas['name']} {blas.get('version', '')}".strip()
    except (TypeError, KeyError):  # NumPy before 1.26 prints its configuration only
        blas_name = "unknown"
    return {"cpus": os.cpu_count(), "platform": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "numpy": np.__version__, "blas": blas_name,
            "threads": {v: os.environ[v] for v in THREAD_VARIABLES},
            "torch": package_version("torch"), "scipy": package_version("scipy")}


def format_seconds(seconds: float) -> str:
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def render(report: dict) -> str:
    """The markdown report: the machine line, one table of every row, then each workload's
    check (or why it was skipped) and its own small tables."""
    m = report["machine"]
    threads = ", ".join(f"{k}={v}" for k, v in m["threads"].items())
    header = [f"## tinygrad_edu benchmark ({report['device']}{', quick' if report['quick'] else ''})", "",
              f"Machine: {m['cpus']} CPUs ({m['platform']}), Python {m['python']}, NumPy {m['numpy']} "
              f"(BLAS {m['blas']}), BLAS threads: {threads}; PyTorch {m['torch'] or 'not installed'}, "
              f"SciPy {m['scipy'] or 'not installed'}. Medians of interleaved repetitions; total "
              f"{report['seconds']:.0f} s.", ""]
    rows: list = []
    notes: list = []
    tables: list = []
    for name, result in report["workloads"].items():
        if "error" in result or "skipped" in result:
            notes.append(f"- {name} on {result['device']}: {'ERROR' if 'error' in result else 'skipped'}: "
                         f"{result.get('error') or result['skipped']}")
            continue
        check = result["check"]
        detail = "; ".join(line.strip() for line in check["detail"].splitlines()[:4] if line.strip())  # JSON: all
        verdict = "passed" if check["passed"] else "FAILED"
        notes.append(f"- {name} ({result.get('title', '')}): check {verdict}: {detail}")
        for r in result["rows"]:
            figures = "; ".join(FIGURES[k].format(v) for k, v in r["figures"].items())
            targets = "; ".join(("≤ " if t["op"] == "<=" else "≥ ") + FIGURES[t["figure"]].format(t["limit"])
                                for t in r["targets"])
            met = "—" if r["met"] is None else "yes" if r["met"] else "no"
            rows.append(f"| {name} | {r['engine']} | {format_seconds(r['median_s'])} | {figures} | {targets or '—'} "
                        f"| {met} |")
        for table in result.get("tables", []):
            tables += ["", table["title"], "", "| " + " | ".join(table["header"]) + " |",
                       "|" + "---|" * len(table["header"])]
            tables += ["| " + " | ".join(cells) + " |" for cells in table["rows"]]
    if rows:
        rows = ["| workload | engine | median | ratio / µs per op | target | met? |", "|---|---|---|---|---|---|",
                *rows, ""]
    return "\n".join(header + rows + notes + tables)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", help=f"comma-separated: any of {','.join(CPU_WORKLOADS)} on the CPU, "
                                            f"{','.join(CUDA_WORKLOADS)} with --device cuda (default: all of them)")
    parser.add_argument("--repeats", type=int, help="interleaved repetitions of every workload but MEM "
                                                    "(default: the workload's own, or a few with --quick)")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny repetitions and sizes: a smoke test")
    parser.add_argument("--run-workload", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    allowed = CPU_WORKLOADS if args.device == "cpu" else CUDA_WORKLOADS
    names = args.workloads.split(",") if args.workloads else list(allowed)
    unknown = [name for name in names if name not in allowed]
    if unknown:
        parser.error(f"{', '.join(unknown)}: not a workload on {args.device} (choose from {', '.join(allowed)})")
    if args.run_workload:
        print(json.dumps(run_workload(args.run_workload, args.device, args.repeats, args.quick)))
        return 0

    start = time.perf_counter()
    results = {}
    for name in names:
        print(f"running {name} on {args.device} ...", file=sys.stderr, flush=True)
        command = [sys.executable, __file__, "--run-workload", name, "--device", args.device]
        command += (["--repeats", str(args.repeats)] if args.repeats else []) + (["--quick"] if args.quick else [])
        child = subprocess.run(command, stdout=subprocess.PIPE, text=True)
        if child.returncode == 0 and child.stdout.strip():
            results[name] = json.loads(child.stdout.strip().splitlines()[-1])
        else:
            results[name] = {"workload": name, "device": args.device,
                             "error": f"the child process exited with status {child.returncode} (its stderr is above)"}
    report = {"machine": machine(), "device": args.device, "quick": args.quick, "repeats": args.repeats,
              "seconds": time.perf_counter() - start, "workloads": results}
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    failed = [name for name, r in results.items() if "error" in r or ("check" in r and not r["check"]["passed"])]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

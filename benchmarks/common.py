"""What every part of the benchmark shares: each workload's data and sizes (the problem that
every column is given), the code that tinygrad_edu and PyTorch both run (they share the
names Linear, ReLU, SGD, tanh, exp ...), the Case a column hands the runner, the
interleaved timing and a table row.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

import nn
import tinygrad_edu as tg
from tinygrad_edu.data import load_digits

# The kinds of column: an engine is judged against the targets, the floor is what every
# ratio divides by, a reference (PyTorch) is only compared.
ENGINE, FLOOR, REFERENCE = "engine", "floor", "reference"

LR = 0.01  # SGD learning rate of every training step
MLP_SIZES, MLP_BATCH = (784, 256, 256, 10), 128
LARGE_SIZES, LARGE_BATCH = (4096, 4096, 4096, 10), 4096
LARGE_QUICK_SIZES, LARGE_QUICK_BATCH = (1024, 1024, 1024, 10), 1024
CNN_BATCH = 64
CHAIN_OPS, CHAIN_LENGTH = 200, 16
HVP_SIZES, HVP_SAMPLES = (100, 64, 64, 1), 512
LOGISTIC_N, LOGISTIC_QUICK_N, LOGISTIC_D = 20_000, 2_000, 100
GTOL = 1e-6  # W4: every run must end with max |∇f| below this
LAM = 1e-4  # W4: f(w) = mean BCE(Xw, y) + LAM/2 ‖w‖²
SCIPY_XTOL = 1e-6  # W4: SciPy stops on ‖Δw‖₁ ≤ d·xtol, not on the gradient; at 1e-6 it ends below GTOL
MAXITER = 100


class Skipped(Exception):
    """The workload cannot run here (no CuPy or no GPU); the message says why."""


@dataclass(frozen=True)
class Case:
    """One column's way to do a workload. `run` is the call that is timed; the check compares
    what it returns or, for a training step, the weights that `state` reads after it."""
    run: Callable[[], Any]
    state: Callable[[], list] | None = None
    first_calls_s: Callable[[], float] | None = None  # a jit's: the seconds its recording calls took


@dataclass(frozen=True)
class Entry:
    """A row of the table: the column that made the case, its kind, the case's label
    within the column ("" when the column has one case) and, where the column has its own
    targets for the workload, those (else the workload's apply)."""
    column: str
    kind: str
    label: str
    case: Case
    targets: Callable[["Entry"], list] | None = None

    @property
    def name(self) -> str:
        return f"{self.column}: {self.label}" if self.label else self.column


def first_floor(entries: dict[str, Entry]) -> Entry:
    """The entry every ratio of the workload divides by."""
    return next(e for e in entries.values() if e.kind == FLOOR)


def as_numpy(value: Any) -> np.ndarray:
    """A tinygrad_edu tensor, a PyTorch tensor or an array as a NumPy array."""
    if isinstance(value, tg.Tensor):
        return value.numpy()
    return value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)


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


def interleave(cases: dict[str, Callable[[], Any]], repeats: int,
               sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median seconds of each case: one warm-up call of each, then `repeats` rounds in which
    every case runs once, in turn (A B C A B C ...), so that drift of the machine hits all
    alike. `sync` waits for the GPU before and after each call."""
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
    """A table row: the median, figures by name (runner.FIGURES says how each reads) and
    targets (figure, "<=" or ">=", limit), each judged on this run's figure."""
    figures = figures or {}
    judged = [{"figure": name, "op": op, "limit": limit,
               "met": figures[name] <= limit if op == "<=" else figures[name] >= limit}
              for name, op, limit in targets]
    return {"engine": engine, "median_s": seconds, "figures": figures, "targets": judged,
            "met": all(t["met"] for t in judged) if judged else None}


# ---- training steps: W1, W6, MEM, LARGE ------------------------------------------------------


@dataclass(frozen=True)
class TrainingProblem:
    """One SGD step of `build(lib)` on (x, y) from the weights `initial`, on `device`."""
    build: Callable[[Any], Any]
    x: np.ndarray
    y: np.ndarray
    initial: list
    device: str


def mlp(lib: Any, sizes: Sequence[int]) -> Any:
    """Linear, ReLU, ..., Linear in `lib`: nn, or torch.nn (same names, same weight layout)."""
    layers = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        layers += [lib.Linear(fan_in, fan_out), lib.ReLU()]
    return lib.Sequential(*layers[:-1])


def cnn(lib: Any) -> Any:
    """W6's network in `lib`: nn, or torch.nn."""
    return lib.Sequential(lib.Conv2d(1, 8, 3), lib.ReLU(), lib.MaxPool2d(2), lib.Flatten(), lib.Linear(72, 10))


def seeded_model(build: Callable[[Any], Any], device: str) -> Any:
    """build(nn) with the seeded initialisation, on `device`: the same weights every call."""
    tg.manual_seed(0)
    return build(nn).to(device)


def training_step(lib_nn: Any, lib_optim: Any, model: Any, x: Any, y: Any) -> Callable[[], Any]:
    """One SGD step on (x, y) with softmax cross-entropy, returning the loss tensor; the same
    code drives tinygrad_edu (nn, optim) and PyTorch (torch.nn, torch.optim)."""
    opt = lib_optim.SGD(model.parameters(), lr=LR)
    loss_fn = lib_nn.CrossEntropyLoss()

    def step() -> Any:
        opt.zero_grad()
        loss = loss_fn(model(x), y)
        loss.backward()
        opt.step()
        return loss

    return step


def sgd_step(lib_nn: Any, lib_optim: Any, model: Any, x: Any, y: Any) -> Callable[[], float]:
    """training_step, returning the loss as a Python number."""
    step = training_step(lib_nn, lib_optim, model, x, y)
    return lambda: step().item()


def training_problem(build: Callable[[Any], Any], x: np.ndarray, y: np.ndarray, device: str) -> TrainingProblem:
    """The problem of a training step, its initial weights those of the seeded build."""
    initial = [p.numpy().copy() for p in seeded_model(build, "cpu").parameters()]  # numpy() lends read-only
    return TrainingProblem(build, x, y, initial, device)


def mlp_problem(device: str, sizes: Sequence[int] = MLP_SIZES, batch: int = MLP_BATCH) -> TrainingProblem:
    """W1 (and MEM, LARGE): random inputs and labels for an MLP of `sizes`."""
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((batch, sizes[0])).astype(np.float32), rng.integers(0, sizes[-1], batch)
    return training_problem(lambda lib: mlp(lib, sizes), x, y, device)


def cnn_problem(device: str) -> TrainingProblem:
    """W6: the first CNN_BATCH of the 8x8 digits, one channel."""
    images, labels = load_digits()
    return training_problem(cnn, images[:CNN_BATCH, None], labels[:CNN_BATCH], device)


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


def chain_input() -> np.ndarray:
    """The vector every chain starts from (float32, CHAIN_LENGTH elements)."""
    return np.linspace(-1, 1, CHAIN_LENGTH, dtype=np.float32)


# ---- W3: Hessian-vector products --------------------------------------------------------------------


@dataclass(frozen=True)
class HvpProblem:
    """W3: data X, targets y, the MLP's parameters [W1, b1, W2, b2, ...] and a direction v
    shaped like them."""
    X: np.ndarray
    y: np.ndarray
    params: list
    v: list


def tanh_mlp_loss(X: Any, y: Any, *params: Any) -> Any:
    """mean((MLP(X) − y)²) for the tanh MLP with params = (W1, b1, W2, b2, ...), a linear
    last layer; the same code runs on tinygrad_edu and PyTorch tensors."""
    h = X
    for i in range(0, len(params), 2):
        h = h @ params[i].T + params[i + 1]
        if i + 2 < len(params):
            h = h.tanh()
    return ((h - y) ** 2).mean()


def hvp_problem() -> HvpProblem:
    """W3's data, parameters and direction, from a fixed seed."""
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((HVP_SAMPLES, HVP_SIZES[0])), rng.standard_normal((HVP_SAMPLES, 1))
    params: list = []
    for fan_in, fan_out in zip(HVP_SIZES[:-1], HVP_SIZES[1:]):
        params += [rng.standard_normal((fan_out, fan_in)) / np.sqrt(fan_in), 0.1 * rng.standard_normal(fan_out)]
    return HvpProblem(X, y, params, [rng.standard_normal(p.shape) for p in params])


@dataclass(frozen=True)
class FlatHvpProblem:
    """W3f: W3's data, with the parameters and the direction each laid out as one flat
    vector (tinygrad_edu.flat's order), as optim.minimize and NewtonCG hand them over."""
    X: np.ndarray
    y: np.ndarray
    theta: np.ndarray
    v: np.ndarray
    shapes: list


def flat_hvp_problem() -> FlatHvpProblem:
    """W3's problem with its parameters and direction flattened."""
    p = hvp_problem()
    return FlatHvpProblem(p.X, p.y, np.concatenate([w.ravel() for w in p.params]),
                          np.concatenate([d.ravel() for d in p.v]), [w.shape for w in p.params])


# ---- W4: Newton-CG on logistic regression ---------------------------------------------------------


def logistic_data(n: int, d: int = LOGISTIC_D) -> tuple[np.ndarray, np.ndarray]:
    """X (n, d): Gaussian features whose scales fall from 1 to 0.1 (a moderately
    ill-conditioned Hessian, so CG has work to do); y ∈ {0, 1} drawn from the logistic
    model with a random true weight vector."""
    rng = np.random.default_rng(0)
    scales = np.logspace(0, -1, d)
    X = rng.standard_normal((n, d)) * scales
    w_true = 2 * rng.standard_normal(d) / scales / np.sqrt(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ w_true))).astype(np.float64)
    return X, y

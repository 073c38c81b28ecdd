"""The tg.jit column: W1, W2, W3, W3f and W6 as tinygrad_edu's column runs them, under tinygrad_edu.jit.

The jitted function is the eager column's own (the same training step, chain gradient,
gradient and H·v), so the three rows of a workload compare the engine's Python around the
NumPy calls (eager), a replay of those calls alone (jit), and the calls written by hand
(the floor).

Every timed call is a replay. At its first run a case calls its function until a call
replays instead of recording (a training step records twice: its first call finds no
.grad and no optimizer state, its second finds them), keeps the seconds of those
recording calls for the "first calls" figure, and puts back the weights the problem
starts from, so that the check judges a replay's step, not the eager recording call's.
A later call that records a new tape fails the workload. On "cuda" the column has W1, as
the eager column. The fused column (FUSED_CASES) runs the same functions under
jit(fn, fuse=True), whose first calls include compiling the kernels; it has no rows
without Numba.
"""
from __future__ import annotations

import gc
import time
from typing import Any, Callable

import nn
import optim
import tinygrad_edu as tg
from benchmarks.common import CHAIN_OPS, Case, TrainingProblem, chain, seeded_model, training_step
from benchmarks.workloads import flat_hvp_tensors, hvp_tensors
from tinygrad_edu.fusion import numba_available


def floor_targets(step: float, chain: float, hvp: float, cnn: float) -> dict[str, Callable[[Any], list]]:
    """The most each workload's jit rows may take, as a ratio to the floor (on H·v only in W3, W3f)."""
    def on_hvp(entry: Any) -> list:
        return [("floor", "<=", hvp)] if entry.label.startswith("H·v") else []

    return {"W1": lambda entry: [("floor", "<=", step)], "W2": lambda entry: [("floor", "<=", chain)],
            "W3": on_hvp, "W3f": on_hvp, "W6": lambda entry: [("floor", "<=", cnn)]}


# The targets of the issue "jit: record a training step once, replay it at the speed of
# hand-written NumPy", and of "jit, part 3: fusion" for jit(fn, fuse=True).
TARGETS = floor_targets(step=1.0, chain=1.0, hvp=1.2, cnn=1.0)
FUSED_TARGETS = floor_targets(step=0.9, chain=0.1, hvp=1.0, cnn=0.7)


class Replayed:
    """`call` (which calls `jitted`) once warmed up: see the module docstring. `restart`
    puts back the state the problem starts from after the warm-up."""

    def __init__(self, jitted: Any, call: Callable[[], Any], restart: Callable[[], None] = lambda: None):
        self.jitted, self.call, self.restart = jitted, call, restart
        self.recording_s: float | None = None
        self.tapes = 0  # the recordings made by the warm-up

    def run(self) -> Any:
        if self.recording_s is None:
            self.warm_up()
        result = self.call()
        if self.jitted.recordings != self.tapes:
            raise AssertionError(f"jit: a timed call of {self.jitted.__name__} recorded a new tape "
                                 f"({self.jitted.recordings} recordings, {self.tapes} at the warm-up)")
        return result

    def warm_up(self) -> None:
        gc.collect()  # a full collection owed by the imports (PyTorch's objects: 0.1 s) would land on the recording
        seconds = 0.0
        for _ in range(self.jitted.max_variants + 1):
            recorded = self.jitted.recordings
            start = time.perf_counter()
            self.call()
            if self.jitted.recordings == recorded:
                break
            seconds += time.perf_counter() - start
        else:
            raise AssertionError(f"jit: {self.jitted.__name__} records at every call, it never replays")
        self.recording_s, self.tapes = seconds, self.jitted.recordings
        self.restart()

    def first_calls_s(self) -> float:
        """The seconds of the calls that recorded (eager, plus the recording)."""
        return self.recording_s


def replayed_case(replayed: Replayed, state: Callable[[], list] | None = None) -> Case:
    """The runner's Case of a Replayed call."""
    return Case(replayed.run, state, replayed.first_calls_s)


def jit_step(problem: TrainingProblem, fuse: bool = False) -> dict[str, Case]:
    """W1 and W6: the eager column's SGD step, jitted; the loss as a Python number, as there."""
    model = seeded_model(problem.build, problem.device)
    x, y = tg.tensor(problem.x, device=problem.device), tg.tensor(problem.y, device=problem.device)
    step = tg.jit(training_step(nn, optim, model, x, y), fuse=fuse)

    def restart() -> None:
        for p, w in zip(model.parameters(), problem.initial):
            p.copy_(w)

    return {"": replayed_case(Replayed(step, lambda: step().item(), restart),
                              lambda: [p.numpy() for p in model.parameters()])}


def jit_chain(x0: Any, fuse: bool = False) -> dict[str, Case]:
    """W2: the gradient of sum(chain(x)), jitted as a function of x."""
    x = tg.tensor(x0, requires_grad=True)
    gradient = tg.jit(lambda x: tg.grad(chain(x, CHAIN_OPS).sum(), x)[0], fuse=fuse)
    return {"": replayed_case(Replayed(gradient, lambda: gradient(x)))}


def jit_hvp(problem: Any, fuse: bool = False) -> dict[str, Case]:
    """W3: the gradient, and tg.hvp, each jitted as a function of the parameters (and v)."""
    loss_of, leaves, v = hvp_tensors(problem)
    gradient = tg.jit(lambda ws: tg.grad(loss_of(*ws), ws), fuse=fuse)
    hvp = tg.jit(lambda ws, vs: tg.hvp(loss_of, ws, vs), fuse=fuse)
    return {"gradient": replayed_case(Replayed(gradient, lambda: gradient(leaves))),
            "H·v, tg.hvp": replayed_case(Replayed(hvp, lambda: hvp(leaves, v)))}


def jit_flat_hvp(problem: Any, fuse: bool = False) -> dict[str, Case]:
    """W3f: the gradient, and tg.hvp, each jitted as a function of the flat θ (and v)."""
    loss_of, theta, v = flat_hvp_tensors(problem)
    gradient = tg.jit(lambda t: tg.grad(loss_of(t), t)[0], fuse=fuse)
    hvp = tg.jit(lambda t, d: tg.hvp(loss_of, t, d), fuse=fuse)
    return {"gradient": replayed_case(Replayed(gradient, lambda: gradient(theta))),
            "H·v, tg.hvp": replayed_case(Replayed(hvp, lambda: hvp(theta, v)))}


# What the runner's jit column runs for each workload: problem -> {label: Case}.
CASES: dict[str, Callable[[Any], dict[str, Case]]] = {"W1": jit_step, "W2": jit_chain, "W3": jit_hvp,
                                                       "W3f": jit_flat_hvp, "W6": jit_step}

def fused(cases: Callable[..., dict[str, Case]]) -> Callable[[Any], dict[str, Case]]:
    """A workload's jit cases under jit(fn, fuse=True); none (no row) without Numba."""
    return lambda problem: cases(problem, fuse=True) if numba_available() else {}


# The fused column: the same functions, jitted with fuse=True.
FUSED_CASES: dict[str, Callable[[Any], dict[str, Case]]] = {name: fused(cases) for name, cases in CASES.items()}

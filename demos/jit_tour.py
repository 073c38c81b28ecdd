"""The same training step eagerly and under tinygrad_edu.jit: equal results, the tape, the time.

Run: .venv/bin/python demos/jit_tour.py [--quick] [--steps N]

An eager step builds Tensors and graph nodes, walks the graph backwards and loops over
the parameters in Python; only the NumPy calls at the bottom compute anything. jit runs
the step once while recording those calls (the tape), then replays only them: no Tensor,
no graph node, no Python of the step. What it shows:

(1) a tiny step's tape, one NumPy call a line, in its three sections: the forward pass,
    the backward pass (its differentiation order: 1 for a gradient, 2 for a gradient of
    a gradient) and the optimizer's update. The relu's mask x > 0, the cross-entropy's
    scatter of −1/n into the true classes and the momentum buffer are all NumPy calls;
    the learning rate and the step count are read afresh at every replay, so a
    scheduler still works. The passes merge repeated calls, drop unread ones and give
    elementwise calls output buffers before generating the replay function;
(2) a 64-64-10 MLP trained on the digits with SGD (momentum, weight decay) and a
    OneCycleLR schedule, once eagerly and once jitted from the same seed: the losses
    and the final parameters are equal bit for bit;
(3) the time per step of both, the median of interleaved repetitions. The gain is
    largest where Python dominates (small arrays, many ops); on large arrays both wait
    for the same matrix products.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Any

from _cli import demo_parser  # first: outside the project's environment it says how to run the demos

import numpy as np

import nn
import optim
import tinygrad_edu as tg
from train_digits import training_step  # one step of cross-entropy training: what jit records
from tinygrad_edu import Tensor
from tinygrad_edu.data import load_digits


@dataclass
class TourResult:
    tape_text: str
    eager_losses: list
    jit_losses: list
    same_parameters: bool
    recordings: int
    eager_ms: float
    jit_ms: float


def tiny_tape(optimize: bool = True) -> Any:
    """The tape of one SGD step of a 3-4-2 relu network on two samples: as recorded
    (optimize=False), or after the passes."""
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    optimizer = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    step = tg.jit(training_step(model, optimizer), optimize=optimize)
    x, y = Tensor(np.ones((2, 3), dtype=np.float32)), Tensor(np.array([0, 1]))
    for _ in range(3):  # the first call records without momentum buffers, the second with them
        step(x, y)
    return step.tape


def make_trainer(jitted: bool, steps: int):
    """A model, its optimizer and scheduler on the digits, and the step (jitted or not)."""
    tg.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    optimizer = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    scheduler = optim.lr_scheduler.OneCycleLR(optimizer, max_lr=0.2, total_steps=steps)
    step = training_step(model, optimizer)
    return model, scheduler, tg.jit(step) if jitted else step


def train(jitted: bool, steps: int, images: np.ndarray, labels: np.ndarray) -> tuple:
    model, scheduler, step = make_trainer(jitted, steps)
    losses = []
    for i in range(steps):
        start = i * 128 % (len(images) - 128)
        loss, _ = step(Tensor(images[start:start + 128]), Tensor(labels[start:start + 128]))
        losses.append(loss.item())
        scheduler.step()
    return losses, [p.numpy().copy() for p in model.parameters()], step


def time_per_step(images: np.ndarray, labels: np.ndarray, repetitions: int) -> tuple:
    """Milliseconds per step, eager and jitted: medians of interleaved repetitions."""
    x, y = Tensor(images[:128]), Tensor(labels[:128])
    runs = [make_trainer(jitted, 10 ** 6)[2] for jitted in (False, True)]
    times: list = [[], []]
    for run in runs:
        run(x, y), run(x, y)  # the jitted one records twice (no momentum buffer yet, then with it)
    for _ in range(repetitions):
        for run, samples in zip(runs, times):
            start = time.perf_counter()
            for _ in range(10):
                run(x, y)
            samples.append((time.perf_counter() - start) / 10 * 1e3)
    return statistics.median(times[0]), statistics.median(times[1])


def main(argv: list | None = None) -> TourResult:
    args = demo_parser(__doc__, quick="a few steps only (a smoke test)", out=None).parse_args(argv)
    parser_steps = 20 if args.quick else 300
    images, labels = load_digits()
    images = images.reshape(len(images), -1)

    tape, raw = tiny_tape(), tiny_tape(optimize=False)
    text = str(tape)
    print("(1) The tape of one SGD step of a 3-4-2 relu network:\n")
    print(text)
    print(f"\n    As recorded, the tape has {len(raw)} calls, which jit(step, optimize=False) replays one by one; "
          f"after the passes ({', '.join(tape.passes)}) {len(tape)}, with output buffers, run by one generated "
          "function. Print both tapes to compare them.")

    eager_losses, eager_params, _ = train(False, parser_steps, images, labels)
    jit_losses, jit_params, jitted = train(True, parser_steps, images, labels)
    same = all(np.array_equal(a, b) for a, b in zip(eager_params, jit_params))
    print(f"\n(2) {parser_steps} steps on the digits, eager and jitted from one seed:")
    print(f"    losses equal bit for bit: {eager_losses == jit_losses} (first {eager_losses[0]:.4f}, "
          f"last {eager_losses[-1]:.4f}); parameters equal bit for bit: {same}")
    print(f"    the jitted step was recorded {jitted.recordings} times and replays {len(jitted.tape)} NumPy calls")

    eager_ms, jit_ms = time_per_step(images, labels, 3 if args.quick else 15)
    print(f"\n(3) time per step (batch 128): eager {eager_ms:.3f} ms, jit {jit_ms:.3f} ms, "
          f"{eager_ms / jit_ms:.1f}x faster")
    return TourResult(text, eager_losses, jit_losses, same, jitted.recordings, eager_ms, jit_ms)


if __name__ == "__main__":
    main()

"""The table of 「梯度下降的調整策略」, measured: batch gradient descent, SGD and mini-batch SGD side by side.

The note 「梯度下降的調整策略」 (the question "為何深度學習引擎當中通常用 SGD 而非 GD")
compares GD (all the data for each update), SGD (one sample) and mini-batch SGD (a few
samples) in a table: data per update, update speed, noise of the path, and so on. All
three are the one update θ ← θ − η∇L(θ) of optim.SGD; only the batches that DataLoader
feeds it differ (batch_size=None, 1, 16, 64; shuffled with a fixed seed).

1. Linear regression y ≈ w·x + b (256 samples of make_regression, seed 0), every run from
   (w, b) = (2, 2). regression_paths.png draws each run's (w, b) path on the contour
   lines of the full-data loss, as the animation of 「機器學習中的優化器 第 2 篇」 does for GD. GD walks straight
   down the bowl, one step per epoch, and has not arrived after 30 epochs; SGD is at the
   bottom within its first epoch and then never settles: it wanders in a cloud (right
   panel), and the larger the batch, the smaller the cloud. regression_loss.png: far
   from the minimum every batch's gradient points the same way, so per update all batch
   sizes make about the same progress; they part only at the bottom, where SGD's noise shows.
   Against wall-clock time: with so few samples the engine's per-op overhead outweighs
   the arithmetic, an update costs about the same whatever the batch, and the time of an
   epoch grows with its number of updates.
2. Softmax regression on the 8x8 digits (64 inputs, 10 classes; 1437 training images,
   360 held out). digits_curves.png: the full training loss and the test accuracy
   against epochs (SGD far ahead: 1437 updates per epoch against GD's one) and against
   wall-clock time, where the loss curves of SGD and the mini-batches nearly coincide (an
   update costs about the same and, far from the minimum, does about as much) while
   SGD's test accuracy flickers from update to update.

The printed table is that of 「梯度下降的調整策略」, measured: per batch setting, updates per epoch, the
median time of an epoch, the time of one update, the full-data loss before and after the
epoch budget, the noise of the path and the test accuracy. Noise is the share of updates
after which the full-data loss was higher than before: GD follows the true gradient with
a safe step and never goes uphill; a batch's gradient is an estimate that sometimes
points the wrong way, most often for one sample, and near the minimum about every other
time. The note's "更新速度: 極慢" for GD holds for ImageNet-sized data; here a full-batch
update costs only a few times a one-sample update. Its GPU and local-minimum rows are
not measured: this runs on the CPU, and both losses are convex.

One learning rate, LR = 0.05, for every run. It is stable for every batch size because
it is stable for a single sample: a step on one sample's loss Lᵢ cannot overshoot when
LR·λᵢ < 2, λᵢ the largest curvature of Lᵢ: 2(1 + xᵢ²) for (w·xᵢ + b − yᵢ)², and at most
½‖(xᵢ, 1)‖² for the cross-entropy (the softmax's covariance has eigenvalues ≤ ½). A
batch's loss is an average of such Lᵢ, so its curvature is no larger. The script prints
both bounds from the data. The one-sample bound is the binding one: alone, GD would be
stable on the regression up to LR ≈ 1 (2 over its full-data curvature, 2.05).

Run: .venv/bin/python demos/batch_sizes.py [--out out/] [--quick]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before NumPy loads: small matmuls run ~4x faster on one thread

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from _cli import demo_parser  # first: outside the project's environment it says how to run the demos

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from optim import SGD  # noqa: E402
from tinygrad_edu import Tensor, arange, manual_seed, no_grad, randn, tensor, zeros  # noqa: E402
from tinygrad_edu.data import DataLoader, load_digits, make_regression  # noqa: E402

LR = 0.05
SEED = 0
START = (2.0, 2.0)  # (w, b) where every regression run starts
BATCH_SIZES: tuple[int | None, ...] = (None, 1, 16, 64)
COLOURS = {None: "black", 1: "tab:red", 16: "tab:orange", 64: "tab:blue"}
LossFn = Callable[[list[Tensor], Tensor, Tensor], Tensor]


def label(batch_size: int | None) -> str:
    """How the plots and the table name a batch setting."""
    return {None: "GD, full batch", 1: "SGD, batch 1"}.get(batch_size, f"mini-batch {batch_size}")


@dataclass
class Run:
    """One training run. Row k of `records` is measured after k updates (row 0: before any)."""

    batch_size: int | None
    updates_per_epoch: int
    records: np.ndarray  # (updates + 1, m): full-data loss first, then what the task's probe adds
    clock: np.ndarray  # (updates + 1,): training seconds spent before each row, probes excluded
    epoch_times: list[float]  # seconds of each epoch: batches drawn, forward, backward, step


@dataclass
class Row:
    """One line of the printed table."""

    task: str  # "regression" or "digits"
    epochs: int
    batch_size: int | None
    updates_per_epoch: int
    epoch_time: float  # median, seconds
    update_time: float  # seconds
    start_loss: float
    final_loss: float
    uphill: float  # share of the updates after which the full-data loss was higher than before
    test_accuracy: float | None


def train(params: list[Tensor], loss: LossFn, probe: Callable[[list[Tensor]], tuple[float, ...]],
          loader: DataLoader, epochs: int) -> Run:
    """Plain SGD on the batches of `loader`; `probe` measures the model after every update."""
    opt = SGD(params, lr=LR)
    with no_grad():
        records = [probe(params)]
    clock, epoch_times, spent = [0.0], [], 0.0
    for _ in range(epochs):
        epoch_start, tic = spent, time.perf_counter()
        for xb, yb in loader:
            opt.zero_grad()
            loss(params, xb, yb).backward()
            opt.step()
            spent += time.perf_counter() - tic
            with no_grad():
                records.append(probe(params))
            clock.append(spent)
            tic = time.perf_counter()
        epoch_times.append(spent - epoch_start)
    return Run(loader.batch_size, len(loader), np.array(records), np.array(clock), epoch_times)


def mse(params: list[Tensor], x: Tensor, y: Tensor) -> Tensor:
    """Mean squared error of the line w·x + b."""
    w, b = params
    return ((x @ w + b - y) ** 2).mean()


def cross_entropy(params: list[Tensor], x: Tensor, y: Tensor) -> Tensor:
    """Mean of −log softmax(x W + b)[label]: the negative log-likelihood of the labels."""
    W, b = params
    return -(x @ W + b).log_softmax(axis=1)[arange(len(y)), y].mean()


def accuracy(params: list[Tensor], x: Tensor, y: Tensor) -> float:
    """The share of samples whose largest logit is their label's."""
    W, b = params
    return float(((x @ W + b).argmax(axis=1) == y).numpy().mean())


def regression(epochs: int) -> tuple[list[Run], np.ndarray, np.ndarray]:
    """The four runs on make_regression's line; also returns the float32 data (x, y)."""
    x, y = (a.astype(np.float32) for a in make_regression(n_samples=256, n_features=1, seed=SEED))
    print(f"regression: LR = {LR} < 1 / (1 + max xᵢ²) = {1 / (1 + (x ** 2).max()):.3f}, so even a one-sample "
          "step is stable: (w·xᵢ + b − yᵢ)² has curvature 2(1 + xᵢ²), and a step is stable when LR · curvature < 2")
    x_all, y_all = tensor(x), tensor(y)

    def probe(params: list[Tensor]) -> tuple[float, ...]:
        return mse(params, x_all, y_all).item(), params[0].item(), params[1].item()

    runs = []
    for batch_size in BATCH_SIZES:
        params = [tensor([[START[0]]], requires_grad=True), tensor([START[1]], requires_grad=True)]
        loader = DataLoader(x, y, batch_size=batch_size, shuffle=True, seed=SEED)
        runs.append(train(params, mse, probe, loader, epochs))
    return runs, x, y


def digits(epochs: int) -> list[Run]:
    """The four runs of softmax regression on a fixed 80/20 split of the digits."""
    images, labels = load_digits()
    order = np.random.default_rng(SEED).permutation(len(labels))
    x, y = images.reshape(len(labels), 64)[order], labels[order]
    x_train, y_train, x_test, y_test = x[:1437], y[:1437], x[1437:], y[1437:]
    print(f"digits: LR = {LR} < 4 / max ‖(xᵢ, 1)‖² = {4 / ((x_train ** 2).sum(axis=1) + 1).max():.3f}, so even a "
          "one-sample step is stable: one sample's cross-entropy has curvature at most ½‖(xᵢ, 1)‖², and a step is "
          "stable when LR · curvature < 2")
    train_all, test_all = (tensor(x_train), tensor(y_train)), (tensor(x_test), tensor(y_test))

    def probe(params: list[Tensor]) -> tuple[float, ...]:
        return cross_entropy(params, *train_all).item(), accuracy(params, *test_all)

    runs = []
    for batch_size in BATCH_SIZES:
        manual_seed(SEED)
        params = [(0.01 * randn(64, 10)).requires_grad_(), zeros(10, requires_grad=True)]
        loader = DataLoader(x_train, y_train, batch_size=batch_size, shuffle=True, seed=SEED)
        runs.append(train(params, cross_entropy, probe, loader, epochs))
    return runs


def row(task: str, run: Run, test_accuracy: float | None) -> Row:
    """The table line of one run."""
    epoch_time = statistics.median(run.epoch_times)
    losses = run.records[:, 0]
    return Row(task, len(run.epoch_times), run.batch_size, run.updates_per_epoch, epoch_time,
               epoch_time / run.updates_per_epoch,
               float(losses[0]), float(losses[-1]), float((np.diff(losses) > 0).mean()), test_accuracy)


def drawing_order(runs: list[Run]) -> list[Run]:
    """The noisiest run first, so that the smoother ones stay visible on top of it."""
    return sorted(runs, key=lambda run: -run.updates_per_epoch)


def plot_paths(runs: list[Run], x: np.ndarray, y: np.ndarray, path: Path) -> None:
    """The (w, b) paths on the contour lines of the full-data loss: all of them, and near the minimum."""
    (w_opt, b_opt), *_ = np.linalg.lstsq(np.hstack([x, np.ones_like(x)]), y[:, 0], rcond=None)
    floor = float(((w_opt * x + b_opt - y) ** 2).mean())
    fig, (whole, zoom) = plt.subplots(1, 2, figsize=(13, 6))
    panels = [(whole, (-1.5, 2.5), (-1, 2.5), np.geomspace(0.01, 20, 10), "the whole paths"),
              (zoom, (w_opt - 0.12, w_opt + 0.12), (b_opt - 0.12, b_opt + 0.12), np.geomspace(1e-4, 1e-2, 5),
               "near the minimum: where the noise shows")]
    for ax, w_range, b_range, excess, title in panels:
        w_grid, b_grid = np.meshgrid(np.linspace(*w_range, 200), np.linspace(*b_range, 200))
        surface = ((w_grid[..., None] * x[:, 0] + b_grid[..., None] - y[:, 0]) ** 2).mean(axis=-1)
        contours = ax.contour(w_grid, b_grid, surface, levels=floor + excess, colors="grey", linewidths=0.7)
        ax.clabel(contours, fmt="%.4g", fontsize=7)
        for run in drawing_order(runs):
            ax.plot(run.records[:, 1], run.records[:, 2], color=COLOURS[run.batch_size], lw=0.8,
                    marker="o" if run.batch_size is None else None, ms=3,
                    label=f"{label(run.batch_size)}: {len(run.records) - 1} updates")
        ax.plot(*START, "ko", ms=8, label="start")
        ax.plot(w_opt, b_opt, "*", mfc="none", mec="k", ms=14, zorder=3, label="least-squares minimum")
        ax.set(xlim=w_range, ylim=b_range, xlabel="w", ylabel="b", title=title, aspect="equal")
    whole.legend(loc="upper left", fontsize=8)
    fig.suptitle("(w, b) after each update, on the contour lines of the full-data MSE")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_regression_loss(runs: list[Run], path: Path) -> None:
    """Full-data loss after each update, against updates and against training time."""
    fig, (by_updates, by_time) = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for run in drawing_order(runs):
        style = dict(color=COLOURS[run.batch_size], lw=1, label=label(run.batch_size))
        by_updates.plot(np.arange(1, len(run.records)), run.records[1:, 0], **style)
        by_time.plot(run.clock[1:], run.records[1:, 0], **style)
    by_updates.set(xscale="log", yscale="log", xlabel="updates (log)", ylabel="full-data MSE (log)",
                   title="loss against the number of updates")
    by_time.set(xscale="log", xlabel="training time, seconds (log)", title="loss against wall-clock time")
    by_updates.legend()
    for ax in (by_updates, by_time):
        ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_digits(runs: list[Run], path: Path) -> None:
    """Training loss and test accuracy, against epochs and against training time."""
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), sharey="row")
    for run in drawing_order(runs):
        style = dict(color=COLOURS[run.batch_size], lw=1, label=label(run.batch_size))
        epochs = np.arange(len(run.records)) / run.updates_per_epoch
        for i in range(2):
            axes[i, 0].plot(epochs, run.records[:, i], **style)
            axes[i, 1].plot(run.clock[1:], run.records[1:, i], **style)
    axes[0, 0].set(ylabel="training loss (cross-entropy, all 1437 images)", title="against epochs")
    axes[0, 1].set(xscale="log", title="against wall-clock time (from the first update on)")
    axes[1, 0].set(xlabel="epochs", ylabel="test accuracy (360 images)")
    axes[1, 1].set(xscale="log", xlabel="training time, seconds (log)")
    axes[1, 0].legend()
    for ax in axes.flat:
        ax.grid(True, alpha=0.3)
    fig.suptitle(f"softmax regression on the digits, plain SGD with LR = {LR}")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def markdown(rows: list[Row]) -> str:
    """The rows as a markdown table."""
    lines = ["| task | epochs | batch | updates/epoch | time/epoch (median) | time/update "
             "| full-data loss: start → end | noise: updates that raised the loss | test accuracy |", "|" + " --- |" * 9]
    for r in rows:
        acc = "—" if r.test_accuracy is None else f"{r.test_accuracy:.1%}"
        lines.append(f"| {r.task} | {r.epochs} | {label(r.batch_size)} | {r.updates_per_epoch} "
                     f"| {r.epoch_time * 1e3:.1f} ms | {r.update_time * 1e6:.0f} µs "
                     f"| {r.start_loss:.4f} → {r.final_loss:.4f} | {r.uphill:.0%} | {acc} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Run both experiments, write the PNGs, print the table; returns the table's rows."""
    args = demo_parser(__doc__, quick="a tiny budget, for a smoke test").parse_args(argv)
    regression_epochs, digits_epochs = (2, 1) if args.quick else (30, 10)
    args.out.mkdir(parents=True, exist_ok=True)

    line_runs, x, y = regression(regression_epochs)
    digit_runs = digits(digits_epochs)
    rows = ([row("regression", run, None) for run in line_runs]
            + [row("digits", run, float(run.records[-1, 1])) for run in digit_runs])
    print(markdown(rows))

    files = [args.out / name for name in ("regression_paths.png", "regression_loss.png", "digits_curves.png")]
    plot_paths(line_runs, x, y, files[0])
    plot_regression_loss(line_runs, files[1])
    plot_digits(digit_runs, files[2])
    print("wrote", *files, sep="\n  ")
    return rows


if __name__ == "__main__":
    main()

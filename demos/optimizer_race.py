"""Optimizer race: every optimizer of optim/ on the landscapes of the course notes.

Run: .venv/bin/python demos/optimizer_race.py [--out out/] [--quick] [--tune]

Every run is one call of optim.minimize from the same start. Each figure shows the paths on the
contour map (GD and momentum in one panel, the adaptive methods in the next) and, on the right,
each run's progress per step on a log scale; each printed table gives the learning rate, the steps
to the target ("—": not reached), the final loss and minimize's verdict. "Steps" counts the step
from which the loss stays within 1e-6 of the known minimum until the run ends (on the saddle: the
step where |y| passes 2). How each learning rate was chosen is in the comment above LR_GRID.

What to look at:
(a) a_ravine.png: 0.5·(x² + 50·y²), steep across, flat along (the narrow valley of
    「梯度下降的調整策略」, the ravine of 「訓練卡住 ≠ 梯度過小」). GD needs lr < 2/50 for the steep
    direction, so it crawls along the flat one; momentum
    keeps its speed along the valley floor and needs roughly 40 % fewer steps. Adagrad and RMSprop give
    each coordinate its own step and finish in a handful: this valley lies along the axes, which is
    exactly what a per-coordinate step can fix (rotate it by 45° to see the advantage shrink). At
    the large learning rates the search chose for them, their first steps jump far out of the valley
    and back (Adagrad and RMSprop, dashed, along the same path), so that panel is widened to hold every
    path. AdamW's weight decay pulls towards 0, which here happens to be the minimum.
(b) b_rosenbrock.png: the curved valley from (−1.2, 1). Reaching the valley floor takes a few
    steps; following it to (1, 1) is the hard part, and within 5000 steps plain GD does not get
    there. AdamW keeps its default weight decay (1e-2), which keeps pulling it away, towards 0.
(c) c_saddle.png: x² − y² from (1, 0.001), a saddle (「梯度下降的調整策略」: gradient zero, yet not a minimum;
    the note 「2.3 梯度下降法與優化技術」: momentum on saddles). Near it the gradient along y is tiny: GD's |y| grows by
    (1 + 2·lr) a step, a straight line on the log plot. Heavy ball and Nesterov add those steps
    up and leave about four times sooner; the adaptive methods divide by the gradient's size, so
    the tiny gradient still gives full-size steps (RMSprop leaves first), except Adagrad, whose
    ever-growing sum shrinks its steps, and RAdam, whose rectifier damps its early adaptive steps.
    The moving-average momentum is no faster than GD here (see below). The function has no
    minimum, so a run stops once |y| > 2 (its callback returns True): the table says "escaped the
    saddle", which is the goal here, not a failure.
(d) d_double_well.png: x⁴ − 3x² − x + y², a shallow minimum at x ≈ −1.13 before the deeper one
    at x ≈ 1.30 (the figure of a ball rolling through a valley). At the same learning rate
    GD stops in the first valley; heavy ball, the moving average and Nesterov arrive with speed and
    roll over the hump. The adaptive methods, whose steps are bounded by their lr, stay in the
    first valley too (Adagrad, its steps ever shrinking, has not even settled there).
(e) e_lr_study.png: the learning-rate study of 「機器學習中的優化器 第 2 篇」. Its loss is the MSE of ŷ = w1·x1 + w2·x2 on the
    three samples of the note's figure code (gradient-descent-bgd.py, linked from that note), from
    w = (0, 0). The Hessian's largest eigenvalue is 22/3, so GD is stable only for lr < 3/11 ≈ 0.273:
    at 0.1 it converges in a few steps; 0.28 is just past the limit and each zig-zag is 5 % longer
    than the last, which over the note's 10-step animation looks like a steady oscillation; at 0.5
    the loss overflows and minimize reports "diverged".
(f) f_lr_schedules.png: the schedules of 「訓練卡住 ≠ 梯度過小」, computed with optim.lr_scheduler on a dummy optimizer:
    a linear warm-up then cosine decay (SequentialLR; the decay is
    η_t = η_min + ½ (η_max − η_min)(1 + cos(π t / T))), and StepLR's step decay (η ← γ η every k epochs).

The two momentum rows are the notes' two forms of one method: heavy ball (「機器學習中的優化器 第 2 篇」:
v_{t+1} = β v_t − η ∇L(w_t), w_{t+1} = w_t + v_{t+1}) is momentum=0.9, dampening=0; the moving average of
「2.3 梯度下降法與優化技術」 and 「第二章 梯度下降法」 (v_t = β v_{t−1} + (1 − β) ∇J(θ_t), θ_{t+1} = θ_t − α v_t)
is dampening=0.9, which averages the gradients instead of summing them, so at the same lr its
steps end up about 10 times shorter than the heavy ball's, as long as GD's. (Both start their buffer at the first gradient, as PyTorch.)

--quick runs far fewer iterations (a smoke test); --tune searches the races' learning rates again;
--readme-figure docs/images/rosenbrock.png redraws the README's picture.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from _cli import demo_parser  # first: outside the project's environment it says how to run the demos

import matplotlib

matplotlib.use("Agg")  # draw into files, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy  # noqa: E402

import optim  # noqa: E402
from optim import OptimizeResult, lr_scheduler  # noqa: E402
from tinygrad_edu import Tensor  # noqa: E402

TOL = 1e-6  # "reached": from that step on, the loss stays within TOL of the known minimum
GTOL = 1e-4  # minimize stops once max |gradient| < GTOL; on these landscapes the loss is then within TOL
BETA = 0.9  # every momentum coefficient, the notes' usual value (「機器學習中的優化器 第 2 篇」)


@dataclass(frozen=True)
class Method:
    """An optimizer as optim.minimize names it, with its settings other than the learning rate."""

    label: str
    name: str
    settings: dict = dataclasses.field(default_factory=dict)


GD = Method("GD", "sgd")
METHODS = (
    GD,
    Method("Momentum, heavy ball", "sgd", {"momentum": BETA}),  # v ← βv − η∇L, w ← w + v
    Method("Momentum, moving average", "sgd", {"momentum": BETA, "dampening": BETA}),  # v ← βv + (1 − β)∇L
    Method("Nesterov", "sgd", {"momentum": BETA, "nesterov": True}),
    Method("Adagrad", "adagrad"),
    Method("RMSprop", "rmsprop"),
    Method("Adadelta", "adadelta"),
    Method("Adam", "adam"),
    Method("AdamW", "adamw"),  # with its default weight_decay=1e-2
    Method("NAdam", "nadam"),
    Method("RAdam", "radam"),
)

# How each learning rate was chosen, by one rule per kind of landscape and never per method:
# - The two races (ravine, Rosenbrock): every method gets the lr of LR_GRID whose run reaches the
#   tolerance in the fewest steps within the default budget (if none reaches it, the one that ends
#   lowest). `--tune` reruns this search (about two minutes) and prints the two tables below.
# - The saddle and the double well show a behaviour, not a race: every method takes the same ETA,
#   except Adadelta, whose lr is a unitless factor on a step it sizes itself (default 1.0).
# - The learning-rate study of 「機器學習中的優化器 第 2 篇」: its two learning rates, 0.1 and 0.28, and 0.5, which diverges.
LR_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0, 10.0)
RAVINE_LR = {"GD": 0.03, "Momentum, heavy ball": 0.01, "Momentum, moving average": 0.03, "Nesterov": 0.01,
             "Adagrad": 10.0, "RMSprop": 1.0, "Adadelta": 1.0, "Adam": 1.0, "AdamW": 10.0, "NAdam": 0.3, "RAdam": 0.1}
ROSENBROCK_LR = {"GD": 0.001, "Momentum, heavy ball": 0.003, "Momentum, moving average": 0.003, "Nesterov": 0.001,
                 "Adagrad": 1.0, "RMSprop": 0.001, "Adadelta": 0.1, "Adam": 0.3, "AdamW": 0.03, "NAdam": 0.01,
                 "RAdam": 0.003}
ETA = 0.02  # small enough for GD to settle in the double well's shallow minimum (it needs lr < 0.2 there)


def ravine(v: Tensor) -> Tensor:
    """0.5·(x² + 50·y²): curvature 1 along x, 50 across y; minimum 0 at (0, 0)."""
    return 0.5 * (v[0] ** 2 + 50 * v[1] ** 2)


def rosenbrock(v: Tensor) -> Tensor:
    """(1 − x)² + 100·(y − x²)²: a curved ravine; minimum 0 at (1, 1)."""
    x, y = v[0], v[1]
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def saddle(v: Tensor) -> Tensor:
    """x² − y²: a saddle at (0, 0), unbounded below along y."""
    return v[0] ** 2 - v[1] ** 2


def double_well(v: Tensor) -> Tensor:
    """x⁴ − 3x² − x + y²: a shallow minimum at x ≈ −1.13 (−1.07), a deeper one at x ≈ 1.30 (−3.51)."""
    x = v[0]
    return x ** 4 - 3 * x ** 2 - x + v[1] ** 2


def seed_quadratic(v: Tensor) -> Tensor:
    """The loss of the learning-rate study in 「機器學習中的優化器 第 2 篇」: the mean squared error
    of ŷ = w1·x1 + w2·x2 on the three samples
    (x1, x2, y) = (1, 1, 4), (2, 1, 6), (1, 2, 6) of the figure code the note links
    (gradient-descent-bgd.py); minimum 0 at w1 = w2 = 2."""
    w1, w2 = v[0], v[1]
    return ((4 - w1 - w2) ** 2 + (6 - 2 * w1 - w2) ** 2 + (6 - w1 - 2 * w2) ** 2) / 3


@dataclass(frozen=True)
class Landscape:
    """A function of one 2-element Tensor, where its runs start, and how to draw and judge them."""

    key: str  # the figure's file name
    title: str
    fun: Callable[[Tensor], Tensor]
    start: tuple[float, float]
    minimum: tuple[float, float] | None  # where the (global) minimum is; None for the saddle
    runs: tuple[tuple[Method, float], ...]  # (method, learning rate)
    maxiter: int
    quick_maxiter: int
    box: tuple[float, float, float, float]  # x_min, x_max, y_min, y_max of the picture
    escape: float | None = None  # the saddle: a run stops once |y| > escape
    fit_paths: bool = False  # widen each panel past `box` until every point of its paths shows
    log_levels: bool = True  # contour levels spaced logarithmically above the minimum
    axes: tuple[str, str] = ("x", "y")

    @property
    def f_min(self) -> float:
        return self.fun(Tensor(self.minimum, dtype="float64")).item()


def tuned(lrs: dict[str, float]) -> tuple[tuple[Method, float], ...]:
    """Every method at its searched learning rate."""
    return tuple((m, lrs[m.label]) for m in METHODS)


def shared(eta: float) -> tuple[tuple[Method, float], ...]:
    """Every method at the same learning rate eta; Adadelta at its unitless default 1.0."""
    return tuple((m, 1.0 if m.name == "adadelta" else eta) for m in METHODS)


RAVINE = Landscape(
    key="a_ravine", title="(a) Ill-conditioned ravine 0.5·(x² + 50·y²)", fun=ravine, start=(-9.0, 1.0),
    minimum=(0.0, 0.0), runs=tuned(RAVINE_LR), maxiter=2000, quick_maxiter=400, box=(-10.0, 2.0, -2.0, 2.0),
    fit_paths=True)  # the adaptive methods' large learning rates jump far out of the valley and back
ROSENBROCK = Landscape(
    key="b_rosenbrock", title="(b) Rosenbrock (1 − x)² + 100·(y − x²)² from (−1.2, 1)", fun=rosenbrock,
    start=(-1.2, 1.0), minimum=(1.0, 1.0), runs=tuned(ROSENBROCK_LR), maxiter=5000, quick_maxiter=300,
    box=(-2.0, 2.0, -1.0, 3.0))
SADDLE = Landscape(
    key="c_saddle", title="(c) Saddle x² − y² from (1, 0.001): steps until |y| > 2", fun=saddle, start=(1.0, 1e-3),
    minimum=None, runs=shared(ETA), maxiter=300, quick_maxiter=300, box=(-1.5, 1.5, -2.5, 2.5), escape=2.0,
    log_levels=False)
DOUBLE_WELL = Landscape(
    key="d_double_well", title="(d) Shallow minimum before a deeper one: x⁴ − 3x² − x + y²", fun=double_well,
    start=(-2.2, 1.5), minimum=(float(numpy.roots([4, 0, -6, -1]).real.max()), 0.0),  # the largest root of f'
    runs=shared(ETA), maxiter=2000, quick_maxiter=300, box=(-2.6, 2.6, -1.8, 1.8), log_levels=False)
LR_STUDY = Landscape(
    key="e_lr_study", title="(e) The course notes' learning-rate study: GD on its MSE, optimum w1 = w2 = 2",
    fun=seed_quadratic, start=(0.0, 0.0), minimum=(2.0, 2.0), runs=((GD, 0.1), (GD, 0.28), (GD, 0.5)),
    maxiter=400, quick_maxiter=400, box=(-2.0, 6.0, -2.0, 6.0), axes=("w1", "w2"))
LANDSCAPES = (RAVINE, ROSENBROCK, SADDLE, DOUBLE_WELL, LR_STUDY)


@dataclass
class Row:
    """One line of a table: `method` (minimize's `name` for it) run at `lr`, what it is judged by at
    each step (`progress`), the steps it needed to reach the target (None: not within the run) and
    minimize's result."""

    method: str
    name: str
    lr: float
    progress: numpy.ndarray
    steps: int | None
    result: OptimizeResult


def run(land: Landscape, method: Method, lr: float, maxiter: int) -> Row:
    """One call of optim.minimize, judged by `progress` and `steps_to_target`."""
    options = {**method.settings, "lr": lr, "maxiter": maxiter, "gtol": GTOL}

    def stop_outside(x: numpy.ndarray, result: OptimizeResult) -> bool:
        return abs(x[1]) > land.escape  # True ends the run

    with numpy.errstate(over="ignore", invalid="ignore"):  # diverging runs overflow; minimize reports them
        result = optim.minimize(land.fun, Tensor(land.start, dtype="float64"), method.name, options=options,
                                callback=None if land.escape is None else stop_outside)
        trace = progress(land, result.path)
    return Row(method.label, method.name, lr, trace, steps_to_target(land, trace), result)


def progress(land: Landscape, path: numpy.ndarray) -> numpy.ndarray:
    """At each step of a path: |y| on the saddle, elsewhere the loss above the minimum."""
    if land.escape is not None:
        return numpy.abs(path[:, 1])
    return land.fun(Tensor(path.T)).numpy() - land.f_min


def steps_to_target(land: Landscape, trace: numpy.ndarray) -> int | None:
    """The saddle: the first step with |y| > escape. Elsewhere: the step from which the loss stays
    within TOL of the minimum up to the end of the run."""
    if land.escape is not None:
        outside = numpy.flatnonzero(trace > land.escape)
        return int(outside[0]) if outside.size else None
    far = numpy.flatnonzero(~(trace <= TOL))  # NaN counts as far
    if far.size == 0:
        return 0
    return None if far[-1] == len(trace) - 1 else int(far[-1]) + 1


def race(land: Landscape, quick: bool = False) -> list[Row]:
    """The table of a landscape: one row per (method, lr) of its runs."""
    return [run(land, method, lr, land.quick_maxiter if quick else land.maxiter) for method, lr in land.runs]


def tune(land: Landscape) -> dict[str, float]:
    """Each method's lr from LR_GRID: the fewest steps to the target, else the lowest final loss."""
    def score(row: Row) -> tuple[float, float]:
        final = row.result.fun - land.f_min
        return (math.inf if row.steps is None else row.steps, final if math.isfinite(final) else math.inf)

    return {m.label: min((run(land, m, lr, land.maxiter) for lr in LR_GRID), key=score).lr for m in METHODS}


def print_table(land: Landscape, rows: list[Row]) -> None:
    """The landscape's rows as a markdown table (a "|" inside a cell is escaped)."""
    def line(*cells: object) -> str:
        return "| " + " | ".join(str(cell).replace("|", r"\|") for cell in cells) + " |"

    target = f"steps to |y| > {land.escape:g}" if land.escape is not None else f"steps to loss ≤ min + {TOL:g}"
    print(f"\n### {land.title}\n")
    print(line("method", "lr", target, "final loss", "verdict" if land.escape is not None else "success: message"))
    print("|---|---:|---:|---:|---|")
    for row in rows:
        print(line(row.method, f"{row.lr:g}", "—" if row.steps is None else row.steps, f"{row.result.fun:.3g}",
                   verdict(land, row)))
    elsewhere = [row for row in rows if row.steps is None and row.result.success and land.escape is None]
    if elsewhere:
        print(elsewhere_note(land, elsewhere))


def elsewhere_note(land: Landscape, rows: list[Row]) -> str:
    """Why a row can say "—" and "True: converged": minimize's test is a small gradient, which
    any minimum passes; "—" says it was not the known (global) one."""
    ends = ", ".join(f"{row.method} at ({row.result.x.numpy()[0]:.2f}, {row.result.x.numpy()[1]:.2f})" for row in rows)
    return (f"\n\"—\" beside \"True: converged\": minimize's test (a small gradient) passed, but at another "
            f"minimum than the known one at ({land.minimum[0]:.2f}, {land.minimum[1]:.2f}), so the loss never came "
            f"within {TOL:g} of it: {ends}.")


def verdict(land: Landscape, row: Row) -> str:
    """minimize's success and message; on the saddle, where leaving is the goal and the callback
    ends the run once |y| > escape, "escaped the saddle" instead of minimize's "stopped by the callback"."""
    if land.escape is None:
        return f"{row.result.success}: {row.result.message}"
    return "escaped the saddle" if row.steps is not None else f"did not escape: {row.result.message}"


STYLES = tuple(zip(("black", "tab:blue", "tab:cyan", "tab:green", "tab:olive", "tab:orange", "tab:brown",
                    "tab:red", "tab:pink", "tab:purple", "tab:gray"), "osv^<>DPXhp"))  # (colour, marker) per row


def panels(rows: list[Row]) -> list[tuple[str, list[int]]]:
    """Which rows share a contour panel: one per run when all rows are one method at several
    learning rates (the learning-rate study, side by side as in its note), else GD and momentum in one
    and the adaptive methods in the other."""
    if len({row.method for row in rows}) == 1:
        return [(f"{row.method}, lr = {row.lr:g}", [i]) for i, row in enumerate(rows)]
    sgd = [i for i, row in enumerate(rows) if row.name == "sgd"]
    return [("GD and momentum", sgd), ("adaptive learning rates", [i for i in range(len(rows)) if i not in sgd])]


def label_steps(ax: plt.Axes, path: numpy.ndarray, color: str) -> None:
    """Write each step's number beside its point, skipping points too close to the last one numbered."""
    last = numpy.full(2, numpy.inf)
    for step, point in enumerate(path):
        if numpy.hypot(*(point - last)) > 0.3:
            ax.annotate(str(step), point, xytext=(5, -12), textcoords="offset points", color=color, fontsize=9)
            last = point


def panel_box(land: Landscape, paths: list[numpy.ndarray]) -> tuple[float, float, float, float]:
    """land.box, or, for a landscape with fit_paths, the box widened to hold every finite point
    of `paths` with a 5 % margin."""
    x_min, x_max, y_min, y_max = land.box
    points = numpy.concatenate(paths) if land.fit_paths else numpy.empty((0, 2))
    points = points[numpy.isfinite(points).all(axis=1)]
    if points.size:
        (px_min, py_min), (px_max, py_max) = points.min(axis=0), points.max(axis=0)
        dx, dy = 0.05 * (max(x_max, px_max) - min(x_min, px_min)), 0.05 * (max(y_max, py_max) - min(y_min, py_min))
        x_min, x_max = min(x_min, px_min - dx), max(x_max, px_max + dx)
        y_min, y_max = min(y_min, py_min - dy), max(y_max, py_max + dy)
    return x_min, x_max, y_min, y_max


def draw_contours(ax: plt.Axes, land: Landscape, box: tuple[float, float, float, float]) -> None:
    """The landscape's filled contours over `box`, with the start and the minimum marked."""
    x_min, x_max, y_min, y_max = box
    grid = numpy.meshgrid(numpy.linspace(x_min, x_max, 300), numpy.linspace(y_min, y_max, 300))
    z = land.fun(Tensor(numpy.stack(grid))).numpy()
    if land.log_levels:  # heights above the minimum span decades: space the levels logarithmically
        levels = land.f_min + numpy.geomspace(1e-2, z.max() - land.f_min, 25)
    else:
        levels = numpy.linspace(z.min(), z.max(), 25)
    ax.contourf(*grid, z, levels=levels, cmap="Greys", alpha=0.35, extend="min")
    ax.contour(*grid, z, levels=levels, colors="grey", linewidths=0.5, linestyles="solid")
    ax.plot(*land.start, "ks", ms=9, label="start")
    if land.minimum is not None:
        ax.plot(*land.minimum, "*", color="gold", mec="black", ms=18, label="minimum")
    ax.set(xlim=(x_min, x_max), ylim=(y_min, y_max), xlabel=land.axes[0], ylabel=land.axes[1])


def draw_path(ax: plt.Axes, row: Row, style: dict) -> None:
    """A run's path; far-off points of a diverging run are left out (Agg cannot draw lines to
    near-overflow coordinates)."""
    path = numpy.where(numpy.abs(row.result.path) < 1e6, row.result.path, numpy.nan)
    ax.plot(path[:, 0], path[:, 1], **style)


def plot(land: Landscape, rows: list[Row], out: Path) -> Path:
    """Contours with the runs' paths, then each run's progress per step; returns the PNG's path."""
    groups = panels(rows)
    fig, axes = plt.subplots(1, len(groups) + 1, figsize=(5.5 * (len(groups) + 1), 6.2), layout="constrained")
    curves = axes[-1]
    for ax, (title, members) in zip(axes, groups):
        draw_contours(ax, land, panel_box(land, [rows[i].result.path for i in members]))
        for position, i in enumerate(members):
            row, (color, marker) = rows[i], STYLES[i]
            steps = "never" if row.steps is None else f"{row.steps} steps"
            # every other path dashed: paths that coincide (Adagrad's and RMSprop's on the ravine) both show
            style = dict(color=color, marker=marker, ms=3, lw=1.2, ls="--" if position % 2 else "-",
                         label=f"{row.method}, lr={row.lr:g}: {steps}")
            draw_path(ax, row, style)
            if len(members) == 1:  # a panel of its own: number the first steps, as the note's animation does
                label_steps(ax, row.result.path[:12], color)
            curves.plot(numpy.where(numpy.isfinite(row.progress), row.progress, numpy.nan), **style)
        if land.escape is not None:
            for side in (land.escape, -land.escape):
                ax.axhline(side, color="black", ls="--", lw=1, label=f"|y| = {land.escape:g}")
        ax.set_title(title)
    if land.escape is None:
        curves.axhline(TOL, color="black", ls="--", lw=1)
        curves.set(ylim=(1e-10, 1e6), ylabel=f"loss − minimum (dashed: {TOL:g})")
    else:
        curves.axhline(land.escape, color="black", ls="--", lw=1)
        curves.set(ylabel=f"|y| (dashed: {land.escape:g})")
    curves.set(yscale="log", xlabel="step", title="progress per step")
    curves.grid(alpha=0.3)
    legend = {}  # label -> handle, each label once ("start" and the like are in every panel)
    for ax in axes[:-1]:
        legend.update(zip(*ax.get_legend_handles_labels()[::-1]))
    fig.legend(legend.values(), legend.keys(), loc="outside lower center", ncol=4, fontsize=9)
    fig.suptitle(land.title, fontsize=14)
    file = out / f"{land.key}.png"
    fig.savefig(file, dpi=100)
    plt.close(fig)
    return file


README_METHODS = ("GD", "Momentum, heavy ball", "Nesterov", "Adam", "RMSprop")


def plot_readme(rows: list[Row], file: Path) -> Path:
    """The README's picture: a few methods on Rosenbrock, one panel, type readable at 880 px."""
    fig, ax = plt.subplots(figsize=(8, 6), layout="constrained")
    draw_contours(ax, ROSENBROCK, ROSENBROCK.box)
    for i, row in enumerate(rows):
        if row.method in README_METHODS:
            steps = "not within 5000 steps" if row.steps is None else f"{row.steps} steps"
            draw_path(ax, row, dict(color=STYLES[i][0], lw=2, label=f"{row.method} (lr {row.lr:g}): {steps}"))
    ax.set_title("Optimizers on Rosenbrock's function, from (−1.2, 1) to the minimum (1, 1)", fontsize=12)
    ax.legend(loc="upper center", fontsize=11, framealpha=0.9)  # the paths stay below y = 1.5
    fig.savefig(file, dpi=110)
    plt.close(fig)
    return file


def schedule(make: Callable[[optim.Optimizer], lr_scheduler.LRScheduler], epochs: int) -> list[float]:
    """The learning rate of each epoch under the scheduler `make` builds, on a dummy optimizer."""
    optimizer = optim.SGD([Tensor([0.0], requires_grad=True)], lr=0.1)
    scheduler = make(optimizer)
    lrs = []
    for _ in range(epochs):
        lrs.append(scheduler.get_last_lr()[0])
        scheduler.step()  # a training loop runs an epoch of optimizer.step() before this
    return lrs


def plot_schedules(out: Path, epochs: int = 100) -> Path:
    """The warm-up then decay of 「訓練卡住 ≠ 梯度過小」 (LinearLR, then CosineAnnealingLR) beside StepLR's step decay."""
    warmup = 10
    cosine = schedule(lambda opt: lr_scheduler.SequentialLR(
        opt, [lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warmup),
              lr_scheduler.CosineAnnealingLR(opt, T_max=epochs - warmup)], milestones=[warmup]), epochs)
    step = schedule(lambda opt: lr_scheduler.StepLR(opt, step_size=30, gamma=0.1), epochs)
    fig, ax = plt.subplots(figsize=(9, 4.5), layout="constrained")
    ax.plot(cosine, "-o", ms=3, label=f"LinearLR warm-up ({warmup} epochs), then CosineAnnealingLR (SequentialLR)")
    ax.plot(step, "-o", ms=3, label="StepLR: ×0.1 every 30 epochs")
    ax.set(xlabel="epoch", ylabel="learning rate", title="(f) Learning-rate schedules from lr = 0.1")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    file = out / "f_lr_schedules.png"
    fig.savefig(file, dpi=100)
    plt.close(fig)
    return file


def main(argv: Sequence[str] | None = None) -> dict[str, list[Row]]:
    """Run every landscape, print its table, draw its figure; returns the tables by landscape key."""
    parser = demo_parser(__doc__, quick="far fewer iterations: a smoke test")
    parser.add_argument("--tune", action="store_true", help="search the races' learning rates and print them")
    parser.add_argument("--readme-figure", type=Path, help="also draw the README's picture of the Rosenbrock race "
                        "to this file (docs/images/rosenbrock.png)")
    args = parser.parse_args(argv)
    if args.tune:
        for land in (RAVINE, ROSENBROCK):
            print(land.key, tune(land))
        return {}
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    tables, files = {}, []
    for land in LANDSCAPES:
        tables[land.key] = race(land, args.quick)
        print_table(land, tables[land.key])
        files.append(plot(land, tables[land.key], out))
        if land is ROSENBROCK and args.readme_figure:
            files.append(plot_readme(tables[land.key], args.readme_figure))
    files.append(plot_schedules(out))
    print("\nFiles written:\n" + "\n".join(f"- {file}" for file in files))
    return tables


if __name__ == "__main__":
    main()

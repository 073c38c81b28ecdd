"""Newton versus first-order methods: logistic regression on the handwritten digits (「梯度下降的調整策略」).

Run: .venv/bin/python demos/newton_vs_first_order.py [--out out/] [--quick]

The note 「梯度下降的調整策略」 puts three methods in one table: gradient descent (first order,
O(n) per step, "slow, linear"), Newton (second order, O(n³) per step, "fast, quadratic") and
quasi-Newton L-BFGS (O(n·k) per step, "fairly fast"). This demo measures that table on a
real problem: L2-regularised logistic regression on the digits, "is the digit odd?",

    f(w) = mean_i [ log(1 + e^{z_i}) − y_i z_i ] + λ/2 ‖w‖²,   z = X w,   λ = 1e-2,

with X the 1797 images of 8×8 pixels (values in [0, 1]) plus a column of ones: 65 weights.
f is strictly convex, so its one critical point is the minimum w*. Every method starts at
w = 0 and runs on the same tinygrad_edu loss; the optimizers are driven with a closure, so
their counters (opt.method_state: function, gradient and Hessian-vector evaluations) can be read.

- GD: optim.SGD with lr = 1/L, where L = λmax of the Hessian at w = 0, found by power
  iteration with Hessian-vector products (tinygrad_edu.curvature.top_eigenvalue). For
  logistic regression H(w) = Xᵀ diag(σ(1−σ)) X / n + λI and σ(1−σ) ≤ 1/4 = its value at
  w = 0, so H(w) ≤ H(0) everywhere and this lr is safe all the way (「梯度下降的調整策略」: a step above
  2/λmax diverges, see demos/critical_points.py).
- Adam: optim.Adam, lr = 1e-2 (its adaptive step has no fixed contraction rate).
- L-BFGS: one iteration per step (max_iter=1, and max_eval=26 so that its line search may
  try up to 25 steps: PyTorch's max_eval would be 1), strong-Wolfe line search, PyTorch's
  defaults otherwise (history_size=100).
- NewtonCG: truncated Newton, CG on H d = −g with Hessian-vector products (HVPs).
- TrustRegionNewtonCG: Steihaug CG in a trust region.
- Newton: the full 65×65 Hessian from 65 HVPs per iteration, solved exactly.

What to look at:
(1) newton_vs_first_order.png, left column (per iteration): GD's loss gap f − f* and
    gradient norm fall on a straight line on the log scale: linear convergence, the error
    shrinks by a constant factor per step, at best 1 − lr·λmin = 1 − 0.01/2.87 ≈ 0.9965
    here (measured: 0.996), so GD needs thousands of steps. Newton's curve falls off a
    cliff: the number of correct digits doubles per step, 6 steps in all. L-BFGS and the
    two Newton-CG variants lie in between.
(2) Right column (per second): the same curves against wall time. A Newton step costs 65
    HVPs plus an eigendecomposition, a GD step one gradient; for 65 weights Newton still
    wins by far, and NewtonCG, with about 7 HVPs per step, is faster still. The
    O(n³) warning of 「梯度下降的調整策略」 is about n in the millions, not 65.
(3) The printed table: iterations, function/gradient evaluations, HVPs, the wall time of
    all steps together and per step, the final gap, and the estimated order of convergence q. With e_k = ‖w_k − w*‖ (w* from an
    extra, very accurate Newton run), q ≈ log(e_{k+1}/e_k) / log(e_k/e_{k−1}): if
    e_{k+1} ≈ C e_k^q, this ratio tends to q. It is read only from the run's last errors
    above the precision floor (1e-11·‖w*‖), and only when at least five of them shrink one
    after the other; otherwise the table says "—". Expect q ≈ 1 for GD (linear), between
    1 and 2 for Newton-CG (superlinear: CG's tolerance shrinks like √‖g‖, so about 1.5),
    q ≈ 2 for Newton (quadratic). Adam with a fixed lr circles w* in the end, its error
    growing and shrinking: it has no order, and the ratio would be noise (9, −0.1, ...).
    L-BFGS is the surprise: superlinear in its middle phase (see convergence_order.png),
    then linear (q ≈ 1) in its tail. The reason is a rule it shares with PyTorch: a pair
    (s, y) enters the memory only when yᵀs > 1e-10, an absolute threshold. With this loss
    (a mean, f* ≈ 0.34) yᵀs ≈ sᵀHs falls below 1e-10 once steps are 1e-5 to 1e-4 long, so
    from then on the memory is frozen (the table's note gives how many pairs it holds)
    and L-BFGS is a fixed preconditioner times the gradient: linear convergence. Finally
    its line search, which compares values of f, finds no lower f once f − f* is within
    f's rounding error (about 1e-16, reached at ‖w − w*‖ ≈ 3e-8 since f − f* ≈ ½ eᵀHe):
    the run stops there, short of the gradient tolerance, and the table shows f − f* = 0.
(4) convergence_order.png: log e_{k+1} against log e_k, one panel per method. The slope
    of the points is the order: GD's points lie on a slope-1 line just below the diagonal
    (e_{k+1} ≈ 0.996·e_k), Newton's last points run parallel to the slope-2 line,
    L-BFGS steepens in its middle and falls back to slope 1 in its tail.

The timings are of optimizer steps only; the bookkeeping (loss and gradient norm at each
iterate, for the plots) is done outside the clock.

--quick runs 200 instead of 2000 GD/Adam iterations (a smoke test).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from _cli import demo_parser  # first: outside the project's environment it says how to run the demos

import matplotlib

matplotlib.use("Agg")  # draw into files, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy  # noqa: E402

import nn  # noqa: E402
import optim  # noqa: E402
import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu.curvature import top_eigenvalue  # noqa: E402
from tinygrad_edu.data import load_digits  # noqa: E402

LAM = 1e-2  # L2 regularisation; the Hessian's condition number at w* is then about 150
STOP_GTOL = 1e-12  # every run stops once max |gradient| < this (near float64's floor here)
FLOOR = 1e-11  # errors below FLOOR·‖w*‖ are at the reference's precision: not used for q
EPS = 2.0 ** -52  # float64's machine epsilon
STEADY = 5  # q is read only from at least this many consecutive shrinking errors
ADAM_LR = 1e-2
FIRST_ORDER_ITERS, QUICK_FIRST_ORDER_ITERS = 2000, 200
SECOND_ORDER_ITERS = 200  # a cap; they stop on STOP_GTOL long before


def digits_problem() -> tuple:
    """X (1797, 65) float64 (pixels/16 and a column of ones) and y = 1 for odd digits."""
    images, labels = load_digits()
    X = numpy.concatenate([images.reshape(len(images), -1).astype(numpy.float64),
                           numpy.ones((len(images), 1))], axis=1)
    return X, (labels % 2).astype(numpy.float64)


def logistic_loss(X: numpy.ndarray, y: numpy.ndarray, lam: float) -> Callable[[tg.Tensor], tg.Tensor]:
    """f(w) = mean(softplus(Xw) − y·Xw) + λ/2 ‖w‖²: the binary cross-entropy of sigmoid(Xw),
    smooth everywhere and overflow-free, plus an L2 penalty."""
    Xt, yt = tg.Tensor(X), tg.Tensor(y)

    def f(w: tg.Tensor) -> tg.Tensor:
        return nn.F.binary_cross_entropy_with_logits(Xt @ w, yt) + 0.5 * lam * (w * w).sum()

    return f


@dataclass
class Method:
    label: str
    make: Callable[[list], optim.Optimizer]  # params -> optimizer
    closure_driven: bool
    color: str


@dataclass
class Run:
    """One method's trajectory: iterates, cumulative step time, loss and max |gradient|."""

    method: Method
    xs: list = field(default_factory=list)
    seconds: list = field(default_factory=list)
    losses: list = field(default_factory=list)
    gnorms: list = field(default_factory=list)
    counts: dict = field(default_factory=dict)
    q_last: float | None = None
    q_values: list = field(default_factory=list)
    stalled: bool = False
    pairs: int | None = None  # L-BFGS: curvature pairs in memory at the end


def value_and_gnorm(fun: Callable, w: numpy.ndarray) -> tuple:
    """f(w) and max |∇f(w)|, with the engine (bookkeeping, outside the clock)."""
    leaf = tg.Tensor(w.copy(), requires_grad=True)
    loss = fun(leaf)
    loss.backward()
    return loss.item(), float(numpy.abs(leaf.grad.numpy()).max())


def run_method(method: Method, fun: Callable, w0: numpy.ndarray, iters: int) -> Run:
    """Step `iters` times (or until max |g| < STOP_GTOL), timing only the steps."""
    w = tg.Tensor(w0.copy(), requires_grad=True)
    opt = method.make([w])
    grads = 0

    def closure() -> tg.Tensor:
        nonlocal grads
        opt.zero_grad()
        loss = fun(w)
        loss.backward()
        grads += 1
        return loss

    run = Run(method)
    elapsed = 0.0
    for k in range(iters + 1):
        value, gnorm = value_and_gnorm(fun, w.numpy())
        run.xs.append(w.numpy().copy())
        run.seconds.append(elapsed)
        run.losses.append(value)
        run.gnorms.append(gnorm)
        if gnorm < STOP_GTOL or k == iters or not math.isfinite(value):
            break
        if k > 0 and numpy.array_equal(run.xs[-1], run.xs[-2]):
            run.stalled = True  # the step did not move w (a line search that finds no decrease)
            run.xs.pop(), run.seconds.pop(), run.losses.pop(), run.gnorms.pop()
            break
        start = time.perf_counter()
        if method.closure_driven:
            opt.step(closure)
        else:
            closure()
            opt.step()
        elapsed += time.perf_counter() - start
    counts = dict(opt.method_state) if hasattr(opt, "method_state") else {"func_evals": grads, "grad_evals": grads, "hvp_evals": 0}
    run.pairs = len(opt.method_state["s"]) if "s" in getattr(opt, "method_state", {}) else None
    run.counts = {"iterations": len(run.xs) - 1, "func_evals": counts["func_evals"],
                  "grad_evals": counts["grad_evals"], "hvp_evals": counts["hvp_evals"]}
    return run


def order_estimates(errors: Sequence[float], floor: float) -> list:
    """q_k = log(e_{k+1}/e_k) / log(e_k/e_{k−1}) over the run's last steady stretch: the
    errors, before the first one at or below floor, that shrink at every step. A stretch
    shorter than STEADY errors (an error that grew, as Adam's does when it circles w*)
    gives no q: the ratio of two logs of noisy ratios can be anything, 9 or −0.1."""
    e = list(errors[:next((k for k, x in enumerate(errors) if x <= floor), len(errors))])
    start = len(e) - 1
    while start > 0 and e[start - 1] > e[start]:
        start -= 1
    e = e[start:]
    if len(e) < STEADY:
        return []
    return [math.log(e[k + 1] / e[k]) / math.log(e[k] / e[k - 1]) for k in range(1, len(e) - 1)]


def stop_reason(run: Run, f_star: float) -> str:
    """Why a run whose last step left w unchanged stopped: f at its rounding error (a line
    search, which compares values of f, can find nothing lower), or a failed line search."""
    gap = run.losses[-1] - f_star
    if gap <= 4 * EPS * abs(f_star):
        return (f"{run.method.label}: stopped after {run.counts['iterations']} iterations: f − f* = {gap:.1e} is "
                f"within f's rounding error ({4 * EPS * abs(f_star):.0e}), so its line search found no lower f\n"
                "(f − f* ≈ ½ eᵀHe: f is flat to double precision once e = ‖w − w*‖ is about 1e-8).")
    return (f"{run.method.label}: stalled after {run.counts['iterations']} iterations with f − f* = {gap:.1e} "
            "(a step left w unchanged: its line search found no decrease of f).")


def reference_minimum(fun: Callable, d: int) -> tuple:
    """w* and f(w*) from optim.minimize(method="newton") run to max |g| < 1e-14 (or 100 steps)."""
    res = optim.minimize(fun, tg.zeros(d, dtype="float64"), "newton", options={"gtol": 1e-14, "maxiter": 100})
    return res.x.numpy(), res.fun, res


def methods(lr_gd: float) -> list:
    return [
        Method("GD", lambda p: optim.SGD(p, lr=lr_gd), False, "tab:blue"),
        Method("Adam", lambda p: optim.Adam(p, lr=ADAM_LR), False, "tab:orange"),
        Method("L-BFGS", lambda p: optim.LBFGS(p, max_iter=1, max_eval=26, line_search_fn="strong_wolfe",
                                               tolerance_grad=0.0, tolerance_change=0.0), True, "tab:green"),
        Method("NewtonCG", lambda p: optim.NewtonCG(p), True, "tab:red"),
        Method("TrustRegionNewtonCG", lambda p: optim.TrustRegionNewtonCG(p), True, "tab:purple"),
        Method("Newton", lambda p: optim.Newton(p), True, "tab:brown"),
    ]


def plot_curves(runs: list, f_star: float, file: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    for run in runs:
        its = numpy.arange(len(run.losses))
        gap = numpy.maximum(numpy.array(run.losses) - f_star, 1e-17)
        t = numpy.array(run.seconds) * 1e3
        style = dict(color=run.method.color, label=run.method.label, marker="o" if len(its) < 60 else None,
                     markersize=3, linewidth=1.5)
        axes[0, 0].semilogy(its, gap, **style)
        axes[0, 1].semilogy(t, gap, **style)
        axes[1, 0].semilogy(its, run.gnorms, **style)
        axes[1, 1].semilogy(t, run.gnorms, **style)
    for ax in axes[:, 0]:
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("iteration (linear up to 10, then log)")
    for ax in axes[:, 1]:
        ax.set_xscale("symlog", linthresh=10)
        ax.set_xlabel("wall time of the steps (ms; linear up to 10, then log)")
    for ax in axes[0]:
        ax.set_ylabel("f(w) − f*")
        ax.set_ylim(1e-17, None)
    for ax in axes[1]:
        ax.set_ylabel("max |∇f(w)|")
        ax.axhline(STOP_GTOL, color="grey", linestyle=":", linewidth=1)
    for ax in axes.flat:
        ax.grid(True, which="major", alpha=0.3)
    axes[0, 0].set_title("loss gap per iteration")
    axes[0, 1].set_title("loss gap per millisecond")
    axes[1, 0].set_title("gradient norm per iteration (dotted: the stopping tolerance)")
    axes[1, 1].set_title("gradient norm per millisecond")
    axes[0, 0].legend(fontsize=9)
    fig.suptitle("L2-regularised logistic regression on the digits (odd vs even, 65 weights, λ = 1e-2), from w = 0")
    fig.tight_layout()
    fig.savefig(file, dpi=100)
    plt.close(fig)


def plot_orders(runs: list, w_star: numpy.ndarray, floor: float, file: Path) -> None:
    """One panel per method: log e_{k+1} against log e_k, whose slope is the order."""
    fig, axes = plt.subplots(2, 3, figsize=(13, 8.5), sharex=True, sharey=True)
    lo, hi = floor / 10, 20.0
    grid = numpy.logspace(math.log10(lo), math.log10(hi), 50)
    for ax, run in zip(axes.flat, runs):
        e = numpy.linalg.norm(numpy.array(run.xs) - w_star, axis=1)
        keep = (e[:-1] > floor) & (e[1:] > floor)
        ax.loglog(grid, grid, color="grey", linestyle="--", linewidth=1, label="slope 1: e_{k+1} = e_k")
        ax.loglog(grid, grid ** 2, color="black", linestyle=":", linewidth=1, label="slope 2: e_{k+1} = e_k²")
        many = keep.sum() > 60
        ax.loglog(e[:-1][keep], e[1:][keep], color=run.method.color, marker="." if many else "o",
                  markersize=3 if many else 5, linewidth=1, label="(e_k, e_{k+1})")
        ax.axvspan(lo, floor, color="0.9")
        ax.axhspan(lo, floor, color="0.9")
        q = "no steady order" if run.q_last is None else f"last q ≈ {run.q_last:.2f}"
        ax.set_title(f"{run.method.label}: {run.counts['iterations']} iterations, {q}")
        ax.grid(True, alpha=0.3)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
    for ax in axes[1]:
        ax.set_xlabel("e_k = ‖w_k − w*‖")
    for ax in axes[:, 0]:
        ax.set_ylabel("e_{k+1}")
    axes[0, 0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Order of convergence = slope of log e_{k+1} against log e_k "
                 f"(grey band: below the precision floor {floor:.0e}, not used)")
    fig.tight_layout()
    fig.savefig(file, dpi=100)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict:
    """Run every method, print the table, draw the figures; returns the rows and the setting."""
    args = demo_parser(__doc__, quick="200 instead of 2000 GD/Adam iterations").parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    X, y = digits_problem()
    d = X.shape[1]
    fun = logistic_loss(X, y, LAM)
    w_star, f_star, ref = reference_minimum(fun, d)
    floor = FLOOR * float(numpy.linalg.norm(w_star))

    w0 = tg.zeros(d, dtype="float64", requires_grad=True)
    L = top_eigenvalue(lambda: fun(w0), [w0], iters=500, tol=1e-12)  # λmax of H(0) by HVP power iteration
    lr_gd = 1.0 / L
    first_iters = QUICK_FIRST_ORDER_ITERS if args.quick else FIRST_ORDER_ITERS

    runs = []
    for method in methods(lr_gd):
        iters = first_iters if not method.closure_driven else SECOND_ORDER_ITERS
        run = run_method(method, fun, numpy.zeros(d), iters)
        errors = numpy.linalg.norm(numpy.array(run.xs) - w_star, axis=1)
        run.q_values = order_estimates(errors, floor)
        run.q_last = run.q_values[-1] if run.q_values else None
        runs.append(run)

    print(f"Logistic regression on the digits (odd vs even): n = {X.shape[0]}, {d} weights, λ = {LAM:g}, w0 = 0.")
    print(f"Reference w*: Newton, {ref.nit} iterations, max |g| = {ref.grad_norm:.1e}; f* = {f_star:.12f}; "
          f"‖w*‖ = {numpy.linalg.norm(w_star):.3f}.")
    print(f"GD: lr = 1/λmax(H(0)) = 1/{L:.4f} = {lr_gd:.4f} (λmax by Hessian-vector power iteration). "
          f"Runs stop at max |g| < {STOP_GTOL:g}.")
    print()
    print("| method | iterations | f evals | grad evals | HVPs | all steps (ms) | per step (ms) | f − f* | max |g| | "
          "‖w − w*‖ | order q (last) | q (last 3) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    rows = []
    for run in runs:
        c = run.counts
        err = float(numpy.linalg.norm(run.xs[-1] - w_star))
        last3 = ", ".join(f"{q:.2f}" for q in run.q_values[-3:]) or "—"
        q = "—" if run.q_last is None else f"{run.q_last:.2f}"
        print(f"| {run.method.label} | {c['iterations']} | {c['func_evals']} | {c['grad_evals']} | {c['hvp_evals']} | "
              f"{run.seconds[-1] * 1e3:.1f} | {run.seconds[-1] * 1e3 / max(c['iterations'], 1):.2f} | "
              f"{max(run.losses[-1] - f_star, 0.0):.1e} | {run.gnorms[-1]:.1e} | "
              f"{err:.1e} | {q} | {last3} |")
        rows.append(dict(method=run.method.label, iterations=c["iterations"], func_evals=c["func_evals"],
                         grad_evals=c["grad_evals"], hvp_evals=c["hvp_evals"], seconds=run.seconds[-1],
                         gap=run.losses[-1] - f_star, grad_norm=run.gnorms[-1], error=err, order=run.q_last,
                         orders=run.q_values[-3:], stalled=run.stalled))
    print()
    for run in runs:
        if run.pairs is not None:
            print(f"{run.method.label}: {run.pairs} curvature pairs in memory at the end "
                  "(a pair is kept only when yᵀs > 1e-10; in the tail, none is).")
        if run.stalled:
            print(stop_reason(run, f_star))
    print()
    print("q_k = log(e_{k+1}/e_k) / log(e_k/e_{k-1}), e_k = ‖w_k − w*‖, read from the last errors above "
          f"{FLOOR:g}·‖w*‖ = {floor:.1e}\nwhen at least {STEADY} of them shrink one after the other; '—' where "
          "they do not (Adam with a fixed lr circles w*: no steady order).\n"
          "Expect q ≈ 1 for GD (linear), 1 < q < 2 for the Newton-CG methods (superlinear), q ≈ 2 for Newton "
          "(quadratic).\nL-BFGS is superlinear only while it still takes curvature pairs; in its tail "
          "(new pairs refused, see above) it is linear: q ≈ 1.")

    files = [out / "newton_vs_first_order.png", out / "convergence_order.png"]
    plot_curves(runs, f_star, files[0])
    plot_orders(runs, w_star, floor, files[1])
    print("\nFiles written:\n" + "\n".join(f"- {file}" for file in files))
    return {"rows": rows, "lr_gd": lr_gd, "lambda_max_H0": L, "f_star": f_star, "files": [str(f) for f in files]}


if __name__ == "__main__":
    main()

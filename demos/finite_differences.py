"""Finite differences against the step size h: the V-shaped error curve, and why gradcheck runs in float64.

The note 「梯度下降的調整策略」 ("掉進「浮點數」的陷阱") warns that the computer's float and
double are not real numbers: they are discrete, with gaps, and every operation rounds.
A finite difference shows it at once. For a smooth f, Taylor's theorem gives

    forward   (f(x+h) - f(x)) / h        = f'(x) + f''(x)·h/2   + O(h²)
    central   (f(x+h) - f(x-h)) / (2h)   = f'(x) + f'''(x)·h²/6 + O(h⁴)

so in real numbers the error (the truncation error) falls like h or h² as h → 0. In
floating point each value of f carries a relative rounding error of about the machine
epsilon ε (2.2e-16 for float64, 1.2e-7 for float32), and x + h itself is rounded. The
difference f(x+h) - f(x) of two nearly equal numbers keeps that absolute error, about
ε·|f|, while the difference itself shrinks with h, so dividing by h gives a rounding
error of about ε·|f|/h that grows as h → 0. Once h is below about ε·|x|/2, x ± h rounds
to x and the estimate is exactly 0 (the flat tops at the left of the figure, an error of
|f'(1)|). The total error is the sum of a line falling to the left (rounding, slope -1
on log-log axes) and a line falling to the right (truncation, slope 1 or 2): a V, whose
bottom is where the two meet:

    forward   |f''|·h/2   = ε|f|/h       at h* = √(2ε|f|/|f''|)      ~ √ε  (1e-8 in float64)
    central   |f'''|·h²/6 = ε|f|/(2h)    at h* = ∛(3ε|f|/(2|f'''|))  ~ ∛ε  (1e-5 in float64)

and the best error is then about √ε (forward) or ε^(2/3) (central), times factors made of
|f|, |f''| and |f'''|: about 1e-8 and 1e-11 in float64, but only 1e-4 and 1e-5 in
float32. A step below h* makes the estimate worse, not better; far below, it is noise.

Why tinygrad_edu.gradcheck uses central differences, float64 and h = 1e-6 (its default
eps, read here from its signature): gradcheck must tell a wrong derivative from the noise
of its own estimate, for any function, without tuning h to it. In float64 the central
difference has a wide, deep valley: every h from about 1e-3 to 1e-8 gives f' to better
than 1e-6 relative, and h = 1e-6 sits on the floor (an error of 1e-10 here), seven orders
of magnitude below gradcheck's tolerance atol + rtol·|numerical| (1e-5 + 1e-3·|f'|, 3.8e-3
here), so a failure means a wrong derivative, not rounding. In float32 the best errors are
about 1e-4 (forward) and 1e-5 to 1e-6 (central), reached only in a narrow window of h near
1e-3 whose place depends on f'' and f''' (unknown in general); at h = 1e-6 both estimates
are off by 0.06 to 0.2, far above the tolerance: a correct derivative would fail, and a
tolerance loose enough to pass it (several percent) would let wrong derivatives through.
The forward difference saves evaluations, but at h = 1e-6 its truncation error |f''|·h/2
(1.5e-6) is ten thousand times the central one's, and its floor √ε is hundreds of times
coarser. So gradcheck checks in float64 (other float inputs through float64 copies), with
central differences and h = 1e-6.

The function: f(x) = sin(x)·exp(x) at x = 1, with f'(x) = eˣ(sin x + cos x) exactly.
The differences are computed by tinygrad_edu tensors in each dtype (the h values rounded
to it as well), for h from 1e-1 to 1e-16, and compared with the exact f'(1) in float64.

What to look at in finite_differences.png: four curves of |error| against h on log-log
axes (forward orange, central blue; float64 solid, float32 dashed), a star at each
curve's minimum, the faint reference lines (slopes h and h², the rounding lines ε|f|/h for
both dtypes) that each side of each V follows, the vertical line at gradcheck's eps and
the horizontal line at gradcheck's tolerance for this f'. The printed table lists, per
curve, the best h on the grid, the smallest error, the h* predicted above, and the error
at gradcheck's eps.

Run: .venv/bin/python demos/finite_differences.py [--out out/] [--quick]
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from _cli import demo_parser  # first: outside the project's environment it says how to run the demos

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu import Tensor  # noqa: E402

X0 = 1.0
DTYPES = ("float64", "float32")
STYLE = {"float64": {"linestyle": "-", "marker": "o"}, "float32": {"linestyle": "--", "marker": "^"}}
COLOURS = {"forward": "tab:orange", "central": "tab:blue"}
GRADCHECK_DEFAULTS = {name: p.default for name, p in inspect.signature(tg.gradcheck).parameters.items()}


def f(x: Tensor) -> Tensor:
    """The smooth function whose derivative is estimated."""
    return x.sin() * x.exp()


def exact_derivatives(x: float) -> tuple[float, float, float, float]:
    """f, f', f'' and f''' at x, in closed form (float64)."""
    s, c, e = np.sin(x), np.cos(x), np.exp(x)
    return s * e, e * (s + c), 2 * e * c, 2 * e * (c - s)


FORMULAS: dict[str, Callable[[Tensor, Tensor], Tensor]] = {
    "forward": lambda x, h: (f(x + h) - f(x)) / h,
    "central": lambda x, h: (f(x + h) - f(x - h)) / (2 * h),
}


@dataclass
class Row:
    """One curve of the figure: a difference formula in one dtype."""

    dtype: str
    formula: str
    best_h: float
    min_error: float
    predicted_h: float  # where the model's truncation and rounding terms balance
    error_at_gradcheck_eps: float


def errors(formula: str, dtype: str, hs: np.ndarray) -> np.ndarray:
    """|estimate - f'(X0)| for every step in hs, the estimate computed in `dtype`."""
    x = tg.tensor(X0, dtype=dtype)
    h = tg.tensor(hs.astype(dtype))
    estimate = FORMULAS[formula](x, h).numpy().astype(np.float64)
    return np.abs(estimate - exact_derivatives(X0)[1])


def predicted_h(formula: str, dtype: str) -> float:
    """h* of the error model in the module docstring."""
    fx, _, f2, f3 = np.abs(exact_derivatives(X0))
    eps = float(np.finfo(dtype).eps)
    return float(np.sqrt(2 * eps * fx / f2) if formula == "forward" else np.cbrt(3 * eps * fx / (2 * f3)))


def plot(hs: np.ndarray, curves: dict[tuple[str, str], np.ndarray], rows: list[Row], path: Path) -> None:
    fx, f1, f2, f3 = np.abs(exact_derivatives(X0))
    eps_gc = GRADCHECK_DEFAULTS["eps"]
    tolerance = GRADCHECK_DEFAULTS["atol"] + GRADCHECK_DEFAULTS["rtol"] * f1
    fig, ax = plt.subplots(figsize=(14, 7.5))
    for (dtype, formula), err in curves.items():
        ax.loglog(hs, err, color=COLOURS[formula], markersize=3, linewidth=1.6, label=f"{formula}, {dtype}",
                  **STYLE[dtype])
    for row in rows:
        ax.loglog(row.best_h, row.min_error, marker="*", markersize=15, color=COLOURS[row.formula],
                  markeredgecolor="black", linestyle="none")
    ax.plot([], [], marker="*", markersize=12, color="0.5", markeredgecolor="black", linestyle="none",
            label="smallest error of each curve")
    faint = {"color": "0.45", "linewidth": 1.1, "alpha": 0.6}
    ax.loglog(hs, f2 / 2 * hs, linestyle=":", label="|f''|·h/2: forward truncation (slope 1)", **faint)
    ax.loglog(hs, f3 / 6 * hs**2, linestyle="-.", label="|f'''|·h²/6: central truncation (slope 2)", **faint)
    eps64, eps32 = (float(np.finfo(dtype).eps) for dtype in DTYPES)
    ax.loglog(hs, eps64 * fx / hs, linestyle="--", **faint, label=f"ε|f|/h: rounding (slope −1), ε of\n"
              f"float64 ({eps64:.1e}, lower), float32 ({eps32:.1e}, upper)")
    ax.loglog(hs, eps32 * fx / hs, linestyle="--", **faint)
    ax.axvline(eps_gc, color="tab:red", linewidth=1.2, label=f"gradcheck's default eps = {eps_gc:g}")
    ax.axhline(tolerance, color="tab:green", linewidth=1, linestyle="--", alpha=0.8,
               label=f"gradcheck's tolerance atol + rtol·|f'(1)| = {tolerance:.1e}")
    ax.text(3e-16, 1e-8, "← rounding error ~ ε|f|/h\n    grows as h shrinks", fontsize=12)
    ax.text(0.1, 1e-12, "truncation error ~ h or h² →\ngrows as h grows", fontsize=12, ha="right")
    ax.set(xlim=(1e-16 / 1.5, 0.15), ylim=(1e-14, 1e2), xlabel="step h", ylabel="|estimate − f'(1)|",
           title=f"Finite-difference error of f(x) = sin(x)·exp(x) at x = {X0:g} against the step h")
    ax.grid(True, which="major", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=10)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> list[Row]:
    """Compute the four error curves, print the table, write the figure; returns the table's rows."""
    args = demo_parser(__doc__, quick="2 steps per decade instead of 8, for a smoke test").parse_args(argv)
    per_decade = 2 if args.quick else 8
    hs = np.logspace(-1, -16, 15 * per_decade + 1)
    eps_gc = GRADCHECK_DEFAULTS["eps"]

    curves = {(dtype, formula): errors(formula, dtype, hs) for dtype in DTYPES for formula in FORMULAS}
    rows = []
    for (dtype, formula), err in curves.items():
        best = int(np.argmin(err))
        rows.append(Row(dtype, formula, float(hs[best]), float(err[best]), predicted_h(formula, dtype),
                        float(errors(formula, dtype, np.array([eps_gc]))[0])))

    exact = exact_derivatives(X0)[1]
    print(f"f(x) = sin(x)·exp(x) at x = {X0:g}: f'({X0:g}) = {exact:.15f}; "
          f"{len(hs)} steps h from 1e-1 to 1e-16; gradcheck's eps = {eps_gc:g}")
    print(f"{'dtype':<8} {'formula':<8} {'best h':>8} {'min |error|':>12} {'predicted h*':>13} "
          f"{f'|error| at h={eps_gc:g}':>20}")
    for r in rows:
        print(f"{r.dtype:<8} {r.formula:<8} {r.best_h:8.1e} {r.min_error:12.2e} {r.predicted_h:13.1e} "
              f"{r.error_at_gradcheck_eps:20.2e}")

    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "finite_differences.png"
    plot(hs, curves, rows, path)
    print(f"\nwrote {path}")
    return rows


if __name__ == "__main__":
    main()

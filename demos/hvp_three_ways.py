"""One Hessian-vector product, three ways: accuracy and cost (「梯度下降的調整策略」: the Hessian, Newton's method).

Run: .venv/bin/python demos/hvp_three_ways.py [--out out/] [--quick]

The table of 「梯度下降的調整策略」 says Newton's method costs O(n²) memory for H and O(n³) time to solve
with it. Newton-CG (optim.NewtonCG) avoids both: it only ever needs products H·v, each at
about the cost of a couple of gradients, and never forms H. This demo computes the same
product H(x)·v in three ways and compares each with the exact answer:

1. reverse-over-reverse: tinygrad_edu.hvp(f, x, v). Backward once with create_graph=True
   to get ∇f(x) as a graph, then backward through (∇f(x)·v): H v = ∇ₓ(∇f(x)·v). Two
   backward passes; exact up to rounding.
2. "forward-over-reverse": tinygrad_edu.jvp(∇f, x, v), the directional derivative of the
   gradient function along v, which is H v. In PyTorch or JAX this is a forward-mode
   (dual-number) pass over the backward pass, the cheapest way. Be warned: tinygrad_edu has
   no forward mode. Its jvp is the "double-vjp trick": for a dummy u, g(u) = Jᵀu is linear
   in u, and the gradient of g(u)·v with respect to u is J v. So here this is really
   reverse-over-reverse-over-reverse: three backward passes. It is exact too, and a bit
   slower than way 1; the table shows by how much.
3. finite differences of the gradient: (∇f(x + εv) − ∇f(x))/ε (forward) or
   (∇f(x + εv) − ∇f(x − εv))/(2ε) (central), with v a unit vector. Only two gradients,
   no second-order graph, but inexact: the truncation error (ε for forward, ε² for
   central) fights the rounding error (machine ε / ε). The textbook choices,
   ε = √(machine ε) ≈ 1.5e-8 for forward and ε = ∛(machine ε) ≈ 6e-6 for central, leave
   a relative error of about 1e-7 and 1e-10 here: 7 and 10 of float64's 16 digits.

The exact answer H·v uses the full Hessian, which only a small problem can afford:
- logistic regression on the digits (odd vs even, 65 weights, λ = 1e-2, at a random
  point w): H = Xᵀ diag(σ(z)(1 − σ(z))) X / n + λI in closed form, computed with NumPy,
  independently of the engine (tinygrad_edu.hessian agrees with it; the table says how
  closely);
- a 2-16-1 tanh MLP on make_moons (65 parameters, mean squared error, at its random
  initialisation): no closed form, so the reference is tinygrad_edu.hessian, the Jacobian
  of the gradient (one backward pass per row through the gradient's graph). It comes from
  the same engine, so for this problem ways 1 and 2 are checked against the engine's
  own Hessian; the outside evidence is that central differences, which only use
  gradients, agree with it to about 1e-10.

What to look at:
(1) the table: relative error ‖Hv − H_exact v‖/‖H_exact v‖ (largest over a few random
    unit v) and the median time of one product. Ways 1 and 2 agree with the exact product
    to about 1e-15; finite differences lose 6 to 9 digits. Way 2 costs more than way 1
    (three backward passes against two); forward differences are the cheapest (one extra
    gradient when ∇f(x) is already known, as in Newton-CG; the table times both
    gradients) and central ones cost two gradients.
(2) hvp_three_ways.png, left: the error of finite differences against ε, the classic V:
    to the right the truncation error (slope 1 forward, slope 2 central), to the left the
    rounding error (slope −1). The two automatic-differentiation ways are flat lines at
    the bottom: no ε to choose. Right: the time per product of each way.

--quick uses fewer repetitions for the timings (a smoke test).
"""
from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Callable, Sequence

from _cli import demo_parser  # first: outside the project's environment it says how to run the demos

import matplotlib

matplotlib.use("Agg")  # draw into files, no window
import matplotlib.pyplot as plt  # noqa: E402
import numpy  # noqa: E402

import nn  # noqa: E402
import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu.data import load_digits, make_moons  # noqa: E402

LAM = 1e-2
MACHINE_EPS = float(numpy.finfo(numpy.float64).eps)
EPS_FORWARD = MACHINE_EPS ** 0.5  # ≈ 1.5e-8
EPS_CENTRAL = MACHINE_EPS ** (1 / 3)  # ≈ 6.1e-6
N_DIRECTIONS = 5  # random unit vectors v per problem; the table gives the largest error


# ---- the two problems ---------------------------------------------------------------------

def logistic_problem(seed: int = 0) -> dict:
    """Logistic regression on the digits, its closed-form Hessian at a random point."""
    images, labels = load_digits()
    X = numpy.concatenate([images.reshape(len(images), -1).astype(numpy.float64),
                           numpy.ones((len(images), 1))], axis=1)
    y = (labels % 2).astype(numpy.float64)
    Xt, yt = tg.Tensor(X), tg.Tensor(y)

    def f(w: tg.Tensor) -> tg.Tensor:
        return nn.F.binary_cross_entropy_with_logits(Xt @ w, yt) + 0.5 * LAM * (w * w).sum()

    rng = numpy.random.default_rng(seed)
    w = 0.3 * rng.standard_normal(X.shape[1])
    sigma = 1 / (1 + numpy.exp(-(X @ w)))
    exact = X.T @ (X * (sigma * (1 - sigma))[:, None]) / len(X) + LAM * numpy.eye(X.shape[1])
    return dict(name="logistic regression (digits, 65 weights)", reference="closed form (NumPy)", f=f, x=w,
                H=exact)


def mlp_problem(seed: int = 0) -> dict:
    """A 2-16-1 tanh MLP's mean squared error on make_moons, as a function of one flat θ;
    its Hessian at a random θ from tinygrad_edu.hessian."""
    Xm, ym = make_moons(200, noise=0.1, seed=seed)
    Xt, yt = tg.Tensor(Xm), tg.Tensor((2.0 * ym - 1).reshape(-1, 1))
    h = 16

    def f(theta: tg.Tensor) -> tg.Tensor:
        W1, b1 = theta[0:2 * h].reshape(2, h), theta[2 * h:3 * h]
        W2, b2 = theta[3 * h:4 * h].reshape(h, 1), theta[4 * h]
        return (((Xt @ W1 + b1).tanh() @ W2 + b2 - yt) ** 2).mean()

    rng = numpy.random.default_rng(seed)
    theta = rng.standard_normal(4 * h + 1) / 2
    H = tg.hessian(f, tg.Tensor(theta)).numpy()
    return dict(name="2-16-1 tanh MLP (make_moons, 65 parameters)", reference="tinygrad_edu.hessian", f=f, x=theta,
                H=(H + H.T) / 2)


# ---- the three ways -------------------------------------------------------------------------

def gradient(f: Callable, x: numpy.ndarray) -> numpy.ndarray:
    leaf = tg.Tensor(x, requires_grad=True)
    g, = tg.grad(f(leaf), leaf)
    return g.numpy()


def reverse_over_reverse(f: Callable, x: numpy.ndarray, v: numpy.ndarray) -> numpy.ndarray:
    return tg.hvp(f, tg.Tensor(x), tg.Tensor(v)).numpy()


def forward_over_reverse(f: Callable, x: numpy.ndarray, v: numpy.ndarray) -> numpy.ndarray:
    """jvp of the gradient function: (d/dt) ∇f(x + t v) at t = 0 = H v. (tinygrad_edu.jvp is
    the double-vjp trick, so this is three backward passes, not a forward-mode pass.)"""
    def grad_f(leaf: tg.Tensor) -> tg.Tensor:
        return tg.grad(f(leaf), leaf, create_graph=True)[0]

    return tg.jvp(grad_f, tg.Tensor(x), tg.Tensor(v))[1].numpy()


def forward_difference(f: Callable, x: numpy.ndarray, v: numpy.ndarray, eps: float = EPS_FORWARD) -> numpy.ndarray:
    return (gradient(f, x + eps * v) - gradient(f, x)) / eps


def central_difference(f: Callable, x: numpy.ndarray, v: numpy.ndarray, eps: float = EPS_CENTRAL) -> numpy.ndarray:
    return (gradient(f, x + eps * v) - gradient(f, x - eps * v)) / (2 * eps)


WAYS = (
    ("reverse-over-reverse: tinygrad_edu.hvp", reverse_over_reverse),
    ("\"forward-over-reverse\": tinygrad_edu.jvp of ∇f (double-vjp: 3 backward passes)", forward_over_reverse),
    (f"finite differences of ∇f, forward, ε = {EPS_FORWARD:.1e}", forward_difference),
    (f"finite differences of ∇f, central, ε = {EPS_CENTRAL:.1e}", central_difference),
)
SHORT = ("reverse-over-reverse", "jvp of ∇f (double-vjp)", "finite diff., forward", "finite diff., central")


def relative_error(approx: numpy.ndarray, exact: numpy.ndarray) -> float:
    return float(numpy.linalg.norm(approx - exact) / numpy.linalg.norm(exact))


def directions(n: int, seed: int = 1) -> list:
    rng = numpy.random.default_rng(seed)
    return [v / numpy.linalg.norm(v) for v in rng.standard_normal((N_DIRECTIONS, n))]


def evaluate(problem: dict, repeats: int) -> dict:
    """Errors (largest over the directions) and median times (interleaved) of every way."""
    f, x, H = problem["f"], problem["x"], problem["H"]
    vs = directions(len(x))
    errors = {label: max(relative_error(way(f, x, v), H @ v) for v in vs) for label, way in WAYS}
    times: dict = {label: [] for label, _ in WAYS}
    times["exact H @ v, H formed already (NumPy)"] = []
    for r in range(repeats):
        v = vs[r % len(vs)]
        for label, way in WAYS:
            start = time.perf_counter()
            way(f, x, v)
            times[label].append(time.perf_counter() - start)
        start = time.perf_counter()
        H @ v
        times["exact H @ v, H formed already (NumPy)"].append(time.perf_counter() - start)
    start = time.perf_counter()
    engine_H = tg.hessian(f, tg.Tensor(x)).numpy()
    hessian_time = time.perf_counter() - start
    start = time.perf_counter()
    gradient(f, x)
    gradient_time = time.perf_counter() - start
    return dict(errors=errors, times={k: statistics.median(t) for k, t in times.items()}, hessian_time=hessian_time,
                gradient_time=gradient_time,
                engine_vs_reference=float(numpy.abs(engine_H - H).max() / numpy.abs(H).max()))


def epsilon_sweep(problem: dict) -> dict:
    """Relative error of forward and central differences for ε from 1e-14 to 1e-1 (first direction)."""
    f, x, H = problem["f"], problem["x"], problem["H"]
    v = directions(len(x))[0]
    exact = H @ v
    eps = numpy.logspace(-14, -1, 40)
    return dict(eps=eps, forward=[relative_error(forward_difference(f, x, v, e), exact) for e in eps],
                central=[relative_error(central_difference(f, x, v, e), exact) for e in eps])


def plot(problems: list, results: list, sweeps: list, file: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(19, 5.6))
    for ax, problem, result, sweep in zip(axes[:2], problems, results, sweeps):
        ax.loglog(sweep["eps"], sweep["forward"], "o-", markersize=3, color="tab:orange",
                  label="finite differences, forward")
        ax.loglog(sweep["eps"], sweep["central"], "s-", markersize=3, color="tab:red",
                  label="finite differences, central")
        floor = 1e-17
        for (label, _), short, color in zip(WAYS[:2], SHORT[:2], ("tab:blue", "tab:green")):
            ax.axhline(max(result["errors"][label], floor), color=color, linestyle="--" if color == "tab:blue" else ":",
                       linewidth=2, label=f"{short} (no ε): {result['errors'][label]:.1e}")
        ax.text(1e-13, 3 * max(result["errors"][WAYS[0][0]], floor), "the two AD ways (lines coincide)", fontsize=8.5)
        ax.axvline(EPS_FORWARD, color="tab:orange", linewidth=0.8, alpha=0.6)
        ax.axvline(EPS_CENTRAL, color="tab:red", linewidth=0.8, alpha=0.6)
        ax.set_xlabel("ε (vertical lines: √eps and ∛eps, the textbook choices)")
        ax.set_ylabel("‖Hv − H_exact v‖ / ‖H_exact v‖")
        ax.set_title(f"{problem['name']}\nexact H·v: {problem['reference']}", fontsize=11)
        ax.set_ylim(floor / 2, 10)
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=8.5, loc="upper center")
    ax = axes[2]
    keys = [label for label, _ in WAYS]
    width = 0.38
    positions = numpy.arange(len(keys))
    for i, (problem, result, color) in enumerate(zip(problems, results, ("tab:purple", "tab:gray"))):
        values = [result["times"][k] * 1e3 for k in keys]
        ax.bar(positions + (i - 0.5) * width, values, width, color=color, label=problem["name"])
        ax.axhline(result["gradient_time"] * 1e3, color=color, linestyle="--", linewidth=1)
    ax.set_xticks(positions)
    ax.set_xticklabels(SHORT, rotation=15, fontsize=9)
    ax.set_ylabel("milliseconds per product (median)")
    ax.set_title("cost of one H·v (dashed: one gradient)", fontsize=11)
    ax.legend(fontsize=8.5, loc="upper left")
    ax.set_ylim(0, 1.25 * max(max(r["times"][k] for k in keys) for r in results) * 1e3)
    ax.grid(True, axis="y", alpha=0.3)
    fig.suptitle("One Hessian-vector product three ways: automatic differentiation is exact, "
                 "finite differences trade truncation against rounding", fontsize=12)
    fig.tight_layout()
    fig.savefig(file, dpi=90)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict:
    """Print the table, draw the figure; returns the rows (one per problem and way)."""
    args = demo_parser(__doc__, quick="fewer timing repetitions (a smoke test)").parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    repeats = 10 if args.quick else 60

    problems = [logistic_problem(), mlp_problem()]
    results = [evaluate(p, repeats) for p in problems]
    sweeps = [epsilon_sweep(p) for p in problems]

    rows = []
    print(f"Relative error ‖Hv − H_exact v‖/‖H_exact v‖, the largest over {N_DIRECTIONS} random unit v; "
          f"median time of {repeats} products (interleaved). float64.\n")
    print("| problem | way | relative error | ms per product |")
    print("|---|---|---:|---:|")
    for problem, result in zip(problems, results):
        for (label, _), short in zip(WAYS, SHORT):
            error, ms = result["errors"][label], result["times"][label] * 1e3
            print(f"| {problem['name']} | {label} | {error:.1e} | {ms:.3f} |")
            rows.append(dict(problem=problem["name"], way=label, short=short, error=result["errors"][label],
                             seconds=result["times"][label]))
        k = "exact H @ v, H formed already (NumPy)"
        print(f"| {problem['name']} | {k} | 0 (the reference) | {result['times'][k] * 1e3:.3f} |")
    print()
    for problem, result in zip(problems, results):
        check = ("its largest difference from the closed form, relative to max |H|: "
                 f"{result['engine_vs_reference']:.1e}"
                 if problem["reference"].startswith("closed") else
                 "it is the reference here (symmetrised; the independent check is the central differences' "
                 "1e-10 agreement)")
        print(f"{problem['name']}: one gradient {result['gradient_time'] * 1e3:.2f} ms; forming H with "
              f"tinygrad_edu.hessian ({len(problem['x'])} backward passes) {result['hessian_time'] * 1e3:.1f} ms; "
              f"{check}.")
    print("\n\"forward-over-reverse\" here is tinygrad_edu.jvp applied to the gradient function; tinygrad_edu.jvp is "
          "implemented by the double-vjp trick (no dual numbers), so it is really reverse-over-reverse-over-reverse.")

    files = [out / "hvp_three_ways.png"]
    plot(problems, results, sweeps, files[0])
    print("\nFiles written:\n" + "\n".join(f"- {file}" for file in files))
    return {"rows": rows, "sweeps": [{k: list(map(float, v)) for k, v in s.items()} for s in sweeps],
            "engine_vs_reference": [r["engine_vs_reference"] for r in results], "files": [str(f) for f in files]}


if __name__ == "__main__":
    main()

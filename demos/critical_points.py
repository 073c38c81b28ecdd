"""Critical points and the learning-rate limit: what the Hessian tells gradient descent (「梯度下降的調整策略」).

Run: .venv/bin/python demos/critical_points.py [--out out/] [--quick]

The note 「梯度下降的調整策略」 says two things about the Hessian H that this demo checks.

Part 1, "判斷臨界點的類型": where ∇f = 0, the signs of H's eigenvalues tell what the point is:
all positive a minimum, all negative a maximum, both signs a saddle. The demo takes the
critical point (0, 0) of four functions,

    x² + y²  (a bowl),   x² − y²  (a saddle),   −x² − y²  (a cap),   x³ − 3xy²  (the monkey saddle),

computes H there with tinygrad_edu.hessian (a Jacobian of the gradient, i.e. derivatives of
the backward pass), its eigenvalues (tinygrad_edu.curvature.hessian_eigenvalues) and the
verdict of tinygrad_edu.curvature.classify_critical_point, and starts plain gradient descent
(optim.minimize(method="sgd"), lr = 0.1) from eight points on a circle of radius 0.6 around it.

What to look at in critical_points.png and the first table:
- The bowl: every run slides into (0, 0): a minimum attracts GD from everywhere.
- The saddle: the two runs that start exactly on the x-axis (the saddle's stable
  direction) converge to it; all others are pushed out along ±y, since any y ≠ 0 grows by
  (1 + 2·lr) per step. A start closer to the axis would first slide towards the saddle and
  linger there before leaving: GD stalls near saddles (the momentum of 「2.3 梯度下降法與優化技術」,
  v_t = β v_{t−1} + (1 − β) ∇J(θ_t), θ_{t+1} = θ_t − α v_t, is the cure: the velocity carries it
  past) but, started off the axis, does not stay.
- The cap: every run is pushed away.
- The monkey saddle has H = 0 at the origin: both eigenvalues are 0, second derivatives
  say nothing ("degenerate"), and the third-order term x³ − 3xy² = r³ cos 3θ decides. It
  has three downhill valleys (θ = 60°, 180°, 300°) instead of a saddle's two; from the
  start on the ridge θ = 0 GD creeps towards the origin ever more slowly (the gradient
  vanishes like r², so r shrinks only like 1/(3·lr·k): sublinear convergence, 0.016 after
  200 steps), from the others it escapes down a valley.

Part 2, "學習率設太高為什麼會發散": along an eigenvector of H with eigenvalue λ, a GD step
with learning rate η multiplies the error by (1 − ηλ). So GD converges when |1 − ηλmax| < 1,
i.e. η < 2/λmax, and diverges, zig-zagging with ever larger amplitude, when η > 2/λmax.
λmax comes from tinygrad_edu.curvature.top_eigenvalue: power iteration v ← Hv/‖Hv‖ with
one Hessian-vector product per iteration, never forming H; the table checks it against the
eigenvalues of the full Hessian. GD then runs at 0.5, 0.99 and 1.01 times 2/λmax:

- a quadratic ½ xᵀAx in 10 dimensions, A's eigenvalues 1, 2, ..., 10 in a random basis,
  from a random start. At 0.99 the top eigen-direction shrinks by |1 − 1.98| = 0.98 per
  step, at 1.01 it grows by 1.02: a 2 % change of the learning rate turns convergence
  into divergence, exactly at 2/λmax, as the dashed lines predict (f − f* changes by the
  square of that factor: 0.98^2k and 1.02^2k).
- a small MLP (1-3-1, tanh, 10 parameters, mean squared error on 40 noisy samples of
  sin 2x). Its loss is not a quadratic, so the limit is local: λmax of the Hessian at a
  minimum θ* (found with optim.minimize(method="newton-cg"), all Hessian eigenvalues > 0).
  Near θ* the loss is the quadratic bowl ½ (θ − θ*)ᵀ H (θ − θ*), so GD started at
  θ* + 1e-3·u (u: the top eigenvector of H) obeys the same rule: at 0.99·2/λmax it returns
  to θ*, at 1.01·2/λmax the distance grows by 1.02 per step until the loss is no longer
  quadratic and the run is thrown out of the minimum. Here it does not fly off to
  infinity: this θ* lies in a nearly flat valley (its smallest eigenvalue is 3e-5), and
  GD slides along it, with a spike of the loss (third panel), to a flatter minimum whose
  λmax (9.86) is below 2/lr (9.93), where it settles. Far from a minimum the curvature
  changes along the way, so 2/λmax at the starting point is only a guide there: training
  at large learning rates hovers at this "edge of stability" (Cohen et al., ICLR 2021).

Verdicts: "diverges" when the error (f − f* for the quadratic, ‖θ − θ*‖ for the MLP) ever
grew above 10 times its start (or overflowed); "converges" when it ends below a tenth of
its start; "undecided" otherwise. The MLP's error cannot grow for ever (its loss is
bounded), so there "diverges" is printed "thrown out of θ*", and "thrown out of θ*,
settles elsewhere" when the run ends where λmax < 2/lr, the stable side of the limit: the
final error 3e-2 in its row is the distance from θ* to that other minimum.

--quick runs fewer GD iterations (a smoke test).
"""
from __future__ import annotations

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
import tinygrad_edu as tg  # noqa: E402
from tinygrad_edu.curvature import classify_critical_point, hessian_eigenvalues, top_eigenvalue  # noqa: E402

GD_LR = 0.1  # part 1: the learning rate of every run near the critical points
RADIUS = 0.6  # part 1: the runs start on this circle around (0, 0)
ESCAPE = 2.0  # part 1: a run that gets farther than this from (0, 0) has escaped
FACTORS = (0.5, 0.99, 1.01)  # part 2: learning rates, as multiples of 2/λmax
HIDDEN, N_SAMPLES, MLP_SEED = 3, 40, 1
PERTURBATION = 1e-3  # part 2: the MLP's runs start at θ* + PERTURBATION·u


# ---- part 1: critical points ------------------------------------------------------------

@dataclass(frozen=True)
class Surface:
    name: str
    formula: str
    f: Callable[[tg.Tensor], tg.Tensor]


SURFACES = (
    Surface("bowl", "x² + y²", lambda v: v[0] ** 2 + v[1] ** 2),
    Surface("saddle", "x² − y²", lambda v: v[0] ** 2 - v[1] ** 2),
    Surface("cap", "−x² − y²", lambda v: -v[0] ** 2 - v[1] ** 2),
    Surface("monkey saddle", "x³ − 3xy²", lambda v: v[0] ** 3 - 3 * v[0] * v[1] ** 2),
)
EXPECTED = ["minimum", "saddle", "maximum", "degenerate"]


def gd_paths(f: Callable, iters: int) -> list:
    """GD from 8 points on the circle of radius RADIUS (angles 0°, 45°, ...): (path, outcome)."""
    runs = []
    for k in range(8):
        angle = k * math.pi / 4
        # round(…, 12): the starts on the axes lie exactly on them (sin π is 1.2e-16, not 0, and on
        # the saddle GD would amplify that into an escape after a hundred-odd steps)
        start = tg.Tensor([round(RADIUS * math.cos(angle), 12), round(RADIUS * math.sin(angle), 12)],
                          dtype="float64")
        res = optim.minimize(f, start, "sgd", options={"lr": GD_LR, "maxiter": iters, "gtol": 1e-12},
                             callback=lambda x, _: float(numpy.linalg.norm(x)) > ESCAPE)
        r = float(numpy.linalg.norm(res.path[-1]))
        outcome = "escapes" if r > ESCAPE else "→ (0, 0)" if r < 1e-3 else f"creeping in, r = {r:.2g}" \
            if r < RADIUS else f"r = {r:.2g}"
        runs.append((res.path, outcome))
    return runs


def critical_point_table(iters: int) -> list:
    rows = []
    origin = tg.Tensor([0.0, 0.0], dtype="float64")
    for s in SURFACES:
        H = tg.hessian(s.f, origin).numpy()
        eigenvalues = hessian_eigenvalues(s.f, origin)
        verdict = classify_critical_point(s.f, origin)
        rows.append(dict(name=s.name, formula=s.formula, hessian=H, eigenvalues=eigenvalues,
                         classification=verdict, runs=gd_paths(s.f, iters)))
    return rows


def plot_critical_points(rows: list, file: Path) -> None:
    fig, axes = plt.subplots(2, 2, figsize=(11.5, 12))
    grid = numpy.linspace(-1.6, 1.6, 161)
    X, Y = numpy.meshgrid(grid, grid)
    for ax, s, row in zip(axes.flat, SURFACES, rows):
        Z = _surface_values(s.name, X, Y)
        levels = numpy.linspace(Z.min(), Z.max(), 25)
        ax.contourf(X, Y, Z, levels=levels, cmap="RdBu_r", alpha=0.55)
        ax.contour(X, Y, Z, levels=levels, colors="k", linewidths=0.3, alpha=0.5)
        for path, outcome in row["runs"]:
            color = "tab:green" if outcome == "→ (0, 0)" else "tab:red" if outcome == "escapes" else "tab:orange"
            ax.plot(path[:, 0], path[:, 1], "-o", color=color, markersize=2, linewidth=1.2)
            ax.plot(path[0, 0], path[0, 1], "o", color="black", markersize=4)
        ax.plot(0, 0, "X", color="black", markersize=10)
        ax.set_xlim(-1.6, 1.6)
        ax.set_ylim(-1.6, 1.6)
        ax.set_aspect("equal")
        H, ev = row["hessian"], row["eigenvalues"]
        ax.set_title(f"{s.name}, f = {s.formula}\nH(0, 0) = [[{H[0, 0]:g}, {H[0, 1]:g}], [{H[1, 0]:g}, {H[1, 1]:g}]], "
                     f"eigenvalues {ev[0]:g}, {ev[1]:g} → {row['classification']}", fontsize=11)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    handles = [plt.Line2D([], [], color=c, marker="o", markersize=3, label=label) for c, label in
               (("tab:green", "GD converges to (0, 0)"), ("tab:red", f"GD escapes (‖v‖ > {ESCAPE:g})"),
                ("tab:orange", "GD still creeping in"))]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=10)
    fig.suptitle(f"The critical point (0, 0): Hessian, eigenvalues, and GD (lr = {GD_LR:g}) from 8 starts at\n"
                 f"radius {RADIUS:g} (black dots); background: f, red high, blue low", fontsize=12)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(file, dpi=90)
    plt.close(fig)


def _surface_values(name: str, X: numpy.ndarray, Y: numpy.ndarray) -> numpy.ndarray:
    """The four surfaces in NumPy, for the contour plots only."""
    return {"bowl": X ** 2 + Y ** 2, "saddle": X ** 2 - Y ** 2, "cap": -X ** 2 - Y ** 2,
            "monkey saddle": X ** 3 - 3 * X * Y ** 2}[name]


# ---- part 2: the learning-rate limit ------------------------------------------------------

def verdict(errors: numpy.ndarray) -> str:
    """"diverges" when the error ever exceeded 10 times its start (or overflowed),
    "converges" when it ends below a tenth of its start, else "undecided"."""
    e0 = float(errors[0])
    if not numpy.isfinite(errors).all() or float(errors.max()) > 10 * e0:
        return "diverges"
    return "converges" if float(errors[-1]) < e0 / 10 else "undecided"


def mlp_verdict(v: str, end: dict) -> str:
    """The MLP's verdict in words: its loss is bounded, so a run pushed away from θ* does not
    fly off but lands somewhere; "settles elsewhere" when that place is stable for its lr."""
    if v == "converges":
        return "returns to θ*"
    if v == "diverges":
        return "thrown out of θ*, settles elsewhere" if end["lam_end"] < 2 / end["lr"] else "thrown out of θ*"
    return v


def power_iteration_lambda(f: Callable, x: numpy.ndarray) -> float:
    """λmax of f's Hessian at x by HVP power iteration (tinygrad_edu.curvature.top_eigenvalue)."""
    leaf = tg.Tensor(x.copy(), requires_grad=True)
    return top_eigenvalue(lambda: f(leaf), [leaf], iters=3000, tol=1e-13)


def quadratic_problem(d: int = 10, seed: int = 0) -> tuple:
    """½ xᵀAx with A = Q diag(1..d) Qᵀ (Q a random rotation), and a random unit start."""
    rng = numpy.random.default_rng(seed)
    Q, _ = numpy.linalg.qr(rng.standard_normal((d, d)))
    A = Q @ numpy.diag(numpy.arange(1.0, d + 1)) @ Q.T
    A = (A + A.T) / 2
    At = tg.Tensor(A)
    x0 = rng.standard_normal(d)
    return (lambda x: 0.5 * (x * (At @ x)).sum()), A, x0 / numpy.linalg.norm(x0)


def mlp_problem() -> tuple:
    """A 1-HIDDEN-1 tanh MLP as a function of one flat parameter vector θ (W1, b1, W2, b2),
    mean squared error on N_SAMPLES noisy samples of sin 2x; and a random start θ0."""
    rng = numpy.random.default_rng(MLP_SEED)
    xs = numpy.linspace(-2, 2, N_SAMPLES)
    ys = numpy.sin(2 * xs) + 0.1 * rng.standard_normal(N_SAMPLES)
    Xt, Yt = tg.Tensor(xs.reshape(-1, 1)), tg.Tensor(ys.reshape(-1, 1))
    h = HIDDEN

    def loss(theta: tg.Tensor) -> tg.Tensor:
        W1, b1 = theta[0:h].reshape(1, h), theta[h:2 * h]
        W2, b2 = theta[2 * h:3 * h].reshape(h, 1), theta[3 * h]
        return (((Xt @ W1 + b1).tanh() @ W2 + b2 - Yt) ** 2).mean()

    return loss, rng.standard_normal(3 * h + 1)


def lr_runs(f: Callable, start: numpy.ndarray, lam: float, iters: int, error: Callable) -> dict:
    """GD at each factor·2/λ from `start`: {factor: (errors per iterate, verdict, result)}."""
    out = {}
    for c in FACTORS:
        res = optim.minimize(f, tg.Tensor(start.copy()), "sgd",
                             options={"lr": c * 2 / lam, "maxiter": iters, "gtol": 1e-14})
        errors = numpy.array([error(p) for p in res.path])
        if not res.success and res.message.startswith("diverged"):
            errors = numpy.append(errors, math.inf)
        out[c] = (errors, verdict(errors), res)
    return out


def lr_limit(iters: int) -> dict:
    # The quadratic.
    fq, A, x0 = quadratic_problem()
    lam_q = power_iteration_lambda(fq, x0)
    exact_q = float(numpy.linalg.eigvalsh(A)[-1])
    runs_q = lr_runs(fq, x0, lam_q, iters, lambda p: 0.5 * float(p @ A @ p))

    # The MLP: a minimum first, then its curvature.
    fm, theta0 = mlp_problem()
    res = optim.minimize(fm, tg.Tensor(theta0), "newton-cg", options={"gtol": 1e-10, "maxiter": 1000})
    theta_star = res.x.numpy()
    H = tg.hessian(fm, res.x).numpy()
    eigenvalues, vectors = numpy.linalg.eigh((H + H.T) / 2)
    lam_m = power_iteration_lambda(fm, theta_star)
    start = theta_star + PERTURBATION * vectors[:, -1]
    runs_m = lr_runs(fm, start, lam_m, iters, lambda p: float(numpy.linalg.norm(p - theta_star)))
    # Where each MLP run ended: the loss gap along the way, and the curvature at the end point.
    ends = {}
    for c, (_, _, r) in runs_m.items():
        gaps = numpy.array([fm(tg.Tensor(p)).item() for p in r.path]) - res.fun
        ends[c] = dict(gaps=gaps, grad_norm=r.grad_norm, lam_end=power_iteration_lambda(fm, r.path[-1]),
                       lr=c * 2 / lam_m)
    return dict(quadratic=dict(lam=lam_q, exact=exact_q, runs=runs_q),
                mlp=dict(lam=lam_m, exact=float(eigenvalues[-1]), eigenvalues=eigenvalues, runs=runs_m, ends=ends,
                         minimum=dict(nit=res.nit, fun=res.fun, grad_norm=res.grad_norm, success=res.success)))


def plot_lr_limit(result: dict, file: Path) -> None:
    fig, axes = plt.subplots(1, 3, figsize=(19, 5.6))
    colors = {0.5: "tab:blue", 0.99: "tab:green", 1.01: "tab:red"}
    panels = (("quadratic", "f(x_k) − f*", 2, "½ xᵀAx, eigenvalues 1..10 in a random basis"),
              ("mlp", "‖θ_k − θ*‖", 1, f"1-{HIDDEN}-1 tanh MLP, from θ* + {PERTURBATION:g}·u (u: top eigenvector)"))
    for ax, (key, ylabel, power, title) in zip(axes, panels):
        part = result[key]
        lam = part["lam"]
        for c, (errors, v, _) in part["runs"].items():
            k = numpy.arange(len(errors))
            finite = numpy.isfinite(errors)
            shown = mlp_verdict(v, part["ends"][c]) if key == "mlp" else v
            ax.semilogy(k[finite], errors[finite], color=colors[c], linewidth=1.6,
                        label=f"lr = {c:g}·2/λmax = {c * 2 / lam:.4f}: {shown}")
            if c != 0.5:
                rate = abs(1 - 2 * c)
                kk = numpy.arange(len(errors))
                exponent = "2k" if power == 2 else "k"
                ax.semilogy(kk, errors[0] * rate ** (power * kk), color=colors[c], linestyle="--", linewidth=1,
                            label=f"theory: |1 − lr·λmax|^{exponent} = {rate:.2f}^{exponent}")
        ax.set_xlabel("GD iteration k")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}\nλmax = {lam:.6g} by HVP power iteration", fontsize=11)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8.5, loc="upper right" if key == "quadratic" else "lower left")
        finite_min = min(float(numpy.min(e[numpy.isfinite(e)])) for e, _, _ in part["runs"].values())
        ax.set_ylim(max(finite_min, 1e-24) / 10, 1e6 if key == "quadratic" else 1e1)
    ax = axes[2]
    ends = result["mlp"]["ends"]
    for c, end in ends.items():
        gaps = numpy.maximum(numpy.abs(end["gaps"]), 1e-17)
        ax.semilogy(numpy.arange(len(gaps)), gaps, color=colors[c], linewidth=1.6,
                    label=f"lr = {c:g}·2/λmax; at the end: λmax = {end['lam_end']:.4f}, 2/lr = {2 / end['lr']:.4f}")
    ax.set_xlabel("GD iteration k")
    ax.set_ylabel("|f(θ_k) − f(θ*)|")
    ax.set_title("the MLP's loss: above the limit a spike, then it settles elsewhere\n(at a flatter minimum, "
                 "where λmax < 2/lr)", fontsize=11)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8.5, loc="lower left")
    ax.set_ylim(1e-17, 1e-1)
    fig.suptitle("The learning-rate limit 2/λmax: just below it GD converges, just above it diverges "
                 "(on the MLP: is thrown out of the minimum)", fontsize=12)
    fig.tight_layout()
    fig.savefig(file, dpi=90)
    plt.close(fig)


def main(argv: Sequence[str] | None = None) -> dict:
    """Part 1 and part 2: print both tables, draw both figures; returns the numbers."""
    args = demo_parser(__doc__, quick="fewer GD iterations (a smoke test)").parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    rows = critical_point_table(60 if args.quick else 200)
    print("### The critical point (0, 0)\n")
    print("| f | Hessian at (0, 0) | eigenvalues | classification | GD from 8 starts (lr = 0.1) |")
    print("|---|---|---|---|---|")
    for row in rows:
        H, ev = row["hessian"], row["eigenvalues"]
        outcomes = [o for _, o in row["runs"]]
        summary = ", ".join(f"{outcomes.count(o)}× {o}" for o in dict.fromkeys(outcomes))
        print(f"| {row['formula']} | [[{H[0, 0]:g}, {H[0, 1]:g}], [{H[1, 0]:g}, {H[1, 1]:g}]] | "
              f"{ev[0]:g}, {ev[1]:g} | {row['classification']} | {summary} |")

    limit = lr_limit(300 if args.quick else 1000)
    print("\n### The learning-rate limit 2/λmax\n")
    m = limit["mlp"]
    print(f"MLP minimum: newton-cg, {m['minimum']['nit']} iterations, loss {m['minimum']['fun']:.6f}, "
          f"max |g| = {m['minimum']['grad_norm']:.1e}; Hessian eigenvalues from {m['eigenvalues'][0]:.2e} "
          f"to {m['eigenvalues'][-1]:.4f} (all > 0: a minimum).\n")
    print("| problem | λmax (HVP power iteration) | λmax (full Hessian) | lr / (2/λmax) | lr | start error | "
          "largest error | final error | verdict |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    table = []
    for key, label in (("quadratic", "quadratic, f − f*"), ("mlp", "MLP, ‖θ − θ*‖")):
        part = limit[key]
        for c, (errors, v, _) in part["runs"].items():
            shown = mlp_verdict(v, part["ends"][c]) if key == "mlp" else v
            print(f"| {label} | {part['lam']:.10g} | {part['exact']:.10g} | {c:g} | {c * 2 / part['lam']:.5f} | "
                  f"{errors[0]:.2e} | {numpy.max(errors):.2e} | {errors[-1]:.2e} | {shown} |")
            row = dict(problem=key, factor=c, lr=c * 2 / part["lam"], lam=part["lam"], exact=part["exact"],
                       start=float(errors[0]), largest=float(numpy.max(errors)), final=float(errors[-1]), verdict=v,
                       shown=shown)
            if key == "mlp":
                end = part["ends"][c]
                row.update(lam_end=end["lam_end"], grad_norm_end=end["grad_norm"], gap_end=float(end["gaps"][-1]))
            table.append(row)
    print()
    for c, end in limit["mlp"]["ends"].items():
        print(f"MLP at {c:g}·2/λmax: ends with max |g| = {end['grad_norm']:.1e}, f − f(θ*) = {end['gaps'][-1]:.1e}, "
              f"λmax there = {end['lam_end']:.4f} (2/lr = {2 / end['lr']:.4f}).")

    files = [out / "critical_points.png", out / "lr_limit.png"]
    plot_critical_points(rows, files[0])
    plot_lr_limit(limit, files[1])
    print("\nFiles written:\n" + "\n".join(f"- {file}" for file in files))
    return {"classifications": [row["classification"] for row in rows], "expected": EXPECTED,
            "critical_points": [{k: row[k] for k in ("name", "formula", "classification")} |
                                {"eigenvalues": row["eigenvalues"].tolist(),
                                 "gd_outcomes": [o for _, o in row["runs"]]} for row in rows],
            "lr_limit": table, "files": [str(f) for f in files]}


if __name__ == "__main__":
    main()

"""Newton-CG on L2-regularised logistic regression (n = 20000 samples, d = 100 features,
float64, seeded synthetic data): tinygrad_edu's NewtonCG beside SciPy's Newton-CG with a
hand-written NumPy loss, gradient and Hessian-vector product (the floor).

Every run starts from w = 0 and must reach max|∇f| < 1e-6 (‖g‖∞, GTOL). The runs:

  (a) optim.minimize(fun, w0, "newton-cg", options={"gtol": GTOL}), fun written with
      tinygrad_edu Tensor ops (nn.functional.binary_cross_entropy_with_logits; see engine_loss);
  (a') the same NewtonCG driven by hand with a closure, to read its counters
      (opt.counts: func_evals, grad_evals, hvp_evals), which minimize does not return;
  (b) scipy.optimize.minimize(method="Newton-CG", jac=True, hessp=...) with NumPy code
      written by hand (the sigmoid cached per point, as anyone would): the floor;
  (c) the same SciPy call on optim.scipy_fun(fun, w0): SciPy's algorithm, the engine's
      derivatives.

Repetitions are interleaved (a a' b c, a a' b c, ...) so that drift of the machine hits
all alike; the table gives medians and the ratio to (b). SciPy is optional: without it
(b) and (c) are skipped with a message.

Fairness. The two algorithms are the same truncated Newton (CG stopped on negative
curvature, forcing term min(0.5, √‖g‖)·‖g‖) but differ in details: SciPy measures ‖g‖
in the 1-norm and ours in the 2-norm, SciPy's line search is a strong-Wolfe search and
ours Armijo backtracking, and SciPy stops on the size of its last step (‖Δw‖₁ ≤ d·xtol)
rather than on the gradient. So SciPy gets xtol = SCIPY_XTOL, chosen so that its final
‖g‖∞ is below GTOL too, and the table shows every run's final ‖g‖∞ and, for SciPy, also
the first iteration at which ‖g‖∞ < GTOL held (found in an extra, untimed run with a
callback): stopping on the step size costs it an extra iteration or so.

BLAS threads: OPENBLAS_NUM_THREADS (and OMP_/MKL_) default to 1 here, set before NumPy
loads, as in the tests (on a 2-core machine, threaded BLAS made small products slower);
set them in the environment to measure something else. The setting is printed.

Run: python benchmarks/newton_cg_logistic.py [--repeats 7] [--n 20000] [--d 100]
"""
from __future__ import annotations

import os

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # before NumPy loads

import argparse  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from typing import Callable  # noqa: E402

import numpy as np  # noqa: E402

import nn  # noqa: E402
import optim  # noqa: E402
import tinygrad_edu as tg  # noqa: E402

GTOL = 1e-6  # every run must end with max |gradient| below this
LAM = 1e-4  # L2 regularisation: f(w) = mean BCE(Xw, y) + LAM/2 ‖w‖²
SCIPY_XTOL = 1e-6  # SciPy stops when ‖Δw‖₁ ≤ d·xtol; at 1e-6 its final ‖g‖∞ is well below GTOL
MAXITER = 100
MINIMIZE = "(a) optim.minimize newton-cg"
CLOSURE = "(a') optim.NewtonCG + closure"


def make_data(n: int, d: int, seed: int = 0) -> tuple:
    """X (n, d): Gaussian features whose scales fall from 1 to 0.1 (so the Hessian is
    moderately ill-conditioned and CG has work to do); y ∈ {0, 1} drawn from the logistic
    model with a random true weight vector."""
    rng = np.random.default_rng(seed)
    scales = np.logspace(0, -1, d)
    X = rng.standard_normal((n, d)) * scales
    w_true = 2 * rng.standard_normal(d) / scales / np.sqrt(d)
    y = (rng.random(n) < 1 / (1 + np.exp(-X @ w_true))).astype(np.float64)
    return X, y


class NumpyLogistic:
    """The floor: loss, gradient and Hessian-vector product derived by hand.

    f(w) = mean(max(z, 0) − z·y + log(1 + e^−|z|)) + λ/2 ‖w‖²,  z = X w
    ∇f   = Xᵀ(σ(z) − y)/n + λ w
    H p  = Xᵀ(σ(z)(1 − σ(z)) ⊙ X p)/n + λ p     (the weights cached for the last w)
    """

    def __init__(self, X: np.ndarray, y: np.ndarray, lam: float):
        self.X, self.y, self.lam, self.n = X, y, lam, X.shape[0]
        self._w: np.ndarray | None = None
        self._s: np.ndarray | None = None

    def fun_and_grad(self, w: np.ndarray) -> tuple:
        z = self.X @ w
        f = float(np.mean(np.maximum(z, 0) - z * self.y + np.log1p(np.exp(-np.abs(z))))) + 0.5 * self.lam * float(w @ w)
        sigma = 1 / (1 + np.exp(-z))
        return f, self.X.T @ (sigma - self.y) / self.n + self.lam * w

    def hessp(self, w: np.ndarray, p: np.ndarray) -> np.ndarray:
        if self._w is None or not np.array_equal(w, self._w):
            sigma = 1 / (1 + np.exp(-(self.X @ w)))
            self._w, self._s = w.copy(), sigma * (1 - sigma)
        return self.X.T @ (self._s * (self.X @ p)) / self.n + self.lam * p


def engine_loss(X: np.ndarray, y: np.ndarray, lam: float) -> Callable:
    """The same loss with tinygrad_edu Tensor ops; derivatives come from the engine.

    The cross-entropy is nn.functional.binary_cross_entropy_with_logits, softplus(z) − y·z.
    """
    Xt, yt = tg.Tensor(X), tg.Tensor(y)

    def fun(w: tg.Tensor) -> tg.Tensor:
        return nn.F.binary_cross_entropy_with_logits(Xt @ w, yt) + 0.5 * lam * (w * w).sum()

    return fun


def run_minimize(fun: Callable, d: int) -> dict:
    """(a) optim.minimize; minimize evaluates f and ∇f once more after every step to test gtol."""
    w0 = tg.zeros(d, dtype="float64")
    start = time.perf_counter()
    res = optim.minimize(fun, w0, "newton-cg", options={"gtol": GTOL, "maxiter": MAXITER})
    seconds = time.perf_counter() - start
    return dict(seconds=seconds, nit=res.nit, nfev=res.nfev, nhev=None, gnorm=res.grad_norm, x=res.x.numpy(),
                ok=res.success)


def run_closure(fun: Callable, d: int) -> dict:
    """(a') NewtonCG stepped by hand. After a step the parameters sit where the line search
    last evaluated, so the convergence test reuses that gradient (a cache keyed by w);
    an evaluation it cannot reuse is counted in `extra_evals`."""
    w = tg.Tensor(np.zeros(d), requires_grad=True)
    opt = optim.NewtonCG([w])
    last: dict = {}

    def closure() -> tg.Tensor:
        opt.zero_grad()
        loss = fun(w)
        loss.backward()
        last.update(w=w.data.copy(), g=w.grad.data.copy())
        return loss

    def gnorm_here() -> tuple:
        if "w" in last and np.array_equal(last["w"], w.data):
            return float(np.abs(last["g"]).max()), 0
        closure()
        return float(np.abs(last["g"]).max()), 1

    start = time.perf_counter()
    extra = 0
    gnorm, used = gnorm_here()
    extra += used
    nit = 0
    while gnorm >= GTOL and nit < MAXITER:
        opt.step(closure)
        nit += 1
        gnorm, used = gnorm_here()
        extra += used
    seconds = time.perf_counter() - start
    counts = opt.counts
    return dict(seconds=seconds, nit=nit, nfev=counts["func_evals"] + extra, nhev=counts["hvp_evals"], gnorm=gnorm,
                x=w.numpy().copy(), ok=gnorm < GTOL, extra_evals=extra)


def run_scipy(scipy_minimize: Callable, fun_and_grad: Callable, hessp: Callable, d: int,
              jac: Callable | None = None) -> dict:
    """(b)/(c) SciPy's Newton-CG; jac=True when fun_and_grad returns (f, g)."""
    start = time.perf_counter()
    res = scipy_minimize(fun_and_grad, np.zeros(d), jac=True if jac is None else jac, hessp=hessp,
                         method="Newton-CG", options={"xtol": SCIPY_XTOL, "maxiter": MAXITER})
    seconds = time.perf_counter() - start
    return dict(seconds=seconds, nit=res.nit, nfev=res.nfev, nhev=res.nhev, x=res.x, ok=bool(res.success))


def first_iteration_below_gtol(scipy_minimize: Callable, floor: NumpyLogistic, d: int) -> int | None:
    """The first SciPy iterate with ‖g‖∞ < GTOL (an untimed run with a callback)."""
    norms = [float(np.abs(floor.fun_and_grad(np.zeros(d))[1]).max())]

    def callback(xk: np.ndarray) -> None:
        norms.append(float(np.abs(floor.fun_and_grad(xk)[1]).max()))

    scipy_minimize(floor.fun_and_grad, np.zeros(d), jac=True, hessp=floor.hessp, method="Newton-CG",
                   callback=callback, options={"xtol": SCIPY_XTOL, "maxiter": MAXITER})
    return next((k for k, g in enumerate(norms) if g < GTOL), None)


def per_product_times(fun: Callable, floor: NumpyLogistic, d: int, repeats: int) -> dict:
    """Median milliseconds of one f+∇f and one H·v, engine and NumPy, at a random point
    (blocks of 5 calls, the cases interleaved). "engine H·v, kept graph" is what NewtonCG and
    optim.scipy_fun's hessp do (one double backward through the graph of the gradient at
    the point); "tinygrad_edu.hvp" builds that graph anew at every call (forward, backward,
    double backward)."""
    rng = np.random.default_rng(1)
    w_np, v_np = rng.standard_normal(d) / np.sqrt(d), rng.standard_normal(d)
    w = tg.Tensor(w_np.copy(), requires_grad=True)
    opt = optim.NewtonCG([w])

    def closure() -> tg.Tensor:
        opt.zero_grad()
        loss = fun(w)
        loss.backward()
        return loss

    _, _, kept_hvp = opt.evaluate_with_curvature(closure)
    floor.hessp(w_np, v_np)  # the NumPy side caches σ'(z) for w, as in a run
    cases = {"engine f+∇f": closure, "NumPy f+∇f": lambda: floor.fun_and_grad(w_np),
             "engine H·v, kept graph (NewtonCG)": lambda: kept_hvp(v_np),
             "tinygrad_edu.hvp (graph built each call)": lambda: tg.hvp(fun, tg.Tensor(w_np), tg.Tensor(v_np)),
             "NumPy H·v, cached σ'(z)": lambda: floor.hessp(w_np, v_np)}
    times: dict = {name: [] for name in cases}
    for _ in range(repeats):
        for name, case in cases.items():  # a block of 5 calls per case: X stays in cache, as within a run
            case()
            for _ in range(5):
                start = time.perf_counter()
                case()
                times[name].append(time.perf_counter() - start)
    assert np.allclose(kept_hvp(v_np), floor.hessp(w_np, v_np), rtol=1e-10, atol=1e-12)
    return {name: statistics.median(ts) * 1e3 for name, ts in times.items()}


def blas_threads() -> str:
    return ", ".join(f"{v}={os.environ.get(v, 'unset')}" for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                                                                  "MKL_NUM_THREADS"))


def main(argv: list | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--d", type=int, default=100)
    args = parser.parse_args(argv)
    n, d = args.n, args.d

    X, y = make_data(n, d)
    fun = engine_loss(X, y, LAM)
    floor = NumpyLogistic(X, y, LAM)

    runs: dict = {MINIMIZE: lambda: run_minimize(fun, d),
                  CLOSURE: lambda: run_closure(fun, d)}
    try:
        from scipy.optimize import minimize as scipy_minimize
    except ImportError:
        scipy_minimize = None
        print("SciPy is not installed: skipping (b) and (c) (pip install scipy to compare).")
    if scipy_minimize is not None:
        f_e, jac_e, hessp_e = optim.scipy_fun(fun, tg.zeros(d, dtype="float64"))
        runs["(b) SciPy Newton-CG, NumPy by hand (floor)"] = lambda: run_scipy(scipy_minimize, floor.fun_and_grad,
                                                                               floor.hessp, d)
        runs["(c) SciPy Newton-CG on optim.scipy_fun"] = lambda: run_scipy(scipy_minimize, f_e, hessp_e, d, jac=jac_e)

    for run in runs.values():  # warm-up: imports, caches, BLAS start-up
        run()
    times: dict = {name: [] for name in runs}
    last: dict = {}
    for _ in range(args.repeats):
        for name, run in runs.items():
            last[name] = run()
            times[name].append(last[name]["seconds"])

    # Every run's final ‖g‖∞, measured the same way (the NumPy gradient, float64).
    reference = last[MINIMIZE]["x"]
    for r in last.values():
        r["gnorm"] = float(np.abs(floor.fun_and_grad(r["x"])[1]).max())
        r["dist"] = float(np.linalg.norm(r["x"] - reference) / np.linalg.norm(reference))
    first_ok = first_iteration_below_gtol(scipy_minimize, floor, d) if scipy_minimize is not None else None

    floor_name = "(b) SciPy Newton-CG, NumPy by hand (floor)"
    floor_time = statistics.median(times[floor_name]) if floor_name in times else None
    print(f"L2-regularised logistic regression, n={n}, d={d}, λ={LAM:g}, float64, w0 = 0, target ‖g‖∞ < {GTOL:g}; "
          f"SciPy xtol={SCIPY_XTOL:g}")
    print(f"median of {args.repeats} interleaved repetitions; {blas_threads()}; NumPy {np.__version__}; "
          f"Python {platform.python_version()}; {os.cpu_count()} CPUs")
    print()
    print("| run | iterations | f evals | HVPs | final ‖g‖∞ | wall time (ms) | vs (b) |")
    print("|---|---|---|---|---|---|---|")
    rows = []
    for name, r in last.items():
        median = statistics.median(times[name])
        nit = str(r["nit"])
        if name == floor_name and first_ok is not None:
            nit += f" (‖g‖∞ < {GTOL:g} from iteration {first_ok})"
        hvps = "—" if r["nhev"] is None else str(r["nhev"])
        if name == MINIMIZE and np.array_equal(r["x"], last[CLOSURE]["x"]):
            hvps = f"— (same iterates as (a'): {last[CLOSURE]['nhev']})"
        ratio = f"{median / floor_time:.2f}x" if floor_time else "—"
        print(f"| {name} | {nit} | {r['nfev']} | {hvps} | {r['gnorm']:.1e} | {median * 1e3:.1f} | {ratio} |")
        rows.append(dict(run=name, nit=r["nit"], nfev=r["nfev"], nhev=r["nhev"], gnorm=r["gnorm"],
                         seconds=median, ratio=(median / floor_time if floor_time else None), dist=r["dist"]))
    print()
    print("(a) counts every evaluation of fun, the one minimize adds after each step to test gtol included; "
          "(a') reuses the line search's last gradient for that test (extra evaluations: "
          f"{last[CLOSURE].get('extra_evals')}). "
          "SciPy's f evals count calls of fun (each also returns the gradient).")
    print("largest relative distance of a run's solution from (a)'s: "
          f"{max(r['dist'] for r in last.values()):.1e}")
    products = per_product_times(fun, floor, d, args.repeats)
    print("one product, median ms: " + "; ".join(f"{name} {ms:.2f}" for name, ms in products.items()))
    bad = [name for name, r in last.items() if not r["gnorm"] < GTOL]
    if bad:
        print(f"WARNING: final ‖g‖∞ ≥ {GTOL:g} for: {', '.join(bad)}")
    return {"rows": rows, "first_scipy_iteration_below_gtol": first_ok, "products_ms": products,
            "blas": blas_threads()}


if __name__ == "__main__":
    main()

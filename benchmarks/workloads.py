"""The workloads, and tinygrad_edu's side of each: how its data is made, how tinygrad_edu
runs it, what the check compares and what the targets are.

  W1   one training step of a 784-256-256-10 ReLU MLP (softmax cross-entropy, batch 128,
       float32, SGD): matmul-bound, so the engine's overhead should nearly vanish.
       Target: <= 1.10x the floor.
  W2   200 chained elementwise ops (×(−1), +1, tanh, exp, in turn) on a 16-element float32
       vector, forward + backward: the arrays are tiny, so this is the engine's per-op
       overhead (Tensor, graph node, backward closure) in µs per op. Target: <= 4 µs/op.
  W3   a Hessian-vector product of mean((MLP(X) − y)²) for a 100-64-64-1 tanh MLP on 512
       samples, float64, with respect to all parameters; the floor is Pearlmutter's
       R-operator. The engine's H·v is timed two ways: the kept graph NewtonCG uses (the
       gradient with create_graph=True once, then one backward per product; its forward and
       first backward are not timed, as every product at a point shares them, so its ratio
       flatters it) and tinygrad_edu.hvp (graph rebuilt at every call: the like-for-like
       comparison with the floor). Targets: H·v <= 2.5x the engine's gradient, <= 1.5x the floor.
  W3f  W3 with the parameters as one flat vector θ sliced into the layers inside the loss, as
       optim.minimize and NewtonCG hand them over: the gradient and tg.hvp with respect to θ.
       The floor is the R-operator on views of θ and v, the results laid out flat.
       Target: as W3's tg.hvp, <= 1.5x the floor.
  W4   Newton-CG on L2-regularised logistic regression (n = 20000, d = 100, float64) from
       w = 0 to max|∇f| < 1e-6. Floor: SciPy's Newton-CG with hand-written NumPy gradient and
       Hessian-vector product; also NewtonCG's own algorithm written in NumPy (the floor when
       SciPy is missing; its iterations match NewtonCG's, so it isolates the cost of the
       derivatives). The engine runs optim.minimize, optim.NewtonCG with a closure, and SciPy
       driven by optim.scipy_fun. Target: <= 1.3x the floor.
  W5   the W2 chain with N = 1e3, 1e4, 1e5 ops, garbage collector on: µs per op must stay
       flat (linear total), tracemalloc's peak during forward + backward must grow in
       proportion to N, and after backward and `del` the graph's memory must be released.
       Targets: µs/op and peak bytes/op at the largest N within 1.5x of the smallest N's;
       <= 512 KiB kept after `del` (Python's own free lists of tuples and floats keep a
       couple of hundred KiB).
  W6   one training step of a small CNN: Conv2d 1->8 3x3, ReLU, MaxPool 2, Linear 72->10,
       batch 64 of the 8x8 digits, float32, SGD. Floor: im2col convolution, pooling and
       linear layer with hand-derived backward. Target: <= 1.5x the floor.
  MEM  1000 W1 steps: resident memory (RSS) at step 100 and 1000 must stay flat.
       Target: <= 1 MiB growth.
  LARGE (--device cuda, with W1 on CuPy) a 4096-4096-4096-10 MLP step, batch 4096, float32;
       the floor is the same hand-written step on CuPy arrays. Targets: >= 20x faster than
       the same engine on the CPU, <= 2x PyTorch CUDA.

W5 and MEM run loops of their own (several chain lengths; a thousand steps), so they are
functions (PROBES) outside the column table; every other workload is a Workload whose rows
come from the columns of runner.COLUMNS, tinygrad_edu's from ENGINE_CASES below.
"""
from __future__ import annotations

import gc
import os
import statistics
import sys
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import nn
import optim
import tinygrad_edu as tg
from tinygrad_edu.flat import unflatten
from benchmarks import floors
from benchmarks.common import (CHAIN_LENGTH, CHAIN_OPS, CNN_BATCH, ENGINE, FLOOR, GTOL, HVP_SAMPLES, HVP_SIZES,
                               FlatHvpProblem, flat_hvp_problem,
                               LAM, LARGE_BATCH, LARGE_QUICK_BATCH, LARGE_QUICK_SIZES, LARGE_SIZES, LOGISTIC_D,
                               LOGISTIC_N, LOGISTIC_QUICK_N, MAXITER, REFERENCE, SCIPY_XTOL, Case, Entry,
                               TrainingProblem, as_numpy, chain, chain_input, cnn_problem, first_floor, hvp_problem,
                               interleave, logistic_data, mlp_problem, row, seeded_model, sgd_step, tanh_mlp_loss)

DEEP_NS, DEEP_QUICK_NS = (1_000, 10_000, 100_000), (100, 1_000, 10_000)
MEM_MARKS, MEM_QUICK_MARKS = (100, 1000), (50, 200)
MIB = 2 ** 20


@dataclass(frozen=True)
class Workload:
    """How one workload is set up, checked and judged. `check` runs every entry's case once
    and raises AssertionError where one disagrees with the floor; it returns {"check": what
    agreed} and may add "tables". Every row gets its ratio to the floor from the runner;
    `figures` adds the workload's own, `targets` says which an entry is judged on."""
    problem: Callable[[str, bool], Any]  # (device, quick) -> what every column is given
    title: Callable[[Any], str]
    check: Callable[[Any, dict[str, Entry]], dict]
    targets: Callable[[Entry], list] = lambda entry: []
    figures: Callable[[Any, Entry, dict[str, float], dict[str, Entry]], dict] = lambda *_: {}


# ---- training steps: W1, W6, MEM, LARGE ------------------------------------------------------


def engine_step(problem: TrainingProblem) -> dict[str, Case]:
    """tinygrad_edu's SGD step; its weights start as the problem's (the same seeded build)."""
    model = seeded_model(problem.build, problem.device)
    x, y = tg.tensor(problem.x, device=problem.device), tg.tensor(problem.y, device=problem.device)
    return {"": Case(sgd_step(nn, optim, model, x, y), lambda: [p.numpy() for p in model.parameters()])}


def same_first_step(rtol: float, atol: float) -> Callable[[TrainingProblem, dict[str, Entry]], dict]:
    """The check of a training step: one step of every case from the same weights; each
    loss and every updated weight must match the floor's."""
    def check(problem: TrainingProblem, entries: dict[str, Entry]) -> dict:
        losses = {name: e.case.run() for name, e in entries.items()}
        floor = first_floor(entries)
        floor_weights = floor.case.state()
        for name, e in entries.items():
            np.testing.assert_allclose(losses[name], losses[floor.name], rtol=rtol, err_msg=f"{name}: first loss")
            for i, (w, w_floor) in enumerate(zip(e.case.state(), floor_weights)):
                np.testing.assert_allclose(w, w_floor, rtol=rtol, atol=atol,
                                           err_msg=f"{name}: parameter {i} after a step")
        return {"check": f"first loss {losses[floor.name]:.6f} and every weight after one step agree with the "
                         f"floor (rtol {rtol:g}, atol {atol:g}) for {', '.join(n for n in entries if n != floor.name)}"}

    return check


def step_target(limit: float) -> Callable[[Entry], list]:
    """The target of a training step: an engine's step at most `limit` times the floor's."""
    return lambda entry: [("floor", "<=", limit)] if entry.kind == ENGINE else []


def mlp_title(problem: TrainingProblem) -> str:
    """The title "MLP 784-256-256-10 step, batch 128, ...", from the problem's weights and data."""
    sizes = [problem.initial[0].shape[1]] + [w.shape[0] for w in problem.initial[::2]]
    where = problem.device if problem.device == "cpu" else gpu_name()
    return f"MLP {'-'.join(map(str, sizes))} step, batch {len(problem.x)}, float32, SGD ({where})"


def gpu_name() -> str:
    """The name of GPU 0, as CUDA reports it."""
    import cupy
    return cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()


def large_problem(device: str, quick: bool) -> TrainingProblem:
    """LARGE's MLP and batch (smaller with --quick)."""
    return mlp_problem(device, LARGE_QUICK_SIZES, LARGE_QUICK_BATCH) if quick else \
        mlp_problem(device, LARGE_SIZES, LARGE_BATCH)


ON_CPU = "on the CPU"


def large_engine_steps(problem: TrainingProblem) -> dict[str, Case]:
    """LARGE: the engine on the GPU, and the same engine on the CPU for the speed-up."""
    on_cpu = TrainingProblem(problem.build, problem.x, problem.y, problem.initial, "cpu")
    return {**engine_step(problem), ON_CPU: engine_step(on_cpu)[""]}


def large_figures(problem: TrainingProblem, entry: Entry, medians: dict, entries: dict) -> dict:
    """The GPU engine's speed-up over itself on the CPU, and its ratio to PyTorch CUDA."""
    if entry.kind != ENGINE or entry.label:
        return {}
    cpu = next(name for name, e in entries.items() if e.column == entry.column and e.label == ON_CPU)
    figures = {"cpu_speedup": medians[cpu] / medians[entry.name]}
    torch = next((name for name, e in entries.items() if e.kind == REFERENCE), None)
    if torch is not None:
        figures["torch"] = medians[entry.name] / medians[torch]
    return figures


# ---- W2 and W5: chains of small elementwise ops ------------------------------------------------


def engine_chain(x0: np.ndarray, n_ops: int) -> np.ndarray:
    """The gradient of sum(chain(x0, n_ops)) by tinygrad_edu."""
    x = tg.tensor(x0, requires_grad=True)
    chain(x, n_ops).sum().backward()
    return x.grad.numpy()


def same_chain_gradient(x0: np.ndarray, entries: dict[str, Entry]) -> dict:
    """W2's check: every column's gradient of the chain equals the floor's."""
    floor = first_floor(entries)
    expected = floor.case.run()
    for name, e in entries.items():
        np.testing.assert_allclose(as_numpy(e.case.run()), expected, rtol=1e-4,
                                   err_msg=f"{name}: gradient of the chain")
    return {"check": "gradients agree with the floor (rtol 1e-4) for "
                     + ", ".join(n for n in entries if n != floor.name)}


def traced_chain_memory(x0: np.ndarray, n_ops: int) -> tuple[int, int]:
    """(peak bytes during forward + backward, bytes still held after backward and `del` of
    the output), from tracemalloc, which NumPy's array buffers report to as well."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    x = tg.tensor(x0, requires_grad=True)
    y = chain(x, n_ops)
    loss = y.sum()
    loss.backward()
    del y, loss
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak - base, kept - base  # x and its 16-element grad are still alive: a few hundred bytes


def w5_deep_chain(device: str, repeats: int, quick: bool) -> dict:
    """W5: the chain at growing N, engine against floor; time and memory per op."""
    x0, ns = chain_input(), DEEP_QUICK_NS if quick else DEEP_NS
    labels = [f"N={n:.0e}".replace("e+0", "e") for n in ns]
    rows, table, per_op, last = [], [], {}, 0.0
    for n, label in zip(ns, labels):
        np.testing.assert_allclose(engine_chain(x0, n), floors.numpy_chain(x0, n), rtol=1e-4,
                                   err_msg=f"gradient of the {n}-op chain")
        medians = interleave({"engine": lambda: engine_chain(x0, n), "floor": lambda: floors.numpy_chain(x0, n)},
                             repeats)
        peak, kept = traced_chain_memory(x0, n)
        us, floor_us = medians["engine"] / n * 1e6, medians["floor"] / n * 1e6
        per_op[n], last = (us, peak / n), medians["engine"]
        rows.append(row(f"tinygrad_edu, {label}", medians["engine"],
                        {"us_per_op": us, "floor": medians["engine"] / medians["floor"], "kept_kib": kept / 1024},
                        [("kept_kib", "<=", 512.0)]))
        rows.append(row(f"NumPy by hand (floor), {label}", medians["floor"], {"us_per_op": floor_us}))
        table.append([label, f"{us:.2f}", f"{floor_us:.2f}", f"{peak / MIB:.1f}", f"{peak / n:.0f}",
                      f"{kept / 1024:.0f}", "yes" if kept <= 512 * 1024 else "no"])
    (us_first, bytes_first), (us_last, bytes_last) = per_op[ns[0]], per_op[ns[-1]]
    rows.append(row(f"tinygrad_edu, {labels[0]} -> {labels[-1]}", last,
                    {"time_growth": us_last / us_first, "memory_growth": bytes_last / bytes_first},
                    [("time_growth", "<=", 1.5), ("memory_growth", "<=", 1.5)]))
    return {"title": "deep chain of the W2 ops, forward + backward, gc on",
            "check": f"gradients agree with the floor (rtol 1e-4) at N = {', '.join(map(str, ns))}",
            "rows": rows,
            "tables": [{"title": "W5: time and memory per op",
                        "header": ["N", "engine µs/op", "floor µs/op", "peak MiB", "peak B/op", "KiB kept after del",
                                   "released?"],
                        "rows": table}]}


# ---- W3: Hessian-vector products --------------------------------------------------------------------
# A W3 case's label starts with what it returns: "gradient" or "H·v".


def hvp_tensors(problem: Any) -> tuple[Callable[..., tg.Tensor], tuple, tuple]:
    """(loss of the parameters, the parameters as leaves, the direction) in tinygrad_edu."""
    X, y = tg.tensor(problem.X), tg.tensor(problem.y)
    leaves = tuple(tg.tensor(p, requires_grad=True) for p in problem.params)

    def loss_of(*ps: tg.Tensor) -> tg.Tensor:
        return tanh_mlp_loss(X, y, *ps)

    return loss_of, leaves, tuple(tg.tensor(d) for d in problem.v)


def engine_hvp(problem: Any) -> dict[str, Case]:
    """tinygrad_edu's gradient, and its H·v by the kept graph (as NewtonCG) and by tg.hvp."""
    loss_of, leaves, v = hvp_tensors(problem)
    kept_gradient = tg.grad(loss_of(*leaves), leaves, create_graph=True)  # built once, as NewtonCG does at a point
    return {"gradient": Case(lambda: tg.grad(loss_of(*leaves), leaves)),
            "H·v, kept graph (NewtonCG)": Case(lambda: tg.grad(kept_gradient, leaves, grad_outputs=v,
                                                               retain_graph=True)),
            "H·v, tg.hvp": Case(lambda: tg.hvp(loss_of, leaves, v))}


def same_hvp(problem: Any, entries: dict[str, Entry]) -> dict:
    """W3's check: every gradient and H·v equals the R-operator floor's."""
    floor = first_floor(entries)
    _, floor_grad, floor_hv = floor.case.run()
    for name, e in entries.items():
        if e is floor:
            continue
        want = floor_hv if e.label.startswith("H·v") else floor_grad
        for i, (got, expected) in enumerate(zip(e.case.run(), want)):
            np.testing.assert_allclose(as_numpy(got), expected, rtol=1e-8, atol=1e-12, err_msg=f"{name}: parameter {i}")
    return {"check": "gradient and H·v agree with the R-operator floor (rtol 1e-8) for "
                     + ", ".join(n for n in entries if n != floor.name)}


def hvp_figures(problem: Any, entry: Entry, medians: dict, entries: dict) -> dict:
    """An H·v's time over its own column's gradient."""
    gradient = f"{entry.column}: gradient"
    return {"gradient": medians[entry.name] / medians[gradient]} \
        if entry.label.startswith("H·v") and gradient in medians else {}


def hvp_title(problem: Any) -> str:
    """W3's title, with the number of parameters."""
    n_params = sum(p.size for p in problem.params)
    return (f"H·v of a {'-'.join(map(str, HVP_SIZES))} tanh MLP loss ({n_params} parameters), "
            f"{HVP_SAMPLES} samples, float64")


def flat_hvp_tensors(problem: FlatHvpProblem) -> tuple[Callable[[tg.Tensor], tg.Tensor], tg.Tensor, tg.Tensor]:
    """(loss of θ, θ as a leaf, the direction) in tinygrad_edu: the loss slices θ into the layers."""
    X, y = tg.tensor(problem.X), tg.tensor(problem.y)

    def loss_of(theta: tg.Tensor) -> tg.Tensor:
        return tanh_mlp_loss(X, y, *unflatten(theta, problem.shapes))

    return loss_of, tg.tensor(problem.theta, requires_grad=True), tg.tensor(problem.v)


def engine_flat_hvp(problem: FlatHvpProblem) -> dict[str, Case]:
    """tinygrad_edu's gradient and tg.hvp with respect to the flat θ."""
    loss_of, theta, v = flat_hvp_tensors(problem)
    return {"gradient": Case(lambda: tg.grad(loss_of(theta), theta)[0]),
            "H·v, tg.hvp": Case(lambda: tg.hvp(loss_of, theta, v))}


def same_flat_hvp(problem: FlatHvpProblem, entries: dict[str, Entry]) -> dict:
    """W3f's check: every flat gradient and H·v equals the R-operator floor's."""
    floor = first_floor(entries)
    _, floor_grad, floor_hv = floor.case.run()
    for name, e in entries.items():
        if e is not floor:
            want = floor_hv if e.label.startswith("H·v") else floor_grad
            np.testing.assert_allclose(as_numpy(e.case.run()), want, rtol=1e-8, atol=1e-12, err_msg=name)
    return {"check": "flat gradient and H·v agree with the R-operator floor (rtol 1e-8) for "
                     + ", ".join(n for n in entries if n != floor.name)}


# ---- W4: Newton-CG on logistic regression ---------------------------------------------------------

MINIMIZE, CLOSURE, SCIPY_FUN = "optim.minimize newton-cg", "optim.NewtonCG + closure", "SciPy on optim.scipy_fun"


def engine_logistic_loss(X: np.ndarray, y: np.ndarray) -> Callable[[tg.Tensor], tg.Tensor]:
    """W4's f with tinygrad_edu ops; its derivatives come from the engine."""
    Xt, yt = tg.tensor(X), tg.tensor(y)

    def fun(w: tg.Tensor) -> tg.Tensor:
        return nn.F.binary_cross_entropy_with_logits(Xt @ w, yt) + 0.5 * LAM * (w * w).sum()

    return fun


def run_minimize(fun: Callable, d: int) -> dict:
    """optim.minimize; it tests gtol with the line search's evaluation at the new point."""
    res = optim.minimize(fun, tg.zeros(d, dtype="float64"), "newton-cg", options={"gtol": GTOL, "maxiter": MAXITER})
    return dict(x=res.x.numpy(), nit=res.nit, nfev=res.nfev, nhev=None)


def run_closure(fun: Callable, d: int) -> dict:
    """optim.NewtonCG stepped by hand, reading its counters. After a step the parameters sit
    where the line search last evaluated, so the convergence test reuses that gradient
    when the point matches (counted as an extra evaluation when it does not)."""
    w = tg.tensor(np.zeros(d), requires_grad=True)
    opt = optim.NewtonCG([w])
    last: dict = {}

    def closure() -> tg.Tensor:
        opt.zero_grad()
        loss = fun(w)
        loss.backward()
        last.update(w=w.data.copy(), g=w.grad.data.copy())
        return loss

    def gradient_norm() -> tuple[float, int]:
        if "w" in last and np.array_equal(last["w"], w.data):
            return float(np.abs(last["g"]).max()), 0
        closure()
        return float(np.abs(last["g"]).max()), 1

    gnorm, extra = gradient_norm()
    nit = 0
    while gnorm >= GTOL and nit < MAXITER:
        opt.step(closure)
        nit += 1
        gnorm, used = gradient_norm()
        extra += used
    return dict(x=w.numpy().copy(), nit=nit, nfev=opt.method_state["func_evals"] + extra, nhev=opt.method_state["hvp_evals"])


def engine_newton(problem: tuple[np.ndarray, np.ndarray]) -> dict[str, Case]:
    """optim.minimize, optim.NewtonCG with a closure, and SciPy on optim.scipy_fun (where installed)."""
    fun, d = engine_logistic_loss(*problem), problem[0].shape[1]
    cases = {MINIMIZE: Case(lambda: run_minimize(fun, d)), CLOSURE: Case(lambda: run_closure(fun, d))}
    if floors.scipy_installed():
        f, jac, hessp = optim.scipy_fun(fun, tg.zeros(d, dtype="float64"))
        cases[SCIPY_FUN] = Case(lambda: floors.run_scipy(f, jac, hessp, d))
    return cases


def same_derivatives(X: np.ndarray, y: np.ndarray) -> None:
    """f, ∇f and H·v of the engine at a random point against the hand-derived ones."""
    fun, floor = engine_logistic_loss(X, y), floors.NumpyLogistic(X, y)
    rng = np.random.default_rng(1)
    w_np, v_np = rng.standard_normal(X.shape[1]) / np.sqrt(X.shape[1]), rng.standard_normal(X.shape[1])
    w = tg.tensor(w_np, requires_grad=True)
    loss = fun(w)
    f_floor, g_floor = floor.fun_and_grad(w_np)
    np.testing.assert_allclose(loss.item(), f_floor, rtol=1e-10, err_msg="loss")
    np.testing.assert_allclose(tg.grad(loss, w)[0].numpy(), g_floor, rtol=1e-9, atol=1e-14, err_msg="gradient")
    np.testing.assert_allclose(tg.hvp(fun, w, tg.tensor(v_np)).numpy(), floor.hessp(w_np, v_np), rtol=1e-9,
                               atol=1e-14, err_msg="H·v")


def same_solution(problem: tuple[np.ndarray, np.ndarray], entries: dict[str, Entry]) -> dict:
    """The derivatives agree; then every run ends below GTOL, near the floor's solution."""
    same_derivatives(*problem)
    gradient = floors.NumpyLogistic(*problem).fun_and_grad
    results = {name: e.case.run() for name, e in entries.items()}
    floor = first_floor(entries).name
    for name, r in results.items():
        r["gnorm"] = float(np.abs(gradient(r["x"])[1]).max())
        assert r["gnorm"] < GTOL, f"{name}: final max|∇f| = {r['gnorm']:.1e} is not below {GTOL:g}"
        distance = float(np.linalg.norm(r["x"] - results[floor]["x"]) / np.linalg.norm(results[floor]["x"]))
        assert distance < 1e-4, f"{name}: solution {distance:.1e} (relative) away from {floor}'s"
    table = [[name, str(r["nit"]), str(r["nfev"]), "—" if r["nhev"] is None else str(r["nhev"]), f"{r['gnorm']:.1e}"]
             for name, r in results.items()]
    return {"check": f"f, ∇f and H·v at a random point agree with NumPy (rtol 1e-9); every run ends below gtol "
                     f"within 1e-4 (relative) of {floor}'s solution",
            "tables": [{"title": "W4: iterations (f evals count calls of f and ∇f together; SciPy stops on its "
                                 f"step size, xtol={SCIPY_XTOL:g})",
                        "header": ["run", "iterations", "f evals", "H·v", "final ‖∇f‖∞"], "rows": table}]}


def newton_title(problem: tuple[np.ndarray, np.ndarray]) -> str:
    """W4's title, with the problem's size and where the floor comes from."""
    n, d = problem[0].shape
    return (f"Newton-CG, L2 logistic regression n={n} d={d} float64, w0 = 0 to max|∇f| < {GTOL:g}"
            + ("" if floors.scipy_installed() else " (SciPy not installed: the floor is NumPy by hand)"))


# ---- MEM: resident memory over many steps -----------------------------------------------------------


def rss_bytes() -> int:
    """Resident memory now (/proc/self/statm); where /proc is missing, the peak so far."""
    statm = Path("/proc/self/statm")
    if statm.exists():
        return int(statm.read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def mem_steps(device: str, repeats: int, quick: bool) -> dict:
    """MEM: W1's engine step many times (after W1's check), resident memory at the marks."""
    problem = mlp_problem(device)
    entries = {"tinygrad_edu": Entry("tinygrad_edu", ENGINE, "", engine_step(problem)[""]),
               "floor": Entry("floor", FLOOR, "", floors.CASES["W1"](problem)[""])}
    check = same_first_step(rtol=1e-4, atol=1e-6)(problem, entries)["check"]
    step = entries["tinygrad_edu"].case.run
    marks = MEM_QUICK_MARKS if quick else MEM_MARKS
    rss, times = {}, []
    for k in range(1, marks[-1] + 1):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
        if k in marks:
            rss[k] = rss_bytes()
    growth = (rss[marks[-1]] - rss[marks[0]]) / MIB
    return {"title": f"{marks[-1]} W1 steps of the engine: resident memory", "check": check,
            "rows": [row("tinygrad_edu, W1 step", statistics.median(times), {"rss_growth_mib": growth},
                         [("rss_growth_mib", "<=", 1.0)])],
            "tables": [{"title": "MEM: resident set size", "header": ["after step", "RSS (MiB)"],
                        "rows": [[str(k), f"{rss[k] / MIB:.1f}"] for k in marks]}]}


# ---- the tables the runner reads ------------------------------------------------------------------

WORKLOADS: dict[str, Workload] = {
    "W1": Workload(lambda device, quick: mlp_problem(device), mlp_title, same_first_step(1e-4, 1e-6),
                   step_target(1.10)),
    "W2": Workload(lambda device, quick: chain_input(),
                   lambda x0: f"{CHAIN_OPS} elementwise ops on {CHAIN_LENGTH} float32, forward + backward",
                   same_chain_gradient, lambda e: [("us_per_op", "<=", 4.0)] if e.kind == ENGINE else [],
                   lambda x0, e, medians, entries: {"us_per_op": medians[e.name] / CHAIN_OPS * 1e6}),
    "W3": Workload(lambda device, quick: hvp_problem(), hvp_title, same_hvp,
                   lambda e: [("floor", "<=", 1.5), ("gradient", "<=", 2.5)]
                   if e.kind == ENGINE and e.label.startswith("H·v") else [],
                   hvp_figures),
    "W3f": Workload(lambda device, quick: flat_hvp_problem(),
                    lambda p: f"H·v of a {'-'.join(map(str, HVP_SIZES))} tanh MLP loss, its {p.theta.size} parameters "
                              f"one flat vector sliced into the layers, {HVP_SAMPLES} samples, float64",
                    same_flat_hvp,
                    lambda e: [("floor", "<=", 1.5)] if e.kind == ENGINE and e.label.startswith("H·v") else [],
                    hvp_figures),
    "W4": Workload(lambda device, quick: logistic_data(LOGISTIC_QUICK_N if quick else LOGISTIC_N, LOGISTIC_D),
                   newton_title, same_solution,
                   lambda e: [("floor", "<=", 1.3)] if e.kind == ENGINE and e.label in (MINIMIZE, CLOSURE) else []),
    "W6": Workload(lambda device, quick: cnn_problem(device),
                   lambda p: f"CNN step (conv 1->8 3x3, ReLU, max-pool 2, linear 72->10), batch {CNN_BATCH} of "
                             "8x8, float32",
                   same_first_step(1e-4, 1e-6), step_target(1.5)),
    "LARGE": Workload(large_problem, mlp_title, same_first_step(1e-3, 1e-5),  # float32 sums in other orders
                      lambda e: [("cpu_speedup", ">=", 20.0), ("torch", "<=", 2.0)]
                      if e.kind == ENGINE and not e.label else [],
                      large_figures),
}

# Workloads that measure the engine alone: (device, repeats, quick) -> the result.
PROBES: dict[str, Callable[[str, int, bool], dict]] = {"W5": w5_deep_chain, "MEM": mem_steps}

# tinygrad_edu's column: problem -> {label: Case}, for each workload of WORKLOADS.
ENGINE_CASES: dict[str, Callable[[Any], dict[str, Case]]] = {
    "W1": engine_step,
    "W2": lambda x0: {"": Case(lambda: engine_chain(x0, CHAIN_OPS))},
    "W3": engine_hvp,
    "W3f": engine_flat_hvp,
    "W4": engine_newton,
    "W6": engine_step,
    "LARGE": large_engine_steps,
}

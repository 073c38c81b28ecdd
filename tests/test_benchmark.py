"""Smoke tests of the benchmark suite (benchmarks/): every CPU workload runs at its --quick
sizes and passes its correctness check against the floor; a wrong floor fails the check; a
new column is one entry in runner.COLUMNS; and `python -m benchmarks` writes its table and
its JSON report. Timings are never compared with the targets here: they depend on the machine."""
import functools
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tinygrad_edu as tg
from benchmarks import THREAD_VARIABLES, floors, fusion_removed, jit_column, reference, runner, workloads
from benchmarks.common import ENGINE
from tinygrad_edu.fusion import numba_available

ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=None)
def quick_result(name: str) -> dict:
    """The result of one workload at its --quick sizes, one repetition (run once per session)."""
    return runner.run_workload(name, "cpu", repeats=1, quick=True)


@pytest.mark.parametrize("name", runner.CPU_WORKLOADS)
def test_every_workload_runs_and_passes_its_check(name):
    result = quick_result(name)
    assert result["check"]["passed"] is True, result["check"]["detail"]
    assert result["rows"], f"{name} has no rows"
    for row in result["rows"]:
        assert {"engine", "median_s", "figures", "targets", "met"} <= row.keys()
        assert row["median_s"] > 0
        for target in row["targets"]:
            assert target["figure"] in row["figures"] and isinstance(target["met"], bool)
    judged = [row for row in result["rows"] if row["targets"]]
    assert judged and all(row["engine"].startswith("tinygrad_edu") for row in judged)
    if name in workloads.WORKLOADS:  # a column workload: the floor's own ratio is 1
        floor_rows = [row for row in result["rows"] if "(floor)" in row["engine"]]
        assert floor_rows[0]["figures"]["floor"] == 1.0
    if name in reference.CASES and importlib.util.find_spec("torch") is not None:
        assert any(row["engine"].startswith("PyTorch eager") for row in result["rows"])


def test_the_rows_of_w2_and_w5():
    w2 = quick_result("W2")
    engines = [row["engine"] for row in w2["rows"] if row["engine"] != "tinygrad_edu jit (fused)"]
    assert engines[:3] == ["tinygrad_edu", "tinygrad_edu jit", "NumPy by hand (floor)"]
    assert all(row["figures"]["us_per_op"] > 0 for row in w2["rows"])
    w5 = quick_result("W5")
    assert [cells[0] for cells in w5["tables"][0]["rows"]] == ["N=1e2", "N=1e3", "N=1e4"]  # --quick's lengths


@pytest.mark.parametrize("name", sorted(jit_column.CASES))
def test_the_jit_column_is_judged_on_its_own_targets_and_reports_its_first_calls(name):
    rows = [row for row in quick_result(name)["rows"] if row["engine"].startswith("tinygrad_edu jit")]
    assert rows, f"{name} has no jit row"
    fused_limits = {"W1": 0.9, "W2": 0.1, "W3": 1.0, "W3f": 1.0, "W6": 0.7}  # the issue "jit, part 3: fusion"
    assert any(row["engine"].startswith("tinygrad_edu jit (fused)") for row in rows) or not numba_available()
    for row in rows:
        assert row["figures"]["first_calls"] > 0
        fused = row["engine"].startswith("tinygrad_edu jit (fused)")
        limit = fused_limits[name] if fused else 1.2 if name in ("W3", "W3f") else 1.0
        wanted = [] if row["engine"].endswith(": gradient") else [("floor", "<=", limit)]
        assert [(t["figure"], t["op"], t["limit"]) for t in row["targets"]] == wanted


def test_a_jit_case_times_only_replays():
    step = tg.jit(lambda x, k: x * k)
    x = tg.tensor([1.0, 2.0])
    keys = iter(range(10))
    always_new = jit_column.Replayed(step, lambda: step(x, next(keys)))  # a new key, so a new tape, every call
    with pytest.raises(AssertionError, match="records at every call"):
        always_new.run()
    key = {"k": 2.0}
    replayed = jit_column.Replayed(step, lambda: step(x, key["k"]))
    np.testing.assert_array_equal(replayed.run().numpy(), [2.0, 4.0])
    assert replayed.first_calls_s() > 0
    key["k"] = 3.0
    with pytest.raises(AssertionError, match="recorded a new tape"):
        replayed.run()


def test_the_jit_training_step_is_checked_on_a_replay_from_the_initial_weights():
    problem = workloads.WORKLOADS["W6"].problem("cpu", True)
    case = jit_column.CASES["W6"](problem)[""]
    floor = floors.CASES["W6"](problem)[""]
    np.testing.assert_allclose(case.run(), floor.run(), rtol=1e-5)  # warm-up (two recordings), back, one replay
    for w, w_floor in zip(case.state(), floor.state()):
        np.testing.assert_allclose(w, w_floor, rtol=1e-4, atol=1e-6)
    assert case.first_calls_s() > 0


def test_a_wrong_floor_fails_the_check(monkeypatch):
    monkeypatch.setattr(floors, "numpy_chain", lambda x0, n_ops: np.zeros_like(x0))
    result = runner.run_workload("W2", "cpu", repeats=1, quick=True)
    assert result["check"]["passed"] is False
    assert "tinygrad_edu: gradient of the chain" in result["check"]["detail"]
    assert result["rows"] == []


def test_a_new_engine_column_is_one_entry(monkeypatch):
    twin = runner.Column("tinygrad_edu twin", "tinygrad_edu twin (cuda)", ENGINE,
                         {"W2": workloads.ENGINE_CASES["W2"]})
    monkeypatch.setattr(runner, "COLUMNS", runner.COLUMNS + (twin,))
    result = runner.run_workload("W2", "cpu", repeats=1, quick=True)
    assert result["check"]["passed"] is True
    assert "tinygrad_edu twin" in result["check"]["detail"]
    twin_row = next(row for row in result["rows"] if row["engine"] == "tinygrad_edu twin")
    assert [t["figure"] for t in twin_row["targets"]] == ["us_per_op"]  # judged as an engine


def test_command_line_writes_table_and_json(tmp_path):
    report_path = tmp_path / "report.json"
    # W4: no PyTorch column, so the child does not spend seconds importing torch
    command = [sys.executable, "-m", "benchmarks", "--quick", "--repeats", "1", "--workloads", "W4",
               "--json", str(report_path)]
    environment = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}  # __main__ sets them to 1
    run = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=ROOT, env=environment)
    assert run.returncode == 0, run.stderr
    assert "| workload | engine | median |" in run.stdout and "| W4 | tinygrad_edu: optim.minimize" in run.stdout

    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert {"machine", "device", "quick", "seconds", "workloads"} <= report.keys()
    assert report["device"] == "cpu" and report["quick"] is True
    assert {"cpus", "python", "numpy", "blas", "threads"} <= report["machine"].keys()
    assert report["machine"]["threads"] == {variable: "1" for variable in THREAD_VARIABLES}
    assert list(report["workloads"]) == ["W4"]
    assert report["workloads"]["W4"]["check"]["passed"] is True
    assert report["workloads"]["W4"]["tables"][0]["header"][:2] == ["run", "iterations"]


def test_an_unknown_workload_is_refused():
    run = subprocess.run([sys.executable, "-m", "benchmarks", "--workloads", "W9"], capture_output=True,
                         text=True, timeout=60, cwd=ROOT)
    assert run.returncode == 2 and "W9: not a workload on cpu" in run.stderr


BLOCK = 64 * 64 * 4  # the bytes of a (64, 64) float32 array


@pytest.mark.skipif(not numba_available(), reason="fusion needs Numba")
@pytest.mark.parametrize("fn, shape, replaced, replaced_bytes, kernel_bytes", [
    # multiply, add, multiply by the constant 2.0 (a 0-d float32 array, which the kernel holds as a number):
    # each call reads and writes whole arrays
    (lambda x, y: (x * y + x) * 2.0, (64, 64), 3, 3 * BLOCK + 3 * BLOCK + (2 * BLOCK + 4), 3 * BLOCK),
    # a product summed over the rows: the sum ends the kernel, which writes 8 numbers only
    (lambda x, y: (x * y).sum(axis=0), (512, 8), 2, 3 * BLOCK + (BLOCK + 32), 2 * BLOCK + 32),
])
def test_fusion_removed_counts_a_kernel_its_calls_and_their_bytes(fn, shape, replaced, replaced_bytes,
                                                                  kernel_bytes):
    x, y = tg.tensor(np.ones(shape, np.float32)), tg.tensor(np.full(shape, 2.0, np.float32))
    plain, fused = tg.jit(fn), tg.jit(fn, fuse=True)
    plain(x, y), fused(x, y)
    assert len(plain.tape) == replaced and len(fused.tape) == 2  # the kernel's call and its output's getitem
    assert fusion_removed.fusion_counts(plain.tape, fused.tape) == {
        "kernels": 1, "replaced": replaced, "kernel calls": 2, "replaced bytes": replaced_bytes,
        "kernel bytes": kernel_bytes}


@pytest.mark.skipif(not numba_available(), reason="fusion needs Numba")
def test_fusion_removed_reports_w2_as_one_kernel_for_its_whole_tape():
    # 200 ops and their backward (tanh's takes three calls: 9 calls per 4 ops), all in one kernel, which
    # reads x and the seed of ones (a constant of the tape) and writes the gradient, 16 float32 each (the three
    # numbers its calls read are written into the kernel)
    assert fusion_removed.row("W2") == "| W2 | 450 → 450 → 2 | 1 | 450 → 2 | 64.8 kB → 192 B |"


class CountedProducts(np.ndarray):
    """An array that notes the shapes of every matrix product it takes part in."""
    products: list = []

    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        def plain(a):
            return a.view(np.ndarray) if isinstance(a, CountedProducts) else a

        if ufunc is np.matmul:
            CountedProducts.products.append(tuple(a.shape for a in inputs))
        if out is not None:
            kwargs["out"] = tuple(plain(o) for o in out)
        result = getattr(ufunc, method)(*map(plain, inputs), **kwargs)
        if out is not None:
            return out[0]  # an in-place operator (the floor's p -= LR * g) keeps its array
        return result.view(CountedProducts) if isinstance(result, np.ndarray) else result


def test_matmul_bound_times_the_products_of_the_w1_floor(monkeypatch):
    # the bound is only a bound if its products are those the floor step makes, no more, no fewer
    from benchmarks import matmul_bound
    problem = workloads.mlp_problem("cpu", sizes=(12, 8, 6, 4), batch=5)
    weights = [w.view(CountedProducts) for w in problem.initial]
    floor_params = [w.copy() for w in weights]
    monkeypatch.setattr(CountedProducts, "products", [])
    floors.numpy_mlp_step(np, floor_params, problem.x.view(CountedProducts), problem.y)
    floor_products = sorted(CountedProducts.products)
    rng = np.random.default_rng(0)
    inputs = [problem.x] + [rng.standard_normal((5, n)).astype(np.float32) for n in (8, 6)]
    deltas = [rng.standard_normal((5, n)).astype(np.float32) for n in (8, 6, 4)]
    monkeypatch.setattr(CountedProducts, "products", [])
    matmul_bound.eight_products([w for w in weights if w.ndim == 2],
                                [a.view(CountedProducts) for a in inputs], deltas)()
    assert len(floor_products) == 8 and sorted(CountedProducts.products) == floor_products

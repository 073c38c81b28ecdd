"""Smoke test of the second-order demos (demos/newton_vs_first_order.py, critical_points.py,
hvp_three_ways.py): each quick run draws its figures, and its numbers say what the note 「梯度下降的調整策略」 claims:
Newton converges quadratically and GD linearly; the Hessian classifies the four critical points;
GD converges just below 2/λmax and diverges just above; an HVP by automatic differentiation is
exact where finite differences are not."""
import importlib
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="matplotlib is a demo extra (pip install -e '.[demo]')")

DEMOS = Path(__file__).resolve().parents[1] / "demos"


def run_quick(name: str, out: Path, monkeypatch) -> dict:
    monkeypatch.syspath_prepend(str(DEMOS))  # the demos are scripts, not a package
    return importlib.import_module(name).main(["--quick", "--out", str(out)])


def assert_figures(out: Path, names: list) -> None:
    assert sorted(p.name for p in out.glob("*.png")) == sorted(names)
    assert all((out / name).stat().st_size > 10_000 for name in names)


def test_newton_is_quadratic_and_gd_linear(tmp_path, monkeypatch, capsys):
    result = run_quick("newton_vs_first_order", tmp_path, monkeypatch)
    # the table's time is the total of all steps, and it says so; the time per step stands beside it
    header = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("| method |"))
    assert "| all steps (ms) | per step (ms) |" in header and "step time" not in header
    assert_figures(tmp_path, ["newton_vs_first_order.png", "convergence_order.png"])
    rows = {row["method"]: row for row in result["rows"]}
    assert set(rows) == {"GD", "Adam", "L-BFGS", "NewtonCG", "TrustRegionNewtonCG", "Newton"}
    assert rows["Newton"]["order"] > 1.5
    assert 0.8 < rows["GD"]["order"] < 1.2
    for name in ("Newton", "NewtonCG", "TrustRegionNewtonCG"):
        assert rows[name]["iterations"] <= 10 and rows[name]["grad_norm"] < 1e-12
        assert rows[name]["hvp_evals"] > 0
    assert rows["Newton"]["hvp_evals"] == 65 * rows["Newton"]["iterations"]  # the full Hessian each step
    assert rows["GD"]["hvp_evals"] == rows["L-BFGS"]["hvp_evals"] == 0


def test_critical_points_and_the_learning_rate_limit(tmp_path, monkeypatch):
    result = run_quick("critical_points", tmp_path, monkeypatch)
    assert_figures(tmp_path, ["critical_points.png", "lr_limit.png"])
    assert result["classifications"] == ["minimum", "saddle", "maximum", "degenerate"]
    bowl, saddle, cap, _ = result["critical_points"]
    assert set(bowl["gd_outcomes"]) == {"→ (0, 0)"} and set(cap["gd_outcomes"]) == {"escapes"}
    assert saddle["gd_outcomes"].count("→ (0, 0)") == 2  # the two starts on the stable axis
    verdicts = {(row["problem"], row["factor"]): row for row in result["lr_limit"]}
    for problem in ("quadratic", "mlp"):
        assert verdicts[problem, 0.99]["verdict"] == "converges"
        assert verdicts[problem, 1.01]["verdict"] == "diverges"
        row = verdicts[problem, 0.99]
        assert row["lam"] == pytest.approx(row["exact"], rel=1e-6)  # power iteration found λmax
    # the MLP's loss is bounded: the console says what the figure shows, not "diverges"
    assert verdicts["mlp", 1.01]["shown"].startswith("thrown out of θ*")
    assert verdicts["mlp", 0.99]["shown"] == "returns to θ*" and verdicts["quadratic", 1.01]["shown"] == "diverges"


def test_the_mlp_verdict_says_where_a_run_thrown_out_of_the_minimum_lands(monkeypatch):
    monkeypatch.syspath_prepend(str(DEMOS))
    mlp_verdict = importlib.import_module("critical_points").mlp_verdict
    assert mlp_verdict("diverges", {"lam_end": 9.86, "lr": 0.2014}) == "thrown out of θ*, settles elsewhere"
    assert mlp_verdict("diverges", {"lam_end": 12.0, "lr": 0.2014}) == "thrown out of θ*"  # 2/lr = 9.93 < λmax
    assert mlp_verdict("converges", {"lam_end": 10.0, "lr": 0.1}) == "returns to θ*"


def test_hvp_by_autodiff_is_exact_and_finite_differences_are_not(tmp_path, monkeypatch):
    result = run_quick("hvp_three_ways", tmp_path, monkeypatch)
    assert_figures(tmp_path, ["hvp_three_ways.png"])
    for problem in {row["problem"] for row in result["rows"]}:
        errors = {row["short"]: row["error"] for row in result["rows"] if row["problem"] == problem}
        reverse = errors["reverse-over-reverse"]
        forward_over_reverse = errors["jvp of ∇f (double-vjp)"]
        differences = [errors["finite diff., forward"], errors["finite diff., central"]]
        assert reverse < 1e-10 and forward_over_reverse < 1e-10
        assert len(differences) == 2 and min(differences) > 10 * reverse


def test_the_order_is_read_only_from_steadily_shrinking_errors(monkeypatch):
    monkeypatch.syspath_prepend(str(DEMOS))
    order_estimates = importlib.import_module("newton_vs_first_order").order_estimates
    quadratic = [0.5 ** (2 ** k) for k in range(6)]  # e_{k+1} = e_k²
    assert order_estimates(quadratic, floor=1e-30) == pytest.approx([2.0] * 4)
    assert order_estimates(quadratic + [1e-40, 1e-41], floor=1e-30) == pytest.approx([2.0] * 4)  # floor cuts
    circling = [1e-3, 8e-4, 9e-5, 1.2e-4, 2.4e-4, 3.3e-4, 4.1e-4, 3.9e-4, 3.4e-4]  # Adam's tail: grows, shrinks
    assert order_estimates(circling, floor=1e-11) == []
    assert order_estimates([1.0, 0.5, 0.25, 0.125], floor=1e-11) == []  # fewer than 5: no q

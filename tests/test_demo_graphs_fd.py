"""Smoke tests of demos/draw_graphs.py (the SVGs exist and show the expected ops and orders) and
demos/finite_differences.py (each error curve's minimum lands where the theory puts it)."""
import importlib
import shutil
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

DEMOS = Path(__file__).resolve().parents[1] / "demos"


def demo(name, monkeypatch):
    monkeypatch.syspath_prepend(str(DEMOS))  # the demos are scripts, not a package
    return importlib.import_module(name)


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed, so nothing renders")
def test_draw_graphs_writes_the_four_drawings(tmp_path, monkeypatch):
    result = demo("draw_graphs", monkeypatch).main(["--out", str(tmp_path), "--png"])

    names = ("neuron", "mlp_loss", "hvp", "modules")
    assert sorted(result.files) == sorted(tmp_path / f"{n}.{fmt}" for n in names for fmt in ("svg", "png"))
    for path in result.files:
        assert path.stat().st_size > 0, path
    svg = {n: (tmp_path / f"{n}.svg").read_text() for n in names}
    assert result.nodes["neuron"] == 15  # 10 tensors (5 leaves, 4 intermediates, o) and 5 ops
    for op in ("Tanh", "Mul", "Add", "x1", "w2", "grad"):
        assert op in svg["neuron"], op
    assert "grad 0.5" in svg["neuron"] and "freed" not in svg["neuron"]  # n's gradient, after a plain backward
    for op in ("MatMul", "Transpose", "LogSoftmax", "0.weight", "2.bias", "loss"):
        assert op in svg["mlp_loss"], op
    for legend in ("forward pass", "1st backward (create_graph=True)", "2nd backward"):  # every order drawn
        assert legend in svg["hvp"], legend
    assert result.nodes["hvp"] > result.nodes["mlp_loss"] > result.nodes["neuron"]
    for module in ("features: Sequential", "Conv2d", "weight (32, 1, 3, 3)", "(2, 10)"):
        assert module in svg["modules"], module


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot program is not installed, so nothing renders")
def test_draw_graphs_quick_leaves_out_the_module_drawing_and_redraws_the_readme_figure(tmp_path, monkeypatch):
    figure = tmp_path / "images" / "neuron.svg"
    figure.parent.mkdir()
    result = demo("draw_graphs", monkeypatch).main(["--out", str(tmp_path), "--quick", "--readme-figure", str(figure)])

    assert sorted(p.name for p in result.files) == ["hvp.svg", "mlp_loss.svg", "neuron.svg", "neuron.svg"]
    assert "modules" not in result.nodes
    assert figure.read_text() == (tmp_path / "neuron.svg").read_text()


def test_the_readme_neuron_shows_every_value_and_gradient_and_its_legend():
    """docs/images/neuron.svg (drawn by draw_graphs.py --readme-figure) is what the README promises."""
    svg = (DEMOS.parent / "docs" / "images" / "neuron.svg").read_text()
    assert "freed" not in svg
    assert svg.count(">grad ") == 10 and svg.count(">data ") == 10  # 5 leaves, 4 intermediates, o
    for text in ("x1·w1", ">n<", ">o<", ">grad 1.<", "forward pass", "double border"):
        assert text in svg, text


def test_finite_differences_minimum_lands_in_the_expected_range(tmp_path, monkeypatch):
    rows = demo("finite_differences", monkeypatch).main(["--out", str(tmp_path), "--quick"])

    assert (tmp_path / "finite_differences.png").stat().st_size > 0
    best = {(r.dtype, r.formula): r for r in rows}
    assert best.keys() == {(d, f) for d in ("float64", "float32") for f in ("forward", "central")}
    central64, forward64 = best["float64", "central"], best["float64", "forward"]
    assert 1e-7 <= central64.best_h <= 1e-3 and central64.min_error < 1e-9  # ∛ε ≈ 6e-6
    assert 1e-10 <= forward64.best_h <= 1e-6  # √ε ≈ 1.5e-8
    assert best["float32", "central"].min_error > 1e-8  # float32 cannot get close to float64's floor
    # at gradcheck's h = 1e-6 float64 central differences are far inside its tolerance, float32 ones far outside
    assert central64.error_at_gradcheck_eps < 1e-8
    assert best["float32", "central"].error_at_gradcheck_eps > 1e-2

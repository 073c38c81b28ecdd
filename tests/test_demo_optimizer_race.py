"""Smoke test of demos/optimizer_race.py: its quick run draws every figure, and its ravine table
says what the note 「機器學習中的優化器 第 2 篇」 claims, that momentum needs fewer steps than plain GD; the saddle's table says
which runs escaped; the ravine's panels hold every path."""
import importlib
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="matplotlib is a demo extra (pip install -e '.[demo]')")

DEMOS = Path(__file__).resolve().parents[1] / "demos"
FIGURES = ["a_ravine.png", "b_rosenbrock.png", "c_saddle.png", "d_double_well.png", "e_lr_study.png",
           "f_lr_schedules.png"]


def test_quick_run_draws_every_figure_and_momentum_beats_gd_on_the_ravine(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(DEMOS))  # the demos are scripts, not a package
    race = importlib.import_module("optimizer_race")
    tables = race.main(["--quick", "--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.glob("*.png")) == FIGURES
    assert all((tmp_path / name).stat().st_size > 0 for name in FIGURES)
    steps = {row.method: row.steps for row in tables["a_ravine"]}
    assert steps["GD"] is not None and steps["Momentum, heavy ball"] is not None
    assert steps["Momentum, heavy ball"] < steps["GD"]

    # the saddle's goal is to leave it: a run the callback stopped there escaped, it did not fail
    saddle = {row.method: race.verdict(race.SADDLE, row) for row in tables["c_saddle"]}
    assert saddle["Momentum, heavy ball"] == "escaped the saddle"
    assert saddle["Adagrad"].startswith("did not escape: maximum number of iterations")
    # (d): a run that converged in the shallow valley has "—" and "True: converged", and a note says why
    double_well = capsys.readouterr().out.split("### (d)")[1].split("### (e)")[0]
    note = double_well.split('"—" beside "True: converged"')[1]
    shallow = [row.method for row in tables["d_double_well"] if row.steps is None and row.result.success]
    assert "GD" in shallow and all(f"{method} at (-1.13, 0.00)" in note for method in shallow)
    # every point of every ravine path lies inside its panel (Adagrad's and RMSprop's first jump included)
    x_min, x_max, y_min, y_max = race.panel_box(race.RAVINE, [row.result.path for row in tables["a_ravine"]])
    for row in tables["a_ravine"]:
        (px_min, py_min), (px_max, py_max) = row.result.path.min(axis=0), row.result.path.max(axis=0)
        assert x_min <= px_min and px_max <= x_max and y_min <= py_min and py_max <= y_max, row.method

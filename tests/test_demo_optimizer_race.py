"""Smoke test of demos/optimizer_race.py: its quick run draws every figure, and its ravine table
says what seed 004 claims, that momentum needs fewer steps than plain GD."""
import importlib
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="matplotlib is a demo extra (pip install -e '.[demo]')")

DEMOS = Path(__file__).resolve().parents[1] / "demos"
FIGURES = ["a_ravine.png", "b_rosenbrock.png", "c_saddle.png", "d_double_well.png", "e_lr_study.png",
           "f_lr_schedules.png"]


def test_quick_run_draws_every_figure_and_momentum_beats_gd_on_the_ravine(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(DEMOS))  # the demos are scripts, not a package
    tables = importlib.import_module("optimizer_race").main(["--quick", "--out", str(tmp_path)])
    assert sorted(p.name for p in tmp_path.glob("*.png")) == FIGURES
    assert all((tmp_path / name).stat().st_size > 0 for name in FIGURES)
    steps = {row.method: row.steps for row in tables["a_ravine"]}
    assert steps["GD"] is not None and steps["Momentum, heavy ball"] is not None
    assert steps["Momentum, heavy ball"] < steps["GD"]

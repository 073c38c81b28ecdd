"""Smoke test of demos/batch_sizes.py: a --quick run writes its PNGs, and its table says what
the one in 「梯度下降的調整策略」 does."""
import importlib
import math
from pathlib import Path

import pytest

pytest.importorskip("matplotlib")

DEMOS = Path(__file__).resolve().parents[1] / "demos"
SAMPLES = {"regression": 256, "digits": 1437}  # training samples of each task


def test_quick_run(tmp_path, monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(DEMOS))  # the demos are scripts, not a package
    demo = importlib.import_module("batch_sizes")

    table = demo.main(["--quick", "--out", str(tmp_path)])
    printed = capsys.readouterr().out
    for bound, curvature in (("1 / (1 + max xᵢ²)", "curvature 2(1 + xᵢ²)"), ("4 / max ‖(xᵢ, 1)‖²", "at most ½‖(xᵢ, 1)‖²")):
        line = next(line for line in printed.splitlines() if f"LR = 0.05 < {bound}" in line)
        assert "even a one-sample step is stable" in line and curvature in line and "LR · curvature < 2" in line

    for name in ("regression_paths.png", "regression_loss.png", "digits_curves.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    for task, n in SAMPLES.items():
        rows = {r.batch_size: r for r in table if r.task == task}
        assert rows.keys() == {None, 1, 16, 64}
        for batch_size, r in rows.items():
            assert r.updates_per_epoch == (1 if batch_size is None else math.ceil(n / batch_size))
            assert r.final_loss < r.start_loss, (task, batch_size)
        # GD steps along the true gradient with a stable learning rate: never uphill. One sample's
        # gradient is only an estimate of it, and some of its steps raise the full-data loss.
        assert rows[None].uphill == 0 < rows[1].uphill
    digits = {r.batch_size: r for r in table if r.task == "digits"}
    assert digits[1].test_accuracy > 0.8  # one epoch of SGD already reads most held-out digits

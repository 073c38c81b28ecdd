"""`make demo`'s tour runs end to end (quick mode) and lists what it wrote."""
import importlib
import pathlib

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")


def test_tour_runs_end_to_end(tmp_path, capsys, monkeypatch):
    monkeypatch.syspath_prepend(str(pathlib.Path(__file__).resolve().parents[1] / "demos"))  # scripts, not a package
    result = importlib.import_module("tour").main(["--out", str(tmp_path), "--quick"])
    names = {p.name for p in result["files"]}
    assert {"a_ravine.png", "digits_mlp.png", "digits_mlp.npz"} <= names
    assert "graph.svg" in names or "graph.dot" in names
    assert result["digits"]["test_accuracy"] > 0.8
    printed = capsys.readouterr().out
    assert "gradcheck" in printed and "analytic 2 vs numerical" in printed and "wrote:" in printed

"""`make demo`'s tour runs end to end (quick mode) and lists what it wrote."""
import importlib.util
import pathlib
import sys

import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("tqdm")


def test_tour_runs_end_to_end(tmp_path, capsys):
    path = pathlib.Path(__file__).parent.parent / "demos" / "tour.py"
    spec = importlib.util.spec_from_file_location("demo_tour_under_test", path)
    tour = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tour
    spec.loader.exec_module(tour)
    result = tour.main(["--out", str(tmp_path), "--quick"])
    names = {p.name for p in result["files"]}
    assert {"a_ravine.png", "digits_mlp.png", "digits_mlp.npz"} <= names
    assert "graph.svg" in names or "graph.dot" in names
    assert result["digits"]["test_accuracy"] > 0.8
    printed = capsys.readouterr().out
    assert "gradcheck" in printed and "analytic 2 vs numerical" in printed and "wrote:" in printed

"""The main demo (the linear regression of 「第二章 梯度下降法」) learns y = 2x with both optimizers."""
import importlib
import pathlib
import re
import subprocess
import sys

import pytest

DEMOS = pathlib.Path(__file__).resolve().parents[1] / "demos"


def linear_regression(monkeypatch):
    monkeypatch.syspath_prepend(str(DEMOS))  # the demos are scripts, not a package
    return importlib.import_module("linear_regression")


def test_linear_regression_demo_fits_y_equals_2x(monkeypatch):
    results = linear_regression(monkeypatch).main([])
    sgd_loss, w, b = results["SGD, lr=0.01"]
    assert sgd_loss < 1e-3 and abs(w - 2) < 0.02 and abs(b) < 0.1
    adagrad_loss, w, _ = results["Adagrad, lr=0.1, eps=1e-8"]
    assert adagrad_loss < 0.1 and abs(w - 2) < 0.2


def test_help_explains_and_trains_nothing(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        linear_regression(monkeypatch).main(["--help"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "usage:" in printed and "fit y = 2x" in printed and "Epoch" not in printed


def test_an_unknown_option_is_refused(monkeypatch, capsys):
    with pytest.raises(SystemExit) as exit_:
        linear_regression(monkeypatch).main(["--lr", "3"])
    assert exit_.value.code == 2 and "unrecognized arguments: --lr 3" in capsys.readouterr().err


def test_the_printed_loss_shows_the_decrease(monkeypatch, capsys):
    """With the note's {:.4f} SGD printed "Loss: 0.0000" ten times."""
    linear_regression(monkeypatch).main([])
    sgd = capsys.readouterr().out.split("--- Adagrad")[0]
    losses = [float(x) for x in re.findall(r"Loss: (\S+)", sgd)]
    assert len(losses) == 10 and all(later < earlier for earlier, later in zip(losses, losses[1:]))
    assert 0 < losses[-1] < 1e-4


def test_a_python_without_the_project_is_told_to_use_the_venv():
    """`python3 demos/linear_regression.py` outside the venv failed with "No module named 'nn'"."""
    # -E -S: no PYTHONPATH and no site-packages, as a Python that has not installed the project
    run = subprocess.run([sys.executable, "-E", "-S", str(DEMOS / "linear_regression.py")], capture_output=True,
                         text=True, timeout=60, cwd=DEMOS.parent)
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert "does not have the project installed" in run.stderr
    assert "`make demo` creates .venv/ once" in run.stderr and ".venv/bin/python demos/linear_regression.py" in run.stderr

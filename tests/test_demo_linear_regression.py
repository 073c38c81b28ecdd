"""The main demo (the linear regression of 「第二章 梯度下降法」) learns y = 2x with both optimizers."""
import importlib
import pathlib

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

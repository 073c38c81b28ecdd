"""The main demo (seed 003's linear regression) learns y = 2x with both optimizers."""
import importlib.util
import pathlib


def test_linear_regression_demo_fits_y_equals_2x():
    path = pathlib.Path(__file__).parent.parent / "demos" / "linear_regression.py"
    spec = importlib.util.spec_from_file_location("linear_regression_demo", path)
    demo = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(demo)
    results = demo.main()
    sgd_loss, w, b = results["SGD, lr=0.01"]
    assert sgd_loss < 1e-3 and abs(w - 2) < 0.02 and abs(b) < 0.1
    adagrad_loss, w, _ = results["Adagrad, lr=0.1, eps=1e-8"]
    assert adagrad_loss < 0.1 and abs(w - 2) < 0.2

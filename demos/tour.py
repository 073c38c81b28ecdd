"""The tour `make demo` runs: tinygrad_edu in about a minute, every figure written to out/.

1. A graph: y = tanh(w·x + b) is recorded as it is computed; backward() walks it in
   reverse and fills every leaf's .grad. draw_graph shows the graph, values and grads.
2. Trust, but check: gradcheck compares those gradients with finite differences, and
   catches a deliberately wrong derivative.
3. The optimizer race: GD, momentum, Nesterov, Adagrad, RMSprop, Adam and friends on a
   ravine, Rosenbrock, a saddle, a double well (the notes 「梯度下降的調整策略」,
   「訓練卡住 ≠ 梯度過小」 and 「機器學習中的優化器 第 2 篇」).
4. Training: an MLP learns the 8x8 digits with Adam (the loop of 「2.3 梯度下降法與優化技術」), with a checkpoint.
5. Second order: Newton-CG and L-BFGS against gradient descent (Newton, as in 「梯度下降的調整策略」).

Run: .venv/bin/python demos/tour.py [--out out] [--device cpu|cuda] [--quick]
"""
from __future__ import annotations

import importlib
import shutil
import time
from pathlib import Path
from typing import Any, Sequence

from _cli import demo_parser  # first: outside the project's environment it says how to run the demos
# (the other demos, siblings of this script, are imported the same way)

import tinygrad_edu as tg
from tinygrad_edu.autograd import Function


def say(title: str, text: str) -> None:
    print(f"\n== {title} ==\n{text}")


class WrongSin(Function):
    """sin with a wrong derivative (2 instead of cos x): gradcheck must catch it."""

    def forward(self, xp: Any, x: Any) -> Any:
        return xp.sin(x)

    def backward(self, grad: tg.Tensor) -> tuple:
        return (grad * 2,)


def a_graph(out: Path) -> list:
    say("1. A graph", "y = tanh(w·x + b), then y.backward(): each leaf gets ∂y/∂leaf in .grad.")
    # float64, so the values checkable by hand print as they are: -1.5, not float32's -1.5000005
    x = tg.tensor([2.0, 0.0], dtype="float64", requires_grad=True, name="x")
    w = tg.tensor([-3.0, 1.0], dtype="float64", requires_grad=True, name="w")
    b = tg.tensor(6.8813735870195432, dtype="float64", requires_grad=True, name="b")
    y = ((w * x).sum() + b).tanh()
    y.name = "y"
    y.retain_grad()  # an intermediate keeps .grad only when asked, as in PyTorch
    y.backward()  # frees the arrays the graph saved, not its structure: it can still be drawn
    print(f"y = {y.item():.4f};  x.grad = {x.grad.numpy()},  w.grad = {w.grad.numpy()},  b.grad = {b.grad.item():.4f}")
    drawing = tg.draw_graph(y, show_values=True)
    if shutil.which("dot") is None:
        path = out / "graph.dot"
        path.write_text(drawing.source)
        print("(Graphviz's dot is not installed: wrote the DOT text instead of a picture)")
        return [path]
    return [Path(drawing.render(out / "graph", format="svg", cleanup=True))]


def check_gradients() -> None:
    say("2. gradcheck", "Analytic gradients against central finite differences, in float64.")
    x = tg.randn(3, 4, dtype="float64", requires_grad=True)
    w = tg.randn(4, 2, dtype="float64", requires_grad=True)
    print("tanh(x @ w).sum(axis=0):", tg.gradcheck(lambda x, w: (x @ w).tanh().sum(axis=0), [x, w]))
    try:
        tg.gradcheck(lambda x: WrongSin.apply(x), [x])
    except tg.GradcheckError as error:
        print("a sin whose backward says 2 instead of cos x:", str(error).split(": ", 1)[1][:110], "...")


def main(argv: Sequence[str] | None = None) -> dict:
    args = demo_parser(__doc__, quick="every part in its quick form (a smoke test)", device=True).parse_args(argv)
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    quick = ["--quick"] if args.quick else []
    start, started_at = time.perf_counter(), time.time()
    tg.manual_seed(0)
    written = a_graph(out)
    check_gradients()

    say("3. The optimizer race", "Every first-order method on classic landscapes (contour plots in out/).\n"
        "Running 11 optimizers on 5 landscapes, hundreds to thousands of steps each: some seconds of silence.")
    race = importlib.import_module("optimizer_race").main(["--out", str(out), *quick])

    say("4. Training on the digits", "An MLP, Adam, mini-batches of 32; a checkpoint and curves in out/.")
    digits = importlib.import_module("train_digits").main(["--model", "mlp", "--out", str(out),
                                                           "--device", args.device, *quick])

    say("5. Second order", "Newton-CG and L-BFGS against first-order methods on logistic regression.\n"
        "Running six methods to the minimum, GD and Adam for up to 2000 steps: some seconds of silence.")
    second_order = importlib.import_module("newton_vs_first_order").main(["--out", str(out), *quick])

    seconds = time.perf_counter() - start
    files = sorted({*written, *(p for p in out.rglob("*") if p.is_file() and p.stat().st_mtime >= started_at - 1)})
    print(f"\nThe tour took {seconds:.0f} s and wrote:")
    for path in files:
        print(f"  {path}")
    return {"seconds": seconds, "files": files, "race": race, "digits": digits, "second_order": second_order}


if __name__ == "__main__":
    main()

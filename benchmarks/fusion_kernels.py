"""What fusing compiles, and what it costs: the elementwise chains of W1's and W2's tapes
as fusion.Step lists, and the seconds to compile them in a fresh process, then to load
them from Numba's disk cache in a second one.

    python -m benchmarks.fusion_kernels

W1's chains are those its jit tape holds between the matrix products and the sums: the
ReLU forward (bias add, max with 0), the softmax cross-entropy's shift (its row maxima
where finite, then exp), its log-sum-exp and its gradient, ReLU's backward mask with the
bias gradient (the sum over the batch, fused as the chain's last step), and the SGD
update written into the weight. W2's is its 200 forward ops and their backward, written
as one chain (the gradient of the sum of the chain: the longest chain a tape can fuse).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from benchmarks.common import CHAIN_LENGTH, CHAIN_OPS, MLP_BATCH, MLP_SIZES
from tinygrad_edu.fusion import Input, Step

F32 = "float32"


def w1_chains(batch: int = MLP_BATCH, hidden: int = MLP_SIZES[1], classes: int = MLP_SIZES[-1]) -> list:
    """W1's elementwise chains as (inputs, steps, outputs), in the tape's order (the second
    ReLU and the other five SGD updates repeat these sources with other sizes)."""
    relu = ([Input("z", F32, (batch, hidden)), Input("b", F32, (hidden,))],
            [Step("pre", "add", ("z", "b")), Step("a", "maximum", ("pre", 0))], ["pre", "a"])
    shift = ([Input("logits", F32, (batch, classes)), Input("m", F32, (batch, 1))],
             [Step("shifted", "subtract", ("logits", "m")), Step("e", "exp", ("shifted",))], ["e"])
    row_max = ([Input("row_max", F32, (batch, 1))],
               [Step("finite", "isfinite", ("row_max",)), Step("m", "where", ("finite", "row_max", 0))], ["m"])
    log_probs = ([Input("logits", F32, (batch, classes)), Input("m", F32, (batch, 1)), Input("total", F32, (batch, 1))],
                 [Step("log_total", "log", ("total",)), Step("lse", "add", ("m", "log_total")),
                  Step("log_p", "subtract", ("logits", "lse"))], ["log_p"])
    softmax_grad = ([Input("log_p", F32, (batch, classes)), Input("g", F32, (batch, classes)),
                     Input("g_sum", F32, (batch, 1))],
                    [Step("p", "exp", ("log_p",)), Step("pg", "multiply", ("p", "g_sum")),
                     Step("d", "subtract", ("g", "pg"))], ["d"])
    relu_grad = ([Input("pre", F32, (batch, hidden)), Input("g", F32, (batch, hidden))],
                 [Step("on", "greater", ("pre", 0)), Step("mask", "astype", ("on",), F32),
                  Step("d", "multiply", ("g", "mask")), Step("db", "sum", ("d",))], ["d", "db"])
    sgd = ([Input("w", F32, (hidden, MLP_SIZES[0])), Input("grad", F32, (hidden, MLP_SIZES[0])), Input("lr", float)],
           [Step("step", "multiply", ("lr", "grad")), Step("w_new", "subtract", ("w", "step"))], ["w_new"])
    return [relu, row_max, shift, log_probs, softmax_grad, relu_grad, sgd]


def w2_chain(n_ops: int = CHAIN_OPS, length: int = CHAIN_LENGTH) -> tuple:
    """The gradient of sum(common.chain(x, n_ops)) as one chain: the forward ops, then the
    backward in reverse (tanh' = 1 − tanh², exp' = exp), as benchmarks.floors.numpy_chain."""
    steps, y = [], "x"
    for i in range(n_ops):
        op, args = [("multiply", (y, -1.0)), ("add", (y, 1.0)), ("tanh", (y,)), ("exp", (y,))][i % 4]
        steps.append(Step(f"y{i}", op, args))
        y = f"y{i}"
    g = "one"
    for i in reversed(range(n_ops)):
        k = i % 4
        if k == 0:
            steps.append(Step(f"g{i}", "multiply", (g, -1.0)))
        elif k == 2:
            steps += [Step(f"sq{i}", "multiply", (f"y{i}", f"y{i}")), Step(f"d{i}", "subtract", (1, f"sq{i}")),
                      Step(f"g{i}", "multiply", (g, f"d{i}"))]
        elif k == 3:
            steps.append(Step(f"g{i}", "multiply", (g, f"y{i}")))
        else:
            continue
        g = f"g{i}"
    return [Input("x", F32, (length,)), Input("one", F32, ())], steps, [g]


def sample(declared: Input, rng: np.random.Generator):
    """Values for an input: |normal| numbers of its dtype and shape, or 0.01 for a Python float."""
    if declared.dtype is float:
        return 0.01
    return np.abs(rng.standard_normal(declared.shape)).astype(declared.dtype)  # log needs positive numbers


def compile_all() -> dict:
    """Seconds to fuse and first call each workload's chains (compiling them, or loading
    them from the disk cache), in this process; checks each kernel against NumPy."""
    start = time.perf_counter()
    from tinygrad_edu import fusion
    import numba  # noqa: F401
    seconds = {"import numba": time.perf_counter() - start}
    rng = np.random.default_rng(0)
    for name, chains in (("W1", w1_chains()), ("W2", [w2_chain()])):
        start = time.perf_counter()
        for inputs, steps, outputs in chains:
            values = [sample(i, rng) for i in inputs]
            got = fusion.fuse(inputs, steps, outputs)(*values)
            want = fusion.evaluate(steps, outputs, {i.name: v for i, v in zip(inputs, values)})
            for g, w in zip(got, want):
                np.testing.assert_allclose(g, w, rtol=1e-4, atol=1e-6, err_msg=f"{name}'s fused chain")
        seconds[name] = time.perf_counter() - start
    return seconds


def main() -> None:
    """Two fresh processes on one empty kernel folder: the first compiles, the second loads."""
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        print(json.dumps(compile_all()))
        return
    with tempfile.TemporaryDirectory() as folder:
        env = {**os.environ, "TINYGRAD_EDU_KERNELS": folder}
        runs = [json.loads(subprocess.run([sys.executable, "-m", "benchmarks.fusion_kernels", "--child"], env=env,
                                          check=True, capture_output=True, text=True).stdout) for _ in range(2)]
    print(f"{'':14}{'first process (compiles)':>26}{'second process (disk cache)':>30}")
    for key in runs[0]:
        print(f"{key:14}{runs[0][key]:>24.2f} s{runs[1][key]:>28.2f} s")


if __name__ == "__main__":
    main()

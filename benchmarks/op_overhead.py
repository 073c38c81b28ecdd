"""Time per op of forward + backward on a chain of small elementwise ops.

200 ops (mul, add, tanh, exp in turn) on a 16-element float32 vector, then backward.
The same chain written by hand in NumPy, forward and backward, runs in the same process
as the floor; repetitions alternate between the two so machine drift hits both alike.

Run: python benchmarks/op_overhead.py [--ops 200] [--repeats 200]
"""
import argparse
import gc
import statistics
import time

import numpy as np

import tinygrad_edu as tg


def engine_chain(x0: np.ndarray, n_ops: int) -> np.ndarray:
    x = tg.tensor(x0, requires_grad=True)
    y = x
    for i in range(n_ops):
        k = i % 4
        y = y * 0.999 if k == 0 else y + 0.001 if k == 1 else y.tanh() if k == 2 else y.exp()
    y.sum().backward()
    return x.grad.data


def numpy_chain(x0: np.ndarray, n_ops: int) -> np.ndarray:
    """The same chain with hand-derived derivatives: keep what backward needs, walk back."""
    saved, y = [], x0
    for i in range(n_ops):
        k = i % 4
        if k == 0:
            saved.append(None); y = y * np.float32(0.999)
        elif k == 1:
            saved.append(None); y = y + np.float32(0.001)
        elif k == 2:
            y = np.tanh(y); saved.append(y)
        else:
            y = np.exp(y); saved.append(y)
    g = np.ones_like(y)
    for i in reversed(range(n_ops)):
        k = i % 4
        if k == 0:
            g = g * np.float32(0.999)
        elif k == 2:
            g = g * (1 - saved[i] * saved[i])
        elif k == 3:
            g = g * saved[i]
    return g


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()
    x0 = np.linspace(-1, 1, 16, dtype=np.float32)
    np.testing.assert_allclose(engine_chain(x0, args.ops), numpy_chain(x0, args.ops), rtol=1e-4)
    times = {"engine": [], "numpy": []}
    for _ in range(args.repeats):
        for name, fn in (("engine", engine_chain), ("numpy", numpy_chain)):
            t = time.perf_counter()
            fn(x0, args.ops)
            times[name].append(time.perf_counter() - t)
    engine, floor = statistics.median(times["engine"]), statistics.median(times["numpy"])
    print(f"{args.ops} ops, forward + backward, median of {args.repeats}, gc {'on' if gc.isenabled() else 'off'}")
    print(f"engine      {engine / args.ops * 1e6:6.2f} us/op")
    print(f"numpy floor {floor / args.ops * 1e6:6.2f} us/op")
    print(f"ratio       {engine / floor:6.2f}x")


if __name__ == "__main__":
    main()

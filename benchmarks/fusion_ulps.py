"""Fusion accuracy: by how many units in the last place a fused kernel's functions differ
from NumPy's, per function and dtype.

    python -m benchmarks.fusion_ulps [--points N]

A fused kernel computes + − × ÷ exactly as NumPy does (tests/test_fusion.py asserts it bit
for bit), but its log, sin, float64 exp ... are Numba's (the C library's libm, through
LLVM) and its float32 exp and tanh its own float64 helpers (fusion.NUMBA_HELPERS), where
NumPy has its own SIMD loops. For each function, N points spread log-uniformly in
magnitude over its domain, both signs where it has them, plus the special points (±0, ±1,
±inf, NaN, the edges of overflow), go through a one-step kernel and through NumPy; the
table gives the largest distance in ulps (how many representable numbers lie between the
two answers) and how many points differ at all. docs/performance.md, "Fusion accuracy",
holds the table; ULP_BOUNDS the bounds the tests assert.
"""
from __future__ import annotations

import argparse

import numpy as np

from tinygrad_edu.fusion import Input, Step, evaluate, fuse

# function -> (the chain of one input "x", the range of |x| as (smallest, largest) per dtype, both signs?)
EXPONENT = 1.7  # power with a non-integer exponent: pow itself, not one of NumPy's shortcuts
FUNCTIONS = {
    "exp": ([Step("y", "exp", ("x",))], {"float32": (1e-8, 88.0), "float64": (1e-16, 709.0)}, True),
    "log": ([Step("y", "log", ("x",))], {"float32": (1e-38, 3e38), "float64": (1e-300, 1e300)}, False),
    "tanh": ([Step("y", "tanh", ("x",))], {"float32": (1e-8, 20.0), "float64": (1e-16, 40.0)}, True),
    "sqrt": ([Step("y", "sqrt", ("x",))], {"float32": (1e-38, 3e38), "float64": (1e-300, 1e300)}, False),
    "sin": ([Step("y", "sin", ("x",))], {"float32": (1e-8, 1e5), "float64": (1e-16, 1e5)}, True),
    "cos": ([Step("y", "cos", ("x",))], {"float32": (1e-8, 1e5), "float64": (1e-16, 1e5)}, True),
    "log1p": ([Step("y", "log1p", ("x",))], {"float32": (1e-8, 1e30), "float64": (1e-16, 1e300)}, False),
    "expm1": ([Step("y", "expm1", ("x",))], {"float32": (1e-8, 88.0), "float64": (1e-16, 709.0)}, True),
    f"power(x, {EXPONENT})": ([Step("y", "power", ("x", EXPONENT))],
                              {"float32": (1e-20, 1e20), "float64": (1e-150, 1e150)}, False),
    "sigmoid 1/(1+exp(-x))": ([Step("n", "negative", ("x",)), Step("e", "exp", ("n",)), Step("d", "add", (1, "e")),
                               Step("y", "divide", (1, "d"))],
                              {"float32": (1e-8, 100.0), "float64": (1e-16, 750.0)}, True),
}
DTYPES = ("float32", "float64")
# The largest difference the tests accept, in ulps: twice what this machine measured, at least 2
# (docs/performance.md), as another CPU's NumPy may take another SIMD path; sqrt is correctly rounded in both.
ULP_BOUNDS = {("exp", "float32"): 4, ("exp", "float64"): 2, ("log", "float32"): 6, ("log", "float64"): 2,
              ("tanh", "float32"): 2, ("tanh", "float64"): 6, ("sqrt", "float32"): 0, ("sqrt", "float64"): 0,
              ("sin", "float32"): 2, ("sin", "float64"): 2, ("cos", "float32"): 2, ("cos", "float64"): 2,
              ("log1p", "float32"): 4, ("log1p", "float64"): 2, ("expm1", "float32"): 4, ("expm1", "float64"): 2,
              (f"power(x, {EXPONENT})", "float32"): 2, (f"power(x, {EXPONENT})", "float64"): 2,
              ("sigmoid 1/(1+exp(-x))", "float32"): 8, ("sigmoid 1/(1+exp(-x))", "float64"): 6}


def ulp_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """How many representable numbers of their dtype lie from a to b (0 where both are the
    same NaN-or-number; -0 and +0 count as one apart; the largest int where one is NaN)."""
    bits = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}[a.dtype]
    ia, ib = a.view(bits).astype(np.int64), b.view(bits).astype(np.int64)
    # map the sign-magnitude bit patterns onto one ordered integer line, -0 at -1 and +0 at 0
    ia, ib = (np.where(i < 0, np.iinfo(bits).min - i - 1, i) for i in (ia, ib))
    distance = np.abs(ia - ib)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    return np.where(nan_a & nan_b, 0, np.where(nan_a | nan_b, np.iinfo(np.int64).max, distance))


def points(dtype: str, smallest: float, largest: float, signed: bool, n: int) -> np.ndarray:
    """n points log-uniform in magnitude over [smallest, largest] (both signs when `signed`),
    then the special points."""
    magnitudes = np.geomspace(smallest, largest, n // 2 if signed else n)
    info = np.finfo(dtype)
    special = [0.0, -0.0, 1.0, -1.0, 0.5, 2.0, np.inf, -np.inf, np.nan, float(info.tiny), float(info.max),
               smallest, largest, np.log(float(info.max)), -np.log(float(info.max))]
    values = np.concatenate([magnitudes, -magnitudes if signed else [], special])
    with np.errstate(over="ignore"):
        return values.astype(dtype)


def measure(name: str, dtype: str, n: int) -> tuple[int, int, float]:
    """(largest ulps, points that differ, the x of the largest) of function `name` on `dtype`."""
    steps, ranges, signed = FUNCTIONS[name]
    x = points(dtype, *ranges[dtype], signed, n)
    kernel = fuse([Input("x", dtype, x.shape)], steps, ["y"])
    with np.errstate(all="ignore"):
        (fused,), (unfused,) = kernel(x), evaluate(steps, ["y"], {"x": x})
    distance = ulp_distance(fused, unfused)
    worst = int(np.argmax(distance))
    return int(distance[worst]), int(np.count_nonzero(distance)), float(x[worst])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    n = parser.parse_args().points
    print(f"| function | dtype | largest difference (ulps) | points that differ (of {n:,}) | at x | bound tested |")
    print("|---|---|---|---|---|---|")
    for name in FUNCTIONS:
        for dtype in DTYPES:
            ulps, differ, x = measure(name, dtype, n)
            print(f"| {name} | {dtype} | {ulps} | {differ:,} | {x:.6g} | {ULP_BOUNDS[name, dtype]} |")


if __name__ == "__main__":
    main()

"""The fusion code generator (tinygrad_edu/fusion.py): fused arithmetic is bit for bit
NumPy's, call by call, with broadcasting and mixed dtypes; functions stay within their
documented ulps; the kernel source reads as Python; without Numba, fusion is refused with
the extra to install."""
import sys

import numpy as np
import pytest

from benchmarks.fusion_kernels import w1_chains, w2_chain
from benchmarks.fusion_ulps import DTYPES, FUNCTIONS, ULP_BOUNDS, measure, ulp_distance
from tinygrad_edu import fusion
from tinygrad_edu.fusion import Input, Step, evaluate, fuse

pytest.importorskip("numba", reason="Numba (the jit extra: pip install -e '.[jit]') is not installed")


def assert_bit_for_bit(inputs, steps, outputs, values):
    """The fused kernel's outputs equal NumPy's calls one by one, bits, dtype and shape."""
    fused = fuse(inputs, steps, outputs)(*values)
    with np.errstate(all="ignore"):
        unfused = evaluate(steps, outputs, {i.name: v for i, v in zip(inputs, values)})
    for name, got, want in zip(outputs, fused, unfused):
        assert got.dtype == want.dtype and got.shape == want.shape, name
        assert np.array_equal(got.view(f"u{got.itemsize}"), np.asarray(want).view(f"u{got.itemsize}")), name


def test_arithmetic_with_broadcasting_and_mixed_dtypes_is_bit_for_bit():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((3, 1)).astype(np.float32)
    b = rng.standard_normal((1, 4)).astype(np.float32)
    c = rng.standard_normal(4)  # float64: promotes what it meets
    n = rng.integers(-3, 4, (3, 4))  # int64, with zeros to divide by
    s = np.float32(0.1)  # 0-d float32 array partner
    inputs = [Input("a", "float32", (3, 1)), Input("b", "float32", (1, 4)), Input("c", "float64", (4,)),
              Input("n", "int64", (3, 4)), Input("s", "float32", ()), Input("lr", float)]
    steps = [Step("t0", "multiply", ("a", "b")), Step("t1", "add", ("t0", 0.1)),  # float32 * weak float
             Step("t2", "divide", ("t1", "n")),  # float32 / int64 -> float64, x / 0 -> ±inf, nan
             Step("t3", "subtract", ("t2", "c")), Step("t4", "multiply", ("lr", "t1")),
             Step("t5", "divide", ("t4", "s")), Step("t6", "negative", ("t5",)), Step("t7", "greater", ("t6", "a")),
             Step("t8", "where", ("t7", "t6", 0.0)), Step("t9", "maximum", ("t3", "t8")),
             Step("t10", "astype", ("t9",), "float32"), Step("t11", "less_equal", ("n", 0)),
             Step("t12", "power", ("t10", 2)), Step("t13", "subtract", (1, "t12"))]
    assert_bit_for_bit(inputs, steps, ["t3", "t5", "t9", "t10", "t11", "t13"], [a, b, c, n, s, 0.01])


def test_maximum_and_minimum_propagate_nan_as_numpy():
    x = np.array([np.nan, 1.0, -np.inf, 2.0, np.nan], np.float32)
    y = np.array([0.0, np.nan, 0.0, np.inf, np.nan], np.float32)
    inputs = [Input("x", "float32", (5,)), Input("y", "float32", (5,))]
    steps = [Step("hi", "maximum", ("x", "y")), Step("lo", "minimum", ("x", "y"))]
    assert_bit_for_bit(inputs, steps, ["hi", "lo"], [x, y])


def test_maximum_and_minimum_of_signed_zeros_are_numpys():
    # +0.0 and -0.0 are equal, so which one NumPy returns is its CPU instruction's choice (x86: the
    # second operand); a kernel once returned the first: ReLU of -0.0 fused was -0.0, NumPy's +0.0
    zeros = np.array([-0.0, 0.0, -0.0, 0.0], np.float32)
    x, y = np.resize(zeros, 64), np.resize(zeros[::-1], 64)
    inputs = [Input("x", "float32", (64,)), Input("y", "float32", (64,))]
    steps = [Step("hi", "maximum", ("x", "y")), Step("lo", "minimum", ("x", "y")), Step("relu", "maximum", ("x", 0))]
    if None in fusion.TIES.values():  # a CPU whose choice does not follow the order: such chains stay NumPy's
        with pytest.raises(ValueError, match="-0.0"):
            fuse(inputs, steps, ["hi", "lo", "relu"])
    else:
        assert_bit_for_bit(inputs, steps, ["hi", "lo", "relu"], [x, y])


@pytest.mark.parametrize("seed", range(4))
def test_random_arithmetic_chains_are_bit_for_bit(seed):
    rng = np.random.default_rng(seed)
    dtype = ["float32", "float64"][seed % 2]
    shapes = [(5, 6), (6,), (5, 1), ()]
    inputs = [Input(f"x{k}", dtype, shape) for k, shape in enumerate(shapes)]
    values = [rng.standard_normal(shape).astype(dtype) for shape in shapes]
    names, steps = [i.name for i in inputs], []
    for k in range(30):
        op = rng.choice(["add", "subtract", "multiply", "divide", "maximum", "negative"])
        operands = names + [1.5]
        first, second = names[rng.integers(len(names))], operands[rng.integers(len(operands))]
        args = (first,) if op == "negative" else (first, second)
        steps.append(Step(f"t{k}", str(op), args))
        names.append(f"t{k}")
    steps.append(Step("out", "add", ("x0", "t29")))  # so the output has the full shape
    assert_bit_for_bit(inputs, steps, ["out"], values)


def test_the_workloads_chains_are_bit_for_bit_where_they_hold_only_arithmetic():
    rng = np.random.default_rng(1)
    for inputs, steps, outputs in w1_chains(batch=4, hidden=8, classes=3):
        if not any(s.op in ("exp", "log") for s in steps):
            values = [0.01 if i.dtype is float else rng.standard_normal(i.shape).astype(i.dtype) for i in inputs]
            assert_bit_for_bit(inputs, steps, outputs, values)


def test_w2_chain_fused_is_within_a_few_ulps_of_numpy():
    inputs, steps, outputs = w2_chain()
    x = np.linspace(-1, 1, 16, dtype=np.float32)
    (fused,) = fuse(inputs, steps, outputs)(x, np.float32(1))
    (unfused,) = evaluate(steps, outputs, {"x": x, "one": np.float32(1)})
    # 200 ops, half of them exp and tanh at a few ulps each: the chain's derivative is about 1 in size
    np.testing.assert_allclose(fused, unfused, rtol=1e-4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", list(FUNCTIONS))
def test_functions_within_their_documented_ulps(name, dtype):
    ulps, _, x = measure(name, dtype, 20_000)
    assert ulps <= ULP_BOUNDS[name, dtype], f"{name} on {dtype}: {ulps} ulps at x = {x}"


TINY = float(np.finfo(np.float32).smallest_subnormal)
# float32 x -> exp(x), tanh(x) where the answer is exact: NaN, the infinities, the signed zeros, subnormals,
# overflow to inf and underflow to 0 (well past their edges, where no rounding decides)
EXACT_EDGES = {"exp": [(np.nan, np.nan), (np.inf, np.inf), (-np.inf, 0.0), (0.0, 1.0), (-0.0, 1.0), (TINY, 1.0),
                       (-TINY, 1.0), (89.0, np.inf), (1e30, np.inf), (-105.0, 0.0), (-1e30, 0.0)],
               "tanh": [(np.nan, np.nan), (np.inf, 1.0), (-np.inf, -1.0), (0.0, 0.0), (-0.0, -0.0), (TINY, TINY),
                        (-TINY, -TINY), (1e-40, 1e-40), (-1e-40, -1e-40), (20.0, 1.0), (-20.0, -1.0), (1e30, 1.0)]}
# near the edges, where a last bit may round either way: within the documented ulps of NumPy
NEAR_EDGES = [88.72, 88.7228, 88.7229, -87.33, -87.34, -103.0, -103.9, -103.98, 1.2e-38, -1.2e-38,
              9.0, 9.01, 9.1, -9.1, 0.3466, -0.3466, 1e-8, -1e-8]


@pytest.mark.parametrize("function", ["exp", "tanh"])
def test_float32_exp_and_tanh_agree_with_numpy_at_special_values_and_edges(function):
    x, exact = (np.array(column, np.float32) for column in zip(*EXACT_EDGES[function]))
    kernel = fuse([Input("x", "float32", x.shape)], [Step("y", function, ("x",))], ["y"])
    (fused,) = kernel(x)
    assert f"{function}_float32(x)" in kernel.source  # the kernel's own float64 helper, not libm's
    with np.errstate(over="ignore"):
        numpy_values = getattr(np, function)(x)
    for got in (fused, numpy_values):
        assert np.array_equal(got, exact, equal_nan=True)
        assert np.array_equal(np.signbit(got[~np.isnan(exact)]), np.signbit(exact[~np.isnan(exact)]))
    near = np.array(NEAR_EDGES, np.float32)
    (fused,) = fuse([Input("x", "float32", near.shape)], [Step("y", function, ("x",))], ["y"])(near)
    with np.errstate(over="ignore"):
        assert ulp_distance(fused, getattr(np, function)(near)).max() <= ULP_BOUNDS[function, "float32"]


def test_float64_exp_and_tanh_stay_libms():
    kernel = fuse([Input("x", "float64", (4,))], [Step("e", "exp", ("x",)), Step("t", "tanh", ("e",))], ["t"])
    assert "math.exp(x)" in kernel.source and "math.tanh(e)" in kernel.source and "_float32" not in kernel.source


def test_ulp_distance_counts_representable_numbers():
    one = np.array([1.0], np.float32)
    assert ulp_distance(one, np.nextafter(one, np.float32(2))) == 1
    assert ulp_distance(np.array([-0.0], np.float32), np.array([0.0], np.float32)) == 1
    tiny = np.array([np.finfo(np.float32).smallest_subnormal], np.float32)
    assert ulp_distance(-tiny, tiny) == 3  # -tiny, -0, +0, tiny
    assert ulp_distance(np.array([np.nan]), np.array([np.nan])) == 0
    assert ulp_distance(np.array([np.nan]), np.array([1.0])) == np.iinfo(np.int64).max


def test_a_comparison_cast_to_a_dtype_no_value_has_is_bit_for_bit():
    # float32 against int64 compares in float64: the kernel casts both and must import float64 (it did not)
    x, n = np.array([0.5, 2.0, -1.0, 3.0], np.float32), np.array([0, 2, -2, 4])
    steps = [Step("y", "greater", ("x", "n")), Step("z", "less_equal", ("x", np.float64(2.0)))]
    assert_bit_for_bit([Input("x", "float32", (4,)), Input("n", "int64", (4,))], steps, ["y", "z"], [x, n])


def test_a_numpy_scalar_in_a_step_keeps_its_dtype_as_numpy_does():
    x = np.linspace(-1, 1, 8, dtype=np.float32)
    # float32 array * float64 scalar is float64 in NumPy 2 (a Python float would take float32)
    steps = [Step("y", "multiply", ("x", np.float64(0.1))), Step("z", "add", ("y", np.float32(3.0)))]
    assert_bit_for_bit([Input("x", "float32", (8,))], steps, ["z"], [x])
    source = fuse([Input("x", "float32", (8,))], steps, ["z"]).source
    assert "y = float64(float64(x) * float64(0.1))" in source and "z = float64(y + float64(3.0))" in source


def test_kernel_source_reads_as_python_with_every_dtype_named():
    inputs = [Input("x", "float32", (4, 3)), Input("b", "float32", (3,)), Input("lr", float)]
    steps = [Step("z", "add", ("x", "b")), Step("y", "multiply", ("lr", "z"))]
    kernel = fuse(inputs, steps, ["y"])
    source = kernel.source
    compile(source, "kernel", "exec")
    decorator = next(line for line in source.splitlines() if line.startswith("@njit("))
    assert "fastmath" not in decorator and "error_model='numpy'" in decorator
    assert "z = float32(x + b)" in source
    assert "y = float32(float32(lr) * z)" in source  # the Python float takes float32, as in NumPy 2
    assert "def kernel(x_array, b_array, lr, out_y, shape):" in source


def test_a_value_that_depends_on_rows_only_is_computed_once_per_row():
    inputs = [Input("x", "float32", (4, 3)), Input("c", "float32", (4, 1))]
    steps = [Step("r", "log", ("c",)), Step("y", "subtract", ("x", "r"))]
    lines = fuse(inputs, steps, ["y"]).source.splitlines()
    row_loop = lines.index("    for i0 in range(shape[0]):")
    column_loop = lines.index("        for i1 in range(shape[1]):")
    assert row_loop < lines.index("        c = c_array[i0, 0]") < lines.index("        r = float32(math.log(c))") \
        < column_loop < lines.index("            y = float32(x - r)")


def test_strided_inputs_and_a_transposed_operand_are_read_in_their_own_layout():
    rng = np.random.default_rng(2)
    a = rng.standard_normal((4, 3)).T  # (3, 4), not contiguous
    b = rng.standard_normal((3, 1))
    for shapes, values in [(((3, 4), (3, 4)), [a, a[:, ::-1]]), (((3, 4), (3, 1)), [a, b])]:
        inputs = [Input("p", "float64", shapes[0]), Input("q", "float64", shapes[1])]
        assert_bit_for_bit(inputs, [Step("y", "divide", ("p", "q"))], ["y"], values)


def test_an_update_written_into_its_own_input_as_the_sgd_step_does():
    rng = np.random.default_rng(3)
    w, g = rng.standard_normal((5, 4)).astype(np.float32), rng.standard_normal((5, 4)).astype(np.float32)
    expected = w - 0.1 * g  # NumPy 2: the Python float 0.1 is taken as float32
    kernel = fuse([Input("w", "float32", (5, 4)), Input("g", "float32", (5, 4)), Input("lr", float)],
                  [Step("step", "multiply", ("lr", "g")), Step("new", "subtract", ("w", "step"))], ["new"])
    (written,) = kernel(w, g, 0.1, out=[w])
    assert written is w and np.array_equal(w, expected)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("shape", [(128, 16), (7, 2), (5, 3, 4)])
def test_a_trailing_sum_over_the_rows_is_bit_for_bit_as_numpys(shape, dtype):
    rng = np.random.default_rng(4)
    pre, g = rng.standard_normal(shape).astype(dtype), rng.standard_normal(shape).astype(dtype)
    inputs = [Input("pre", dtype, shape), Input("g", dtype, shape)]
    steps = [Step("on", "greater", ("pre", 0)), Step("mask", "astype", ("on",), dtype),
             Step("d", "multiply", ("g", "mask")), Step("db", "sum", ("d",))]  # ReLU's backward, then the bias gradient
    assert_bit_for_bit(inputs, steps, ["d", "db"], [pre, g])
    assert_bit_for_bit(inputs, steps, ["db"], [pre, g])


def test_a_sum_numpy_would_add_pairwise_or_another_step_reads_is_refused():
    column = [Input("x", "float32", (300, 1))]  # NumPy sums a (300, 1) column pairwise, not row after row
    with pytest.raises(ValueError, match=r"sum\(x\) over \(300, 1\)"):
        fuse(column, [Step("s", "sum", ("x",))], ["s"])
    with pytest.raises(ValueError, match="no step reads"):
        fuse([Input("x", "float32", (4, 3))], [Step("s", "sum", ("x",)), Step("t", "exp", ("s",))], ["t"])
    chain = fusion.check_chain([Input("x", "float32", (4, 3))], [Step("s", "sum", ("x",))], ["s"])
    with pytest.raises(ValueError, match="CuPy"):
        fusion.cuda_source(chain)


def test_cuda_source_casts_as_numpy_and_is_generated_without_a_gpu():
    chain = fusion.check_chain([Input("x", "float32", (4,)), Input("lr", float)],
                               [Step("y", "multiply", ("lr", "x")), Step("m", "maximum", ("y", 0))], ["m"])
    in_params, out_params, operation = fusion.cuda_source(chain)
    assert in_params == "float x, double lr" and out_params == "float out_m"
    assert "float y = (float)lr * x;" in operation
    assert "float m = (y >= (float)(0) || y != y) ? y : (float)(0);" in operation


def test_an_array_updated_in_place_is_read_through_its_output_bit_for_bit():
    inputs = [Input("lr", float), Input("g", "float32", (300, 7)), Input("p", "float32", (300, 7))]
    steps = [Step("s", "multiply", ("lr", "g")), Step("q", "subtract", ("p", "s"))]
    chain = fusion.check_chain(inputs, steps, ["q"], in_place={"p": "q"})
    kernel = fusion.FusedKernel(chain, "cpu")
    g, p = (np.random.default_rng(2).standard_normal((300, 7)).astype(np.float32) for _ in range(2))
    expected = p - np.float32(0.01) * g
    (q,) = kernel(0.01, g, p, out=[p])
    assert q is p and np.array_equal(p, expected)  # one array read, then written: SGD's p -= lr·g
    assert "def kernel(lr, g_array, out_q, shape):" in kernel.source and "p = out_q[i]" in kernel.source
    (q,) = kernel(0.01, g, p)  # no out given: the array updated in place is the output
    assert q is p
    in_params, _, operation = fusion.cuda_source(chain)
    assert in_params == "double lr, float g" and operation.startswith("float p = out_q;")
    with pytest.raises(ValueError, match="updated in place"):
        fusion.check_chain(inputs, steps, ["q"], in_place={"g": "s"})


def test_a_chain_it_cannot_fuse_is_refused_naming_the_step():
    with pytest.raises(ValueError, match="matmul"):
        fuse([Input("x", "float32", (2, 2))], [Step("y", "matmul", ("x", "x"))], ["y"])
    with pytest.raises(ValueError, match=r"kernel's shape \(3, 4\).*r \(3, 1\)"):
        fuse([Input("x", "float32", (3, 4)), Input("c", "float32", (3, 1))],
             [Step("r", "exp", ("c",)), Step("y", "add", ("x", "r"))], ["y", "r"])


def test_names_a_kernel_uses_itself_and_dtypes_it_cannot_hold_are_refused():
    for name in ["shape", "float32", "i0", "out_y", "lambda", "2x"]:
        with pytest.raises(ValueError, match="not free"):
            fuse([Input(name, "float32", (3,))], [Step("y", "exp", (name,))], ["y"])
    with pytest.raises(ValueError, match="complex128"):
        fuse([Input("z", "complex128", (3,))], [Step("y", "exp", ("z",))], ["y"])


def test_without_numba_fusion_names_the_jit_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "numba", None)  # `import numba` raises ImportError
    with pytest.raises(RuntimeError, match=r"pip install -e '\.\[jit\]'"):
        fuse([Input("x", "float32", (3,))], [Step("y", "exp", ("x",))], ["y"])

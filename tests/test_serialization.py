"""nn.save / nn.load (API.md, "nn"): checkpoints as one .npz file, never through pickle.

- Round trips with exact equality of values, dtypes, shapes and Python types: nested
  dicts/lists/tuples, int and str keys side by side, arrays of many dtypes and shapes
  (0-d, empty, Fortran order, big-endian), NumPy scalars, nan/inf/-0.0, big ints, unicode.
- The file: exactly `path` (no suffix added), readable by numpy.load(allow_pickle=False),
  with the marker member holding the JSON tree.
- TypeError naming the place in the tree for what cannot be saved; ValueError naming the
  path for files nn.save did not write (garbage, empty, truncated, foreign .npz, .npy,
  damaged JSON); FileNotFoundError for a missing file.
- Atomic writes: a failure while writing or renaming leaves the old file byte-identical
  and no temporary file behind.
- Optimizers: a state_dict survives the file exactly, and a run resumed from it takes
  exactly the steps of the uninterrupted run.
"""
import json
import math
import os
import re
import struct
import zipfile

import numpy as np
import pytest

import nn
import optim
import tinygrad_edu as tg
from nn import serialization

# ---------------------------------------------------------------------------------------
# Exact comparison
# ---------------------------------------------------------------------------------------


def assert_same(got, want, where="top"):
    """got equals want exactly: same Python types all the way down, same dict key order,
    arrays with the same dtype, shape and bits, floats bit-identical (nan == nan)."""
    assert type(got) is type(want), f"{where}: {type(got).__name__} != {type(want).__name__}"
    if isinstance(want, dict):
        assert list(got.keys()) == list(want.keys()), f"{where}: keys {list(got)} != {list(want)}"
        for (kg, vg), (kw, vw) in zip(got.items(), want.items()):
            assert type(kg) is type(kw), f"{where}: key {kg!r} is {type(kg).__name__}, want {type(kw).__name__}"
            assert_same(vg, vw, f"{where}/{kw!r}")
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want), f"{where}: length {len(got)} != {len(want)}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}/{i}")
    elif isinstance(want, (np.ndarray, np.generic)):
        assert got.dtype == want.dtype, f"{where}: dtype {got.dtype} != {want.dtype}"
        assert got.shape == want.shape, f"{where}: shape {got.shape} != {want.shape}"
        assert np.ascontiguousarray(got).tobytes() == np.ascontiguousarray(want).tobytes(), f"{where}: values differ"
    elif isinstance(want, float):
        assert struct.pack("<d", got) == struct.pack("<d", want), f"{where}: {got!r} != {want!r}"
    else:
        assert got == want, f"{where}: {got!r} != {want!r}"


def round_trip(obj, tmp_path, name="ckpt.npz"):
    path = tmp_path / name
    nn.save(obj, path)
    return nn.load(path)


# ---------------------------------------------------------------------------------------
# Round trips
# ---------------------------------------------------------------------------------------


def test_nested_tree_round_trips_exactly(tmp_path):
    tree = {
        "model": {"layer1": {"weight": np.arange(6, dtype=np.float32).reshape(2, 3), "bias": np.zeros(3)},
                  "layers": [np.array([1, 2, 3], dtype=np.int64), {"inner": (np.eye(2), None)}]},
        "state": {0: {"step": 7, "m": np.float64(0.25)}, 1: {}},
        "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "amsgrad": False, "name": None, "params": [0, 1]}],
        "epoch": 12,
        "note": "résumé ✓",
        "empty": {"dict": {}, "list": [], "tuple": ()},
        "tuples": ((1, 2), [3, (4,)], ([],)),
    }
    got = round_trip(tree, tmp_path)
    assert_same(got, tree)
    assert got["param_groups"][0]["betas"] == (0.9, 0.999)  # a tuple stays a tuple
    assert isinstance(got["tuples"][1], list) and isinstance(got["tuples"][1][1], tuple)


def test_a_bare_array_or_scalar_is_a_tree_too(tmp_path):
    assert_same(round_trip(np.array([1.5, -2.0]), tmp_path), np.array([1.5, -2.0]))
    assert round_trip(None, tmp_path) is None
    assert_same(round_trip(3, tmp_path), 3)
    assert_same(round_trip("x", tmp_path), "x")


@pytest.mark.parametrize("dtype", ["bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
                                   "float16", "float32", "float64", "longdouble", "complex64", "complex128", ">f8",
                                   "<i4", ">u2"])
def test_arrays_keep_dtype_shape_and_bits(tmp_path, dtype):
    rng = np.random.default_rng(0)
    raw = rng.normal(size=24) * 1000
    base = (raw > 0) if dtype == "bool" else (raw + 1j * raw[::-1] if "complex" in dtype else raw).astype(dtype)
    arrays = [base, base.reshape(2, 3, 4), base[:1].reshape(()), base[:0], base[:0].reshape(0, 5, 0),
              np.asfortranarray(base.reshape(4, 6)), base.reshape(4, 6)[::2, 1::3]]
    got = round_trip(arrays, tmp_path)
    assert_same(got, arrays)
    assert got[2].shape == () and isinstance(got[2], np.ndarray)  # 0-d stays a 0-d array
    assert got[1].dtype == np.dtype(dtype)


def test_special_float_arrays(tmp_path):
    a = np.array([np.nan, np.inf, -np.inf, -0.0, 5e-324, np.finfo(np.float64).max, 0.1 + 0.2])
    h = np.array([np.nan, np.inf, -np.inf, -0.0, 6e-8, 65504.0], dtype=np.float16)
    got = round_trip({"a": a, "h": h}, tmp_path)
    assert np.array_equal(got["a"], a, equal_nan=True) and np.signbit(got["a"][3])
    assert_same(got, {"a": a, "h": h})


def test_numpy_scalars_come_back_as_numpy_scalars(tmp_path):
    scalars = [np.float64(0.1), np.float32(1.5), np.float16(-2.0), np.int64(-(2**62)), np.uint8(255), np.int32(7),
               np.bool_(True), np.complex128(1 - 2j), np.float64("nan")]
    got = round_trip(scalars, tmp_path)
    assert_same(got, scalars)
    assert [type(g) for g in got] == [type(s) for s in scalars]


def test_python_floats_round_trip_bit_exactly(tmp_path):
    rng = np.random.default_rng(1)
    bits = rng.integers(0, 2**64, size=500, dtype=np.uint64)
    floats = [float(x) for x in bits.view(np.float64) if math.isfinite(x)]
    specials = [0.1, 0.1 + 0.2, 1 / 3, -0.0, 0.0, 5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                float("nan"), float("inf"), float("-inf"), 1e16, 123456789.0]
    got = round_trip({"random": floats, "specials": specials}, tmp_path)
    assert_same(got, {"random": floats, "specials": specials})
    assert math.isnan(got["specials"][8]) and got["specials"][9] == math.inf and got["specials"][10] == -math.inf
    assert math.copysign(1.0, got["specials"][3]) == -1.0


def test_ints_bools_none_and_strings(tmp_path):
    values = [0, -1, 2**63, -(2**63) - 1, 2**200, -(10**300), True, False, None, 1, 1.0,
              "", "plain", "héllo wörld", "日本語", "emoji 🎉", 'quote " and \\ backslash', "tab\tnew\nline",
              "nul\x00", "\x00", "lone surrogate \ud800", "{\"json\": [1, 2]}"]
    got = round_trip(values, tmp_path)
    assert_same(got, values)
    assert got[6] is True and got[7] is False and got[8] is None
    assert type(got[9]) is int and type(got[10]) is float  # 1 and 1.0 stay apart
    assert got[18] == "nul\x00" and got[19] == "\x00"  # NumPy's unicode arrays would drop trailing NULs


def test_int_and_str_keys_side_by_side_keep_type_and_order(tmp_path):
    d = {0: "int zero", "0": "str zero", -5: [1], "": None, "b": 2, 10**20: "big", "a": {1: {"1": 1}}}
    got = round_trip(d, tmp_path)
    assert_same(got, d)
    assert got[0] == "int zero" and got["0"] == "str zero"
    assert list(got) == [0, "0", -5, "", "b", 10**20, "a"]


def test_numpy_integer_keys_come_back_as_ints(tmp_path):
    """{np.int64(3): ...} (keys from np.unique, say) raised TypeError though API.md allows int keys."""
    got = round_trip({np.int64(3): "a", np.uint8(4): "b", 5: "c"}, tmp_path)
    assert got == {3: "a", 4: "b", 5: "c"} and all(type(k) is int for k in got)


def test_tensors_are_saved_as_their_arrays(tmp_path):
    w = tg.tensor([[1.0, 2.0], [3.0, 4.0]], dtype="float32", requires_grad=True)
    got = round_trip({"w": w, "list": [w * 2]}, tmp_path)
    assert_same(got, {"w": w.numpy(), "list": [(w * 2).numpy()]})
    assert type(got["w"]) is np.ndarray and got["w"].dtype == np.float32


def test_subclasses_come_back_as_plain_types(tmp_path):
    from collections import OrderedDict, namedtuple

    Pair = namedtuple("Pair", "a b")
    got = round_trip(OrderedDict([("p", Pair(1, 2.5))]), tmp_path)
    assert_same(got, {"p": (1, 2.5)})


def test_shared_subtrees_are_saved_twice(tmp_path):
    shared = [np.ones(2)]
    got = round_trip({"x": shared, "y": shared}, tmp_path)
    assert_same(got, {"x": [np.ones(2)], "y": [np.ones(2)]})


# ---------------------------------------------------------------------------------------
# The file
# ---------------------------------------------------------------------------------------


def test_numpy_load_reads_the_file_without_pickle(tmp_path):
    path = tmp_path / "ckpt.npz"
    nn.save({"w": np.arange(3, dtype=np.int16), "s": np.float32(2.0), "lr": 0.5}, path)
    with np.load(path, allow_pickle=False) as archive:
        assert sorted(archive.files) == sorted([serialization.META, "a0", "a1"])
        assert np.array_equal(archive["a0"], np.arange(3, dtype=np.int16)) and archive["a0"].dtype == np.int16
        assert archive["a1"].shape == () and archive["a1"].dtype == np.float32
        meta = archive[serialization.META]
        assert meta.dtype.kind == "U" and meta.shape == ()
        document = json.loads(str(meta[()]))
    assert document["format"] == "tinygrad_edu.nn.save" and document["version"] == 1
    assert document["tree"] == ["dict", [[["str", "w"], ["array", "a0"]], [["str", "s"], ["scalar", "a1"]],
                                         [["str", "lr"], ["float", 0.5]]]]
    with zipfile.ZipFile(path) as z:  # plain .npy members, nothing else
        assert sorted(z.namelist()) == sorted([serialization.META + ".npy", "a0.npy", "a1.npy"])


@pytest.mark.parametrize("name", ["checkpoint", "model.ckpt", "weights.bin", "state.npz"])
def test_the_file_is_exactly_path(tmp_path, name):
    nn.save({"x": np.ones(2)}, str(tmp_path / name))  # a str path as well as a Path
    assert sorted(os.listdir(tmp_path)) == [name]
    assert_same(nn.load(str(tmp_path / name)), {"x": np.ones(2)})


def test_overwriting_replaces_the_old_checkpoint(tmp_path):
    path = tmp_path / "ckpt"
    nn.save({"v": 1, "a": np.zeros(1000)}, path)
    nn.save({"v": 2}, path)
    assert_same(nn.load(path), {"v": 2})
    assert os.listdir(tmp_path) == ["ckpt"]


def test_a_new_file_gets_ordinary_permissions(tmp_path):
    path = tmp_path / "ckpt"
    nn.save({}, path)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0o600


def test_save_leaves_the_process_umask_alone(tmp_path, monkeypatch):
    """The umask is process-wide: reading it by setting it to 0 and back would give a file
    that another thread creates meanwhile mode 0o666."""
    def refuse(mask):
        raise AssertionError(f"nn.save called os.umask({mask:o})")

    monkeypatch.setattr(os, "umask", refuse)
    nn.save({"w": np.ones(2)}, tmp_path / "ckpt")
    monkeypatch.undo()
    assert_same(nn.load(tmp_path / "ckpt"), {"w": np.ones(2)})


def test_a_text_file_or_a_pickle_is_named_for_what_it_is(tmp_path):
    import pickle

    notes = tmp_path / "notes.txt"
    notes.write_text("lr = 0.1\nbatch = 32, résumé\n")
    with pytest.raises(ValueError) as info:
        nn.load(notes)
    assert str(info.value) == (f"nn.load: {str(notes)!r} is not an .npz checkpoint written by nn.save: "
                               "it looks like text")
    pickled = tmp_path / "state.pkl"
    pickled.write_bytes(pickle.dumps({"w": [1.0]}))
    with pytest.raises(ValueError, match="it looks like a pickle, which nn.load never reads"):
        nn.load(pickled)


# ---------------------------------------------------------------------------------------
# What cannot be saved
# ---------------------------------------------------------------------------------------


class Thing:
    pass


@pytest.mark.parametrize("bad, what, where", [
    ({"state": [{"foo": {1, 2}}]}, "a set", "at state/0/foo"),
    ({1, 2}, "a set", "at the top level"),
    ([1, Thing()], "a Thing", "at 1"),
    ({"f": len}, "a builtin_function_or_method", "at f"),
    ({"b": b"bytes"}, "a bytes", "at b"),
    ({"o": np.array([1, "a"], dtype=object)}, "dtype object", "at o"),
    ({"u": np.array(["a", "b"])}, "dtype <U1", "at u"),
    ({"t": np.array(["2020-01-01"], dtype="datetime64[D]")}, "dtype datetime64[D]", "at t"),
    ({"r": np.zeros(2, dtype=[("x", "f8"), ("y", "i4")])}, "dtype", "at r"),
    ({"m": np.ma.masked_array([1.0, 2.0], mask=[0, 1])}, "masked array", "at m"),
    ({"s": np.str_("numpy string")}, "dtype <U12", "at s"),
    ({"d": {1.5: "float key"}}, "dict key of type float", "at d"),
    ({"d": {(1, 2): "tuple key"}}, "dict key of type tuple", "at d"),
    ({"d": {True: "bool key"}}, "dict key of type bool", "at d"),
    ({"x": [[1, 2, [None, 3j]]]}, "a complex", "at x/0/2/1"),
])
def test_unsupported_objects_raise_type_error_naming_the_place(tmp_path, bad, what, where):
    path = tmp_path / "ckpt"
    nn.save({"old": 1}, path)
    before = path.read_bytes()
    with pytest.raises(TypeError, match=re.escape(what) + ".*" + re.escape(where)) as info:
        nn.save(bad, path)
    assert str(info.value).startswith("nn.save: cannot save")
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["ckpt"]


def test_a_tree_that_contains_itself_is_refused(tmp_path):
    loop = {"a": []}
    loop["a"].append(loop)
    with pytest.raises(ValueError, match="at a/0 contains itself"):
        nn.save(loop, tmp_path / "ckpt")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------
# Files that nn.save did not write
# ---------------------------------------------------------------------------------------


def _zip_with_meta(path, text):
    np.savez(path, **{serialization.META: np.array(text), "a0": np.ones(2)})


def _bad_files(tmp_path):
    """(name, writer) pairs: each writer makes a file at the path it is given."""
    good = tmp_path / "good"
    nn.save({"w": np.arange(1000.0), "lr": 0.1}, good)
    data = good.read_bytes()
    tree = ["dict", [[["str", "w"], ["array", "a0"]]]]
    return {
        "garbage": lambda p: p.write_bytes(bytes(range(256)) * 8),
        "empty": lambda p: p.write_bytes(b""),
        "truncated": lambda p: p.write_bytes(data[: len(data) // 2]),
        "missing tail": lambda p: p.write_bytes(data[:-10]),
        "text": lambda p: p.write_text("{'w': [1, 2]}"),
        "foreign npz": lambda p: np.savez(open(p, "wb"), w=np.arange(3.0), arr_1=np.eye(2)),
        "compressed foreign npz": lambda p: np.savez_compressed(open(p, "wb"), x=np.ones(1)),
        "npy": lambda p: np.save(open(p, "wb"), np.arange(3)),
        "pickled object npy": lambda p: np.save(open(p, "wb"), np.array([{}], dtype=object), allow_pickle=True),
        "corrupt json": lambda p: _zip_with_meta(open(p, "wb"), '{"format": "tinygrad_edu.nn.save", "vers'),
        "json not an object": lambda p: _zip_with_meta(open(p, "wb"), "[1, 2]"),
        "wrong marker": lambda p: _zip_with_meta(open(p, "wb"), json.dumps({"format": "other", "version": 1,
                                                                             "tree": ["none"]})),
        "future version": lambda p: _zip_with_meta(open(p, "wb"), json.dumps(
            {"format": "tinygrad_edu.nn.save", "version": 99, "tree": ["none"]})),
        "NaN token in json": lambda p: _zip_with_meta(open(p, "wb"), '{"format": "tinygrad_edu.nn.save", '
                                                                       '"version": 1, "tree": ["float", NaN]}'),
        "missing member": lambda p: _zip_with_meta(open(p, "wb"), json.dumps(
            {"format": "tinygrad_edu.nn.save", "version": 1, "tree": ["array", "a7"]})),
        "bad node": lambda p: _zip_with_meta(open(p, "wb"), json.dumps(
            {"format": "tinygrad_edu.nn.save", "version": 1, "tree": ["set", [1, 2]]})),
        "bad float": lambda p: _zip_with_meta(open(p, "wb"), json.dumps(
            {"format": "tinygrad_edu.nn.save", "version": 1, "tree": ["float", "1e5"]})),
        "bool as int": lambda p: _zip_with_meta(open(p, "wb"), json.dumps(
            {"format": "tinygrad_edu.nn.save", "version": 1, "tree": ["int", True]})),
        "meta not a string": lambda p: np.savez(open(p, "wb"), **{serialization.META: np.arange(3)}),
        "ok tree, bad member": lambda p: np.savez(open(p, "wb"), **{
            serialization.META: np.array(json.dumps({"format": "tinygrad_edu.nn.save", "version": 1, "tree": tree})),
            "a0": np.array(["strings"])}),
    }


def test_files_nn_save_did_not_write_raise_value_error(tmp_path):
    cases = _bad_files(tmp_path)
    for i, (name, write) in enumerate(cases.items()):
        path = tmp_path / f"bad{i}"
        write(path)
        with pytest.raises(ValueError, match=re.escape(repr(str(path))) + " is not an .npz checkpoint written by"):
            nn.load(path)
            pytest.fail(f"{name}: no ValueError")


def test_the_messages_say_what_is_wrong(tmp_path):
    cases = _bad_files(tmp_path)
    for name, reason in [("foreign npz", "foreign .npz"), ("corrupt json", "JSON is damaged"),
                         ("future version", "version 99"), ("missing member", "'a7'"),
                         ("npy", "a single .npy array"), ("empty", "the file is empty"),
                         ("text", "it looks like text"), ("pickled object npy", "a single .npy array"),
                         ("garbage", "does not start as a zip archive")]:
        path = tmp_path / name.replace(" ", "_")
        cases[name](path)
        with pytest.raises(ValueError, match=re.escape(reason)):
            nn.load(path)


def test_a_missing_file_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        nn.load(tmp_path / "nothing.npz")
    nn.save({}, tmp_path / "x")  # the suffixless name exists, the .npz one does not
    with pytest.raises(FileNotFoundError):
        nn.load(tmp_path / "x.npz")


# ---------------------------------------------------------------------------------------
# Atomic writes
# ---------------------------------------------------------------------------------------


@pytest.fixture
def old_checkpoint(tmp_path):
    path = tmp_path / "ckpt.npz"
    nn.save({"version": "old", "w": np.arange(100.0)}, path)
    return path, path.read_bytes()


def _assert_untouched(path, before):
    assert path.read_bytes() == before
    assert os.listdir(path.parent) == [path.name]  # no temporary file left behind
    assert_same(nn.load(path), {"version": "old", "w": np.arange(100.0)})


def test_a_crash_at_the_rename_leaves_the_old_file(old_checkpoint, monkeypatch):
    path, before = old_checkpoint

    def crash(src, dst):
        assert os.path.dirname(src) == os.path.dirname(os.path.abspath(dst))  # the temporary file sits beside path
        assert os.path.exists(src)
        raise OSError("disk died at the rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk died"):
        nn.save({"version": "new", "w": np.zeros(5)}, path)
    monkeypatch.undo()
    _assert_untouched(path, before)


@pytest.mark.parametrize("exc", [OSError("no space left"), KeyboardInterrupt()])
def test_a_crash_while_writing_the_arrays_leaves_the_old_file(old_checkpoint, monkeypatch, exc):
    path, before = old_checkpoint
    real_write = np.lib.format.write_array
    calls = []

    def write_then_crash(fp, array, *args, **kwargs):
        calls.append(array.shape)
        if len(calls) == 3:  # two members already in the temporary file, half of the third
            fp.write(b"\x93NUMPY partial")
            raise exc
        return real_write(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", write_then_crash)
    with pytest.raises(type(exc)):
        nn.save({"version": "new", "a": np.zeros(4), "b": np.ones((2, 2)), "c": np.ones(3)}, path)
    monkeypatch.undo()
    assert len(calls) == 3
    _assert_untouched(path, before)


def test_a_crash_in_fsync_leaves_the_old_file(old_checkpoint, monkeypatch):
    path, before = old_checkpoint

    def crash(fd):
        raise OSError("fsync failed")

    monkeypatch.setattr(os, "fsync", crash)
    with pytest.raises(OSError, match="fsync failed"):
        nn.save({"version": "new"}, path)
    monkeypatch.undo()
    _assert_untouched(path, before)


def test_a_failed_first_save_leaves_no_file(tmp_path, monkeypatch):
    monkeypatch.setattr(os, "replace", lambda src, dst: (_ for _ in ()).throw(OSError("boom")))
    with pytest.raises(OSError, match="boom"):
        nn.save({"w": np.ones(3)}, tmp_path / "new.npz")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------------------
# Optimizer state dicts
# ---------------------------------------------------------------------------------------


def _params():
    x = tg.tensor([1.0, -2.0, 0.5], dtype="float64", requires_grad=True)
    w = tg.tensor([[0.3, -1.2], [2.0, 0.7]], dtype="float32", requires_grad=True)
    return x, w


def _loss(x, w):
    c = tg.tensor([1.5, 0.7, 2.0], dtype="float64")
    return (c * x * x).sum() + (w * w * w * w).sum() + x[0] * x[1]


def _steps(opt, x, w, n):
    for _ in range(n):
        opt.zero_grad()
        _loss(x, w).backward()
        opt.step()


def test_adam_state_dict_round_trips_exactly(tmp_path):
    x, w = _params()
    opt = optim.Adam([x, w], lr=0.01, betas=(0.8, 0.99), amsgrad=True)
    _steps(opt, x, w, 3)
    sd = opt.state_dict()
    assert set(sd["state"]) == {0, 1} and sd["state"][0]["step"] == 3
    got = round_trip({"optimizer": sd, "model": {"x": x, "w": w}, "epoch": 3}, tmp_path)
    assert_same(got["optimizer"], sd)
    assert got["optimizer"]["param_groups"][0]["betas"] == (0.8, 0.99)
    assert got["optimizer"]["state"][1]["m"].dtype == np.float32
    assert got["optimizer"]["state"][0]["v"].dtype == np.float64
    assert_same(got["model"], {"x": x.numpy(), "w": w.numpy()})


def test_a_zero_dim_parameter_s_numpy_scalar_state_round_trips(tmp_path):
    s = tg.tensor(1.5, dtype="float64", requires_grad=True)
    opt = optim.Adam([s])
    for _ in range(2):
        opt.zero_grad()
        (s * s).sum().backward()
        opt.step()
    sd = opt.state_dict()
    assert_same(round_trip(sd, tmp_path), sd)  # whatever type the moments have (a NumPy scalar here)


@pytest.mark.parametrize("make", [
    lambda p: optim.Adam(p, lr=0.05, amsgrad=True),
    lambda p: optim.AdamW(p, lr=0.05, betas=(0.85, 0.95)),
    lambda p: optim.SGD(p, lr=0.01, momentum=0.9, nesterov=True),
    lambda p: optim.RMSprop(p, lr=0.01, momentum=0.5, centered=True),
    lambda p: optim.Adagrad(p, lr=0.1, lr_decay=0.01),
    lambda p: optim.Adadelta(p),
    lambda p: optim.Adamax(p),
    lambda p: optim.NAdam(p),
    lambda p: optim.RAdam(p),
], ids=["Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam", "RAdam"])
def test_resuming_from_a_checkpoint_takes_exactly_the_same_steps(tmp_path, make):
    x, w = _params()
    opt = make([x, w])
    _steps(opt, x, w, 4)
    path = tmp_path / "resume.ckpt"
    nn.save({"model": {"x": x, "w": w}, "optimizer": opt.state_dict()}, path)
    _steps(opt, x, w, 3)  # the uninterrupted run

    ckpt = nn.load(path)
    x2 = tg.tensor(ckpt["model"]["x"], requires_grad=True)
    w2 = tg.tensor(ckpt["model"]["w"], requires_grad=True)
    assert x2.dtype == x.dtype and w2.dtype == w.dtype
    opt2 = make([x2, w2])
    opt2.param_groups[0]["lr"] = 123.0  # must be restored from the checkpoint
    opt2.load_state_dict(ckpt["optimizer"])
    _steps(opt2, x2, w2, 3)

    assert_same(x2.numpy(), x.numpy())
    assert_same(w2.numpy(), w.numpy())
    assert_same(opt2.state_dict(), opt.state_dict())

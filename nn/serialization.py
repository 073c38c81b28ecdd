"""Checkpoints: `save(obj, path)` writes a state dict to one `.npz` file, `load(path)` reads it back.

What can be saved
-----------------
A tree made of

- dicts whose keys are str or int (both kinds may sit side by side in one dict; a NumPy
  integer key comes back as a Python int),
- lists and tuples (each comes back as what it was),
- NumPy arrays of a bool or numeric dtype, any shape (0-d and empty included), and
  NumPy scalars such as np.float32(1.5) (each comes back with its dtype and shape),
- Tensors, saved as their NumPy arrays (`t.numpy()`), so they come back as arrays,
- Python int (any size), float (nan and ±inf included), bool, str and None.

That covers a model's parameters and an optimizer's `state_dict()` (int keys for the
parameter indices, betas=(0.9, 0.999) as a tuple, NumPy arrays for the moments).
Anything else (a set, an object array, a function, a dict with a float key, ...)
raises TypeError naming where it sits in the tree, e.g. "at state/0/foo". Subclasses
of dict, list, tuple, int, float and str (an OrderedDict, a namedtuple) come back as
the plain type.

The file
--------
An ordinary `.npz` written by numpy.savez at exactly `path` (no ".npz" is appended),
so `numpy.load(path, allow_pickle=False)` opens it:

- the arrays are members "a0", "a1", ... in the order the tree holds them;
- the member "__nn_save__" is a 0-d NumPy unicode array holding a JSON document
  {"format": "tinygrad_edu.nn.save", "version": 1, "tree": NODE}, where NODE is one of

      ["none"]                  ["bool", true]          ["int", 12345678901234567890]
      ["float", 0.1]            ["float", "nan"]        (also "inf" and "-inf")
      ["str", "text"]           ["list", [NODE, ...]]   ["tuple", [NODE, ...]]
      ["dict", [[["str", "lr"], NODE], [["int", 0], NODE], ...]]   (keys in order)
      ["array", "a0"]           ["scalar", "a1"]        (a 0-d member, read back as a NumPy scalar)

Floats are written by JSON as repr(x), which reads back as exactly the same float;
strict JSON has no nan or infinity, so those are spelled as strings. The JSON is ASCII
only (other characters are \\u escapes), so no string is mangled by NumPy's unicode
arrays. Nothing is pickled: save refuses object arrays before numpy.savez sees them,
and load reads with allow_pickle=False.

`load` accepts only a file with that marker: garbage bytes, text, an empty or truncated
file, a `.npy`, a foreign `.npz` (without "__nn_save__") or one whose JSON is damaged
all raise ValueError naming the path and saying what the file is instead; a missing
file raises FileNotFoundError.

The write is atomic: the file is written to a new file beside `path`, flushed and
fsync'ed, then renamed over `path` with os.replace. A crash or an error part-way leaves
any earlier file at `path` as it was, and the new file is removed. The new file is
created with mode 0o666, less the umask, as open() makes any file.
"""
from __future__ import annotations

import json
import math
import os
from typing import Any

import numpy as np

from tinygrad_edu import Tensor

__all__ = ["save", "load"]

FORMAT = "tinygrad_edu.nn.save"
VERSION = 1
META = "__nn_save__"  # the member that holds the JSON description of the tree
_ARRAY_KINDS = "biufc"  # bool, signed and unsigned int, float, complex
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}
_PLAIN = {"bool": bool, "int": int, "float": float, "str": str}  # tags whose JSON value is the value


def _where(path: str) -> str:
    return f"at {path}" if path else "at the top level"


def _join(path: str, key: Any) -> str:
    return f"{path}/{key}" if path else str(key)


# ---- save ---------------------------------------------------------------------------


class _Encoder:
    """Turns a tree into a JSON-able node, collecting its arrays as members a0, a1, ..."""

    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []
        self.open: set[int] = set()  # ids of the containers being encoded (to catch a cycle)

    def member(self, array: np.ndarray, path: str) -> str:
        if array.dtype.kind not in _ARRAY_KINDS or array.dtype.fields is not None:
            raise TypeError(f"nn.save: cannot save an array of dtype {array.dtype} {_where(path)} "
                            "(only bool and numeric arrays)")
        self.arrays.append(array)
        return f"a{len(self.arrays) - 1}"

    def node(self, obj: Any, path: str) -> list:
        if isinstance(obj, Tensor):
            return ["array", self.member(np.asarray(obj.numpy()), path)]
        if isinstance(obj, np.ndarray):
            if isinstance(obj, np.ma.MaskedArray):
                raise TypeError(f"nn.save: cannot save a masked array {_where(path)} (its mask would be lost)")
            return ["array", self.member(np.asarray(obj), path)]
        if isinstance(obj, np.generic):  # before float: np.float64 is a subclass of float
            return ["scalar", self.member(np.asarray(obj), path)]
        if obj is None:
            return ["none"]
        if isinstance(obj, bool):  # before int: bool is a subclass of int
            return ["bool", bool(obj)]
        if isinstance(obj, int):
            return ["int", int(obj)]
        if isinstance(obj, float):
            value = float(obj)
            return ["float", value if math.isfinite(value) else repr(value)]
        if isinstance(obj, str):
            return ["str", str(obj)]
        if isinstance(obj, (dict, list, tuple)):
            if id(obj) in self.open:
                raise ValueError(f"nn.save: the {type(obj).__name__} {_where(path)} contains itself")
            self.open.add(id(obj))
            try:
                if isinstance(obj, dict):
                    return ["dict", [[self.key(k, path), self.node(v, _join(path, k))] for k, v in obj.items()]]
                items = [self.node(v, _join(path, i)) for i, v in enumerate(obj)]
                return ["tuple" if isinstance(obj, tuple) else "list", items]
            finally:
                self.open.discard(id(obj))
        raise TypeError(f"nn.save: cannot save a {type(obj).__name__} {_where(path)}")

    @staticmethod
    def key(key: Any, path: str) -> list:
        if isinstance(key, str):
            return ["str", str(key)]
        if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
            return ["int", int(key)]  # a NumPy integer key (from np.unique, say) comes back as int
        raise TypeError(f"nn.save: cannot save a dict key of type {type(key).__name__} ({key!r}) "
                        f"{_where(path)} (keys must be str or int)")


def _new_file_beside(path: str) -> tuple[str, Any]:
    """A new file, opened for writing, in the directory of `path` (so os.replace is a
    rename within one filesystem), with ordinary permissions (0o666 less the umask)."""
    directory, name = os.path.split(os.path.abspath(path))
    while True:
        tmp = os.path.join(directory, f".{name}.{os.urandom(4).hex()}.tmp")
        try:
            return tmp, open(tmp, "xb")
        except FileExistsError:  # another writer drew the same name
            continue


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write the tree `obj` (see the module docstring) to exactly `path` as one .npz file,
    atomically: an earlier file at `path` is replaced only once the new one is complete."""
    path = os.fspath(path)
    encoder = _Encoder()
    tree = encoder.node(obj, "")  # every TypeError comes before the filesystem is touched
    document = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree}, ensure_ascii=True, allow_nan=False)
    members = {META: np.array(document, dtype=str)}
    members.update((f"a{i}", array) for i, array in enumerate(encoder.arrays))

    tmp, file = _new_file_beside(path)
    try:
        with file:
            np.savez(file, **members)  # no object array reaches it, so nothing is pickled
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# ---- load ---------------------------------------------------------------------------


class _Corrupt(ValueError):
    """The file is not one that nn.save wrote (the reason is the message)."""


class _Decoder:
    """Turns a node back into the tree, reading arrays from the archive's members."""

    def __init__(self, archive: Any) -> None:
        self.archive = archive
        self.names = set(archive.files)

    def member(self, name: Any) -> np.ndarray:
        if not isinstance(name, str) or name == META or name not in self.names:
            raise _Corrupt(f"the tree names an array member {name!r} that the file does not hold")
        array = self.archive[name]
        if array.dtype.kind not in _ARRAY_KINDS or array.dtype.fields is not None:
            raise _Corrupt(f"member {name!r} has dtype {array.dtype}, which nn.save never writes")
        return array

    def node(self, node: Any) -> Any:
        if not isinstance(node, list) or not node or not isinstance(node[0], str):
            raise _Corrupt(f"malformed node {str(node)[:80]!r} in the tree")
        tag, args = node[0], node[1:]
        if tag == "none" and not args:
            return None
        if len(args) != 1:
            raise _Corrupt(f"malformed {tag!r} node in the tree")
        value = args[0]
        if tag in _PLAIN and type(value) is _PLAIN[tag]:  # type(True) is bool, not int
            return value
        if tag == "float" and isinstance(value, str) and value in _NONFINITE:
            return _NONFINITE[value]
        if tag in ("list", "tuple") and isinstance(value, list):
            items = [self.node(item) for item in value]
            return items if tag == "list" else tuple(items)
        if tag == "dict" and isinstance(value, list):
            out = {}
            for entry in value:
                if not isinstance(entry, list) or len(entry) != 2:
                    raise _Corrupt("malformed dict entry in the tree")
                key = self.node(entry[0])
                if isinstance(key, bool) or not isinstance(key, (str, int)):
                    raise _Corrupt(f"a dict key of type {type(key).__name__} in the tree")
                out[key] = self.node(entry[1])
            return out
        if tag == "array":
            return self.member(value)
        if tag == "scalar":
            array = self.member(value)
            if array.shape != ():
                raise _Corrupt(f"scalar member {value!r} has shape {array.shape}")
            return array[()]
        raise _Corrupt(f"malformed {tag!r} node in the tree")


def _reject_constant(name: str) -> None:
    raise _Corrupt(f"non-standard JSON constant {name}")


def _not_a_zip(head: bytes) -> str | None:
    """What a file starting with `head` is, when it cannot be an .npz (a zip archive)."""
    if head.startswith(b"PK\x03\x04"):
        return None
    if not head:
        return "the file is empty"
    if head.startswith(b"\x93NUMPY"):
        return "it is a single .npy array, not an .npz archive"
    if head.startswith(b"\x80"):
        return "it looks like a pickle, which nn.load never reads"
    text = head.decode("utf-8", errors="ignore")
    if b"\x00" not in head and len(text) >= len(head) - 3 and all(c.isprintable() or c.isspace() for c in text):
        return "it looks like text"
    return "it does not start as a zip archive (which an .npz is)"


def _read(file: Any) -> Any:
    reason = _not_a_zip(file.read(64))
    if reason:
        raise _Corrupt(reason)
    file.seek(0)
    with np.load(file, allow_pickle=False) as archive:
        if META not in archive.files:
            raise _Corrupt(f"it is an .npz without the {META!r} member (a foreign .npz)")
        meta = archive[META]
        if meta.dtype.kind != "U" or meta.shape != ():
            raise _Corrupt(f"the {META!r} member is not a 0-d string array")
        try:
            document = json.loads(str(meta[()]), parse_constant=_reject_constant)
        except json.JSONDecodeError as e:
            raise _Corrupt(f"the tree's JSON is damaged: {e}") from e
        if not isinstance(document, dict) or document.get("format") != FORMAT or "tree" not in document:
            raise _Corrupt(f"the {META!r} member does not describe a {FORMAT} file")
        version = document.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or not 1 <= version <= VERSION:
            raise _Corrupt(f"format version {version!r}; this nn.load reads versions 1 to {VERSION}")
        return _Decoder(archive).node(document["tree"])


def load(path: str | os.PathLike) -> Any:
    """Read the tree that `save` wrote to `path`: dicts (str and int keys), lists, tuples,
    NumPy arrays with their dtype and shape, and Python numbers, strings, bools and None.
    Raises FileNotFoundError for a missing file and ValueError for a file save did not write."""
    path = os.fspath(path)
    with open(path, "rb") as file:  # FileNotFoundError, IsADirectoryError, ... as they are
        try:
            return _read(file)
        except _Corrupt as e:
            reason = str(e)
        except Exception as e:  # a damaged zip: truncated, a member that does not read back, ...
            reason = f"{type(e).__name__}: {e}"
    raise ValueError(f"nn.load: {path!r} is not an .npz checkpoint written by nn.save: {reason}")

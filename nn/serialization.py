"""Checkpoints: `save(obj, path)` writes a state dict to one `.npz` file, `load(path)` reads it back.

What can be saved
-----------------
A tree made of

- dicts whose keys are str or int (both kinds may sit side by side in one dict),
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
An ordinary `.npz` (a zip of `.npy` files, as numpy.savez writes) at exactly `path`
(no ".npz" is appended), so `numpy.load(path, allow_pickle=False)` opens it:

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
arrays. Nothing is pickled, on either side: the members are written and read with
allow_pickle=False, and a file holding an object array is refused.

`load` accepts only a file with that marker: garbage bytes, an empty or truncated file,
a `.npy`, a foreign `.npz` (without "__nn_save__") or one whose JSON is damaged all
raise ValueError naming the path; a missing file raises FileNotFoundError.

The write is atomic: the file is written to a temporary file in the same directory,
flushed and fsync'ed, then renamed over `path` with os.replace. A crash or an error
part-way leaves any earlier file at `path` as it was, and the temporary file is removed.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
import zipfile
from typing import Any

import numpy as np

from tinygrad_edu import Tensor

__all__ = ["save", "load"]

FORMAT = "tinygrad_edu.nn.save"
VERSION = 1
META = "__nn_save__"  # the member that holds the JSON description of the tree
_ARRAY_KINDS = "biufc"  # bool, signed and unsigned int, float, complex
_NONFINITE = {"nan": math.nan, "inf": math.inf, "-inf": -math.inf}


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
        if isinstance(key, int) and not isinstance(key, bool):
            return ["int", int(key)]
        raise TypeError(f"nn.save: cannot save a dict key of type {type(key).__name__} ({key!r}) "
                        f"{_where(path)} (keys must be str or int)")


def _write_npz(file: Any, members: dict[str, np.ndarray]) -> None:
    """Write the members as an uncompressed .npz to an open binary file (as numpy.savez does)."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for name, array in members.items():
            with archive.open(name + ".npy", mode="w", force_zip64=True) as out:
                np.lib.format.write_array(out, array, allow_pickle=False)


def _new_file_mode(path: str) -> int:
    """The permissions `path` should get: those of the file it replaces, else 0o666 less the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def save(obj: Any, path: str | os.PathLike) -> None:
    """Write the tree `obj` (see the module docstring) to exactly `path` as one .npz file,
    atomically: an earlier file at `path` is replaced only once the new one is complete."""
    path = os.fspath(path)
    encoder = _Encoder()
    tree = encoder.node(obj, "")  # every TypeError comes before the filesystem is touched
    document = json.dumps({"format": FORMAT, "version": VERSION, "tree": tree}, ensure_ascii=True, allow_nan=False)
    members = {META: np.array(document, dtype=str)}
    members.update((f"a{i}", array) for i, array in enumerate(encoder.arrays))

    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            _write_npz(file, members)
            file.flush()
            os.fsync(file.fileno())
        if hasattr(os, "chmod"):
            os.chmod(tmp, _new_file_mode(path))  # mkstemp makes it 0o600
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    try:  # make the rename itself durable (POSIX; not possible on Windows)
        dir_fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass
    finally:
        os.close(dir_fd)


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
        if tag == "bool" and isinstance(value, bool):
            return value
        if tag == "int" and isinstance(value, int) and not isinstance(value, bool):
            return value
        if tag == "float" and isinstance(value, float):
            return value
        if tag == "float" and isinstance(value, str) and value in _NONFINITE:
            return _NONFINITE[value]
        if tag == "str" and isinstance(value, str):
            return value
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


def _read(file: Any) -> Any:
    try:
        archive = np.load(file, allow_pickle=False)
    except Exception as e:  # garbage, an empty or truncated file, a pickle
        raise _Corrupt(f"not a readable .npz file: {type(e).__name__}: {e}") from e
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise _Corrupt("a single .npy array, not an .npz archive")
    with archive:
        if META not in archive.files:
            raise _Corrupt(f"a .npz without the {META!r} member (a foreign .npz)")
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
            raise ValueError(f"nn.load: {path!r} is not a checkpoint written by nn.save: {e}") from e.__cause__
        except Exception as e:  # a member that does not read back (damaged zip entry, bad header, ...)
            raise ValueError(f"nn.load: {path!r} is not a checkpoint written by nn.save: "
                             f"{type(e).__name__}: {e}") from e

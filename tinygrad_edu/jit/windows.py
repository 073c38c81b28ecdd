"""The windows pass (with `fuse=True`): the kh×kw copies that gather the windows of a
convolution or a pooling made one loop.

Windows.forward (tinygrad_edu/ops.py) gathers the windows of an image offset by offset:
for each pixel (i, j) of the kernel, one copy of a strided view of the image,
`out[i, j] = x[:, :, i::sh, j::sw]`: 9 copies for W6's 3×3 convolution, 4 for its 2×2
pooling. Each is a NumPy copy whose inner loop runs over a few elements (6 or 3, or one
channel at a time when the image is laid out channels last, as the convolution's output
is), so most of its time goes to looping: 3 to 10 µs a copy in W6's replay. This pass finds
those copies on the tape and makes them one call of `copy_windows`, a compiled loop that
walks the image in its memory order. Bit for bit: it copies the same elements.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

from ..backend import backend_of, is_device_array
from .passes import leaving
from .gather import is_slot
from .tape import Call, Slot, Tape, slots_in
from .traced import Method

GETITEM, SETITEM = Method.named("__getitem__"), Method.named("__setitem__")


def gather_windows(tape: Tape) -> Tape:
    """The tape with each run of Windows.forward's copies (a getitem of a window's view, a
    setitem into the windows, for every pixel of the kernel in turn) made one copy_windows."""
    readers: dict = {}
    for k, call in enumerate(tape.calls):
        for slot in slots_in((call.args, call.kwargs)):
            readers.setdefault(slot, set()).add(k)
    kept, calls, k = leaving(tape), [], 0
    while k < len(tape.calls):
        gathered = windows_copied(tape, k, readers, kept)
        calls.append(tape.calls[k] if gathered is None else gathered[1])
        k = k + 1 if gathered is None else gathered[0]
    return dataclasses.replace(tape, calls=calls, passes=tape.passes + ["gather_windows"])


def windows_copied(tape: Tape, start: int, readers: dict, kept: set) -> tuple[int, Call] | None:
    """(the index after the run, its copy_windows call) when Windows.forward's kh·kw copies
    of one image into one array of windows begin at `start`, on "cpu"; else None."""
    calls = tape.calls
    if start + 1 >= len(calls):
        return None
    get, put = calls[start], calls[start + 1]
    if get.func is not GETITEM or put.func is not SETITEM or not isinstance(get.args[0], Slot) \
            or not isinstance(put.args[0], Slot) or not isinstance(get.args[1], tuple) or len(get.args[1]) != 4 \
            or not all(isinstance(s, slice) for s in get.args[1]):
        return None
    image, windows = get.args[0], put.args[0]
    x, out = tape.values[image.n], tape.values[windows.n]
    if not (is_device_array(out) and is_device_array(x) and backend_of(out)[0].name == "cpu" and out.ndim == 6
            and x.ndim == 4 and out.dtype == x.dtype and out.shape[2:4] == x.shape[:2]):
        return None
    kh, kw, _, _, oh, ow = out.shape
    steps = get.args[1][2].step, get.args[1][3].step
    end = start + 2 * kh * kw
    if end > len(calls):
        return None
    for q in range(kh * kw):
        get, put = calls[start + 2 * q], calls[start + 2 * q + 1]
        if not (get.func is GETITEM and is_slot(get.args[0], image.n) and get.out not in kept
                and get.args[1] == window_index(*divmod(q, kw), steps, oh, ow) and put.func is SETITEM
                and is_slot(put.args[0], windows.n) and put.args[1] == divmod(q, kw) and is_slot(put.args[2], get.out)
                and readers.get(get.out) == {start + 2 * q + 1}):
            return None
    copy_windows(out.copy(), x, *steps)  # compiled now (or loaded from Numba's cache), not at a replay
    return end, Call(copy_windows, (windows, image, *steps), {}, None, True, False, put.section)


def window_index(i: int, j: int, steps: tuple, oh: int, ow: int) -> tuple:
    """The index Windows.forward takes of the image for pixel (i, j) of every window."""
    sh, sw = steps
    return (slice(None), slice(None), slice(i, i + sh * oh, sh), slice(j, j + sw * ow, sw))


def copy_windows(out: Any, x: Any, sh: int, sw: int) -> None:
    """out[i, j, b, c, p, q] = x[b, c, i + p·sh, j + q·sw] for every element: Windows.forward
    in one loop."""
    compiled()(out, x, sh, sw)


@functools.cache
def compiled() -> Callable:
    """window_loops compiled by Numba (the `jit` extra that fuse=True needs), kept on disk."""
    import numba
    return numba.njit(cache=True, no_cfunc_wrapper=True)(window_loops)


def window_loops(out: Any, x: Any, sh: int, sw: int) -> None:
    """The loops of copy_windows, innermost along the image's axis of smallest stride: the
    channels when it is laid out channels last (a convolution's output), else its columns."""
    kh, kw, n, channels, oh, ow = out.shape
    channels_last = x.strides[1] < x.strides[3]
    for i in range(kh):
        for j in range(kw):
            for b in range(n):
                if channels_last:
                    for p in range(oh):
                        for q in range(ow):
                            for c in range(channels):
                                out[i, j, b, c, p, q] = x[b, c, i + p * sh, j + q * sw]
                else:
                    for c in range(channels):
                        for p in range(oh):
                            for q in range(ow):
                                out[i, j, b, c, p, q] = x[b, c, i + p * sh, j + q * sw]

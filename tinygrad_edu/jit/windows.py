"""The windows pass (with `fuse=True`): the kh×kw copies that gather the windows of a
convolution or a pooling (and put a pooling's gradient back) made one loop.

Windows.forward (tinygrad_edu/ops.py) gathers the windows of an image offset by offset:
for each pixel (i, j) of the kernel, one copy of a strided view of the image,
`out[i, j] = x[:, :, i::sh, j::sw]`: 9 copies for W6's 3×3 convolution, 4 for its 2×2
pooling. Each is a NumPy copy whose inner loop runs over a few elements (6 or 3, or one
channel at a time when the image is laid out channels last, as the convolution's output
is), so most of its time goes to looping: 3 to 10 µs a copy in W6's replay. This pass finds
those copies on the tape and makes them one call of `copy_windows`, a compiled loop that
walks the image in its memory order, and does the same for the copies with which
WindowsAdjoint puts a pooling's gradient back into the image where the windows tile it
(`copy_windows_back`). Bit for bit: it copies the same elements.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

from ..backend import backend_of, is_device_array
from .passes import leaving
from .gather import is_slot
from .tape import Call, Slot, Tape, readers_of
from .traced import Method

GETITEM, SETITEM = Method.named("__getitem__"), Method.named("__setitem__")


def gather_windows(tape: Tape) -> Tape:
    """The tape with each run of Windows' copies (for every pixel of the kernel in turn, a
    getitem of the windows' view of the image and a setitem of it into the windows) made one
    copy_windows, and each run of WindowsAdjoint's (a getitem of that view, a getitem of the
    windows' pixel, a setitem of the one into the other) one copy_windows_back."""
    readers, kept, calls, k = readers_of(tape.calls), leaving(tape), [], 0
    while k < len(tape.calls):
        copied = windows_copied(tape, k, readers, kept, back=False) or windows_copied(tape, k, readers, kept, back=True)
        calls.append(tape.calls[k] if copied is None else copied[1])
        k = k + 1 if copied is None else copied[0]
    return dataclasses.replace(tape, calls=calls, passes=tape.passes + ["gather_windows"])


def windows_copied(tape: Tape, start: int, readers: dict, kept: set, back: bool) -> tuple[int, Call] | None:
    """(the index after the run, the call that replaces it) when the kh·kw copies of Windows
    (of WindowsAdjoint, `back`) between one image and one array of windows begin at `start`,
    on "cpu"; else None."""
    calls, size = tape.calls, 3 if back else 2  # the calls a pixel takes
    if start + size > len(calls):
        return None
    first, put = calls[start], calls[start + size - 1]
    if first.func is not GETITEM or put.func is not SETITEM or back and calls[start + 1].func is not GETITEM \
            or not isinstance(first.args[1], tuple) or len(first.args[1]) != 4 \
            or not all(isinstance(s, slice) for s in first.args[1]):
        return None
    image, windows = first.args[0], calls[start + 1].args[0] if back else put.args[0]
    if not (isinstance(image, Slot) and isinstance(windows, Slot)):
        return None
    x, w = tape.values[image.n], tape.values[windows.n]
    if not (is_device_array(w) and is_device_array(x) and backend_of(w)[0].name == "cpu" and w.ndim == 6
            and x.ndim == 4 and w.dtype == x.dtype and w.shape[2:4] == x.shape[:2]):
        return None
    kh, kw, _, _, oh, ow = w.shape
    steps = first.args[1][2].step, first.args[1][3].step
    end = start + size * kh * kw
    if end > len(calls):
        return None
    for q in range(kh * kw):
        view, put = calls[start + size * q], calls[start + size * q + size - 1]
        pixel = calls[start + 3 * q + 1] if back else None
        if not (view.func is GETITEM and is_slot(view.args[0], image.n) and view.out not in kept
                and view.args[1] == window_index(*divmod(q, kw), steps, oh, ow) and put.func is SETITEM
                and readers.get(view.out) == {start + size * q + size - 1}):
            return None
        if back and not (pixel.func is GETITEM and is_slot(pixel.args[0], windows.n) and pixel.out not in kept
                         and pixel.args[1] == divmod(q, kw) and readers.get(pixel.out) == {start + 3 * q + 2}
                         and is_slot(put.args[0], view.out) and put.args[1] is Ellipsis
                         and is_slot(put.args[2], pixel.out)):
            return None
        if not back and not (is_slot(put.args[0], windows.n) and put.args[1] == divmod(q, kw)
                             and is_slot(put.args[2], view.out)):
            return None
    function, written, read = (copy_windows_back, image, windows) if back else (copy_windows, windows, image)
    scratch = backend_of(w)[0].xp.empty_like(tape.values[written.n])  # of the same layout: compiled now, for it
    function(scratch, tape.values[read.n], *steps)
    return end, Call(function, (written, read, *steps), {}, None, True, False, put.section)


def window_index(i: int, j: int, steps: tuple, oh: int, ow: int) -> tuple:
    """The index Windows.forward takes of the image for pixel (i, j) of every window."""
    sh, sw = steps
    return (slice(None), slice(None), slice(i, i + sh * oh, sh), slice(j, j + sw * ow, sw))


def copy_windows(windows: Any, image: Any, sh: int, sw: int) -> None:
    """windows[i, j, b, c, p, q] = image[b, c, i + p·sh, j + q·sw] for every element:
    Windows.forward in one loop."""
    compiled()(windows, image, sh, sw, True)


def copy_windows_back(image: Any, windows: Any, sh: int, sw: int) -> None:
    """image[b, c, i + p·sh, j + q·sw] = windows[i, j, b, c, p, q] for every element: the
    forward of WindowsAdjoint where the windows tile the image, in one loop."""
    compiled()(windows, image, sh, sw, False)


@functools.cache
def compiled() -> Callable:
    """window_loops compiled by Numba (the `jit` extra that fuse=True needs), kept on disk."""
    import numba
    return numba.njit(cache=True, no_cfunc_wrapper=True)(window_loops)


def window_loops(windows: Any, image: Any, sh: int, sw: int, gather: bool) -> None:
    """The loops of copy_windows (gather) and copy_windows_back, innermost along the image's
    axis of smallest stride: the channels when it is laid out channels last (a convolution's
    output), else its columns."""
    kh, kw, n, channels, oh, ow = windows.shape
    channels_last = image.strides[1] < image.strides[3]
    for i in range(kh):
        for j in range(kw):
            for b in range(n):
                for outer in range(oh if channels_last else channels):
                    for middle in range(ow if channels_last else oh):
                        for inner in range(channels if channels_last else ow):
                            c, p, q = (inner, outer, middle) if channels_last else (outer, middle, inner)
                            if gather:
                                windows[i, j, b, c, p, q] = image[b, c, i + p * sh, j + q * sw]
                            else:
                                image[b, c, i + p * sh, j + q * sw] = windows[i, j, b, c, p, q]

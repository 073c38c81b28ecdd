"""Many arrays as one flat vector, and the vector cut back into arrays.

Two places treat all the parameters of a model as one vector: the second-order
optimizers (optim/flat.py), whose θ, gradient and search direction are vectors over every
parameter, and DistributedOptimizer (distributed.py), which sends every gradient in one
message. Both lay the arrays end to end in the same order, each in row-major (C) order,
and take pieces back by the same offsets.
"""
from __future__ import annotations

import math
from typing import Any, Sequence


def flatten(xp: Any, arrays: Sequence[Any]) -> Any:
    """A new vector holding `arrays` one after another, each in row-major order (0-d
    arrays take one entry); `xp` is the arrays' library or Backend."""
    return xp.concatenate([a.reshape(-1) for a in arrays])


def unflatten(vector: Any, shapes: Sequence[tuple]) -> list:
    """`vector` cut into arrays of `shapes`, in order: views into it, so writing into a
    piece writes into the vector (and the vector's later changes show in the pieces)."""
    pieces, offset = [], 0
    for shape in shapes:
        size = math.prod(shape)
        pieces.append(vector[offset:offset + size].reshape(shape))
        offset += size
    return pieces

"""One walker over nested values: the tuples, lists and dicts that hold a call's arguments,
a function's result or an optimizer's state, down to their leaves (autodidax's
`tree_flatten`, in its smallest form). Every part of the jit that looks inside nested
values (making traced values plain, turning them into slots, writing a replay's line,
printing the tape) is one `tree_map` with its own leaf function.
"""
from __future__ import annotations

from typing import Any, Callable


def rebuilt(kind: type, items: Any) -> Any:
    """A container of the same kind as the one walked (a dict subclass becomes a dict)."""
    return dict(items) if kind is dict else kind(items)


def tree_map(leaf: Callable[[Any], Any], obj: Any, container: Callable[[type, Any], Any] = rebuilt) -> Any:
    """obj with each leaf (anything but a tuple, a list or a dict) replaced by leaf(it).
    `container(kind, items)` rebuilds each container from its mapped items (a list of
    values, or of (key, value) pairs for a dict): by default one of the same kind."""
    if isinstance(obj, (tuple, list)):
        return container(type(obj), [tree_map(leaf, o, container) for o in obj])
    if isinstance(obj, dict):
        return container(dict, [(k, tree_map(leaf, v, container)) for k, v in obj.items()])
    return leaf(obj)


def leaves(obj: Any, found: list | None = None) -> list:
    """The leaves of obj, in order (appended to `found` when given)."""
    found = [] if found is None else found
    if isinstance(obj, (tuple, list)):
        for o in obj:
            leaves(o, found)
    elif isinstance(obj, dict):
        for o in obj.values():
            leaves(o, found)
    else:
        found.append(obj)
    return found

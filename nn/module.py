"""Module and Parameter: how layers hold their weights and find each other.

A Module's parameters are found by looking at its attributes, in the order they were
first assigned: a Parameter is a parameter, a Module is searched in turn, and lists,
tuples and dicts are searched item by item (named by index or key). So
`self.layers = [Linear(2, 3), Linear(3, 1)]` registers "layers.0.weight", ..., with no
registration call. Buffers (a tensor that belongs in the state dict but is not trained,
like BatchNorm's running mean) are declared with `register_buffer`.
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy

from tinygrad_edu import Tensor
from tinygrad_edu.backend import get_backend


def _saved_array(who: str, name: str, value: Any, t: Tensor) -> Any:
    """A saved entry (a NumPy or CuPy array, a number or a list), checked to fit the tensor
    it will be copied into."""
    array = value if hasattr(value, "dtype") else numpy.asarray(value)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{who}: {name!r} must be numeric, got {type(value).__name__} of dtype {array.dtype}")
    if array.shape != t.shape:
        raise RuntimeError(f"{who}: {name!r} has shape {array.shape}, this module's has shape {t.shape}")
    return array


class Parameter(Tensor):
    """A leaf Tensor that requires grad: a weight that Module.parameters() finds."""

    __slots__ = ()

    def __init__(self, data: Any):
        super().__init__(data, requires_grad=True)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


def _members(value: Any, prefix: str) -> Iterator[tuple]:
    """(name, Parameter or Module) pairs inside an attribute value: itself, or the items of
    a list, tuple or dict."""
    if isinstance(value, (Parameter, Module)):
        yield prefix, value
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            yield from _members(item, f"{prefix}.{i}")
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _members(item, f"{prefix}.{key}")


class Module:
    """Base class of layers and models: subclasses set attributes in __init__ and define
    forward; calling the module calls forward."""

    training: bool = True

    def __init__(self) -> None:
        self._buffers: list = []

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The layer's computation: each subclass defines it; call the module, not forward."""
        raise NotImplementedError(f"{type(self).__name__} defines no forward")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def register_buffer(self, name: str, tensor: Tensor) -> None:
        """Keep `tensor` as attribute `name`, saved in the state dict but not trained."""
        setattr(self, name, tensor)
        if name not in self.__dict__.setdefault("_buffers", []):
            self._buffers.append(name)

    # ---- walking the tree ------------------------------------------------------------

    def _named_members(self) -> Iterator[tuple]:
        for name, value in vars(self).items():
            if not name.startswith("_"):
                yield from _members(value, name)

    def named_children(self) -> list:
        """(name, module) for the modules directly inside this one."""
        return [(name, m) for name, m in self._named_members() if isinstance(m, Module)]

    def children(self) -> list:
        """The modules directly inside this one."""
        return [m for _, m in self.named_children()]

    def named_modules(self, prefix: str = "", seen: set | None = None) -> list:
        """(name, module) for this module and every module inside it, depth first, each
        once (a module used twice under its first name), as PyTorch."""
        seen = set() if seen is None else seen
        if id(self) in seen:
            return []
        seen.add(id(self))
        found = [(prefix, self)]
        for name, child in self.named_children():
            found += child.named_modules(f"{prefix}.{name}" if prefix else name, seen)
        return found

    def modules(self) -> list:
        """This module and every module inside it."""
        return [m for _, m in self.named_modules()]

    def _named_tensors(self) -> list:
        """(dotted name, tensor) for every parameter and buffer, each once, in PyTorch's
        state-dict order: module by module, each one's parameters and then its buffers."""
        found, seen = [], set()
        for prefix, module in self.named_modules():
            own = [(name, value) for name, value in module._named_members() if isinstance(value, Parameter)]
            own += [(name, getattr(module, name)) for name in module.__dict__.get("_buffers", [])]
            for name, t in own:
                if id(t) not in seen:
                    seen.add(id(t))
                    found.append((f"{prefix}.{name}" if prefix else name, t))
        return found

    def named_parameters(self) -> list:
        """(dotted name, parameter) in registration order, each parameter once."""
        return [(name, t) for name, t in self._named_tensors() if isinstance(t, Parameter)]

    def parameters(self) -> list:
        """Every parameter, in registration order, each once (shared ones too)."""
        return [p for _, p in self.named_parameters()]

    def named_buffers(self) -> list:
        """(dotted name, buffer) for every registered buffer, each once."""
        return [(name, t) for name, t in self._named_tensors() if not isinstance(t, Parameter)]

    # ---- modes and devices ---------------------------------------------------------------

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient: None, or with set_to_none=False zeros (for
        the parameters that had a gradient), as Optimizer.zero_grad."""
        for p in self.parameters():
            if p.grad is not None:
                p.grad = None if set_to_none else Tensor.wrap(p.backend.zeros_like(p.data), p.backend)

    def train(self, mode: bool = True) -> "Module":
        """Training mode (Dropout drops, BatchNorm uses batch statistics) for this module and
        all inside it; returns self."""
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> "Module":
        """Evaluation mode: train(False)."""
        return self.train(False)

    def to(self, device: str) -> "Module":
        """Move every parameter and buffer, and its gradient, to `device` in place
        (optimizers keep working on the same Parameter objects); returns self. Tensors
        already there are left as they are, as PyTorch."""
        backend = get_backend(device)
        for _, t in self._named_tensors():
            if t.backend is backend:
                continue
            moved = t.detach().to(device)
            t.data, t.backend = moved.data, moved.backend
            t.bump_version()
            if t.grad is not None:
                t.grad = t.grad.detach().to(device)
        return self

    # ---- state -----------------------------------------------------------------------

    def state_dict(self) -> dict:
        """name -> NumPy array (a copy) for every parameter and buffer, in PyTorch's order
        (module by module: its parameters, then its buffers)."""
        return {name: t.numpy().copy() for name, t in self._named_tensors()}

    def load_state_dict(self, state_dict: dict, strict: bool = True) -> tuple:
        """Copy arrays from `state_dict` into the parameters and buffers of the same names.

        With strict=True a missing or unexpected name raises RuntimeError; a shape
        mismatch always does. Returns (missing_keys, unexpected_keys).
        """
        who = f"{type(self).__name__}.load_state_dict"
        own = dict(self._named_tensors())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        if strict and (missing or unexpected):
            raise RuntimeError(f"{who}: missing keys {missing}, unexpected keys {unexpected}")
        arrays = {name: _saved_array(who, name, state_dict[name], t) for name, t in own.items() if name in state_dict}
        for name, value in arrays.items():
            own[name].copy_(value)
        return missing, unexpected

    def extra_repr(self) -> str:
        """The arguments shown in repr, e.g. "in_features=2, out_features=3"."""
        return ""

    def __repr__(self) -> str:
        children = self.named_children()
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in children]
        return f"{type(self).__name__}(\n" + "\n".join(lines) + "\n)"

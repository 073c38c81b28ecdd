"""Reverse-mode automatic differentiation: graph nodes, the backward walk and `grad`.

Every differentiable op is a `Function` subclass with `forward` (arrays in, array out)
and `backward` (the gradient of the output in, one gradient per input out) side by side.
`backward` is written with Tensor operations, so when it runs with gradients enabled
(`create_graph=True`) it records a graph of its own, and differentiating that graph
gives second derivatives, and so on to any order.

The graph only points backwards: a tensor holds its `grad_fn` node, a node holds its
input tensors and its output *array*, never the output Tensor. With no cycles, a graph
is freed by reference counting the moment nothing refers to it.
"""
from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

from .backend import Backend, backend_of
from .tensor import Tensor


class _State:
    """Global switches of the engine."""

    grad_enabled = True  # record graphs for ops on tensors that require grad
    anomaly = False  # detect_anomaly(): check every op's output for NaN/inf
    order = 0  # differentiation order of the nodes being made (0 outside backward)
    backward_of: "Function | None" = None  # whose backward is running (for anomaly messages)
    backward_creates_graph = False  # backward_creates_graph(): every backward() as create_graph=True


state = _State()


class _Switch:
    """Sets one of the engine's switches (an attribute of `state`) to `value` inside a
    `with` block, or around a function as a decorator (@no_grad and @no_grad() alike)."""

    flag: str
    value: bool

    def __new__(cls, func: Callable | None = None) -> Any:
        switch = super().__new__(cls)
        return switch if func is None else switch(func)

    def __enter__(self) -> "_Switch":
        self.previous = getattr(state, self.flag)
        setattr(state, self.flag, self.value)
        return self

    def __exit__(self, *exc: Any) -> None:
        setattr(state, self.flag, self.previous)

    def __call__(self, func: Callable) -> Callable:
        switch = type(self)

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with switch():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_Switch):
    """Ops inside record no graph (evaluation, optimizer steps)."""

    flag, value = "grad_enabled", False


class enable_grad(_Switch):
    """Ops inside record graphs again, even within no_grad."""

    flag, value = "grad_enabled", True


class detect_anomaly(_Switch):
    """Raise FloatingPointError at the first op that turns finite inputs into NaN or inf,
    in forward or in backward, naming the op (and, in backward, the node whose gradient
    was being computed)."""

    flag, value = "anomaly", True


class backward_creates_graph(_Switch):
    """Inside, every Tensor.backward() acts as backward(create_graph=True), so the
    gradients a closure leaves in `.grad` are differentiable Tensors whose graph is kept.

    Public because optimizers that need Hessian-vector products (NewtonCG, Newton,
    TrustRegionNewtonCG) call the user's closure inside it: the closure keeps the usual
    contract (zero the grads, compute the loss, call backward, return the loss) and the
    optimizer then differentiates the `.grad` it left. Outside such a call nothing changes.
    """

    flag, value = "backward_creates_graph", True


class Function:
    """A node of the graph: one op, its forward and its backward.

    Subclasses define `forward(self, xp, *arrays)`, computing the output array with the
    device's functions `xp` (NumPy's or CuPy's, see backend.py), and `backward(self, grad)`,
    returning for each input the gradient of the output with respect to it (a Tensor, or
    None for an input that needs none). Inside backward, `self.inputs` are the input
    Tensors and `self.output()` is the output as a Tensor of this graph. Op parameters
    (axis, shape, ...) are passed to `apply` as keywords and become attributes.
    """

    __slots__ = ("inputs", "output_array", "order", "__weakref__")

    @property
    def name(self) -> str:
        """The op's name, e.g. "Mul"."""
        return type(self).__name__

    def __repr__(self) -> str:
        return f"<{self.name}>"

    @classmethod
    def apply(cls, *inputs: Tensor, **params: Any) -> Tensor:
        """Run the op forward on `inputs` and, when gradients are needed, record the node."""
        node = object.__new__(cls)
        if params:
            for key, value in params.items():
                setattr(node, key, value)
        backend = inputs[0].backend
        arrays, requires_grad = [], False
        for t in inputs:
            if t.backend is not backend:
                raise RuntimeError(
                    f"{node.name}: expected all tensors on one device, got {backend.name} and {t.backend.name}"
                )
            arrays.append(t.data)
            requires_grad = requires_grad or t.requires_grad
        try:
            out = node.forward(backend, *arrays)
        except (ValueError, IndexError, TypeError) as e:  # say which op, with which shapes
            kind = next(k for k in (IndexError, ValueError, TypeError) if isinstance(e, k))
            shapes = " and ".join(str(t.shape) for t in inputs)
            raise kind(f"{node.name}: {e} (input shapes {shapes})") from None
        if out.__class__ is not backend.array_type:  # a NumPy scalar, or a device transfer
            backend, out = backend_of(out)
        if state.anomaly:
            _check_finite(node, inputs, out, backend)
        if requires_grad and state.grad_enabled and out.dtype.kind == "f":
            node.inputs = inputs
            node.output_array = out
            node.order = state.order
            return Tensor.wrap(out, backend, node)
        return Tensor.wrap(out, backend)

    def output(self) -> Tensor:
        """The op's output as a Tensor of this graph, for backward formulas such as
        d exp(x) = exp(x) dx. The node keeps only the array, so no reference cycle forms."""
        return Tensor.wrap(self.output_array, self.inputs[0].backend, self)

    def forward(self, xp: Any, *arrays: Any) -> Any:
        raise NotImplementedError

    def backward(self, grad: Tensor) -> tuple:
        raise NotImplementedError(f"{self.name} has no derivative")


def is_anomaly_enabled() -> bool:
    """True inside detect_anomaly() (as torch.is_anomaly_enabled)."""
    return state.anomaly


def _check_finite(node: Function, inputs: Sequence[Tensor], out: Any, backend: Backend) -> None:
    # each array with its own device's isfinite: a device transfer's output is on another one
    if bool(backend.isfinite(out).all()):
        return
    if not all(bool(t.backend.isfinite(t.data).all()) for t in inputs if t.dtype.kind in "fc"):
        return  # the NaN/inf came in from an earlier op or from the data
    where = f" while computing the gradient of {state.backward_of.name}" if state.backward_of else ""
    raise FloatingPointError(f"detect_anomaly: {node.name} produced NaN or inf from finite inputs{where}")


# ---------------------------------------------------------------------------------------
# The backward walk
# ---------------------------------------------------------------------------------------


def _topological_order(roots: Sequence[Function]) -> list:
    """All nodes reachable from `roots`, each after the nodes of its inputs.

    Iterative depth-first search with an explicit stack, so a chain of 100,000 ops is no
    problem for Python's recursion limit.
    """
    order: list = []
    seen: set = set()
    stack = [(node, False) for node in roots]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        if node.inputs is None:
            raise RuntimeError(
                f"backward: the graph through {node.name} was freed by an earlier backward; "
                "pass retain_graph=True to that backward to go through the graph again"
            )
        stack.append((node, True))
        for t in node.inputs:
            parent = t.grad_fn
            if parent is not None and parent not in seen:
                stack.append((parent, False))
    return order


def run_backward(
    outputs: Sequence[Tensor],
    grad_outputs: Sequence[Tensor],
    inputs: Sequence[Tensor] | None,
    retain_graph: bool,
    create_graph: bool,
) -> dict | None:
    """Propagate `grad_outputs` from `outputs` back through the graph.

    With `inputs=None` the gradients accumulate into `.grad` of every leaf that requires
    grad (Tensor.backward). Otherwise only the nodes that lead to `inputs` are visited and
    a dict {id(input): gradient} is returned, leaving `.grad` alone (`grad`).
    """
    wanted_leaves = {id(t) for t in inputs if t.grad_fn is None} if inputs is not None else None
    wanted_nodes = {t.grad_fn for t in inputs if t.grad_fn is not None} if inputs is not None else set()
    found: dict = {}  # id(leaf) or node -> gradient, for `inputs`

    def deliver_to_leaf(leaf: Tensor, g: Tensor) -> None:
        if wanted_leaves is None:
            if not create_graph:  # a transposed or broadcast view would slow (or refuse) later updates
                g = Tensor.wrap(g.backend.xp.asarray(g.data, order="C"), g.backend)  # copies only if needed
            leaf.grad = g if leaf.grad is None else leaf.grad + g
        elif id(leaf) in wanted_leaves:
            found[id(leaf)] = g if id(leaf) not in found else found[id(leaf)] + g

    node_grads: dict = {}
    roots = []
    for y, g in zip(outputs, grad_outputs):
        if y.grad_fn is None:
            deliver_to_leaf(y, g)
        else:
            roots.append(y.grad_fn)
            node_grads[y.grad_fn] = g if y.grad_fn not in node_grads else node_grads[y.grad_fn] + g

    order = _topological_order(roots)
    needed = None
    if inputs is not None:  # prune the nodes from which no input can be reached
        needed = set()
        for node in order:
            if node in wanted_nodes or any(
                id(t) in wanted_leaves or t.grad_fn in needed for t in node.inputs if t.requires_grad
            ):
                needed.add(node)

    saved = state.grad_enabled, state.order, state.backward_of
    state.grad_enabled = create_graph
    state.order = 1 + max((node.order for node in order), default=0)
    anomaly = state.anomaly
    try:
        for node in reversed(order):
            g = node_grads.pop(node, None)
            if g is None:
                continue
            if needed is not None:
                if node not in needed:
                    continue
                if node in wanted_nodes:
                    found[node] = g
            if anomaly:
                state.backward_of = node
            for t, gi in zip(node.inputs, node.backward(g)):
                if gi is None or not t.requires_grad:
                    continue
                if gi.data.shape != t.data.shape or gi.data.dtype != t.data.dtype or gi.backend is not t.backend:
                    raise RuntimeError(
                        f"{node.name}.backward returned a gradient of shape {gi.shape}, dtype {gi.dtype} on "
                        f"{gi.device} for an input of shape {t.shape}, dtype {t.dtype} on {t.device}"
                    )
                parent = t.grad_fn
                if parent is None:
                    deliver_to_leaf(t, gi)
                else:
                    earlier = node_grads.get(parent)
                    node_grads[parent] = gi if earlier is None else earlier + gi
            if not retain_graph:
                node.inputs = node.output_array = None
    finally:
        state.grad_enabled, state.order, state.backward_of = saved
    if inputs is None:
        return None
    return {id(t): found.get(id(t) if t.grad_fn is None else t.grad_fn) for t in inputs}


def as_tuple(x: Any) -> tuple:
    """x itself if a list or tuple (as a tuple), else the 1-tuple (x,)."""
    return tuple(x) if isinstance(x, (list, tuple)) else (x,)


def seed_gradients(outputs: Sequence[Tensor], grad_outputs: Any, caller: str) -> list:
    """The gradients to start backward from: ones for scalar outputs, else those given."""
    if grad_outputs is None:
        grad_outputs = [None] * len(outputs)
    grad_outputs = as_tuple(grad_outputs)
    if len(grad_outputs) != len(outputs):
        raise ValueError(f"{caller}: got {len(grad_outputs)} grad_outputs for {len(outputs)} outputs")
    seeds = []
    for y, g in zip(outputs, grad_outputs):
        if not y.requires_grad:
            raise RuntimeError(f"{caller}: a tensor of shape {y.shape} does not require grad and has no grad_fn")
        if g is None:
            if y.data.size != 1:
                raise RuntimeError(
                    f"{caller}: the output has shape {y.shape}; a gradient can be created implicitly "
                    "only for a single-element output (pass gradient=... / grad_outputs=...)"
                )
            g = Tensor.wrap(y.backend.ones(y.shape, dtype=y.dtype), y.backend)
        else:
            g = y._coerce(g)
            if g.shape != y.shape:
                raise ValueError(f"{caller}: gradient has shape {g.shape} but the output has shape {y.shape}")
            if g.device != y.device:
                raise RuntimeError(f"{caller}: gradient is on {g.device} but the output is on {y.device}")
            if g.dtype != y.dtype:
                g = g.astype(y.dtype)
        seeds.append(g)
    return seeds


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple:
    """The gradients of `outputs` with respect to `inputs`, as a tuple (one per input).

    As torch.autograd.grad: `grad_outputs` are the vectors of the vector-Jacobian
    product (None for single-element outputs); `.grad` is not touched; with
    `create_graph=True` the results are themselves differentiable. An input the outputs
    do not depend on raises, or gives None with `allow_unused=True`.
    """
    outputs, inputs = as_tuple(outputs), as_tuple(inputs)
    for t in inputs:
        if not isinstance(t, Tensor) or not t.requires_grad:
            raise RuntimeError("grad: every input must be a Tensor that requires grad")
    seeds = seed_gradients(outputs, grad_outputs, "grad")
    if retain_graph is None:
        retain_graph = create_graph
    found = run_backward(outputs, seeds, inputs, retain_graph, create_graph)
    results = tuple(found[id(t)] for t in inputs)
    if not allow_unused and any(g is None for g in results):
        raise RuntimeError(
            "grad: one of the inputs was not used to compute the outputs; pass allow_unused=True to get None for it"
        )
    return results

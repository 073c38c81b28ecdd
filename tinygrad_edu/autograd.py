"""Reverse-mode automatic differentiation: graph nodes, the backward walk and `grad`.

Every differentiable op is a `Function` subclass with `forward` (arrays in, array out)
and `backward` (the gradient of the output in, one gradient per input out) side by side.
`backward` is written with Tensor operations, so when it runs with gradients enabled
(`create_graph=True`) it records a graph of its own, and differentiating that graph
gives second derivatives, and so on to any order.

The graph only points backwards: a tensor holds its `grad_fn` node, a node holds its
input tensors and its output *array*, never the output Tensor. With no cycles, a graph
is freed by reference counting the moment nothing refers to it.

Read in this order: `Function`, a node; the backward walk (`topological_order`, then
`backpropagate`: the whole algorithm); where its gradients go (`.grad` for
Tensor.backward, a tuple for `grad`); then the four parts the walk calls by name:
version checks, freeing the graph, anomaly naming, retained gradients; last, the
engine's switches (no_grad and the others).
"""
from __future__ import annotations

import contextlib
import functools
import inspect
import weakref
from typing import Any, Callable, Iterator, Sequence

from .backend import Backend, backend_of
from .tensor import Tensor


class Function:
    """A node of the graph: one op, its forward and its backward.

    Subclasses define `forward(self, xp, *arrays)`, computing the output array with the
    device's functions `xp` (NumPy's or CuPy's, see backend.py), and `backward(self, grad)`,
    returning for each input the gradient of the output with respect to it (a Tensor, or
    None for an input that needs none). Inside backward, `self.inputs` are the input
    Tensors and `self.output()` is the output as a Tensor of this graph. Op parameters
    (axis, shape, ...) are passed to `apply` as keywords and become attributes, which a
    subclass declares in `__slots__` (`()` when it has none): a graph holds one node per
    op, and slots keep each node small.

    Beside them each op declares `saves`, what its backward reads (minitorch's
    save_for_backward, PyTorch's saved tensors): for each input, by the name `forward`
    gives it, the names of the values its gradient is computed from ("output" for the
    output). Mul's `{"a": ("b",), "b": ("a",)}` is d(ab)/da = b and d(ab)/db = a; Add's
    `{}` needs no value, only shapes. Backward checks for in-place changes only the
    values read by the gradients it computes, as PyTorch: `(x + w).sum()` still
    differentiates after a step on w, `(w * w).sum()` refuses. An op that declares
    nothing (`saves = None`, as a user's op may) is taken to read every input and its output.
    """

    __slots__ = ("inputs", "output_array", "order", "recorded_at", "output_version", "__weakref__")

    saves: dict | None = None  # input name -> the names of the values its gradient reads
    is_view = False  # True for ops whose output is a window on their input's array (reshape, transpose)
    input_names: tuple = ()  # forward's names for the inputs, set by __init_subclass__
    param_names: tuple = ()  # the slots op subclasses declare, set by __init_subclass__

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.param_names = cls.param_names + tuple(cls.__dict__.get("__slots__", ()))
        parameters = list(inspect.signature(cls.forward).parameters.values())[2:]  # after self, xp
        cls.input_names = tuple(p.name for p in parameters if p.kind is not p.VAR_POSITIONAL)
        for x, reads in (cls.saves or {}).items():  # a misspelt name would silently check nothing
            if x not in cls.input_names or not set(reads) <= {*cls.input_names, "output"}:
                raise TypeError(f"{cls.__name__}.saves: {x!r}: {reads} names no input of forward{cls.input_names}")

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
        except (ValueError, IndexError, TypeError) as e:
            raise node.error_with_shapes(e, inputs) from None
        if out.__class__ is not backend.array_type:  # a NumPy scalar, or a device transfer
            backend, out = backend_of(out)
        if state.anomaly:
            _check_finite(node, inputs, out, backend)
        if requires_grad and state.grad_enabled and out.dtype.kind == "f":
            node.inputs, node.output_array = inputs, out
            node.order, node.recorded_at = state.order, state.in_place_writes
            result = Tensor.wrap(out, backend, node)
            if state.retain_grads:
                result.retain_grad()
        else:
            result = Tensor.wrap(out, backend)
        if node.is_view:  # a write into either array changes both: one version counter for the two
            result.version_counter = node.output_version = inputs[0].shared_counter()
        return result

    def error_with_shapes(self, error: Exception, inputs: Sequence[Tensor]) -> Exception:
        """An error of the array library in forward, said again naming this op and the
        input shapes (IndexError, ValueError or TypeError, as it was)."""
        kind = next(k for k in (IndexError, ValueError, TypeError) if isinstance(error, k))
        shapes = " and ".join(str(t.shape) for t in inputs)
        return kind(f"{self.name}: {error} (input shapes {shapes})")

    def output(self) -> Tensor:
        """The op's output as a Tensor of this graph, for backward formulas such as
        d exp(x) = exp(x) dx. The node keeps only the array, so no reference cycle forms."""
        return Tensor.wrap(self.output_array, self.inputs[0].backend, self)

    def forward(self, xp: Any, *arrays: Any) -> Any:
        raise NotImplementedError

    def backward(self, grad: Tensor) -> tuple:
        raise NotImplementedError(f"{self.name} has no derivative")

    def saved_tensors(self) -> list:
        """The tensors this node's backward will read (see `saves`): the values the
        gradients of its inputs that require grad are computed from, the output as output()."""
        if self.saves is None:
            return [*self.inputs, self.output()]
        inputs = dict(zip(self.input_names, self.inputs))
        read = {name for x, names in self.saves.items() if inputs[x].requires_grad for name in names}
        return [self.output() if name == "output" else inputs[name]
                for name in (*self.input_names, "output") if name in read]


# ---------------------------------------------------------------------------------------
# The backward walk
# ---------------------------------------------------------------------------------------


def topological_order(roots: Sequence[Function]) -> list:
    """Every node reachable from `roots`, each after the nodes that made its inputs.

    Depth-first search with an explicit stack, so that a chain of 100,000 ops does not
    meet Python's recursion limit: a node is pushed once to visit its inputs, and once
    more (`inputs_done`) to be placed after them.
    """
    order: list = []
    seen: set = set()
    stack = [(node, False) for node in roots]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif node not in seen:
            seen.add(node)
            if node.output_array is None:  # its arrays were dropped by an earlier backward (see free)
                raise freed_graph_error(node)
            stack.append((node, True))
            for t in node.inputs:
                if t.grad_fn is not None:
                    stack.append((t.grad_fn, False))
    return order


def backpropagate(outputs: Sequence[Tensor], grad_outputs: Sequence[Tensor], retain_graph: bool,
                  create_graph: bool, wanted: Any = (), towards: Sequence[Tensor] | None = None) -> tuple:
    """The gradients of `outputs`, seeded with `grad_outputs` (the vectors of the
    vector-Jacobian product): ({leaf: its gradient}, {node: the gradient of its output})
    for the leaves that require grad and the nodes in `wanted`. With `towards`, only the
    nodes through which those tensors are reached are run (what `grad` asks for).

    The textbook algorithm: order the nodes so that each comes after the nodes that made
    its inputs, then walk that order backwards. When a node's turn comes, every node that
    used its output has already sent it a gradient, so their sum is complete; its backward
    turns that sum into one gradient per input (the chain rule), each added to what that
    input has received so far.
    """
    grads: dict = {}  # a node (for its output) or a leaf -> the sum of the gradients sent to it
    for y, g in zip(outputs, grad_outputs):
        add_gradient(grads, y, g)
    order = topological_order([y.grad_fn for y in outputs if y.grad_fn is not None])
    if towards is not None:
        order = nodes_towards(towards, order)
    wanted_grads: dict = {}
    freed: dict = {}  # what the freed nodes of this pass remember of their data leaves
    retained = retained_grads if len(retained_grads) else ()  # () when none: the cheap `in`
    with differentiating(order, create_graph) as clock:
        for node in reversed(order):
            g = grads.pop(node, None)
            if g is None:  # every path to it ended in a backward that gave None
                continue
            if node in wanted:
                wanted_grads[node] = g
            if node.recorded_at != clock:  # an in-place write since the node was recorded
                check_versions(node)
            if state.anomaly:
                state.backward_of = node
            for t, gi in zip(node.inputs, node.backward(g)):  # gi: the share of input t
                if gi is None or not t.requires_grad:
                    continue
                if gi.data.shape != t.data.shape or gi.data.dtype != t.data.dtype or gi.backend is not t.backend:
                    raise wrong_gradient(node, t, gi)  # here, at the op that made it, not steps later
                add_gradient(grads, t, gi)
            if not retain_graph:
                free(node, freed, retained)
    leaf_grads = {t: g for t, g in grads.items() if isinstance(t, Tensor)}  # and not nodes that towards left out
    return leaf_grads, wanted_grads


def add_gradient(grads: dict, t: Tensor, g: Tensor) -> None:
    """Add g to the gradient t has received (kept under its node, or under t for a leaf):
    the gradients of several paths add up, never overwrite."""
    key = t if t.grad_fn is None else t.grad_fn
    earlier = grads.get(key)
    grads[key] = g if earlier is None else earlier + g


def wrong_gradient(node: Function, t: Tensor, g: Tensor) -> RuntimeError:
    """The error for a backward that gave an input a gradient of another shape, dtype or device."""
    return RuntimeError(f"{node.name}.backward returned a gradient of shape {g.shape}, dtype {g.dtype} on "
                        f"{g.device} for an input of shape {t.shape}, dtype {t.dtype} on {t.device}")


def nodes_towards(targets: Sequence[Tensor], order: list) -> list:
    """The nodes of `order` (inputs first) through which a gradient reaches `targets`: a
    target's own node, and every node with an input that is a target or comes from such a node."""
    leaves = {t for t in targets if t.grad_fn is None}
    needed = {t.grad_fn for t in targets if t.grad_fn is not None}
    for node in order:
        for t in node.inputs:  # a plain loop: any(<generator>) makes a generator per node, dearer than the test
            if t.requires_grad and (t in leaves or t.grad_fn in needed):
                needed.add(node)
                break
    return [node for node in order if node in needed]


@contextlib.contextmanager
def differentiating(order: list, create_graph: bool) -> Iterator[int]:
    """The engine's state while backward formulas run: they record a graph only for
    create_graph, and the nodes they make are one differentiation order above the highest
    of `order`. Gives the in-place write clock now: a node recorded at another time may
    have had a value it saved changed since, and is checked."""
    saved = state.grad_enabled, state.order, state.backward_of
    state.grad_enabled, state.order = create_graph, 1 + max((node.order for node in order), default=0)
    try:
        yield state.in_place_writes
    finally:
        state.grad_enabled, state.order, state.backward_of = saved


# ---------------------------------------------------------------------------------------
# Where the gradients go: .grad (Tensor.backward) or a tuple (grad)
# ---------------------------------------------------------------------------------------


def accumulate_grad(outputs: Sequence[Tensor], grad_outputs: Sequence[Tensor], retain_graph: bool,
                    create_graph: bool) -> None:
    """Tensor.backward: add the gradients of the leaves that require grad into their
    `.grad` (PyTorch's +=), and those of the non-leaves that called retain_grad()."""
    leaf_grads, node_grads = backpropagate(outputs, grad_outputs, retain_graph, create_graph,
                                           wanted=set(retained_grads))
    for leaf, g in leaf_grads.items():
        add_into_grad(leaf, g, create_graph)
    for node, g in node_grads.items():
        t = retained_grads[node]()
        if t is not None:
            add_into_grad(t, g, create_graph)


def add_into_grad(t: Tensor, g: Tensor, create_graph: bool) -> None:
    """t.grad += g (t.grad = g the first time)."""
    if not create_graph:  # a transposed or broadcast view would slow (or refuse) later in-place updates
        g = Tensor.wrap(g.backend.xp.asarray(g.data, order="C"), g.backend)  # copies only if needed
    t.grad = g if t.grad is None else t.grad + g


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
    non_leaves = {t.grad_fn for t in inputs if t.grad_fn is not None}
    leaf_grads, node_grads = backpropagate(outputs, seeds, retain_graph, create_graph, non_leaves, towards=inputs)
    results = tuple(leaf_grads.get(t) if t.grad_fn is None else node_grads.get(t.grad_fn) for t in inputs)
    if not allow_unused and any(g is None for g in results):
        raise RuntimeError(
            "grad: one of the inputs was not used to compute the outputs; pass allow_unused=True to get None for it"
        )
    return results


# ---------------------------------------------------------------------------------------
# Beside the walk, 1: version checks
# ---------------------------------------------------------------------------------------


def check_versions(node: Function) -> None:
    """Raise if a tensor this node's backward reads (Function.saved_tensors) was changed in
    place after the node was recorded: the gradient would be computed from the new values."""
    for t in node.saved_tensors():
        counter = t.shared_counter()
        if counter.last_write > node.recorded_at:
            what = "its output" if t.grad_fn is node else "an input"
            raise RuntimeError(
                f"{node.name}.backward: {what} of shape {t.shape} was modified in place (now at version "
                f"{counter.count}) after the forward pass used it; recompute the forward pass after in-place "
                "changes such as optimizer.step()"
            )


# ---------------------------------------------------------------------------------------
# Beside the walk, 2: freeing the graph after backward
# ---------------------------------------------------------------------------------------


def free(node: Function, records: dict, retained: Any) -> None:
    """Drop every array the node saved for its backward (input tensors, output, op
    parameters such as index arrays) and keep only the graph's structure, so that a
    freed graph can still be drawn. A node without its output array is a freed one.

    Of its inputs, leaves that require grad stay (as PyTorch's graph keeps them), and so
    do constants of one element (they cost nothing, and a drawing shows them); any other
    input becomes a FreedTensor, one per data leaf across the pass (`records`), as a
    drawing shows each tensor once. A tensor that called retain_grad() (its node in
    `retained`) stays too: its `.grad` is what it was kept for, and a drawing shows both."""
    kept = []
    for t in node.inputs:
        if t.grad_fn is not None:
            kept.append(t if t.grad_fn in retained else FreedTensor.of(t))
        elif t.requires_grad or t.data.size == 1:
            kept.append(t)
        else:
            if t not in records:
                records[t] = FreedTensor.of(t)
            kept.append(records[t])
    node.inputs, node.output_array = kept, None
    for name in node.param_names:
        setattr(node, name, None)


class FreedTensor(weakref.ref):
    """What a freed node remembers of an input tensor: a weak reference to it (calling the
    record gives the tensor while somebody else holds it, else None), the node that made
    it and its name, but no array. So a freed graph can still be drawn, with the values of
    the tensors the caller kept, while it holds no memory the caller does not."""

    __slots__ = ("grad_fn", "name")

    @classmethod
    def of(cls, t: Tensor) -> "FreedTensor":
        record = cls(t)
        record.grad_fn, record.name = t.grad_fn, t.name
        return record

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def requires_grad(self) -> bool:  # a node keeps the leaves that require grad themselves
        return self.grad_fn is not None


def freed_graph_error(node: Function) -> RuntimeError:
    """A second backward through a freed graph raises, instead of answering wrongly."""
    return RuntimeError(f"backward: the graph through {node.name} was freed by an earlier backward; "
                        "pass retain_graph=True to that backward to go through the graph again")


# ---------------------------------------------------------------------------------------
# Beside the walk, 3: anomaly naming (detect_anomaly)
# ---------------------------------------------------------------------------------------


def is_anomaly_enabled() -> bool:
    """True inside detect_anomaly() (as torch.is_anomaly_enabled)."""
    return state.anomaly


def _check_finite(node: Function, inputs: Sequence[Tensor], out: Any, backend: Backend) -> None:
    """Raise if `node` made NaN or inf from finite inputs, naming it (and, in backward, the
    node whose backward ran it: the walk keeps it in state.backward_of)."""
    # each array with its own device's isfinite: a device transfer's output is on another one
    if bool(backend.isfinite(out).all()):
        return
    if not all(bool(t.backend.isfinite(t.data).all()) for t in inputs if t.dtype.kind in "fc"):
        return  # the NaN/inf came in from an earlier op or from the data
    where = f" while computing the gradient of {state.backward_of.name}" if state.backward_of else ""
    raise FloatingPointError(f"detect_anomaly: {node.name} produced NaN or inf from finite inputs{where}")


# ---------------------------------------------------------------------------------------
# Beside the walk, 4: retained gradients (Tensor.retain_grad)
# ---------------------------------------------------------------------------------------


# Non-leaf tensors that called retain_grad(), by their node (weakly on both sides).
retained_grads: "weakref.WeakKeyDictionary[Function, weakref.ref]" = weakref.WeakKeyDictionary()


# ---------------------------------------------------------------------------------------
# The engine's switches
# ---------------------------------------------------------------------------------------


class _State:
    """Global switches of the engine. Every op reads several, so they are attributes of
    the instance, which Python reads faster than a class's."""

    def __init__(self) -> None:
        self.grad_enabled = True  # record graphs for ops on tensors that require grad
        self.anomaly = False  # detect_anomaly(): check every op's output for NaN/inf
        self.order = 0  # differentiation order of the nodes being made (0 outside backward)
        self.backward_of: "Function | None" = None  # whose backward is running (for anomaly messages)
        self.backward_creates_graph = False  # backward_creates_graph(): every backward() as create_graph=True
        self.in_place_writes = 0  # a clock: how many in-place writes (Tensor.bump_version) so far
        self.retain_grads = False  # retain_grads(): every op's output calls retain_grad()


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


class retain_grads(_Switch):
    """Inside, every tensor an op makes calls retain_grad(): micrograd's habit of
    forward, backward, draw. After a plain backward() each such tensor keeps its value and
    its `.grad` (a tensor that called retain_grad() stays in the freed graph), so
    `draw_graph(y, show_values=True)` shows every node's value and gradient, the output's
    included. For small graphs you want to look at: it keeps every intermediate alive."""

    flag, value = "retain_grads", True


class backward_creates_graph(_Switch):
    """Inside, every Tensor.backward() acts as backward(create_graph=True), so the
    gradients a closure leaves in `.grad` are differentiable Tensors whose graph is kept.

    Public because optimizers that need Hessian-vector products (NewtonCG, Newton,
    TrustRegionNewtonCG) call the user's closure inside it: the closure keeps the usual
    contract (zero the grads, compute the loss, call backward, return the loss) and the
    optimizer then differentiates the `.grad` it left. Outside such a call nothing changes.
    """

    flag, value = "backward_creates_graph", True

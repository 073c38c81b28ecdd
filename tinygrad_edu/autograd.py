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
import inspect
import weakref
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
    in_place_writes = 0  # a clock: how many in-place writes (Tensor.bump_version) so far


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
        for t in inputs:  # one loop for the arrays, the device check and the flag: it runs for every op
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

    # ---- after backward ---------------------------------------------------------------

    def free(self, records: dict) -> None:
        """Drop every array this node saved for its backward (input tensors, output, op
        parameters such as index arrays) and keep only the graph's structure. A node
        without its output array is a freed one.

        Leaves that require grad stay (as PyTorch's graph keeps them), and so do constants
        of one element (they cost nothing, and a drawing shows them); every other input
        becomes a FreedTensor, a weak reference. A drawing knows an op's output by its
        node, so only data leaves need one record per tensor (`records`, across the pass).
        This runs for every node of every backward, hence one loop and no call per input."""
        kept = []
        for t in self.inputs:
            leaf = t.grad_fn is None
            if leaf and (t.requires_grad or t.data.size == 1):
                kept.append(t)
            elif leaf and id(t) in records:
                kept.append(records[id(t)])
            else:
                record = FreedTensor(t)
                record.grad_fn, record.name = t.grad_fn, t.name
                if leaf:
                    records[id(t)] = record
                kept.append(record)
        self.inputs, self.output_array = kept, None
        if self.param_names:  # most ops have none
            for name in self.param_names:
                setattr(self, name, None)

    def saved_tensors(self) -> list:
        """The tensors this node's backward will read (see `saves`): the values the
        gradients of its inputs that require grad are computed from, the output as output()."""
        if self.saves is None:
            return [*self.inputs, self.output()]
        inputs = dict(zip(self.input_names, self.inputs))
        read = {name for x, names in self.saves.items() if inputs[x].requires_grad for name in names}
        return [self.output() if name == "output" else inputs[name]
                for name in (*self.input_names, "output") if name in read]

    def check_versions(self) -> None:
        """Raise if a tensor this node's backward reads was changed in place after the node
        was recorded: the gradient would be computed from the new values."""
        for t in self.saved_tensors():
            counter = t.shared_counter()
            if counter.last_write > self.recorded_at:
                what = "its output" if t.grad_fn is self else "an input"
                raise RuntimeError(
                    f"{self.name}.backward: {what} of shape {t.shape} was modified in place (now at version "
                    f"{counter.count}) after the forward pass used it; recompute the forward pass after in-place "
                    "changes such as optimizer.step()"
                )


class FreedTensor(weakref.ref):
    """What a freed node remembers of an input tensor: a weak reference to it (calling the
    record gives the tensor while somebody else holds it, else None), the node that made
    it and its name, but no array. So a freed graph can still be drawn, with the values of
    the tensors the caller kept, while it holds no memory the caller does not."""

    __slots__ = ("grad_fn", "name")

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def requires_grad(self) -> bool:  # a node keeps the leaves that require grad themselves
        return self.grad_fn is not None


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
        if node.output_array is None:  # freed (Function.free)
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


class LeafGradients:
    """Where Tensor.backward puts gradients: `+=` into `.grad` of every leaf that requires
    grad, and of the non-leaves that called retain_grad()."""

    def __init__(self, create_graph: bool):
        self.create_graph = create_graph
        self.watched = retained_grads if len(retained_grads) else ()  # the nodes at_node wants

    def prune(self, order: list) -> list:
        return order

    def at_leaf(self, leaf: Tensor, g: Tensor) -> None:
        if not self.create_graph:  # a transposed or broadcast view would slow (or refuse) later updates
            g = Tensor.wrap(g.backend.xp.asarray(g.data, order="C"), g.backend)  # copies only if needed
        leaf.grad = g if leaf.grad is None else leaf.grad + g

    def at_node(self, node: Function, g: Tensor) -> None:
        t = retained_grads[node]()
        if t is not None:
            self.at_leaf(t, g)

    def result(self) -> None:
        return None


class RequestedGradients:
    """Where grad(outputs, inputs) puts gradients: a result per input, `.grad` untouched;
    only the nodes through which an input can be reached are visited."""

    def __init__(self, inputs: Sequence[Tensor]):
        self.inputs = inputs
        self.leaves = {id(t) for t in inputs if t.grad_fn is None}
        self.nodes = self.watched = {t.grad_fn for t in inputs if t.grad_fn is not None}
        self.found: dict = {}  # id(leaf) or node -> its gradient

    def prune(self, order: list) -> list:
        needed: set = set()
        for node in order:  # inputs before outputs, so `needed` is complete for the inputs
            if node in self.nodes or any(id(t) in self.leaves or t.grad_fn in needed
                                         for t in node.inputs if t.requires_grad):
                needed.add(node)
        return [node for node in order if node in needed]

    def at_leaf(self, leaf: Tensor, g: Tensor) -> None:
        if id(leaf) in self.leaves:
            _accumulate(self.found, id(leaf), g)

    def at_node(self, node: Function, g: Tensor) -> None:
        self.found[node] = g

    def result(self) -> dict:
        return {id(t): self.found.get(id(t) if t.grad_fn is None else t.grad_fn) for t in self.inputs}


def _accumulate(sums: dict, key: Any, g: Tensor) -> None:
    """sums[key] += g; gradients from several paths add up, never overwrite."""
    earlier = sums.get(key)
    sums[key] = g if earlier is None else earlier + g


def _wrong_gradient(node: Function, t: Tensor, g: Tensor) -> RuntimeError:
    return RuntimeError(f"{node.name}.backward returned a gradient of shape {g.shape}, dtype {g.dtype} on "
                        f"{g.device} for an input of shape {t.shape}, dtype {t.dtype} on {t.device}")


def run_backward(outputs: Sequence[Tensor], grad_outputs: Sequence[Tensor], inputs: Sequence[Tensor] | None,
                 retain_graph: bool, create_graph: bool) -> dict | None:
    """Propagate `grad_outputs` from `outputs` back through the graph, into `.grad` of the
    leaves (inputs=None, Tensor.backward) or into a dict {id(input): gradient} (`grad`)."""
    targets = LeafGradients(create_graph) if inputs is None else RequestedGradients(inputs)
    pending: dict = {}  # node -> the sum of the gradients of its output received so far
    for y, g in zip(outputs, grad_outputs):
        if y.grad_fn is None:
            targets.at_leaf(y, g)
        else:
            _accumulate(pending, y.grad_fn, g)
    order = targets.prune(_topological_order(list(pending)))
    freed: dict = {}
    with _BackwardPass(order, create_graph) as backward_pass:
        for node in reversed(order):  # outputs before inputs: a node's gradient is complete
            g = pending.pop(node, None)
            if g is None:
                continue
            if node in targets.watched:
                targets.at_node(node, g)
            if backward_pass.anomaly:
                state.backward_of = node
            if node.recorded_at != backward_pass.clock:
                node.check_versions()
            for t, gi in zip(node.inputs, node.backward(g)):
                if gi is None or not t.requires_grad:
                    continue
                if gi.data.shape != t.data.shape or gi.data.dtype != t.data.dtype or gi.backend is not t.backend:
                    raise _wrong_gradient(node, t, gi)  # here, at the op that made it, not steps later
                if t.grad_fn is None:
                    targets.at_leaf(t, gi)
                else:
                    earlier = pending.get(t.grad_fn)  # contributions of several paths add up
                    pending[t.grad_fn] = gi if earlier is None else earlier + gi
            if not retain_graph:
                node.free(freed)
    return targets.result()


class _BackwardPass:
    """The engine's state while a backward runs: graphs are recorded only for
    create_graph, and the nodes made get the next differentiation order."""

    def __init__(self, order: list, create_graph: bool):
        self.grad_enabled = create_graph
        self.order = 1 + max((node.order for node in order), default=0)
        self.anomaly = state.anomaly  # detect_anomaly() names the node whose backward runs
        self.clock = state.in_place_writes  # a node recorded before a later in-place write checks its inputs

    def __enter__(self) -> "_BackwardPass":
        self.saved = state.grad_enabled, state.order, state.backward_of
        state.grad_enabled, state.order = self.grad_enabled, self.order
        return self

    def __exit__(self, *exc: Any) -> None:
        state.grad_enabled, state.order, state.backward_of = self.saved


# Non-leaf tensors that called retain_grad(), by their node (weakly on both sides).
retained_grads: "weakref.WeakKeyDictionary[Function, weakref.ref]" = weakref.WeakKeyDictionary()


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

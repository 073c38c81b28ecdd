"""The base of every optimizer: parameter groups, per-parameter state and the step loop.

A subclass writes one method, `update(xp, theta, g, state, group)`: the algorithm's lines
on the arrays of one parameter (with `xp`, the device's array functions, as in the ops),
moving θ in place. Everything the algorithms share lives here, once:

- parameter groups, each with its own hyper-parameters (missing ones from `defaults`);
- per-parameter state, created on first use (a state entry absent before the first
  step reads as 0, as the notes' m₀ = v₀ = 0), and its step counter t, which advances
  once per step for every parameter that has a gradient;
- `maximize` (g ← −g) and PyTorch's L2 `weight_decay` (g ← g + λθ), applied to g before
  `update` sees it; with `decoupled_weight_decay` (AdamW's form) θ ← (1 − ηλ)θ instead,
  leaving g alone;
- a guard, inside `detect_anomaly()`: when an update turns finite parameters and
  gradients into NaN or inf, `step` raises FloatingPointError and leaves every parameter
  and all state unchanged. Outside it, `step` never waits for the device: asking whether
  an array is finite is a host synchronisation, which a GPU training step must not have
  (PyTorch has no such check);
- `state_dict` / `load_state_dict`, so a resumed run continues exactly;
- `step_state`, the jit's Stateful protocol: a jitted step reads `param_groups` and
  `state` afresh at every replay (a scheduler's lr, Adam's step count) and writes back
  the state it leaves.

Updates run on the parameters' arrays with their device's functions, outside any graph,
and in place, as a hand-written `theta -= lr * g` would.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Callable, Iterable

from tinygrad_edu import Tensor, enable_grad, is_anomaly_enabled


def _host_copy(value: Any, backend: Any) -> Any:
    """A copy of a state entry with its arrays (also inside lists and tuples) on the host."""
    if isinstance(value, backend.array_type):
        return backend.to_host(value).copy()
    if isinstance(value, (list, tuple)):
        return type(value)(_host_copy(v, backend) for v in value)
    return value


def _to_parameter(value: Any, p: Tensor, shapes: tuple, where: str) -> Any:
    """A copy of a saved state entry on p's device, floating-point arrays in p's dtype;
    every array must have one of `shapes` (a state array broadcast over a parameter of
    another shape would give wrong updates without an error). `where` names the entry."""
    if hasattr(value, "shape"):
        if tuple(value.shape) not in shapes:
            expected = " or ".join(str(shape) for shape in shapes)
            raise ValueError(f"{where} has shape {tuple(value.shape)}, expected {expected}")
        return p.backend.asarray(value, dtype=p.dtype if value.dtype.kind == "f" else None, copy=True)
    if isinstance(value, (list, tuple)):
        return type(value)(_to_parameter(v, p, shapes, f"{where}[{i}]") for i, v in enumerate(value))
    return value


def check(ok: bool, who: str, rule: str, value: Any) -> None:
    """Raise ValueError("<who>: <rule>, got <value>") unless ok, e.g.
    check(lr >= 0, "Adam", "lr must be >= 0", lr) -> "Adam: lr must be >= 0, got -1"."""
    if not ok:
        raise ValueError(f"{who}: {rule}, got {value!r}")


class Optimizer:
    """Base class: holds `param_groups` and `state` and runs the step loop.

    `params` is an iterable of Tensors, or of dicts (parameter groups) with a "params"
    entry and any hyper-parameters that should differ from `defaults`; as in PyTorch, the
    Tensors may come as (name, Tensor) pairs (model.named_parameters()), and the group
    then keeps their names as "param_names".
    """

    def __init__(self, params: Iterable[Any], defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        # parameter Tensor -> its state dict; self.state[p] of a parameter without state is a new
        # empty dict, as PyTorch's (an optimizer in its style: state = self.state[p]; state["n"] = 0)
        self.state: defaultdict = defaultdict(dict)
        if isinstance(params, Tensor):  # list(params) would be its rows, non-leaf Tensors
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or of dicts, got a Tensor "
                            f"of shape {params.shape} (wrap it in a list: [w])")
        groups = list(params)
        if not groups:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    def add_param_group(self, group: dict) -> None:
        """Add a group of parameters with its own hyper-parameters (others from defaults)."""
        group = dict(group)
        params = group.get("params")
        params = [params] if isinstance(params, Tensor) else list(params or [])
        if not params:
            raise ValueError(f"{type(self).__name__}: a parameter group needs a non-empty 'params'")
        named = [isinstance(p, tuple) for p in params]
        if any(named):  # (name, Tensor) pairs, as model.named_parameters() gives: PyTorch keeps the names
            if not all(named):
                raise ValueError(f"{type(self).__name__}: give every parameter of a group with its name "
                                 "(model.named_parameters()) or none of them")
            group["param_names"] = [name for name, _ in params]
            params = [p for _, p in params]
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameters must be Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{type(self).__name__}: can't optimize a non-leaf Tensor (shape {p.shape})")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter appears in more than one group (shape {p.shape})")
            seen.add(id(p))
        group["params"] = params
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients before the next backward: None, or with set_to_none=False
        zeros (for the parameters that had a gradient)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.grad = None if set_to_none else Tensor.wrap(p.backend.zeros_like(p.data), p.backend)

    def update(self, xp: Any, theta: Any, g: Any, state: dict, group: dict) -> None:
        """The algorithm for one parameter: moves its array θ in place (θ -= ...), given
        its gradient g (after maximize and weight decay), its state (t = state["step"],
        already advanced) and its group's hyper-parameters; `xp` holds the device's array
        functions (xp.sqrt, ...). New state entries are new arrays written into `state`,
        never old ones changed in place, so a refused step can keep the old state."""
        raise NotImplementedError

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """One update of every parameter that has a gradient; returns closure() when given
        (the closure recomputes the loss and calls backward)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        checking = is_anomaly_enabled()  # detect_anomaly(): update copies, commit only finite ones
        staged = []
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.data
                if group.get("maximize"):
                    g = -g
                decay, decoupled = group.get("weight_decay"), group.get("decoupled_weight_decay")
                if decay and not decoupled:
                    g = g + decay * p.data
                new_state = dict(self.state.get(p, {}))  # get: no empty entry for a parameter left alone
                new_state["step"] = new_state.get("step", 0) + 1
                theta = p.data.copy() if checking else p.data
                if decay and decoupled:
                    theta *= 1 - group["lr"] * decay
                self.update(p.backend, theta, g, new_state, group)
                staged.append((p, theta, new_state))
        if checking:
            for p, theta, _ in staged:
                self._check_finite(p, theta)
        for p, theta, new_state in staged:
            if theta is not p.data:
                p.data[...] = theta
            p.bump_version()
            self.state[p] = new_state
        return loss

    def step_state(self) -> dict:
        """What a step reads and writes besides the parameters (tinygrad_edu.jit's Stateful
        protocol): the hyper-parameters and the per-parameter state."""
        return {"param_groups": self.param_groups, "state": self.state}

    def _check_finite(self, p: Tensor, new_theta: Any) -> None:
        xp = p.backend
        if bool(xp.isfinite(new_theta).all()):
            return
        if bool(xp.isfinite(p.data).all()) and bool(xp.isfinite(p.grad.data).all()):
            raise FloatingPointError(
                f"{type(self).__name__}.step: the update of a parameter of shape {p.shape} is not finite although "
                "the parameter and its gradient are; no parameter or state was changed (lower the learning rate?)"
            )

    # ---- saving and resuming ----------------------------------------------------------

    def state_dict(self) -> dict:
        """{"state": {index: {name: NumPy array or number}}, "param_groups": [...]}, with
        parameters numbered in group order, as PyTorch's (ready for nn.save)."""
        index = {}
        groups = []
        for group in self.param_groups:
            ids = []
            for p in group["params"]:
                index[id(p)] = len(index)
                ids.append(index[id(p)])
            groups.append({**{k: v for k, v in group.items() if k != "params"}, "params": ids})
        state = {}
        for group in self.param_groups:
            for p in group["params"]:
                if p in self.state:
                    state[index[id(p)]] = {k: _host_copy(v, p.backend) for k, v in self.state[p].items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and state saved by state_dict (arrays go to each
        parameter's device, and floating-point ones take its dtype, as PyTorch)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups) or any(
            len(saved["params"]) != len(group["params"]) for saved, group in zip(groups, self.param_groups)
        ):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the saved groups do not match this optimizer's")
        params = [p for group in self.param_groups for p in group["params"]]
        state: defaultdict = defaultdict(dict)
        for key, saved in state_dict["state"].items():
            if not 0 <= int(key) < len(params):
                raise ValueError(f"{type(self).__name__}.load_state_dict: state of parameter {key}, "
                                 f"but this optimizer has {len(params)} parameters")
            p = params[int(key)]
            where = f"{type(self).__name__}.load_state_dict: state of parameter {key} (shape {p.shape}): "
            state[p] = {k: _to_parameter(v, p, self.state_shapes(p), where + str(k)) for k, v in saved.items()}
        self.state = state
        for group, saved in zip(self.param_groups, groups):
            group.update({k: v for k, v in saved.items() if k != "params"})

    def state_shapes(self, p: Tensor) -> tuple:
        """The shapes load_state_dict allows for p's state arrays: p's own, since `update`
        works on each parameter apart. An optimizer that keeps other state (vectors over
        all parameters) says so by overriding this."""
        return (p.shape,)

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            settings = ", ".join(f"{k}={v}" for k, v in group.items() if k != "params")
            lines.append(f"  group {i}: {len(group['params'])} tensors, {settings}")
        return "\n".join(lines + [")"])

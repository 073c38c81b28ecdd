"""draw_graph: the computation graph behind a tensor, as a Graphviz drawing.

Ellipses are tensors (a name if given, else shape and dtype; values and gradients with
show_values=True), boxes are ops, and edges run the way data flows: inputs → op → output.
Leaves that require grad (whose `.grad` backward fills) are drawn with a double border, nn
Parameters bold as well. Each drawing carries a legend that says this in words.

micrograd's habit, forward, backward, draw, with every node's value and gradient:

    with tg.retain_grads():          # every tensor made inside keeps its value and .grad
        o = (x1 * w1 + x2 * w2 + b).tanh()
    o.backward()
    tg.draw_graph(o, show_values=True)

Without retain_grads() only leaves and the tensors that called retain_grad() get a `.grad`
(as in PyTorch), and a plain backward() frees the values of the intermediates nobody
holds: they are drawn "(value freed by backward)".

The fill colour says which pass made a node: the forward pass, or a backward run with
create_graph=True (1st backward; a backward through that is the 2nd, and so on). So after
`loss.backward(create_graph=True)`, `draw_graph(x.grad)` shows the gradient's graph built
on top of the forward graph, and a Hessian-vector product's graph shows three colours.

Works in Jupyter (the drawing displays as SVG) and from scripts:
`draw_graph(y).render("graph", format="svg")`. `.source` is the DOT text and needs no
Graphviz program; rendering needs `dot`, and without it raises an error that says how
to install it.
"""
from __future__ import annotations

from typing import Any

import graphviz
import numpy

from .autograd import FreedTensor
from .tensor import Tensor

ORDER_COLOURS = ["#cfe2ff", "#ffd8a8", "#c3f0c8", "#e5ccff", "#ffc9c9", "#fff3bf"]
ORDER_NAMES = ["forward pass", "1st backward (create_graph=True)", "2nd backward", "3rd backward"]
FREED = "(value freed by backward)"
INSTALL_GRAPHVIZ = (
    "rendering needs Graphviz's `dot` program, which was not found on PATH. Install it: "
    "Debian/Ubuntu `sudo apt-get install graphviz`, macOS `brew install graphviz`, "
    "conda `conda install -c conda-forge graphviz`. (draw_graph(...).source gives the DOT text without it.)"
)

# The marks on tensors the legend explains when a drawing has them: (mark, text, node attributes).
LEGEND_MARKS = [
    ("tensor", "a tensor: its name (if given), shape, dtype;\nwith show_values its data and .grad", {"shape": "ellipse"}),
    ("op", "an op: arrows run inputs → op → output", {"shape": "box", "style": "filled,rounded"}),
    ("leaf", "double border: a leaf that requires grad\n(backward fills its .grad)",
     {"shape": "ellipse", "peripheries": "2", "color": "#1c4e80"}),
    ("parameter", "bold double border: an nn Parameter", {"shape": "ellipse", "peripheries": "2",
                                                             "color": "#1c4e80", "penwidth": "2"}),
    ("freed", f"{FREED}: nobody holds it any more;\nwrap the forward in tg.retain_grads() to keep it",
     {"shape": "ellipse"}),
]


class GraphDrawing(graphviz.Digraph):
    """A graphviz.Digraph whose rendering explains how to install Graphviz when `dot` is missing."""

    def render(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().render(*args, **kwargs)
        except graphviz.ExecutableNotFound as e:
            raise RuntimeError(INSTALL_GRAPHVIZ) from e

    def pipe(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().pipe(*args, **kwargs)
        except graphviz.ExecutableNotFound as e:
            raise RuntimeError(INSTALL_GRAPHVIZ) from e


def _colour(order: int) -> str:
    return ORDER_COLOURS[order % len(ORDER_COLOURS)]


def _order_name(order: int) -> str:
    return ORDER_NAMES[order] if order < len(ORDER_NAMES) else f"{order}th backward"


def _values(array: Any, backend: Any) -> str:
    """A short text of an array's values (large ones abbreviated)."""
    host = numpy.asarray(backend.to_host(array))
    return numpy.array2string(host, precision=4, threshold=6, edgeitems=2, max_line_width=40)


def _tensor_label(t: Any, show_values: bool) -> str:
    """Name (or shape and dtype), and with show_values the data and grad. `t` is a Tensor,
    or what a freed node remembers of a tensor nobody holds any more (autograd.FreedTensor)."""
    if isinstance(t, FreedTensor):
        return FREED if t.name is None else f"{t.name}\n{FREED}"
    label = f"{t.shape} {t.dtype}" if t.name is None else f"{t.name}\n{t.shape} {t.dtype}"
    if show_values:
        label += f"\ndata {_values(t.data, t.backend)}"
        if t.grad is not None:
            label += f"\ngrad {_values(t.grad.data, t.grad.backend)}"
    return label


class _Drawing:
    """Builds the drawing: one Graphviz node per tensor and per op, coloured by order."""

    def __init__(self, show_values: bool, rankdir: str, max_nodes: int):
        self.dot = GraphDrawing(graph_attr={"rankdir": rankdir, "fontname": "Helvetica"},
                                node_attr={"fontname": "Helvetica", "fontsize": "11", "style": "filled"},
                                edge_attr={"arrowsize": "0.7"})
        self.show_values, self.max_nodes = show_values, max_nodes
        self.tensor_ids: dict = {}  # a tensor's producing node (or the leaf itself) -> drawing id
        self.op_ids: dict = {}  # id(node) -> drawing id
        self.orders: set = set()
        self.marks = {"tensor", "op"}  # and "leaf", "parameter", "freed": the kinds of node the legend explains
        self.left_out = 0

    def tensor(self, t: Any, user_order: int = 0) -> str:
        """The drawing id of t; a constant (a leaf without grad) takes the order of the op
        that uses it, so the ones and scalars a backward creates are coloured with it."""
        held = t() if isinstance(t, FreedTensor) else None  # the tensor, if somebody still holds it
        alive = t if held is None else held
        key = id(alive.grad_fn) if alive.grad_fn is not None else id(alive)
        if key not in self.tensor_ids:
            self.tensor_ids[key] = f"t{len(self.tensor_ids)}"
            order = alive.grad_fn.order if alive.grad_fn is not None else 0 if alive.requires_grad else user_order
            self.orders.add(order)
            attrs = {"shape": "ellipse", "fillcolor": _colour(order)}
            if isinstance(alive, FreedTensor):
                self.marks.add("freed")
            if alive.is_leaf and alive.requires_grad:
                attrs.update(peripheries="2", color="#1c4e80")
                self.marks.add("leaf")
                if type(alive).__name__ == "Parameter":
                    attrs["penwidth"] = "2"
                    self.marks.add("parameter")
            self.dot.node(self.tensor_ids[key], _tensor_label(alive, self.show_values), **attrs)
        return self.tensor_ids[key]

    def op(self, node: Any, output: Any) -> list:
        """Draw node with its edges; returns its inputs that were made by ops (to draw next)."""
        op_id = self.op_ids[id(node)] = f"op{len(self.op_ids)}"
        self.orders.add(node.order)
        self.dot.node(op_id, node.name, shape="box", fillcolor=_colour(node.order), style="filled,rounded")
        self.dot.edge(op_id, self.tensor(output))
        for inp in node.inputs:
            self.dot.edge(self.tensor(inp, node.order), op_id)
        return [inp for inp in node.inputs if inp.grad_fn is not None and id(inp.grad_fn) not in self.op_ids]

    def walk(self, roots: list) -> None:
        """Every op reachable from the roots, iteratively (deep graphs are fine), up to max_nodes."""
        stack = list(reversed(roots))
        for r in roots:
            self.tensor(r)
        while stack:
            t = stack.pop()
            if t.grad_fn is None or id(t.grad_fn) in self.op_ids:
                continue
            if len(self.tensor_ids) + len(self.op_ids) >= self.max_nodes:
                self.left_out += 1
                continue
            stack.extend(self.op(t.grad_fn, t))

    def finish(self) -> GraphDrawing:
        """The note on what was left out, and the legend: the fill colours, then the marks."""
        if self.left_out:
            self.dot.node("capped", f"graph capped at max_nodes={self.max_nodes}:\n{self.left_out} more ops not drawn",
                          shape="note", fillcolor="#f1f3f5")
        with self.dot.subgraph(name="cluster_legend") as legend:
            legend.attr(label="legend (fill colour: the pass that made the node)", fontsize="10", style="rounded",
                        color="#adb5bd")
            for order in sorted(self.orders):
                legend.node(f"legend{order}", _order_name(order), shape="box",
                            fillcolor=_colour(order), style="filled,rounded", fontsize="10")
            for mark, text, attrs in LEGEND_MARKS:
                if mark in self.marks:
                    legend.node(f"legend_{mark}", text, fontsize="10", fillcolor="white", **attrs)
        return self.dot


def draw_graph(root: Tensor | list, *, show_values: bool = False, rankdir: str = "LR",
               max_nodes: int = 500) -> GraphDrawing:
    """The graph that computed `root` (a Tensor or a list of Tensors) as a Graphviz drawing.

    Walks back from the roots through every node's inputs; past `max_nodes` tensors and
    ops it stops and says how many it left out. After a backward (without retain_graph)
    the whole graph is still drawn: the tensors you still hold with their values and
    grads, the ones nobody holds any more marked "(value freed by backward)". To see every
    value and gradient (micrograd's drawing), make the forward pass inside
    `tg.retain_grads()`: each tensor it makes keeps its value and gets its `.grad`.
    """
    drawing = _Drawing(show_values, rankdir, max_nodes)
    drawing.walk(list(root) if isinstance(root, (list, tuple)) else [root])
    return drawing.finish()

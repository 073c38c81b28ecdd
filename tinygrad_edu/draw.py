"""draw_graph: the computation graph behind a tensor, as a Graphviz drawing.

Ellipses are tensors (a name if given, else shape and dtype; values and gradients with
show_values=True), boxes are ops, and edges run the way data flows: inputs → op → output.
Leaves that require grad are drawn with a double border, nn Parameters bold as well.

Colours give each node's differentiation order: 0 for the forward pass, 1 for nodes a
first backward(create_graph=True) made, 2 for a backward through those, and so on. So
after `loss.backward(create_graph=True)`, `draw_graph(x.grad)` shows the gradient's graph
built on top of the forward graph, and a Hessian-vector product's graph shows three
colours.

Works in Jupyter (the drawing displays as SVG) and from scripts:
`draw_graph(y).render("graph", format="svg")`. `.source` is the DOT text and needs no
Graphviz program; rendering needs `dot`, and without it raises an error that says how
to install it.
"""
from __future__ import annotations

from typing import Any

import graphviz
import numpy

from .tensor import Tensor

ORDER_COLOURS = ["#cfe2ff", "#ffd8a8", "#c3f0c8", "#e5ccff", "#ffc9c9", "#fff3bf"]
ORDER_NAMES = ["forward", "1st backward", "2nd backward", "3rd backward"]
INSTALL_GRAPHVIZ = (
    "rendering needs Graphviz's `dot` program, which was not found on PATH. Install it: "
    "Debian/Ubuntu `sudo apt-get install graphviz`, macOS `brew install graphviz`, "
    "conda `conda install -c conda-forge graphviz`. (draw_graph(...).source gives the DOT text without it.)"
)


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


def _tensor_label(t: Tensor, show_values: bool) -> str:
    label = f"{t.shape} {t.dtype}" if t.name is None else f"{t.name}\n{t.shape} {t.dtype}"
    if show_values:
        label += f"\ndata {_values(t.data, t.backend)}"
        if t.grad is not None:
            label += f"\ngrad {_values(t.grad.data, t.grad.backend)}"
    return label


def draw_graph(root: Tensor | list, *, show_values: bool = False, rankdir: str = "LR",
               max_nodes: int = 500) -> GraphDrawing:
    """The graph that computed `root` (a Tensor or a list of Tensors) as a Graphviz drawing.

    Walks back from the roots through every node's inputs (iteratively, so deep graphs
    are fine); past `max_nodes` tensors and ops it stops and says how many it left out.
    A graph freed by backward (without retain_graph) shows only its last op, marked freed.
    """
    roots = list(root) if isinstance(root, (list, tuple)) else [root]
    dot = GraphDrawing(graph_attr={"rankdir": rankdir, "fontname": "Helvetica"},
                       node_attr={"fontname": "Helvetica", "fontsize": "11", "style": "filled"},
                       edge_attr={"arrowsize": "0.7"})
    tensor_ids: dict = {}  # a tensor's producing node (or the leaf itself) -> drawing id
    drawn_ops: set = set()
    orders: set = set()
    stack = list(reversed(roots))
    left_out = 0

    def tensor_node(t: Tensor, user_order: int = 0) -> str:
        """The drawing id of t; a constant (a leaf without grad) takes the order of the op
        that uses it, so the ones and scalars a backward creates are coloured with it."""
        key = id(t.grad_fn) if t.grad_fn is not None else id(t)
        if key not in tensor_ids:
            tensor_ids[key] = f"t{len(tensor_ids)}"
            if t.grad_fn is not None:
                order = getattr(t.grad_fn, "order", 0)
            else:
                order = 0 if t.requires_grad else user_order
            orders.add(order)
            attrs = {"shape": "ellipse", "fillcolor": _colour(order)}
            if t.is_leaf and t.requires_grad:
                attrs.update(peripheries="2", color="#1c4e80")
                if type(t).__name__ == "Parameter":
                    attrs["penwidth"] = "2"
            dot.node(tensor_ids[key], _tensor_label(t, show_values), **attrs)
        return tensor_ids[key]

    for r in roots:
        tensor_node(r)
    while stack:
        t = stack.pop()
        node = t.grad_fn
        if node is None or id(node) in drawn_ops:
            continue
        if len(tensor_ids) + len(drawn_ops) >= max_nodes:
            left_out += 1
            continue
        drawn_ops.add(id(node))
        op_id = f"op{len(drawn_ops)}"
        freed = node.inputs is None
        order = getattr(node, "order", 0)
        orders.add(order)
        dot.node(op_id, node.name + ("\n(freed by backward)" if freed else ""), shape="box",
                 fillcolor=_colour(order), style="filled,rounded" + (",dashed" if freed else ""))
        dot.edge(op_id, tensor_node(t))
        for inp in node.inputs or ():
            dot.edge(tensor_node(inp, order), op_id)
            if inp.grad_fn is not None and id(inp.grad_fn) not in drawn_ops:
                stack.append(inp)
    if left_out:
        dot.node("capped", f"graph capped at max_nodes={max_nodes}:\n{left_out} more ops not drawn",
                 shape="note", fillcolor="#f1f3f5")
    with dot.subgraph(name="cluster_legend") as legend:
        legend.attr(label="differentiation order", fontsize="10", style="rounded", color="#adb5bd")
        for order in sorted(orders):
            legend.node(f"legend{order}", f"{order}: {_order_name(order)}", shape="box", fillcolor=_colour(order),
                        style="filled,rounded", fontsize="10")
    return dot

"""Sphinx configuration of the book (`make docs` builds it into out/book/).

Sphinx with MyST: the chapters are Markdown, the four notebooks of demos/notebooks/ are
executed at build time by myst-nb (docs/notebooks is a link to that folder, so the book shows
the notebooks students open, not copies), the API reference comes from the docstrings, and
MathJax is the copy shipped in the sphinx-mathjax-offline package: neither the build nor a
reader's browser needs the network.
"""
from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import sys
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's packages, whichever venv builds the book

project = "tinygrad_edu"
author = "the tinygrad_edu authors"
copyright = "the tinygrad_edu authors"

extensions = ["myst_nb", "sphinx.ext.autodoc"]
exclude_patterns = ["**.ipynb_checkpoints"]

# MyST: $...$ and $$...$$ math in the chapters, as in the notebooks.
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# The notebooks run at every build, top to bottom, with the Python that runs Sphinx: a cell that
# raises fails the build (each notebook asserts what it teaches), as tests/test_notebooks.py does.
nb_execution_mode = "force"
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_execution_show_tb = True
nb_kernel_rgx_aliases = {".*": "python3"}

# MathJax 3 from the installed package, copied into _static/ (no CDN); SVG output needs no web fonts.
mathjax_path = "mathjax/tex-svg.js"

html_theme = "sphinx_book_theme"
html_title = "tinygrad_edu: the book"
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
}
# The theme's light mode at the first visit (with no mode chosen, the theme logs a console error).
html_context = {"default_mode": "light"}
html_last_updated_fmt = None
html_copy_source = False
html_show_sourcelink = False

# The API reference: signatures with their type hints, members in source order.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"members": True}


def docstring_as_written(app, what, name, obj, options, lines: list[str]) -> None:
    """Show a docstring as its author wrote it: prose as paragraphs, the rest as laid out.

    The docstrings are plain text for a terminal (help()), not reStructuredText: read as reST,
    a `*` or an indented formula would be misread. So a paragraph of prose (lines that start
    at the margin) becomes one paragraph with every markup character escaped and `name` set
    as code, which the browser wraps to the page; everything else (formulas aligned with
    spaces, `>>>` examples, lists) stays exactly as written, in a block of plain text.
    """
    rst: list[str] = []
    kept: list[str] = []  # the lines of the current block of text kept as written

    def keep_block() -> None:
        while kept and not kept[-1].strip():
            kept.pop()
        if kept:
            rst.extend([".. code-block:: text", ""] + ["    " + line for line in kept] + [""])
            kept.clear()

    for paragraph in paragraphs(lines):
        if is_prose(paragraph):
            keep_block()
            rst.extend([escaped(" ".join(line.strip() for line in paragraph)), ""])
        else:
            kept.extend(paragraph + [""])
    keep_block()
    lines[:] = rst


def paragraphs(lines: list[str]) -> list[list[str]]:
    """The runs of non-blank lines."""
    runs: list[list[str]] = [[]]
    for line in lines:
        if line.strip():
            runs[-1].append(line)
        elif runs[-1]:
            runs.append([])
    return [run for run in runs if run]


def is_prose(paragraph: list[str]) -> bool:
    """Sentences that may be rewrapped: every line at the margin, with no alignment inside."""
    return not any(line[0].isspace() or line.startswith((">>>", "- ", "* ", "• ")) or "  " in line.strip()
                   or re.match(r"\d+[.)] ", line) for line in paragraph)


def escaped(text: str) -> str:
    """Prose as reST that means nothing but the text: `name` as code, every other mark escaped.

    An escaped space (a backslash and a space) around each code span prints nothing and lets
    the span touch a letter (`Tensor`'s)."""
    pieces = text.split("`")
    if len(pieces) % 2 == 0:  # an unpaired backtick: no code spans
        pieces = [text]
    out = []
    for index, piece in enumerate(pieces):
        if index % 2 and piece and piece == piece.strip():
            out.append(f"\\ :code:`{piece}`\\ ")
        else:
            out.append(re.sub(r"([^\w\s]|_)", r"\\\1", f"`{piece}`" if index % 2 else piece))
    return "".join(out)


def public_names(module_name: str) -> list[str]:
    """The names a module exports: its `__all__`, or else what it defines without a leading `_`."""
    module = importlib.import_module(module_name)
    if hasattr(module, "__all__"):
        return list(module.__all__)
    return [name for name, value in vars(module).items()
            if not name.startswith("_") and getattr(value, "__module__", None) == module_name
            and (inspect.isfunction(value) or inspect.isclass(value))]


class ApiModule(Directive):
    """`api-module`: every public name of a module, each with its docstring.

    Written out from the module itself at build time, so a name added to the code is in the
    reference without editing the book. Submodules named in `__all__` (nn.functional, its
    alias nn.F, optim.lr_scheduler) are skipped: each has a section of its own.
    """

    required_arguments = 1

    def run(self) -> list[nodes.Node]:
        module_name = self.arguments[0]
        module = importlib.import_module(module_name)
        rst = [f".. py:module:: {module_name}", ""]
        for name in public_names(module_name):
            value = getattr(module, name)
            if inspect.ismodule(value):
                continue
            kind = "autoclass" if inspect.isclass(value) else "autofunction"
            rst += [f".. {kind}:: {module_name}.{name}", ""]
        # The page is MyST Markdown, and autodoc writes reStructuredText: eval-rst reads it as such.
        text = ["```{eval-rst}"] + rst + ["```"]
        container = nodes.container()
        self.state.nested_parse(StringList(text, source=f"api-module {module_name}"), self.content_offset,
                                container)
        return container.children


def lines_role(name, rawtext, text, lineno, inliner, options=None, content=None):
    """{lines}`path`: the file as code and its length in lines, counted at build time.

    A module named without `.py` may be a file or a package (`tinygrad_edu/jit`): a package
    counts the lines of its .py files.
    """
    path = ROOT / text
    candidates = [path] if path.suffix else [path.with_suffix(".py"), path]
    found = next((candidate for candidate in candidates if candidate.exists()), None)
    if found is None:
        message = inliner.reporter.error(f"{{lines}}: no {text} in the checkout", line=lineno)
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    files = sorted(found.glob("*.py")) if found.is_dir() else [found]
    count = sum(len(file.read_text(encoding="utf-8").splitlines()) for file in files)
    shown = found.relative_to(ROOT).as_posix() + ("/" if found.is_dir() else "")
    return [nodes.literal(shown, shown), nodes.Text(f" ({count} lines)")], []


def copy_mathjax(app, exception) -> None:
    """Copy the packaged MathJax into the site's _static/ once the build succeeded."""
    if exception is None:
        package = Path(importlib.import_module("sphinx-mathjax-offline").__file__).parent
        shutil.copytree(package / "static" / "mathjax", Path(app.outdir) / "_static" / "mathjax",
                        dirs_exist_ok=True)


def quiet_kernels(app) -> None:
    """Each kernel logs a "WARNING" at its start about its local TCP sockets, which reads like a
    warning of the build: an IPython profile of the build's own raises the kernels' log level."""
    profile = Path(app.doctreedir) / "ipython" / "profile_default"
    profile.mkdir(parents=True, exist_ok=True)
    (profile / "ipython_kernel_config.py").write_text('c.IPKernelApp.log_level = "ERROR"\n')
    os.environ["IPYTHONDIR"] = str(profile.parent)


def setup(app) -> dict:
    quiet_kernels(app)
    app.connect("autodoc-process-docstring", docstring_as_written)
    app.connect("build-finished", copy_mathjax)
    app.add_directive("api-module", ApiModule)
    app.add_role("lines", lines_role)
    return {"parallel_read_safe": True}

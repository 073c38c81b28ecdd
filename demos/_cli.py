"""The command line every demo shares: its first docstring line as the description,
--out (the folder for its figures), --quick (a smoke test) and, where it can run on a
GPU, --device. A demo adds its own options to the parser this returns.

Each demo imports this module before NumPy and the project, so that a Python without
them (one outside the project's virtual environment) is told how to run the demos
instead of failing with "No module named 'nn'"."""
from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path

try:
    for package in ("numpy", "tinygrad_edu", "nn", "optim"):  # what every demo needs
        importlib.import_module(package)
except ModuleNotFoundError as missing:
    raise SystemExit(
        f"{missing}: this Python ({sys.executable}) does not have the project installed. The demos run in "
        "the project's virtual environment: `make demo` creates .venv/ once, then, from the repository root, "
        f"`.venv/bin/python demos/{Path(sys.argv[0]).name}` (or `source .venv/bin/activate` first)."
    ) from None


def demo_parser(doc: str, quick: str | None = None, out: str | None = "out",
                device: bool = False) -> argparse.ArgumentParser:
    """A parser described by the first line of `doc`; `quick` is --quick's help (None: no
    --quick), `out` the default folder of --out (None: no --out), `device` adds --device."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    if out is not None:
        parser.add_argument("--out", type=Path, default=Path(out),
                            help=f"folder for what the demo writes, created if missing (default: {out}/)")
    if quick is not None:
        parser.add_argument("--quick", action="store_true", help=quick)
    if device:
        parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                            help="where the tensors live (cuda needs CuPy and a GPU; default: cpu)")
    return parser

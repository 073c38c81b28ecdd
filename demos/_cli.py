"""The command line every demo shares: its first docstring line as the description,
--out (the folder for its figures), --quick (a smoke test) and, where it can run on a
GPU, --device. A demo adds its own options to the parser this returns."""
from __future__ import annotations

import argparse
from pathlib import Path


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

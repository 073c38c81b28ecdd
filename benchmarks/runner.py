"""The runner: one child process per workload, the columns, medians, ratios and the report.

Run from the repository root:
    python -m benchmarks [--workloads W1,W2,...] [--repeats N] [--json PATH] [--device cpu|cuda] [--quick]

Method. Each workload runs in a child process of its own (`python -m benchmarks` with a
hidden --run-workload flag), so one workload's heap and caches cannot slow the next. BLAS
and OpenMP threads are fixed before NumPy loads (benchmarks/__main__.py): OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS and MKL_NUM_THREADS are 1 unless set in the environment, PyTorch gets the
same count, and the table's machine line reports them. Each workload first checks that every
column computes the floor's numbers (loss, updated weights, gradient or H·v within a
tolerance), so a fast wrong answer cannot pass; then one warm-up call of each case, then
repetitions in which every case runs once in turn (common.interleave). Only medians and
ratios are reported. "met?" compares this run's medians with the targets; nothing here
asserts them, since timings move with the machine.

The columns. COLUMNS lists who computes each workload: tinygrad_edu, the hand-written floor
and PyTorch. Each column maps a workload's name to a function that takes the workload's
problem (its data) and returns its cases by label; a column that lacks a workload, or
returns no cases (PyTorch not installed, tg.jit on "cuda"), simply has no row there. Adding
a column is one entry in COLUMNS and its functions; a column may bring targets of its own
(tg.jit's, in benchmarks/jit_column.py).

--quick shrinks repetitions and sizes for a smoke test; --json PATH also writes every
number to PATH.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from benchmarks import THREAD_VARIABLES, floors, jit_column, reference, workloads
from benchmarks.common import ENGINE, FLOOR, REFERENCE, Case, Entry, Skipped, array_module, first_floor, interleave, row

ROOT = Path(__file__).resolve().parents[1]  # the folder that holds the benchmarks package
CPU_WORKLOADS = ("W1", "W2", "W3", "W3f", "W4", "W5", "W6", "MEM")
CUDA_WORKLOADS = ("W1", "LARGE")
# Interleaved repetitions per workload: (default, --quick).
REPEATS = {"W1": (100, 5), "W2": (200, 10), "W3": (50, 5), "W3f": (50, 5), "W4": (15, 2), "W5": (5, 2), "W6": (200, 5),
           "LARGE": (3, 2)}

# How each figure of a row reads in the table (its value, or a target's limit).
FIGURES = {
    "floor": "{:.2f}x floor",
    "us_per_op": "{:.2f} µs/op",
    "gradient": "{:.2f}x gradient",
    "time_growth": "µs/op {:.2f}x smallest N's",
    "memory_growth": "peak B/op {:.2f}x smallest N's",
    "kept_kib": "{:.0f} KiB kept after del",
    "rss_growth_mib": "RSS {:+.2f} MiB",
    "cpu_speedup": "{:.1f}x faster than CPU",
    "torch": "{:.2f}x PyTorch",
    "first_calls": "first calls (recording) {:.1f}x one eager call",
}


@dataclass(frozen=True)
class Column:
    """One column of the table: its name on each device, its kind (common.ENGINE, FLOOR or
    REFERENCE), per workload problem -> {label: Case}, and, per workload where the column
    has targets of its own, Entry -> its targets (instead of the workload's)."""
    cpu_name: str
    cuda_name: str
    kind: str
    cases: dict[str, Callable[[Any], dict[str, Case]]]
    targets: dict[str, Callable[[Entry], list]] = field(default_factory=dict)


COLUMNS = (
    Column("tinygrad_edu", "tinygrad_edu (cuda)", ENGINE, workloads.ENGINE_CASES),
    Column("tinygrad_edu jit", "tinygrad_edu jit (cuda)", ENGINE, jit_column.CASES, jit_column.TARGETS),
    Column("tinygrad_edu jit (fused)", "tinygrad_edu jit (fused, cuda)", ENGINE, jit_column.FUSED_CASES,
           jit_column.FUSED_TARGETS),
    Column("NumPy by hand (floor)", "CuPy by hand (floor)", FLOOR, floors.CASES),
    Column("PyTorch eager", "PyTorch CUDA", REFERENCE, reference.CASES),
)


def entries_of(name: str, problem: Any, device: str) -> dict[str, Entry]:
    """Every column's cases of workload `name`, as rows in the order of COLUMNS."""
    entries = {}
    for column in COLUMNS:
        if name in column.cases:
            column_name = column.cpu_name if device == "cpu" else column.cuda_name
            for label, case in column.cases[name](problem).items():
                entry = Entry(column_name, column.kind, label, case, column.targets.get(name))
                entries[entry.name] = entry
    return entries


def synchronizer(device: str) -> Callable[[], None]:
    """Waits for the GPU's queued work (CuPy's, and PyTorch's where it is loaded); nothing to
    wait for on the CPU."""
    if device == "cpu":
        return lambda: None
    import cupy
    torch = sys.modules.get("torch")  # loaded by the PyTorch column, which may lack CUDA
    if torch is not None and not torch.cuda.is_available():
        torch = None

    def sync() -> None:
        cupy.cuda.Stream.null.synchronize()
        if torch is not None:
            torch.cuda.synchronize()

    return sync


def measure(name: str, device: str, repeats: int, quick: bool) -> dict:
    """One workload: its problem, every column's cases, the check, the medians, the rows."""
    if name in workloads.PROBES:
        return workloads.PROBES[name](device, repeats, quick)
    workload = workloads.WORKLOADS[name]
    problem = workload.problem(device, quick)
    entries = entries_of(name, problem, device)
    checked = workload.check(problem, entries)
    medians = interleave({n: e.case.run for n, e in entries.items()}, repeats, synchronizer(device))
    floor = medians[first_floor(entries).name]
    rows = []
    for n, entry in entries.items():
        figures = {"floor": medians[n] / floor, **workload.figures(problem, entry, medians, entries),
                   **first_call_figures(entry, medians, entries)}
        judge = entry.targets or workload.targets
        targets = [t for t in judge(entry) if t[0] in figures]  # none on PyTorch where it is missing
        rows.append(row(n, medians[n], figures, targets))
    return {"title": workload.title(problem), **checked, "rows": rows}


def first_call_figures(entry: Entry, medians: dict[str, float], entries: dict[str, Entry]) -> dict:
    """For a case whose first calls were not timed (a jit's, which record): their seconds
    over one call of the same label in the first engine column."""
    if entry.case.first_calls_s is None:
        return {}
    eager = next(n for n, e in entries.items() if e.kind == ENGINE and e.label == entry.label)
    return {"first_calls": entry.case.first_calls_s() / medians[eager]}


def run_workload(name: str, device: str, repeats: int | None, quick: bool) -> dict:
    """In the child: one workload's result; a failed check gives no timings, only the reason."""
    result: dict = {"workload": name, "device": device}
    try:
        array_module(device)  # on "cuda", Skipped at once where CuPy or a GPU is missing
        default = REPEATS.get(name, (0, 0))[quick]  # MEM runs a fixed number of steps instead
        measured = measure(name, device, repeats or default, quick)
    except Skipped as e:
        result["skipped"] = str(e)
    except AssertionError as e:
        result["check"] = {"passed": False, "detail": str(e).strip()}
        result["rows"] = []
    else:
        result.update(measured, check={"passed": True, "detail": measured["check"]})
    return result


def package_version(name: str) -> str | None:
    """The installed version of a distribution, or None."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def machine() -> dict:
    """What the table's machine line reports: CPUs, Python, NumPy and its BLAS, threads, versions."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas_name = f"{blas['name']} {blas.get('version', '')}".strip()
    except (TypeError, KeyError):  # NumPy before 1.26 prints its configuration only
        blas_name = "unknown"
    return {"cpus": os.cpu_count(), "platform": f"{platform.system()} {platform.machine()}",
            "python": platform.python_version(), "numpy": np.__version__, "blas": blas_name,
            "threads": {v: os.environ.get(v, "unset") for v in THREAD_VARIABLES},
            "torch": package_version("torch"), "scipy": package_version("scipy")}


def format_seconds(seconds: float) -> str:
    """1.2 µs, 3.45 ms or 6.78 s."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    return f"{seconds * 1e3:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def render_workload(name: str, result: dict) -> tuple[list, list, list]:
    """One workload's lines of the report: (rows of the main table, its note, its own tables)."""
    if "error" in result or "skipped" in result:
        return [], [f"- {name} on {result['device']}: {'ERROR' if 'error' in result else 'skipped'}: "
                    f"{result.get('error') or result['skipped']}"], []
    check = result["check"]
    detail = "; ".join(line.strip() for line in check["detail"].splitlines()[:4] if line.strip())  # JSON: all
    notes = [f"- {name} ({result.get('title', '')}): check {'passed' if check['passed'] else 'FAILED'}: {detail}"]
    rows, tables = [], []
    for r in result["rows"]:
        figures = "; ".join(FIGURES[k].format(v) for k, v in r["figures"].items())
        targets = "; ".join(("≤ " if t["op"] == "<=" else "≥ ") + FIGURES[t["figure"]].format(t["limit"])
                            for t in r["targets"])
        met = "—" if r["met"] is None else "yes" if r["met"] else "no"
        rows.append(f"| {name} | {r['engine']} | {format_seconds(r['median_s'])} | {figures} | {targets or '—'} "
                    f"| {met} |")
    for table in result.get("tables", []):
        tables += ["", table["title"], "", "| " + " | ".join(table["header"]) + " |",
                   "|" + "---|" * len(table["header"])]
        tables += ["| " + " | ".join(cells) + " |" for cells in table["rows"]]
    return rows, notes, tables


def render(report: dict) -> str:
    """The markdown report: the machine line, one table of every row, then each workload's
    check (or why it was skipped) and its own small tables."""
    m = report["machine"]
    threads = ", ".join(f"{k}={v}" for k, v in m["threads"].items())
    header = [f"## tinygrad_edu benchmark ({report['device']}{', quick' if report['quick'] else ''})", "",
              f"Machine: {m['cpus']} CPUs ({m['platform']}), Python {m['python']}, NumPy {m['numpy']} "
              f"(BLAS {m['blas']}), BLAS threads: {threads}; PyTorch {m['torch'] or 'not installed'}, "
              f"SciPy {m['scipy'] or 'not installed'}. Medians of interleaved repetitions; total "
              f"{report['seconds']:.0f} s.", ""]
    rows, notes, tables = [], [], []
    for name, result in report["workloads"].items():
        workload_rows, workload_notes, workload_tables = render_workload(name, result)
        rows, notes, tables = rows + workload_rows, notes + workload_notes, tables + workload_tables
    if rows:
        rows = ["| workload | engine | median | ratio / µs per op | target | met? |", "|---|---|---|---|---|---|",
                *rows, ""]
    return "\n".join(header + rows + notes + tables)


def run_children(names: Sequence[str], device: str, repeats: int | None, quick: bool) -> dict:
    """Each workload in a child process of its own; its result, or why the child failed."""
    results = {}
    for name in names:
        print(f"running {name} on {device} ...", file=sys.stderr, flush=True)
        command = [sys.executable, "-m", "benchmarks", "--run-workload", name, "--device", device]
        command += (["--repeats", str(repeats)] if repeats else []) + (["--quick"] if quick else [])
        child = subprocess.run(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        if child.returncode == 0 and child.stdout.strip():
            results[name] = json.loads(child.stdout.strip().splitlines()[-1])
        else:
            results[name] = {"workload": name, "device": device,
                             "error": f"the child process exited with status {child.returncode} (its stderr is above)"}
    return results


def parse_arguments(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line; --workloads becomes a list of names, each checked against --device."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description="tinygrad_edu against a hand-written NumPy floor (and PyTorch)")
    parser.add_argument("--workloads", help=f"comma-separated: any of {','.join(CPU_WORKLOADS)} on the CPU, "
                                            f"{','.join(CUDA_WORKLOADS)} with --device cuda (default: all of them)")
    parser.add_argument("--repeats", type=int, help="interleaved repetitions of every workload but MEM "
                                                    "(default: the workload's own, or a few with --quick)")
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--quick", action="store_true", help="tiny repetitions and sizes: a smoke test")
    parser.add_argument("--run-workload", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    allowed = CPU_WORKLOADS if args.device == "cpu" else CUDA_WORKLOADS
    args.workloads = args.workloads.split(",") if args.workloads else list(allowed)
    unknown = [name for name in args.workloads + [args.run_workload or allowed[0]] if name not in allowed]
    if unknown:
        parser.error(f"{', '.join(unknown)}: not a workload on {args.device} (choose from {', '.join(allowed)})")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """The parent: every workload in its child, the report on stdout (and in --json); 1 when
    a check failed or a child crashed. With --run-workload: the child, one JSON line."""
    args = parse_arguments(argv)
    if args.run_workload:
        print(json.dumps(run_workload(args.run_workload, args.device, args.repeats, args.quick)))
        return 0
    start = time.perf_counter()
    results = run_children(args.workloads, args.device, args.repeats, args.quick)
    report = {"machine": machine(), "device": args.device, "quick": args.quick, "repeats": args.repeats,
              "seconds": time.perf_counter() - start, "workloads": results}
    print(render(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), encoding="utf-8")
    failed = [name for name, r in results.items() if "error" in r or ("check" in r and not r["check"]["passed"])]
    return 1 if failed else 0

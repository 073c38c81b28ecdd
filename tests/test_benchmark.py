"""Smoke test of benchmarks/runner.py: a quick run of W2 (small-op overhead) and W5 (deep
chain) through the parent process and its children writes a JSON report whose workloads
all passed their correctness checks. Timings are never compared with the targets here:
they depend on the machine."""
import json
import subprocess
import sys
from pathlib import Path

BENCHMARK = Path(__file__).resolve().parents[1] / "benchmarks" / "runner.py"


def test_quick_run_writes_checked_results(tmp_path):
    report_path = tmp_path / "report.json"
    command = [sys.executable, str(BENCHMARK), "--quick", "--workloads", "W2,W5", "--json", str(report_path)]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert "| workload | engine | median |" in run.stdout

    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert {"machine", "device", "quick", "seconds", "workloads"} <= report.keys()
    assert report["device"] == "cpu" and report["quick"] is True
    assert {"cpus", "python", "numpy", "blas", "threads"} <= report["machine"].keys()
    assert set(report["machine"]["threads"]) == {"OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"}
    assert list(report["workloads"]) == ["W2", "W5"]
    for name, result in report["workloads"].items():
        assert result["workload"] == name
        assert result["check"]["passed"] is True, result["check"]["detail"]
        assert result["rows"], f"{name} has no rows"
        for row in result["rows"]:
            assert {"engine", "median_s", "figures", "targets", "met"} <= row.keys()
            assert row["median_s"] > 0
            for target in row["targets"]:
                assert target["figure"] in row["figures"] and isinstance(target["met"], bool)

    w2_engines = [row["engine"] for row in report["workloads"]["W2"]["rows"]]
    assert w2_engines[:2] == ["tinygrad_edu", "NumPy by hand (floor)"]
    assert all(row["figures"]["us_per_op"] > 0 for row in report["workloads"]["W2"]["rows"])
    w5_table = report["workloads"]["W5"]["tables"][0]
    assert [cells[0] for cells in w5_table["rows"]] == ["N=1e2", "N=1e3", "N=1e4"]  # --quick's chain lengths

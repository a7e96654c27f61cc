"""scripts/benchmark.py runs and writes what docs/benchmarks.md shows (not a timing test)."""

import json
import subprocess
import sys

from conftest import ROOT


def test_benchmark_measures_each_loop_and_writes_the_table(tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--models", "digits",
               "--steps", "2", "--repeats", "1", "--output", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "benchmarks.json").read_text())
    measured = [(r["model"], r["loop"], r["batch"]) for r in report["results"]]
    assert measured == [("digits", "naive", 1), ("digits", "visexp", 1), ("digits", "visexp", 8)]
    assert all(r["image_steps_per_s"] > 0 and r["peak_mib"] > 0 for r in report["results"])
    assert report["machine"]["matmul_gflops"]["cpu"] > 0
    rows = [line for line in (tmp_path / "benchmarks.md").read_text().splitlines() if line.startswith("| cpu | digits")]
    assert len(rows) == 3 and rows[0].split(" | ")[5] == "1.00"  # the naive loop against itself

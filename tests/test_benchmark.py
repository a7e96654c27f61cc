"""scripts/benchmark.py runs and writes what docs/benchmarks.md shows (not a timing test)."""

import json
import subprocess
import sys

from conftest import ROOT


def test_benchmark_measures_each_part_and_writes_the_tables(tmp_path):
    command = [sys.executable, str(ROOT / "scripts" / "benchmark.py"), "--models", "digits", "--steps", "2",
               "--repeats", "1", "--rounds", "1", "--sweep-steps", "3", "--grid-device", "cpu", "--grid-models", "digits",
               "--grid-batches", "2", "--grid-variants", "fp32", "bf16", "--output", str(tmp_path)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "benchmarks.json").read_text())
    assert [(r["model"], r["loop"], r["batch"]) for r in report["loops"]] == [
        ("digits", "naive", 1), ("digits", "visexp", 1), ("digits", "visexp", 8)]
    assert all(r["image_steps_per_s"] > 0 and r["peak_mib"] > 0 for r in report["loops"])
    assert [(r["launcher"], r["points"], r["steps"]) for r in report["sweeps"]] == [("basic", 8, 3), ("batched", 8, 3)]
    assert all(0 < r["seconds"] < r["command_seconds"] for r in report["sweeps"])
    assert [(r["batch"], r["variant"]) for r in report["grid"]] == [(2, "fp32"), (2, "bf16")]
    assert report["machine"]["matmul_gflops"]["cpu/fp32"] > 0 and report["machine"]["matmul_gflops"]["cpu/bf16"] > 0
    markdown = (tmp_path / "benchmarks.md").read_text()
    loops = [line for line in markdown.splitlines() if line.startswith("| cpu | digits | ")]
    assert len(loops) == 3 + 1 + 2  # three loops, one sweep, two grid variants
    assert loops[0].split(" | ")[5] == "1.00"  # the naive loop against itself
    targets = markdown.split("## Targets")[1]
    assert "digits, 8-point lambda sweep: batched launcher x faster than the default" in targets
    assert "digits, batch of 8: peak memory x the naive loop's" in targets

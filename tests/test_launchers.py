"""The same sweep on Hydra's launcher plugins (joblib, submitit) and their one-line errors."""

import json
import os
import shutil
import stat
from pathlib import Path

import pytest
from conftest import run_cli

SWEEP = ["-m", "model=digits", "target=2,5", "steps=20", "logger=none"]


def outputs(sweep: Path) -> dict[str, tuple[bytes, float]]:
    """Each job's image.png bytes and target probability, by job folder."""
    found = {}
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        found[job] = ((sweep / job / "image.png").read_bytes(), metrics["target_probability"])
    return found


def test_submitit_local_and_joblib_give_the_default_launchers_outputs(tmp_path, offline_env):
    default = run_cli([*SWEEP, f"hydra.sweep.dir={tmp_path / 'basic'}"], offline_env)
    assert default.returncode == 0, default.stderr

    submitit = run_cli([*SWEEP, "hydra/launcher=submitit_local", f"hydra.sweep.dir={tmp_path / 'submitit'}"], offline_env)
    assert submitit.returncode == 0, submitit.stderr
    assert list((tmp_path / "submitit" / ".submitit").iterdir()), "submitit keeps its job logs in the sweep folder"
    assert outputs(tmp_path / "submitit") == outputs(tmp_path / "basic")

    # joblib gives each worker its share of the cores, and CPU results are bit-identical for the
    # same number of threads: pinned with `threads`, the two launchers agree byte for byte.
    joblib = run_cli([*SWEEP, "threads=1", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                      f"hydra.sweep.dir={tmp_path / 'joblib'}"], offline_env)
    assert joblib.returncode == 0, joblib.stderr
    held = run_cli([*SWEEP, "threads=1", f"hydra.sweep.dir={tmp_path / 'held'}"], offline_env)
    assert held.returncode == 0, held.stderr
    assert json.loads((tmp_path / "held" / "0" / "metrics.json").read_text())["threads"] == 1
    assert outputs(tmp_path / "joblib") == outputs(tmp_path / "held")
    assert (tmp_path / "joblib" / "grid.png").is_file()


def one_error_line(result) -> str:
    assert result.returncode == 2, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    return errors[0]


def test_unknown_launcher_is_one_line(offline_env):
    error = one_error_line(run_cli([*SWEEP, "hydra/launcher=slurm"], offline_env))
    assert error == "error: unknown hydra/launcher 'slurm': choose from basic, batched, joblib, submitit_local, submitit_slurm"


@pytest.mark.parametrize("args, expected", [
    (["hydra.launcher.n_jobs=4"], "error: hydra/launcher=basic has no setting 'n_jobs': it is a setting of hydra/launcher=joblib"),
    (["hydra/launcher=joblib", "hydra.launcher.njobs=4"], "error: hydra/launcher=joblib has no setting 'njobs': did you mean n_jobs?"),
    (["hydra/launcher=batched", "hydra.launcher.max_batch=0"], "error: hydra.launcher.max_batch must be a positive integer, not 0"),
])
def test_a_setting_the_launcher_does_not_have_is_one_line(offline_env, args, expected):
    assert one_error_line(run_cli([*SWEEP, *args], offline_env)).startswith(expected)


def test_slurm_launcher_without_a_partition_is_one_line(tmp_path, offline_env):
    error = one_error_line(run_cli([*SWEEP, "hydra/launcher=submitit_slurm", f"hydra.sweep.dir={tmp_path}"], offline_env))
    assert "needs hydra.launcher.partition=NAME" in error
    assert not (tmp_path / "0").exists()


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has SLURM")
def test_slurm_launcher_off_a_cluster_is_one_line(tmp_path, offline_env):
    args = [*SWEEP, "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path}"]
    error = one_error_line(run_cli(args, offline_env))
    assert "needs SLURM's sbatch and srun" in error and "hydra/launcher=submitit_local" in error


def test_slurm_preset_reaches_sbatch_as_documented(tmp_path, offline_env):
    """With stand-in `sbatch`/`srun` that keep the script they are given, the preset's settings
    (and those typed on the command line) arrive as sbatch options of one job array."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kept = tmp_path / "kept.sh"
    for name, body in (("srun", "exit 0"), ("sbatch", f'cp "$1" {kept}; echo "refused by the stand-in" >&2; exit 1')):
        (bin_dir / name).write_text(f"#!/bin/sh\n{body}\n")
        (bin_dir / name).chmod(stat.S_IRWXU)
    env = {**offline_env, "PATH": f"{bin_dir}{os.pathsep}{offline_env['PATH']}"}
    args = [*SWEEP, "hydra/launcher=submitit_slurm", "hydra.launcher.partition=gpu-a100",
            "hydra.launcher.timeout_min=30", "hydra.launcher.array_parallelism=1", f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    result = run_cli(args, env)
    assert result.returncode != 0  # the stand-in refuses to queue anything
    script = kept.read_text()
    for option in ("--partition=gpu-a100", "--gpus-per-node=1", "--cpus-per-task=8", "--mem=32GB",
                   "--time=30", "--array=0-1%1"):
        assert f"#SBATCH {option}" in script, script

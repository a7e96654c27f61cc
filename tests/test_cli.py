"""`python run.py ...` as a user types it: sweeps, the headline command, one-line errors."""

import json

import pytest
import torch
import torchvision
from conftest import ROOT, run_cli
from omegaconf import OmegaConf
from PIL import Image

from visexp.models import weights_file


def test_sweep_writes_one_folder_per_point_and_a_captioned_grid(tmp_path, offline_env):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "model=digits", "target=1,7", "steps=20", f"hydra.sweep.dir={sweep}"], offline_env)
    assert result.returncode == 0, result.stderr
    for job, digit in (("0", 1), ("1", 7)):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["target"] == digit
        assert (sweep / job / "image.png").is_file() and (sweep / job / "progress.gif").is_file()
        assert list((sweep / job).glob("wandb/offline-run-*/run-*.wandb"))  # W&B offline by default
    with Image.open(sweep / "grid.png") as grid:
        assert grid.width >= 2 * 160
    assert result.stdout.count("W&B: no credentials found") == 2


def test_headline_command_with_pretrained_googlenet_from_the_cache(tmp_path, offline_env):
    """objective=class target=968 reg=l2 -m lambda=1e-4,1e-3, exactly as typed (plus a short run)."""
    googlenet = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    cache = weights_file(torchvision.models.GoogLeNet_Weights.DEFAULT)
    cache.parent.mkdir(parents=True)
    torch.save(googlenet.state_dict(), cache)
    sweep = tmp_path / "sweep"
    args = ["objective=class", "target=968", "reg=l2", "-m", "lambda=1e-4,1e-3", "steps=2", "logger=none", f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, offline_env)
    assert result.returncode == 0, result.stderr
    assert [OmegaConf.load(sweep / job / ".hydra" / "config.yaml")["lambda"] for job in ("0", "1")] == [1e-4, 1e-3]
    for job in ("0", "1"):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["model"] == "googlenet" and metrics["target_name"] == "cup"
    assert (sweep / "grid.png").is_file()


def test_headline_command_offline_without_weights_says_where_to_put_them(tmp_path, offline_env):
    result = run_cli(["objective=class", "target=968", "reg=l2", "logger=none", f"hydra.run.dir={tmp_path / 'run'}"], offline_env)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1
    assert "googlenet-1378be20.pth" in errors[0] and "hub/checkpoints" in errors[0]
    assert not (tmp_path / "run" / "image.png").exists()


@pytest.mark.parametrize("group", ["model", "objective", "reg", "init", "optim", "logger"])
def test_unknown_group_option_is_one_line(offline_env, group):
    options = sorted(path.stem for path in (ROOT / "conf" / group).glob("*.yaml"))
    result = run_cli(["-m", f"{group}={options[0]},nope"], offline_env)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: unknown {group} 'nope': choose from {', '.join(options)}"


def test_unknown_key_is_one_line_with_a_suggestion(offline_env):
    result = run_cli(["model=digits", "step=5"], offline_env)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: unknown key 'step': did you mean steps?")


def test_bad_value_is_one_line_with_no_outputs(tmp_path, offline_env):
    run_dir = tmp_path / "run"
    result = run_cli(["model=digits", "target=12", "logger=none", f"hydra.run.dir={run_dir}"], offline_env)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: target 12 is out of range for model digits: it has 10 classes, 0-9"
    assert not (run_dir / "image.png").exists() and not (run_dir / "metrics.json").exists()


def test_a_failing_point_does_not_stop_the_sweep_but_fails_the_command(tmp_path, offline_env):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "model=digits", "target=12,4", "steps=10", "logger=none", f"hydra.sweep.dir={sweep}"], offline_env)
    assert result.returncode == 1
    assert "error in job 0: target 12 is out of range" in result.stderr
    assert "1 of 2 jobs failed" in result.stderr
    assert not (sweep / "0" / "metrics.json").exists()
    assert json.loads((sweep / "1" / "metrics.json").read_text())["target"] == 4
    assert (sweep / "grid.png").is_file()


OUT_OF_MEMORY = """
import torch
from visexp.tasks.visualise import Visualise

ordinary_run = Visualise.run


def run(self, outputs, observer):
    if self.cfg.target == 2:
        raise torch.OutOfMemoryError("CUDA out of memory (simulated)")
    return ordinary_run(self, outputs, observer)


Visualise.run = run
"""


@pytest.mark.parametrize("launcher", ["basic", "joblib"])
def test_an_unexpected_error_in_one_point_does_not_stop_the_sweep(tmp_path, offline_env, launcher):
    """Not a mistake in the input: its traceback is shown, and the sweep goes on as for one."""
    (tmp_path / "sitecustomize.py").write_text(OUT_OF_MEMORY)  # loaded by every process
    env = {**offline_env, "PYTHONPATH": str(tmp_path)}
    sweep = tmp_path / "sweep"
    args = ["-m", "model=digits", "target=2,4", "steps=5", "logger=none", f"hydra/launcher={launcher}", f"hydra.sweep.dir={sweep}"]
    result = run_cli(args, env)
    assert result.returncode == 1
    assert "Traceback" in result.stderr and "error in job 0: CUDA out of memory (simulated)" in result.stderr
    assert "1 of 2 jobs failed" in result.stderr and (sweep / "grid.png").is_file()
    assert json.loads((sweep / "1" / "metrics.json").read_text())["target"] == 4


def test_a_sweep_rerun_into_the_same_folder_does_not_pass_off_old_results(tmp_path, offline_env):
    sweep = tmp_path / "sweep"
    first = run_cli(["-m", "model=digits", "target=3,4", "steps=5", "logger=none", f"hydra.sweep.dir={sweep}"], offline_env)
    assert first.returncode == 0, first.stderr
    again = run_cli(["-m", "model=digits", "target=12,4", "steps=5", "logger=none", f"hydra.sweep.dir={sweep}"], offline_env)
    assert again.returncode == 1
    assert "1 of 2 jobs failed" in again.stderr
    assert not (sweep / "0" / "image.png").exists() and not (sweep / "0" / "metrics.json").exists()

"""Sweep points optimised as one batch (hydra/launcher=batched), and lists of targets in one job.

Batched and one-by-one runs follow the same update rule per image. A batched convolution rounds
differently from a single one (about 1e-7); plain SGD keeps such differences that small, while
Adam from a flat start amplifies them as it does any rounding change (another thread count, say),
so the equality tests run SGD.
"""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_cli, wandb_records
from PIL import Image

from visexp.errors import VisexpError
from visexp.runner import run

# Every per-image knob at once: start (seed of a noise start), target, lambda, learning rate.
PER_IMAGE_SWEEP = ["-m", "model=digits", "optim=sgd", "init=noise", "seed=0,1", "target=2,5", "lambda=0.01,0.1",
                   "optim.lr=0.3,0.6", "steps=20", "logger=none"]


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image).astype(int)


def test_batched_launcher_gives_the_one_by_one_outputs(tmp_path, offline_env):
    one_by_one = run_cli([*PER_IMAGE_SWEEP, f"hydra.sweep.dir={tmp_path / 'basic'}"], offline_env)
    assert one_by_one.returncode == 0, one_by_one.stderr
    batched = run_cli([*PER_IMAGE_SWEEP, "hydra/launcher=batched", f"hydra.sweep.dir={tmp_path / 'batched'}"], offline_env)
    assert batched.returncode == 0, batched.stderr
    assert "1 batches: 16 images" in batched.stdout
    for job in range(16):
        alone = json.loads((tmp_path / "basic" / str(job) / "metrics.json").read_text())
        together = json.loads((tmp_path / "batched" / str(job) / "metrics.json").read_text())
        assert together["overrides"] == alone["overrides"]
        assert together["batched"]["images"] == 16 and "batched" not in alone
        assert together["target"] == alone["target"]
        assert together["score"] == pytest.approx(alone["score"], rel=1e-3)
        assert together["penalty"] == pytest.approx(alone["penalty"], rel=1e-3)
        assert together["start_score"] == pytest.approx(alone["start_score"], rel=1e-5)
        difference = np.abs(pixels(tmp_path / "basic" / str(job) / "image.png")
                            - pixels(tmp_path / "batched" / str(job) / "image.png"))
        assert difference.max() <= 2, f"job {job}: {alone['overrides']}"
        with Image.open(tmp_path / "batched" / str(job) / "progress.gif") as gif:
            assert gif.n_frames == 3  # steps 0, 10, 20 of this point's own image
    assert (tmp_path / "batched" / "grid.png").is_file()


def test_each_batched_point_is_a_wandb_run_of_its_own(tmp_path, offline_env):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "hydra/launcher=batched", "model=digits", "lambda=0.01,1", "steps=10", "log_every=5",
                      f"hydra.sweep.dir={sweep}"], offline_env)
    assert result.returncode == 0, result.stderr
    finals = {}
    for job, weight in (("0", 0.01), ("1", 1)):
        records = wandb_records(sweep / job)
        [started] = [record["run"] for record in records if record.get("type") == "run"]
        assert started["config"]["update"]["lambda"] == weight and started["run_group"] == str(sweep)
        history = [record["history"] for record in records if record.get("type") == "history"]
        steps = [item["step"]["num"] for item in history if "penalty" in item["item"]]
        assert steps == [0, 5, 10]
        finals[job] = [item["item"]["penalty"] for item in history if "penalty" in item["item"]][-1]
    assert finals["0"] != finals["1"]  # each run holds its own point's curve, not the batch's


def test_points_that_cannot_share_a_batch_run_apart(tmp_path, offline_env):
    """The number of steps is shared by a batch; a task other than visualise never batches."""
    result = run_cli(["-m", "hydra/launcher=batched", "model=digits", "steps=3,5", "target=2,5", "logger=none",
                      f"hydra.sweep.dir={tmp_path / 'steps'}"], offline_env)
    assert result.returncode == 0, result.stderr
    assert "2 batches: 2 + 2 images" in result.stdout
    for job, steps in zip("0123", (3, 3, 5, 5)):
        metrics = json.loads((tmp_path / "steps" / job / "metrics.json").read_text())
        assert metrics["steps"] == steps and metrics["batched"]["images"] == 2
    saliency = run_cli(["-m", "hydra/launcher=batched", "model=digits", "task=saliency", "init=dataset",
                        "init.index=0,1", "logger=none", f"hydra.sweep.dir={tmp_path / 'saliency'}"], offline_env)
    assert saliency.returncode == 0, saliency.stderr
    assert "2 batches: 1 + 1 images" in saliency.stdout
    # LBFGS searches along all its values at once: images in one batch would steer each other.
    lbfgs = run_cli(["-m", "hydra/launcher=batched", "model=digits", "optim._target_=torch.optim.LBFGS", "optim.lr=0.1",
                     "target=2,5", "steps=2", "logger=none", f"hydra.sweep.dir={tmp_path / 'lbfgs'}"], offline_env)
    assert lbfgs.returncode == 0, lbfgs.stderr
    assert "2 batches: 1 + 1 images" in lbfgs.stdout


def test_a_point_that_fails_fails_alone(tmp_path, offline_env):
    """A point its objective refuses is left out of the batch; one whose loss blows up in the
    batch fails as it would alone; the other points are not held back by either."""
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "hydra/launcher=batched", "model=digits", "optim=sgd", "clamp=false", "optim.lr=0.5,1e30",
                      "target=2,42", "steps=5", "logger=none", f"hydra.sweep.dir={sweep}"], offline_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "could not run as one batch" not in result.stderr
    assert "1 batches: 4 images" in result.stdout
    metrics = json.loads((sweep / "0" / "metrics.json").read_text())
    assert metrics["target"] == 2 and metrics["batched"]["images"] == 2  # with the diverging point
    errors = sorted(line for line in result.stderr.splitlines() if line.startswith("error in job"))
    assert errors == [
        "error in job 1: target 42 is out of range for model digits: it has 10 classes, 0-9",
        "error in job 2: the loss became NaN or infinite at step 2: lower optim.lr or lambda, or turn clamp on",
        "error in job 3: target 42 is out of range for model digits: it has 10 classes, 0-9",
    ]
    assert sorted(path.parent.name for path in sweep.glob("*/metrics.json")) == ["0"]


def test_batched_launcher_resumes_only_the_points_left(tmp_path, offline_env):
    sweep = tmp_path / "sweep"
    args = ["-m", "hydra/launcher=batched", "model=digits", "target=2,5,7,9", "steps=5", "logger=none",
            f"hydra.sweep.dir={sweep}"]
    assert run_cli(args, offline_env).returncode == 0
    for job in ("1", "3"):  # as if the sweep had stopped before these points were written
        (sweep / job / "metrics.json").unlink()
    kept = (sweep / "0" / "metrics.json").stat().st_mtime_ns
    resumed = run_cli([*args, "resume=true"], offline_env)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stderr.count("complete, skipped") == 2
    assert (sweep / "0" / "metrics.json").stat().st_mtime_ns == kept
    for job, target in (("1", 5), ("3", 9)):  # the two left, optimised as one batch
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["target"] == target and metrics["batched"]["images"] == 2


def test_a_list_of_targets_is_one_batch_in_one_job(make_cfg, tmp_path):
    together = run(make_cfg("model=digits", "optim=sgd", "optim.lr=0.5", "steps=30", "target=[2,5]"), tmp_path / "list")
    assert together["target"] == [2, 5] and [one["target"] for one in together["images"]] == [2, 5]
    for target in (2, 5):
        alone = run(make_cfg("model=digits", "optim=sgd", "optim.lr=0.5", "steps=30", f"target={target}"),
                    tmp_path / str(target))
        [own] = [one for one in together["images"] if one["target"] == target]
        assert own["target_probability"] == pytest.approx(alone["target_probability"], abs=1e-4)
        assert own["score"] > own["start_score"]
        difference = np.abs(pixels(tmp_path / "list" / f"image_{target}.png") - pixels(tmp_path / str(target) / "image.png"))
        assert difference.max() <= 2
        assert (tmp_path / "list" / f"progress_{target}.gif").is_file()
    with Image.open(tmp_path / "list" / "image.png") as overview:
        assert overview.width > 2 * 32  # both images side by side, captioned


def test_a_list_of_channels_raises_each_channel(make_cfg, tmp_path):
    metrics = run(make_cfg("model=digits", "objective=filter", "objective.layer=features.5", "objective.channel=[3,7]",
                           "steps=30"), tmp_path)
    assert [one["channel"] for one in metrics["images"]] == [3, 7]
    assert all(one["score"] > one["start_score"] for one in metrics["images"])
    assert (tmp_path / "image_3.png").is_file() and (tmp_path / "image_7.png").is_file()


@pytest.mark.parametrize("overrides, message", [
    (["target=[2,2]"], r"\[2, 2\] names one entry twice"),
    (["target=[]"], "target is an empty list"),
    (["target=[2,5]", "optim._target_=torch.optim.LBFGS"], "a list of entries needs an optimiser that moves each value by itself"),
])
def test_a_list_that_cannot_be_one_batch_is_refused(make_cfg, tmp_path, overrides, message):
    with pytest.raises(VisexpError, match=message):
        run(make_cfg("model=digits", *overrides), tmp_path)
    assert not (tmp_path / "metrics.json").exists()

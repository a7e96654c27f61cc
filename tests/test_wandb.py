"""W&B for real, offline: each job is a run with its config, curves, summary and final image."""

import json

import pytest
from conftest import run_cli, wandb_records

from visexp.errors import VisexpError
from visexp.runner import run


def _kinds(records, kind):
    return [record[kind] for record in records if record.get("type") == kind]


def test_job_without_credentials_logs_offline_and_says_so(make_cfg, tmp_path, offline_env, capsys):
    metrics = run(make_cfg("model=digits", "logger=wandb", "steps=20", "log_every=5", "target=7"), tmp_path)
    assert capsys.readouterr().out.count("W&B: no credentials found, logging offline") == 1
    records = wandb_records(tmp_path)
    config = _kinds(records, "run")[0]["config"]["update"]
    assert config["target"] == 7 and config["model"]["name"] == "digits"
    history = _kinds(records, "history")
    steps = [item["step"]["num"] for item in history if "score" in item["item"]]
    assert steps == [0, 5, 10, 15, 20]
    scores = [item["item"]["score"] for item in history if "score" in item["item"]]
    assert scores[-1] > scores[0]
    summary = {}
    for update in _kinds(records, "summary"):
        summary.update(update.get("update", {}))
    assert summary["target_probability"] == pytest.approx(metrics["target_probability"])
    assert summary["image._type"] == "image-file" and summary["image.width"] == 32
    assert _kinds(records, "exit")[0].get("exit_code", 0) == 0
    [run_dir] = tmp_path.glob("wandb/*run-*")
    assert (run_dir / "files" / summary["image.path"]).is_file()
    assert summary["progress._type"] == "video-file" and (run_dir / "files" / summary["progress.path"]).is_file()


def test_failed_job_closes_its_run_as_failed(make_cfg, tmp_path, offline_env):
    with pytest.raises(VisexpError):
        run(make_cfg("model=digits", "logger=wandb", "optim=sgd", "optim.lr=1e30", "clamp=false"), tmp_path)
    assert _kinds(wandb_records(tmp_path), "exit")[0]["exit_code"] == 1
    assert not (tmp_path / "metrics.json").exists()


def test_feature_task_logs_its_grid_and_summary(make_cfg, tmp_path, offline_env):
    run(make_cfg("model=digits", "logger=wandb", "task=features", "init=dataset", "layer=features.0", "task.top_k=4"), tmp_path)
    summary = {}
    for update in _kinds(wandb_records(tmp_path), "summary"):
        summary.update(update.get("update", {}))
    assert summary["task"] == "features" and summary["layer"] == "features.0"
    assert summary["features._type"] == "image-file" and summary["input._type"] == "image-file"


def test_sweep_is_one_group_and_a_failed_point_closes_its_run_as_failed(tmp_path, offline_env):
    sweep = tmp_path / "sweep"
    result = run_cli(["-m", "model=digits", "target=3,42", "steps=10", f"hydra.sweep.dir={sweep}"], offline_env)
    assert result.returncode == 1  # the sweep went on past the failed point, then says so
    assert json.loads((sweep / "0" / "metrics.json").read_text())["target"] == 3
    runs = {job: wandb_records(sweep / job) for job in ("0", "1")}
    for job, target in (("0", 3), ("1", 42)):
        [started] = _kinds(runs[job], "run")
        assert started["run_group"] == str(sweep) and started["job_type"] == "visualise"
        assert started["display_name"] == f"model=digits,steps=10,target={target}"
    assert _kinds(runs["0"], "exit")[0].get("exit_code", 0) == 0
    assert _kinds(runs["1"], "exit")[0]["exit_code"] == 1
    summary = {}
    for update in _kinds(runs["1"], "summary"):
        summary.update(update.get("update", {}))
    assert summary["error"] == "target 42 is out of range for model digits: it has 10 classes, 0-9"

"""A sweep killed half-way and launched again into its folder with resume=true."""

import json
import signal
import subprocess
import sys
import time

from conftest import ROOT, run_cli

from visexp.runner import run

SWEEP = ["-m", "model=digits", "target=0,1,2,3", "steps=60", "logger=none"]


def test_killed_sweep_resumes_where_it_stopped(tmp_path, offline_env):
    sweep = tmp_path / "sweep"
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "run.py"), *SWEEP, f"hydra.sweep.dir={sweep}"],
        cwd=ROOT, env=offline_env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not (sweep / "1" / "metrics.json").exists():
        assert process.poll() is None and time.monotonic() < deadline, "the sweep ended before it could be killed"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)  # no chance to clean up: the worst case
    process.wait()
    complete = {job for job in "0123" if (sweep / job / "metrics.json").exists()}
    assert {"0", "1"} <= complete and complete != set("0123")
    written = {job: (sweep / job / "metrics.json").stat().st_mtime_ns for job in complete}

    resumed = run_cli([*SWEEP, f"hydra.sweep.dir={sweep}", "resume=true"], offline_env)
    assert resumed.returncode == 0, resumed.stderr
    skipped = {line.rsplit("/", 1)[-1] for line in resumed.stderr.splitlines() if line.startswith("complete, skipped")}
    assert skipped == complete
    assert {job: (sweep / job / "metrics.json").stat().st_mtime_ns for job in complete} == written
    for job, target in zip("0123", range(4)):
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert metrics["target"] == target and metrics["target_probability"] > 0.5
        assert not (sweep / job / ".incomplete").exists()
    assert (sweep / "grid.png").is_file()


def test_resume_refuses_another_config_and_reruns_folders_of_other_points(tmp_path, offline_env):
    """A folder made by another config is refused, naming what differs. The same sweep typed the
    other way round is the same config, but Hydra numbers jobs in the order the sweeps are typed,
    so some job folders hold other points: those must not pass for done."""
    sweep = tmp_path / "sweep"
    args = ["-m", "model=digits", "steps=5", "logger=none", f"hydra.sweep.dir={sweep}"]
    first = run_cli([*args, "target=0,1", "seed=0,1"], offline_env)
    assert first.returncode == 0, first.stderr
    before = (sweep / "0" / "metrics.json").read_bytes()

    refused = run_cli([*args, "target=0,1", "seed=0,1", "lambda=0.1", "resume=true"], offline_env)
    assert refused.returncode == 2
    errors = [line for line in refused.stderr.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "Traceback" not in refused.stderr
    assert errors[0].startswith(f"error: cannot resume {sweep}: it was made by a different config")
    assert "lambda (0.03 -> 0.1)" in errors[0] and "steps" not in errors[0]
    assert (sweep / "0" / "metrics.json").read_bytes() == before

    again = run_cli([*args, "seed=0,1", "target=0,1", "resume=true"], offline_env)
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("complete, skipped") == 2  # (0, 0) and (1, 1) are where they were
    assert again.stderr.count("holds the result of other overrides") == 2
    for job in "0123":
        metrics = json.loads((sweep / job / "metrics.json").read_text())
        assert [metrics["seed"], metrics["target"]] == [int(job) // 2, int(job) % 2]


def test_a_result_made_by_another_config_is_not_skipped(make_cfg, tmp_path, capsys):
    """What a sweep's record cannot show (an option file edited between the runs, here the noise
    scale) still reaches each job's config, and its fingerprint in metrics.json."""
    first = run(make_cfg("model=digits", "init=noise", "steps=3"), tmp_path)
    skipped = run(make_cfg("model=digits", "init=noise", "steps=3", "resume=true", "logger=wandb", "logger.mode=disabled"), tmp_path)
    assert skipped == first and "complete, skipped" in capsys.readouterr().err
    again = run(make_cfg("model=digits", "init=noise", "init.scale=0.9", "steps=3", "resume=true"), tmp_path)
    assert "holds a result of another config" in capsys.readouterr().err
    assert again["config"] != first["config"] and again["start_score"] != first["start_score"]

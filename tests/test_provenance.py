"""What every job records about how it was made, and runs that repeat bit for bit."""

import subprocess

import numpy as np
import torch
from conftest import ROOT
from PIL import Image

from visexp.provenance import set_deterministic
from visexp.runner import run


def test_metrics_say_what_made_them(make_cfg, tmp_path):
    metrics = run(make_cfg("model=digits", "steps=5", "seed=7"), tmp_path)
    assert metrics["seed"] == 7 and metrics["device"] == "cpu" and metrics["threads"] == torch.get_num_threads()
    assert metrics["deterministic"] is False and metrics["device_name"]
    assert metrics["versions"]["torch"] == torch.__version__.split("+")[0]
    assert set(metrics["versions"]) >= {"python", "visexp", "torchvision", "hydra-core", "wandb"}
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # run from a git checkout
        assert metrics["git_commit"] == head.stdout.strip() and isinstance(metrics["git_dirty"], bool)


def test_cpu_runs_repeat_bit_for_bit_for_the_same_seed(make_cfg, tmp_path):
    def picture(seed: int, folder: str) -> bytes:
        run(make_cfg("model=digits", "init=noise", "steps=15", f"seed={seed}"), tmp_path / folder)
        return (tmp_path / folder / "image.png").read_bytes()

    first = picture(3, "a")
    assert picture(3, "b") == first
    assert picture(4, "c") != first  # the seed does decide the noise start


def test_threads_are_pinned_per_job_and_restored_after(make_cfg, tmp_path):
    before = torch.get_num_threads()
    try:
        assert run(make_cfg("model=digits", "steps=2", "threads=1"), tmp_path / "one")["threads"] == 1
        assert torch.get_num_threads() == 1
        assert run(make_cfg("model=digits", "steps=2"), tmp_path / "default")["threads"] == before
    finally:
        torch.set_num_threads(before)


def test_deterministic_switch_sets_and_clears_torchs_flags(make_cfg, tmp_path):
    try:
        metrics = run(make_cfg("model=digits", "steps=2", "deterministic=true"), tmp_path / "on")
        assert metrics["deterministic"] is True
        assert torch.are_deterministic_algorithms_enabled() and torch.is_deterministic_algorithms_warn_only_enabled()
        assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark
        run(make_cfg("model=digits", "steps=2"), tmp_path / "off")  # the next job of a sweep
        assert not torch.are_deterministic_algorithms_enabled() and not torch.backends.cudnn.deterministic
    finally:
        set_deterministic(False)
    on = np.asarray(Image.open(tmp_path / "on" / "image.png"))
    off = np.asarray(Image.open(tmp_path / "off" / "image.png"))
    assert np.array_equal(on, off)  # on the CPU the switch changes nothing

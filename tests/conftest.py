"""Shared test helpers: composing configs as run.py does, running the CLI, reading W&B runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

ROOT = Path(__file__).resolve().parents[1]
CONF = ROOT / "conf"


@pytest.fixture
def make_cfg() -> Callable[..., DictConfig]:
    """Compose conf/config.yaml with overrides, W&B off unless a test asks for it."""

    def make(*overrides: str) -> DictConfig:
        chosen = list(overrides)
        if not any(item.startswith("logger=") for item in chosen):
            chosen.append("logger=none")
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            return compose(config_name="config", overrides=chosen)

    return make


@pytest.fixture
def offline_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """An environment with no W&B credentials and no way to download anything."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for name in ("WANDB_API_KEY", "WANDB_MODE", "NETRC", "WANDB_DIR"):
        monkeypatch.delenv(name, raising=False)
    # A closed local port as proxy: any download fails at once, as on a machine without internet.
    for name in ("https_proxy", "HTTPS_PROXY", "http_proxy", "HTTP_PROXY"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")
    monkeypatch.delenv("no_proxy", raising=False)
    monkeypatch.delenv("NO_PROXY", raising=False)
    return dict(os.environ)


def run_cli(args: list[str], env: dict[str, str], cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run `python run.py ARGS` as a user would, capturing its output."""
    return subprocess.run(
        [sys.executable, str(ROOT / "run.py"), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


def wandb_records(job_dir: Path) -> list[dict]:
    """The records of the one W&B run in a job folder, read with W&B's own `wandb leet inspect`."""
    runs = sorted(job_dir.glob("wandb/*run-*/run-*.wandb"))
    assert len(runs) == 1, f"expected one W&B run in {job_dir}, found {runs}"
    wandb_cli = Path(sys.executable).parent / "wandb"
    listing = subprocess.run(
        [str(wandb_cli), "leet", "inspect", "--json", str(runs[0])], capture_output=True, text=True, check=True
    ).stdout
    return [json.loads(line) for line in listing.splitlines() if line.startswith("{")]

"""What a job ran on, recorded in its metrics so a figure can be traced and redone.

Package versions, the device (with the GPU's name), the CPU threads torch used (CPU results are
bit-identical for the same seed and the same number of threads) and the git commit of the code.
`set_deterministic` is the switch that makes CUDA runs repeatable too.
"""

from __future__ import annotations

import functools
import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

PACKAGES = ("visexp", "torch", "torchvision", "hydra-core", "omegaconf", "wandb", "numpy", "pillow")


def versions() -> dict[str, str | None]:
    """Python's and each package's installed version (None where one is not installed)."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


@functools.lru_cache(maxsize=1)
def git_state() -> dict[str, Any]:
    """The commit of the git checkout visexp is run from, and whether its files differ from it
    (`dirty`: changed or new files, ignored ones aside); both None when visexp is not run from
    a checkout of its own (an installed copy, even one inside another project's repository)."""
    source = Path(__file__).resolve().parent

    def git(*arguments: str) -> str | None:
        try:
            done = subprocess.run(
                ["git", "-C", str(source), *arguments], capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    if git("ls-files", "--error-unmatch", Path(__file__).name) is None:
        return {"commit": None, "dirty": None}
    commit = git("rev-parse", "HEAD")
    changes = git("status", "--porcelain") if commit else None
    return {"commit": commit, "dirty": None if changes is None else bool(changes)}


def device_facts(device: torch.device) -> dict[str, Any]:
    """The device by name: the GPU model and CUDA/cuDNN versions, or the CPU and torch's threads."""
    if device.type == "cuda":
        return {
            "device": str(device),
            "device_name": torch.cuda.get_device_name(device),
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(),
        }
    return {"device": str(device), "device_name": cpu_name(), "threads": torch.get_num_threads()}


def cpu_name() -> str:
    """The CPU's model name where Linux tells it (/proc/cpuinfo), else the architecture."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    return platform.processor() or platform.machine()


def provenance(seed: int, device: torch.device, deterministic: bool) -> dict[str, Any]:
    """Everything above, as one flat-ish dict for metrics.json."""
    return {
        "seed": seed,
        **device_facts(device),
        "deterministic": deterministic,
        "versions": versions(),
        "git_commit": git_state()["commit"],
        "git_dirty": git_state()["dirty"],
    }


def set_deterministic(enabled: bool) -> None:
    """Make CUDA runs repeatable (or return to the fast defaults), for this job and the next.

    On: PyTorch's deterministic algorithms, cuDNN's deterministic kernels without autotuning,
    and the cuBLAS workspace setting those need. Ops that have no deterministic CUDA kernel
    (adaptive average pooling's backward, for one) warn rather than stop the job. CPU runs are
    repeatable either way.
    """
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(enabled, warn_only=True)
    torch.backends.cudnn.deterministic = enabled
    torch.backends.cudnn.benchmark = False

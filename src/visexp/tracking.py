"""Experiment tracking: each job is one Weights & Biases run, or nothing with `logger=none`.

Without W&B credentials the run is written offline into the job folder (one line says so, and
`wandb sync` uploads it later) instead of failing. The runner always calls `finish`, also when
the job fails, so one failed job never leaves a dangling run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from PIL import Image

from visexp.errors import VisexpError
from visexp.optimise import Snapshot
from visexp.resume import job_overrides

MODES = ("online", "offline", "disabled")


class Tracker(Protocol):
    def __call__(self, snapshot: Snapshot) -> None: ...

    def finish(
        self, summary: dict[str, Any], images: dict[str, Image.Image], animations: dict[str, Path], failed: bool
    ) -> None: ...


class NoTracker:
    """Tracks nothing (`logger=none`)."""

    def __init__(
        self, config: dict[str, Any] | None = None, directory: Path | None = None, labels: RunLabels | None = None
    ) -> None:
        """Takes, and ignores, what every tracker is built with."""

    def __call__(self, snapshot: Snapshot) -> None:
        pass

    def finish(
        self, summary: dict[str, Any], images: dict[str, Image.Image], animations: dict[str, Path], failed: bool
    ) -> None:
        pass


@dataclass(frozen=True)
class RunLabels:
    """How a job's run is filed in W&B: all jobs of one sweep share `group`, `name` says which
    point of the sweep it is, `job_type` which task it did. None leaves the choice to W&B."""

    group: str | None = None
    name: str | None = None
    job_type: str | None = None


MAX_GROUP = 128
"""The longest group name W&B takes."""


def run_labels(job_type: str) -> RunLabels:
    """Labels from Hydra's job: in a multirun the sweep folder (as an absolute path, its last
    MAX_GROUP characters) is the group, so a sweep reads as one table in W&B and a resumed sweep
    joins its own group; the job's overrides (`lambda=0.001,target=3`, without those that do not
    change results, such as `resume`) are the name."""
    overrides = job_overrides()
    if overrides is None:
        return RunLabels(job_type=job_type)
    hydra = HydraConfig.get()
    group = str(Path(hydra.sweep.dir).resolve())[-MAX_GROUP:] if hydra.mode == RunMode.MULTIRUN else None
    return RunLabels(group=group, name=",".join(overrides) or None, job_type=job_type)


def choose_mode(mode: str | None) -> tuple[str, str | None]:
    """The W&B mode to use and, when it falls back to offline, the line that says why.

    An explicit `mode` (or the WANDB_MODE variable) is obeyed; otherwise online if credentials
    are configured, else offline.
    """
    import wandb

    chosen = mode or os.environ.get("WANDB_MODE")
    if chosen:
        if chosen not in MODES:
            raise VisexpError(f"unknown W&B mode {chosen!r}: choose from {', '.join(MODES)}, or null (automatic)")
        return chosen, None
    if wandb.login(prompt=False, verify=False):
        return "online", None
    return "offline", "W&B: no credentials found, logging offline (upload later with `wandb sync`)"


class WandbTracker:
    """One W&B run per job: the resolved config, score/penalty/norm curves, the final images and
    the progress GIF, and the metrics as summary."""

    def __init__(
        self,
        project: str,
        entity: str | None,
        mode: str | None,
        config: dict[str, Any],
        directory: Path,
        name: str | None = None,
        group: str | None = None,
        job_type: str | None = None,
        tags: list[str] | None = None,
        labels: RunLabels | None = None,
    ) -> None:
        """`name`, `group` and `job_type` set in the config win over the `labels` from Hydra."""
        import wandb

        labels = labels or RunLabels()
        self._wandb = wandb
        resolved_mode, notice = choose_mode(mode)
        if notice:
            print(notice, flush=True)
        self.run = wandb.init(
            project=project,
            entity=entity,
            mode=resolved_mode,
            config=config,
            dir=str(directory),
            name=name or labels.name,
            group=group or labels.group,
            job_type=job_type or labels.job_type,
            tags=tags,
            reinit="create_new",
            settings=wandb.Settings(console="off", silent=True),
        )

    def __call__(self, snapshot: Snapshot) -> None:
        self.run.log(
            {"score": snapshot.score, "penalty": snapshot.penalty, "loss": snapshot.penalty - snapshot.score,
             "norm": snapshot.norm},
            step=snapshot.step,
        )

    def finish(
        self, summary: dict[str, Any], images: dict[str, Image.Image], animations: dict[str, Path], failed: bool
    ) -> None:
        """Log the final images and animations (GIF files) and the summary (a failed job's: its
        error); close the run, as failed if it did."""
        try:
            if not failed:
                media = {name: self._wandb.Image(image) for name, image in images.items()}
                media.update({name: self._wandb.Video(str(path), format="gif") for name, path in animations.items()})
                self.run.log(media)
            self.run.summary.update(summary)
        finally:
            self.run.finish(exit_code=1 if failed else 0)

"""After a multirun: one grid image of every job's picture, captioned with its overrides.

Registered as a Hydra callback in conf/config.yaml, so `python run.py -m ...` ends by writing
`grid.png` into the sweep folder. Jobs that failed (no metrics.json) are counted and reported,
and make the command exit non-zero once the grid of the others is written.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from visexp.grids import tile_grid
from visexp.outputs import METRICS
from visexp.resume import ignored

TILE = 160
"""Short side of each picture in the grid, in pixels (small images are enlarged to it)."""


@dataclass(frozen=True)
class Job:
    """One finished or failed job of a sweep."""

    folder: Path
    overrides: list[str]

    @property
    def complete(self) -> bool:
        return (self.folder / METRICS).is_file()


def find_jobs(sweep_dir: Path) -> list[Job]:
    """Job folders of a sweep (those with Hydra's overrides.yaml), in job order."""
    jobs = []
    for overrides_file in sweep_dir.glob("*/.hydra/overrides.yaml"):
        folder = overrides_file.parent.parent
        jobs.append(Job(folder, [str(item) for item in OmegaConf.load(overrides_file)]))
    return sorted(jobs, key=lambda job: (not job.folder.name.isdigit(), int(job.folder.name) if job.folder.name.isdigit() else 0, job.folder.name))


def short(override: str) -> str:
    """An override as a caption shows it: a path value by its file name (`image=…/dog.png`)."""
    key, _, value = override.partition("=")
    return f"{key}=…/{Path(value).name}" if "/" in value else override


def captions(jobs: list[Job], leave_out: str | None = None) -> tuple[list[str], str]:
    """Each job's own overrides (and its target probability, if any), and those shared by all
    jobs, shown once as a title; overrides of key `leave_out`, and of keys that cannot change a
    result (`resume`, `logger`), are not shown."""
    def shown(job: Job) -> list[str]:
        return [item for item in job.overrides if not ignored(item.partition("=")[0])
                and (leave_out is None or not item.startswith(f"{leave_out}="))]

    shared = set.intersection(*(set(shown(job)) for job in jobs)) if jobs else set()
    own = []
    for job in jobs:
        label = " ".join(short(item) for item in shown(job) if item not in shared) or job.folder.name
        probability = json.loads((job.folder / METRICS).read_text()).get("target_probability")
        own.append(label if probability is None or leave_out else f"{label}  p={probability:.2f}")
    return own, " ".join(short(item) for item in shown(jobs[0]) if item in shared) if jobs else ""


def make_grid(jobs: list[Job]) -> Image.Image:
    """The pictures of complete jobs side by side, each captioned with what sets it apart."""
    done = [job for job in jobs if job.complete]
    labels, title = captions(done)
    pictures = []
    for job in done:
        picture = json.loads((job.folder / METRICS).read_text()).get("picture", "image.png")
        with Image.open(job.folder / picture) as image:
            pictures.append(image.convert("RGB"))
    return tile_grid(pictures, labels, title, side=TILE)


Captioner = Callable[[list[Job]], tuple[list[str], str]]
"""Captions of jobs, one each, and a title for them all (as `captions` gives)."""


def saliency_figure(jobs: list[Job], caption: Captioner | None = None) -> Image.Image:
    """Complete saliency jobs laid out like the paper's Figure 2: the images in the top row, one
    row of saliency maps per method below, one column per image. `caption` captions the columns
    (given one job of each) and gives the title; by default the overrides that set them apart."""
    done = [job for job in jobs if job.complete]
    metrics = [json.loads((job.folder / METRICS).read_text()) for job in done]
    methods = sorted({m["method"] for m in metrics}, key=["gradient", "guided", "deconvnet"].index)
    columns: dict[tuple[str, ...], dict[str, Job]] = {}
    for job, m in zip(done, metrics):
        key = tuple(item for item in job.overrides if not item.startswith("method="))
        columns.setdefault(key, {})[m["method"]] = job
    caption = caption or partial(captions, leave_out="method")
    labels, title = caption([next(iter(column.values())) for column in columns.values()])
    pictures, names = [], []
    for row in ["input", *methods]:
        for label, column in zip(labels, columns.values()):
            job = column.get(row) or next(iter(column.values()))
            file = "input.png" if row == "input" else "saliency.png"
            with Image.open(job.folder / file) as image:
                pictures.append(image.convert("RGB") if row == "input" or row in column else Image.new("RGB", image.size, "white"))
            names.append(label if row == "input" else row)
    return tile_grid(pictures, names, title, side=TILE, columns=len(columns))


class SweepGrid(Callback):
    """Hydra callback: write grid.png into the sweep folder when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = find_jobs(sweep_dir)
        done = [job for job in jobs if job.complete]
        if done:
            tasks = {json.loads((job.folder / METRICS).read_text()).get("task") for job in done}
            (saliency_figure if tasks == {"saliency"} else make_grid)(jobs).save(sweep_dir / "grid.png")
            print(f"grid of {len(done)} jobs: {sweep_dir / 'grid.png'}", file=sys.stderr)
        failed = [job for job in jobs if not job.complete]
        if failed:
            names = ", ".join(f"{job.folder.name} ({' '.join(job.overrides)})" for job in failed)
            print(f"error: {len(failed)} of {len(jobs)} jobs failed: {names}", file=sys.stderr)
            raise SystemExit(1)

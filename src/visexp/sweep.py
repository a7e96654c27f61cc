"""After a multirun: one grid image of every job's picture, captioned with its overrides.

Registered as a Hydra callback in conf/config.yaml, so `python run.py -m ...` ends by writing
`grid.png` into the sweep folder. Jobs that failed (no metrics.json) are counted and reported,
and make the command exit non-zero once the grid of the others is written.
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf
from PIL import Image, ImageDraw, ImageFont

from visexp.outputs import METRICS

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


def captions(jobs: list[Job]) -> tuple[list[str], str]:
    """Each job's own overrides (and its target probability, if any), and those shared by all
    jobs, shown once as a title."""
    shared = set.intersection(*(set(job.overrides) for job in jobs)) if jobs else set()
    own = []
    for job in jobs:
        label = " ".join(item for item in job.overrides if item not in shared) or job.folder.name
        probability = json.loads((job.folder / METRICS).read_text()).get("target_probability")
        own.append(label if probability is None else f"{label}  p={probability:.2f}")
    return own, " ".join(item for item in jobs[0].overrides if item in shared) if jobs else ""


def _tile(image_file: Path) -> Image.Image:
    with Image.open(image_file) as image:
        picture = image.convert("RGB")
    scale = TILE / min(picture.size)
    resample = Image.NEAREST if scale >= 1 else Image.BILINEAR
    return picture.resize((round(picture.width * scale), round(picture.height * scale)), resample)


LINE = 16
"""Height of one line of caption text, in pixels."""


def wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """Break `text` at spaces into lines no wider than `width` pixels (a long word stays whole)."""
    lines: list[str] = []
    for word in text.split():
        if lines and font.getlength(f"{lines[-1]} {word}") <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def make_grid(jobs: list[Job]) -> Image.Image:
    """The pictures of complete jobs side by side, each captioned with what sets it apart."""
    done = [job for job in jobs if job.complete]
    labels, title = captions(done)
    tiles = [_tile(job.folder / "image.png") for job in done]
    font = ImageFont.load_default(size=13)
    columns = min(len(tiles), 5) or 1
    rows = math.ceil(len(tiles) / columns)
    cell_w = max((tile.width for tile in tiles), default=TILE) + 8
    label_lines = [wrap(label, font, cell_w - 8) for label in labels]
    cell_h = max((tile.height for tile in tiles), default=TILE) + 8 + LINE * max((len(lines) for lines in label_lines), default=1)
    title_lines = wrap(title, font, columns * cell_w - 12)
    header = LINE * len(title_lines) + 8 if title_lines else 4
    grid = Image.new("RGB", (columns * cell_w, header + rows * cell_h), "white")
    draw = ImageDraw.Draw(grid)
    for number, line in enumerate(title_lines):
        draw.text((6, 4 + number * LINE), line, fill="black", font=font)
    for index, (tile, lines) in enumerate(zip(tiles, label_lines)):
        left = (index % columns) * cell_w + 4
        top = header + (index // columns) * cell_h
        grid.paste(tile, (left, top))
        for number, line in enumerate(lines):
            draw.text((left, top + tile.height + 3 + number * LINE), line, fill="black", font=font)
    return grid


class SweepGrid(Callback):
    """Hydra callback: write grid.png into the sweep folder when a multirun ends."""

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        jobs = find_jobs(sweep_dir)
        done = [job for job in jobs if job.complete]
        if done:
            make_grid(jobs).save(sweep_dir / "grid.png")
            print(f"grid of {len(done)} jobs: {sweep_dir / 'grid.png'}", file=sys.stderr)
        failed = [job for job in jobs if not job.complete]
        if failed:
            names = ", ".join(f"{job.folder.name} ({' '.join(job.overrides)})" for job in failed)
            print(f"error: {len(failed)} of {len(jobs)} jobs failed: {names}", file=sys.stderr)
            raise SystemExit(1)

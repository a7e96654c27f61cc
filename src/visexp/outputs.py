"""A job's output files, written to a staging folder and moved into place only when all are done.

A job that fails half-way (bad input found late, NaN, Ctrl-C) leaves no `image.png` or
`metrics.json` behind, so an incomplete job never looks complete; results of an earlier run in
the same folder are removed when the job starts, so they cannot pass for this run's either.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
from PIL import Image

STAGING = ".incomplete"
METRICS = "metrics.json"
RESULTS = (
    "image.png", "input.png", "progress.gif", "features.png", "activations.npy", "filters.png", "weights.npy",
    "saliency.png", "gradient.png", "overlay.png", "input.npy", "attribution.npy",
    "box.json", "mask.png", "localised.png", METRICS,
)
"""Every file a task may publish: removed when a job starts, so no earlier run's file remains."""
MAX_GIF_FRAMES = 100


def clear_results(directory: Path) -> None:
    """Remove the results of an earlier run in `directory` (the job is about to redo them)."""
    for name in RESULTS:
        (Path(directory) / name).unlink(missing_ok=True)


class JobOutputs:
    """Context manager: write files with the `save_*` methods, published together on success."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        self.staging = self.directory / STAGING

    def __enter__(self) -> JobOutputs:
        shutil.rmtree(self.staging, ignore_errors=True)
        self.staging.mkdir(parents=True)
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if kind is None:
            # metrics.json last: its presence marks the job complete.
            staged = sorted(self.staging.iterdir(), key=lambda path: path.name == METRICS)
            for path in staged:
                path.replace(self.directory / path.name)
        shutil.rmtree(self.staging, ignore_errors=True)

    def save_png(self, name: str, image: Image.Image) -> None:
        image.save(self.staging / name, format="PNG")

    def save_gif(self, name: str, frames: Sequence[Image.Image], frame_ms: int = 120) -> None:
        """An endlessly looping GIF of at most MAX_GIF_FRAMES frames (evenly chosen, first and
        last kept); the last frame is held for a second."""
        if len(frames) > MAX_GIF_FRAMES:
            last = len(frames) - 1
            frames = [frames[round(i * last / (MAX_GIF_FRAMES - 1))] for i in range(MAX_GIF_FRAMES)]
        durations = [frame_ms] * (len(frames) - 1) + [1000]
        frames[0].save(
            self.staging / name, format="GIF", save_all=True, append_images=list(frames[1:]), duration=durations, loop=0
        )

    def save_npy(self, name: str, array: np.ndarray) -> None:
        np.save(self.staging / name, array)

    def save_text(self, name: str, text: str) -> None:
        (self.staging / name).write_text(text)

    def save_json(self, name: str, data: dict[str, Any]) -> None:
        (self.staging / name).write_text(json.dumps(data, indent=2, sort_keys=True, allow_nan=False) + "\n")

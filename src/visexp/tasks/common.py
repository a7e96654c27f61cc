"""What the tasks share: their result, the picture they start from, progress frames."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

import torch
from omegaconf import DictConfig
from PIL import Image

from visexp.build import build
from visexp.errors import VisexpError
from visexp.images import enlarge, load_pixels, to_pil
from visexp.initialisers import Start
from visexp.models import VisionModel
from visexp.optimise import Observer, Snapshot
from visexp.outputs import JobOutputs

GIF_MIN_SIDE = 256
"""Small images are enlarged (nearest neighbour) to at least this size in progress GIFs."""


@dataclass
class Result:
    """What a task found: the metrics (`picture` names its main file), images for the tracker,
    and the animations it wrote (tracker name -> file name in the job folder)."""

    summary: dict[str, Any]
    images: dict[str, Image.Image] = field(default_factory=dict)
    animations: dict[str, str] = field(default_factory=dict)


class Task(Protocol):
    def __init__(self, cfg: DictConfig, model: VisionModel) -> None: ...

    def run(self, outputs: JobOutputs, observer: Observer) -> Result: ...


def start(cfg: DictConfig, model: VisionModel) -> Start:
    """The start in input space: the `image` file if one is given, else what the init group makes."""
    if cfg.image is not None:
        pixels = load_pixels(cfg.image, model.input_size, model.channels).to(model.device)
        zeros = torch.zeros_like(pixels)
        return Start(base=zeros, offset=model.normalise(pixels))
    return build(cfg.init)(model)


def required(cfg: DictConfig, key: str, task: str) -> str:
    """A top-level key the task cannot do without, or a one-line error saying how to set it."""
    value = cfg[key]
    if value is None:
        raise VisexpError(f"task={task} needs {key}=...: set it on the command line")
    return str(value)


class FrameRecorder:
    """Keeps image `index` of the batch at every snapshot (8-bit), for progress.gif."""

    def __init__(self, model: VisionModel, index: int = 0) -> None:
        self.model = model
        self.index = index
        self.frames: list[Image.Image] = []

    def __call__(self, snapshot: Snapshot) -> None:
        image = snapshot.parameter.inputs().detach()[self.index:self.index + 1]
        self.frames.append(to_pil(self.model.denormalise(image)[0]))

    def viewable(self) -> list[Image.Image]:
        """The frames at the size of the last one (octaves grow), enlarged for looking at."""
        return self.enlarged(self.frames)

    @staticmethod
    def enlarged(frames: list[Image.Image]) -> list[Image.Image]:
        """`frames` at the size of the last one, enlarged for looking at."""
        size = frames[-1].size
        return [enlarge(frame if frame.size == size else frame.resize(size, Image.BILINEAR), GIF_MIN_SIDE) for frame in frames]

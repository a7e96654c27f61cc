"""The bundled `canvas` data and model: digits pasted at random places and sizes on a larger
canvas, with known boxes, for measuring weakly supervised localisation offline.

Each canvas is 64x64 grey with faint noise; one digit from scikit-learn's digits (the train
split for training canvases, the held-out split for test canvases) is scaled to 14-40 px and
pasted at a random place. The box is the digit's ink (pixels above INK) on the canvas. Each
canvas has its own seed (split and index), so canvas i is the same whatever the count asked for,
on every machine.
The model sees only the class label when trained, never the box.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from visexp.digits import CLASSES, conv_relu, load_split

SIZE = 64
"""Side of a canvas, in pixels."""
DIGIT_SIDES = (14, 40)
"""Smallest and largest side of a pasted digit, in pixels."""
INK = 0.25
"""A canvas pixel above this belongs to the digit (for the ground-truth box)."""
NOISE = 0.06
SEEDS = {"train": 1, "test": 2}


@dataclass(frozen=True)
class Canvases:
    """Images (N, 1, 64, 64) in [0, 1], labels (N,), boxes (N, 4) as x0, y0, x1, y1 (x1, y1 exclusive)."""

    images: torch.Tensor
    labels: torch.Tensor
    boxes: torch.Tensor


def make_canvases(split: str, count: int) -> Canvases:
    """The first `count` canvases of `split` (`train` or `test`)."""
    if split not in SEEDS:
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    digits = load_split(split)
    images = torch.empty(count, 1, SIZE, SIZE)
    labels = torch.empty(count, dtype=torch.int64)
    boxes = torch.empty(count, 4, dtype=torch.int64)
    for index in range(count):
        generator = torch.Generator().manual_seed(SEEDS[split] * 1_000_003 + index)
        images[index] = torch.rand(1, SIZE, SIZE, generator=generator) * NOISE
        pick = int(torch.randint(len(digits.labels), (1,), generator=generator))
        side = int(torch.randint(DIGIT_SIDES[0], DIGIT_SIDES[1] + 1, (1,), generator=generator))
        left, top = torch.randint(0, SIZE - side + 1, (2,), generator=generator).tolist()
        digit = F.interpolate(digits.images[pick : pick + 1], size=(side, side), mode="bilinear", align_corners=False)[0]
        patch = images[index, :, top : top + side, left : left + side]
        images[index, :, top : top + side, left : left + side] = torch.maximum(patch, digit)
        ink = (images[index, 0] > INK).nonzero()
        boxes[index] = torch.stack([ink[:, 1].min(), ink[:, 0].min(), ink[:, 1].max() + 1, ink[:, 0].max() + 1])
        labels[index] = digits.labels[pick]
    return Canvases(images.clamp(0, 1), labels, boxes)


class CanvasNet(nn.Module):
    """Fully convolutional: conv blocks, a 1x1 conv to ten class maps, global max pooling.

    The class score is the peak of its map, so it depends on where the digit is, and the
    gradient of the score points there. Layer names follow torchvision's VGG.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *conv_relu(1, 16), *conv_relu(16, 32), nn.MaxPool2d(2),
            *conv_relu(32, 64), nn.MaxPool2d(2),
            *conv_relu(64, 64, padding=2, dilation=2),
            nn.Conv2d(64, len(CLASSES), 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x).amax(dim=(2, 3))

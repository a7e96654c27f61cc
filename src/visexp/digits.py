"""The bundled `digits` model: a small CNN on scikit-learn's handwritten digits.

scikit-learn ships the UCI handwritten-digits set (1797 grey 8x8 images, values 0-16) inside
the package, so this model can be trained, tested and visualised on any offline machine.
Images are scaled to [0, 1] and upsampled to 32x32 so that class models and filter pictures
are large enough to look at and the network has a few layers worth visualising.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

SIZE = 32
"""Side of the square input, in pixels, after upsampling the 8x8 originals."""

CLASSES = [str(digit) for digit in range(10)]
SPLIT_SEED = 0
TEST_SHARE = 0.25


@dataclass(frozen=True)
class DigitsData:
    """Images as (N, 1, 32, 32) floats in [0, 1] and labels as (N,) int64."""

    images: torch.Tensor
    labels: torch.Tensor


def load_split(split: str) -> DigitsData:
    """Load the fixed `train` or `test` split (75/25, seeded, the same on every machine)."""
    from sklearn.datasets import load_digits

    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', not {split!r}")
    raw = load_digits()
    images = torch.tensor(raw.images, dtype=torch.float32).unsqueeze(1) / 16.0
    images = F.interpolate(images, size=(SIZE, SIZE), mode="bilinear", align_corners=False)
    labels = torch.tensor(raw.target, dtype=torch.int64)
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(SPLIT_SEED))
    n_test = round(len(labels) * TEST_SHARE)
    chosen = order[:n_test] if split == "test" else order[n_test:]
    return DigitsData(images=images[chosen].clamp(0.0, 1.0), labels=labels[chosen])


def conv_relu(inputs: int, outputs: int, padding: int = 1, dilation: int = 1) -> list[nn.Module]:
    """A 3x3 convolution and its in-place ReLU, as two entries of an nn.Sequential (so layer
    numbers stay `features.0`, `features.2`, ... as in torchvision's VGG)."""
    return [nn.Conv2d(inputs, outputs, 3, padding=padding, dilation=dilation), nn.ReLU(inplace=True)]


class DigitsNet(nn.Module):
    """Three conv blocks and a two-layer classifier; layer names follow torchvision's VGG.

    `features.0` (conv 1->16), `features.2` (16->32), `features.5` (32->64) and
    `features.8` (64->64) are the conv layers; `classifier.5` gives the ten logits.
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            *conv_relu(1, 16), *conv_relu(16, 32), nn.MaxPool2d(2),
            *conv_relu(32, 64), nn.MaxPool2d(2),
            *conv_relu(64, 64), nn.MaxPool2d(2),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(0.3),
            nn.Linear(64 * 4 * 4, 128),
            nn.ReLU(inplace=True),
            nn.Dropout(0.3),
            nn.Linear(128, len(CLASSES)),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))

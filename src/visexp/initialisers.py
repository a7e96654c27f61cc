"""Where the optimisation starts: the image parameter as a fixed base plus a trainable offset.

All tensors live in the network's input space (normalised pixels), where the paper optimises:
its zero image is the mean image, and its L2 penalty acts on the mean-subtracted image. The
network sees `base + offset`; only `offset` is optimised and penalised. Every initialiser
returns a `Start`; only `mean` uses a non-zero base (the training mean image added back).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from visexp.datasets import dataset_image, mean_image
from visexp.errors import VisexpError
from visexp.images import load_pixels
from visexp.models import VisionModel


@dataclass
class Start:
    """Base and initial offset, each (1, C, S, S) in the network's input space, on the model's device."""

    base: torch.Tensor
    offset: torch.Tensor


def _zeros(model: VisionModel) -> torch.Tensor:
    size = model.input_size
    return torch.zeros(1, model.channels, size, size, device=model.device)


class ZeroStart:
    """The zero image: in the input space that is the mean colour of the normalisation."""

    def __call__(self, model: VisionModel) -> Start:
        return Start(base=_zeros(model), offset=_zeros(model))


class NoiseStart:
    """Seeded noise around the zero image: `gaussian` (std `scale`) or `uniform` in [-scale, scale]."""

    def __init__(self, distribution: str, scale: float, seed: int) -> None:
        if distribution not in ("gaussian", "uniform"):
            raise VisexpError(f"init.distribution must be gaussian or uniform, not {distribution!r}")
        if not scale > 0:
            raise VisexpError(f"init.scale must be positive, not {scale}")
        self.distribution = distribution
        self.scale = float(scale)
        self.seed = int(seed)

    def __call__(self, model: VisionModel) -> Start:
        shape = _zeros(model).shape
        generator = torch.Generator().manual_seed(self.seed)
        if self.distribution == "gaussian":
            noise = torch.randn(shape, generator=generator) * self.scale
        else:
            noise = (torch.rand(shape, generator=generator) * 2 - 1) * self.scale
        return Start(base=_zeros(model), offset=noise.to(model.device))


class ImageStart:
    """An image file, resized and centre-cropped to the model's input."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __call__(self, model: VisionModel) -> Start:
        pixels = load_pixels(self.path, model.input_size, model.channels).to(model.device)
        return Start(base=_zeros(model), offset=model.normalise(pixels))


class DatasetStart:
    """Image `index` of a dataset: a bundled one (`digits`: its held-out split) or an ImageFolder root."""

    def __init__(self, data: str | None, index: int) -> None:
        self.data = data
        self.index = int(index)

    def __call__(self, model: VisionModel) -> Start:
        pixels = dataset_image(self.data, self.index, model).to(model.device)
        return Start(base=_zeros(model), offset=model.normalise(pixels))


class MeanStart:
    """The paper's start: optimise from zero and add the training mean image back.

    With `data` null the mean image is the normalisation's per-channel mean (the same as the
    zero start); with a dataset (`digits`, or an ImageFolder root) it is that dataset's mean image.
    """

    def __init__(self, data: str | None) -> None:
        self.data = data

    def __call__(self, model: VisionModel) -> Start:
        if self.data is None:
            return ZeroStart()(model)
        base = model.normalise(mean_image(self.data, model).to(model.device))
        return Start(base=base, offset=_zeros(model))

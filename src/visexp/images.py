"""Reading images into model-ready pixel tensors and writing tensors back as viewable files.

Pixel tensors are (B, C, H, W) floats in [0, 1]; normalisation to the network's input space is
the model's business (`VisionModel.normalise`). This is the one image I/O path of the project.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

log = logging.getLogger(__name__)
GREY_MODES = ("1", "L", "LA", "I", "F")


def open_image(path: str | Path, channels: int) -> Image.Image:
    """Open an image file as RGB (3 channels) or grey (1), with a one-line error if it cannot be read."""
    from visexp.errors import VisexpError

    file = Path(path).expanduser()
    if not file.is_file():
        raise VisexpError(f"image file not found: {file}")
    try:
        with Image.open(file) as image:
            if image.mode.startswith("I;16"):
                # 16-bit grey: PIL's convert would clip at 255 instead of scaling.
                image = Image.fromarray((np.asarray(image, dtype=np.float64) / 257.0).round().astype(np.uint8))
            if channels == 3 and image.mode in GREY_MODES:
                log.warning("image %s is grey: converted to RGB for a colour model", file)
            return image.convert("RGB" if channels == 3 else "L")
    except (UnidentifiedImageError, OSError) as error:
        raise VisexpError(f"cannot read image {file}: {error}") from error


@dataclass(frozen=True)
class SquareCrop:
    """How `fit_square` maps an image of `width` x `height` onto a `size` square: resize to
    `resized`, then crop at (`left`, `top`)."""

    width: int
    height: int
    size: int

    @property
    def resized(self) -> tuple[int, int]:
        scale = self.size / min(self.width, self.height)
        return max(self.size, round(self.width * scale)), max(self.size, round(self.height * scale))

    @property
    def left(self) -> int:
        return (self.resized[0] - self.size) // 2

    @property
    def top(self) -> int:
        return (self.resized[1] - self.size) // 2

    def to_image(self, box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        """A box in the square's pixels as a box in the original image's pixels."""
        sx, sy = self.width / self.resized[0], self.height / self.resized[1]
        x0, y0, x1, y1 = box
        return (
            int(np.floor((x0 + self.left) * sx)), int(np.floor((y0 + self.top) * sy)),
            min(self.width, int(np.ceil((x1 + self.left) * sx))), min(self.height, int(np.ceil((y1 + self.top) * sy))),
        )


def fit_square(image: Image.Image, size: int) -> Image.Image:
    """Resize the shorter side to `size` and crop the centre square, as evaluation transforms do."""
    crop = SquareCrop(image.width, image.height, size)
    resized = image.resize(crop.resized, Image.BILINEAR)
    return resized.crop((crop.left, crop.top, crop.left + size, crop.top + size))


def to_tensor(image: Image.Image) -> torch.Tensor:
    """A PIL image as a (1, C, H, W) float tensor in [0, 1]."""
    array = np.asarray(image, dtype=np.float32) / 255.0
    if array.ndim == 2:
        array = array[:, :, None]
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0).contiguous()


def load_pixels(path: str | Path, size: int, channels: int) -> torch.Tensor:
    """An image file as a (1, C, size, size) pixel tensor."""
    return to_tensor(fit_square(open_image(path, channels), size))


def load_whole(path: str | Path, channels: int, max_side: int) -> torch.Tensor:
    """An image file as a (1, C, H, W) pixel tensor at its own shape, shrunk to fit `max_side`."""
    image = open_image(path, channels)
    scale = min(1.0, max_side / max(image.size))
    if scale < 1.0:
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))), Image.BILINEAR)
    return to_tensor(image)


def quantise(pixels: torch.Tensor) -> torch.Tensor:
    """Round (…, C, H, W) pixels in [0, 1] to the 8-bit values a PNG stores, as uint8."""
    return (pixels.detach().clamp(0.0, 1.0) * 255.0).round().to(torch.uint8)


def dequantise(values: torch.Tensor) -> torch.Tensor:
    """8-bit values back to pixels in [0, 1] (inverse of `quantise` on its range)."""
    return values.to(torch.float32) / 255.0


def to_pil(pixels: torch.Tensor) -> Image.Image:
    """One (C, H, W) pixel tensor in [0, 1] (or uint8) as a PIL image, grey for one channel."""
    values = pixels if pixels.dtype == torch.uint8 else quantise(pixels)
    array = values.cpu().permute(1, 2, 0).numpy()
    return Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)


def enlarge(image: Image.Image, min_side: int) -> Image.Image:
    """Scale a small image up by a whole factor (nearest neighbour) until its short side is >= min_side."""
    factor = max(1, -(-min_side // min(image.size)))
    return image if factor == 1 else image.resize((image.width * factor, image.height * factor), Image.NEAREST)

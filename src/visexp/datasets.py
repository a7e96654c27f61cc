"""Images from datasets: the bundled `digits` data or an ImageFolder root on disk.

A dataset reference is a string: the name of a bundled dataset (`digits`) or the path of a
torchvision ImageFolder root (one sub-folder per class). Images come out as pixel tensors
sized for the model, through the same reader as single image files.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from visexp.errors import VisexpError
from visexp.images import load_pixels
from visexp.models import VisionModel

BUNDLED = ("digits", "canvas")
CANVASES = 1000
"""How many canvases of each split the bundled `canvas` dataset holds."""


def _bundled(ref: str, split: str) -> torch.Tensor:
    """The images of split `split` of bundled dataset `ref` (one of BUNDLED)."""
    if ref == "digits":
        from visexp import digits

        return digits.load_split(split).images
    if ref == "canvas":
        from visexp.canvas import make_canvases

        return make_canvases(split, CANVASES).images
    raise VisexpError(f"unknown bundled dataset {ref!r}: choose from {', '.join(BUNDLED)}")


def _folder(ref: str) -> list[str]:
    from torchvision.datasets import ImageFolder

    root = Path(ref).expanduser()
    if not root.is_dir():
        raise VisexpError(f"dataset {ref!r} is neither a bundled dataset ({', '.join(BUNDLED)}) nor a folder")
    try:
        return [path for path, _ in ImageFolder(str(root), loader=lambda path: path).samples]
    except (FileNotFoundError, OSError) as error:
        raise VisexpError(f"{root} is not an ImageFolder root (one sub-folder of images per class): {error}") from error


def _check_bundled(ref: str, model: VisionModel) -> None:
    if ref != model.data:
        raise VisexpError(f"bundled dataset {ref!r} does not fit model {model.name}; give an ImageFolder root")


def dataset_image(ref: str | None, index: int, model: VisionModel) -> torch.Tensor:
    """Image `index` of the dataset as (1, C, S, S) pixels (the held-out split of a bundled set)."""
    if ref is None:
        raise VisexpError(f"model {model.name} has no bundled dataset: set init.data to an ImageFolder root")
    if ref in BUNDLED:
        _check_bundled(ref, model)
        images = _bundled(ref, "test")
        count = len(images)
    else:
        paths = _folder(ref)
        count = len(paths)
    if not 0 <= index < count:
        raise VisexpError(f"image index {index} is out of range for dataset {ref}: it has {count} images, 0-{count - 1}")
    if ref in BUNDLED:
        return images[index : index + 1].clone()
    return load_pixels(paths[index], model.input_size, model.channels)


def mean_image(ref: str, model: VisionModel) -> torch.Tensor:
    """The mean of the dataset's images as (1, C, S, S) pixels (the training split of a bundled set)."""
    if ref in BUNDLED:
        _check_bundled(ref, model)
        return _bundled(ref, "train").mean(dim=0, keepdim=True)
    paths = _folder(ref)
    if not paths:
        raise VisexpError(f"dataset folder {ref} holds no images")
    total = torch.zeros(1, model.channels, model.input_size, model.input_size)
    for path in tqdm(paths, desc="mean image", unit="img", disable=None):
        total += load_pixels(path, model.input_size, model.channels)
    return total / len(paths)

"""Weakly supervised object localisation from a saliency map (Simonyan et al. 2013, sec. 3.1).

The most salient 5% of the pixels seed the foreground and the least salient 30% the background
(the paper's 95% and 30% quantiles); GrabCut (OpenCV) segments the image from those seeds with
colour models, and the box is that of the largest connected foreground component.

Seeds are taken by rank, not by comparing with the quantile values: a saliency map is often
exactly zero over most of the image (everything outside the receptive field of a max-pooled
score), and `values <= quantile(0.3)` would then make all of it background, hemming the object
in. Among equally salient pixels, those farthest from the foreground seeds become background.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from visexp.errors import VisexpError


@dataclass(frozen=True)
class Localisation:
    """A box (x0, y0, x1, y1; x1 and y1 exclusive, in the map's pixels), its mask, and how it was found."""

    box: tuple[int, int, int, int]
    mask: np.ndarray
    segmentation: str


def largest_component(mask: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """The box and mask of the largest 8-connected region of `mask`, or None if it is empty."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if count <= 1:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    x, y, w, h = (int(value) for value in stats[largest, :4])
    return (x, y, x + w, y + h), labels == largest


def seed_masks(values: np.ndarray, foreground: float, background: float) -> tuple[np.ndarray, np.ndarray]:
    """The top (1 - foreground) and the bottom `background` share of the pixels, by rank.

    Ties in the background are broken by distance from the foreground seeds, farthest first.
    """
    count = values.size
    top = max(1, round(count * (1 - foreground)))
    order = np.argsort(-values, axis=None, kind="stable")
    seeds = np.zeros(count, bool)
    seeds[order[:top]] = True
    seeds = seeds.reshape(values.shape)
    distance = cv2.distanceTransform((~seeds).astype(np.uint8), cv2.DIST_L2, 5)
    bottom = round(count * background)
    ranked = np.lexsort((-distance.ravel(), values.ravel()))  # least salient first, then farthest
    background_seeds = np.zeros(count, bool)
    background_seeds[ranked[:bottom]] = True
    return seeds, background_seeds.reshape(values.shape) & ~seeds


def localise(
    pixels: torch.Tensor, saliency: torch.Tensor, foreground: float = 0.95, background: float = 0.30, iterations: int = 5
) -> Localisation:
    """Segment the (C, H, W) pixels in [0, 1] from seeds in the (H, W) saliency map; box the object.

    When GrabCut cannot run (a map with no spread, so no background seeds), the largest region
    of foreground seeds gives the box (`segmentation` says which).
    """
    if not 0 <= background < foreground <= 1:
        raise VisexpError(f"the quantiles must satisfy 0 <= background < foreground <= 1, not {background} and {foreground}")
    image = (pixels.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    image = np.ascontiguousarray(np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image)
    values = saliency.detach().cpu().numpy().astype(np.float64)
    seeds, background_seeds = seed_masks(values, foreground, background)
    mask = np.full(values.shape, cv2.GC_PR_BGD, np.uint8)
    mask[seeds] = cv2.GC_FGD
    mask[background_seeds] = cv2.GC_BGD
    segmentation = "grabcut"
    try:
        cv2.grabCut(image, mask, None, np.zeros((1, 65)), np.zeros((1, 65)), iterations, cv2.GC_INIT_WITH_MASK)
        found = (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)
    except cv2.error:
        found, segmentation = seeds, "seeds"
    region = largest_component(found) or largest_component(seeds)
    if region is None:
        height, width = values.shape
        return Localisation((0, 0, width, height), np.ones_like(seeds), "whole image")
    box, component = region
    return Localisation(box, component, segmentation)


def iou(first: tuple[int, int, int, int], second: tuple[int, int, int, int]) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1, ends exclusive)."""
    width = max(0, min(first[2], second[2]) - max(first[0], second[0]))
    height = max(0, min(first[3], second[3]) - max(first[1], second[1]))
    overlap = width * height
    area = (first[2] - first[0]) * (first[3] - first[1]) + (second[2] - second[0]) * (second[3] - second[1])
    return overlap / (area - overlap) if area > overlap else 0.0

"""task=saliency: which pixels the class score depends on most, for one image (the paper, sec. 3)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig

from visexp.attribution import METHODS, attribute, saliency_map, viewable_saliency
from visexp.errors import VisexpError
from visexp.images import to_pil
from visexp.models import VisionModel
from visexp.optimise import Observer
from visexp.outputs import JobOutputs
from visexp.tasks.common import Result, start


def picture_file(cfg: DictConfig) -> str | None:
    """The image file the task looks at: `image`, or `init.path` with init=image; None otherwise."""
    return cfg.image if cfg.image is not None else cfg.init.get("path")


def signed_picture(attribution: torch.Tensor) -> torch.Tensor:
    """The signed attribution (C, H, W) as RGB pixels: per channel around grey for RGB inputs;
    for grey inputs white at zero, red for positive and blue for negative."""
    scale = attribution.abs().max().clamp_min(1e-12)
    if attribution.shape[0] == 3:
        return attribution / (2 * scale) + 0.5
    value = (attribution[0] / scale).clamp(-1, 1)
    white = 1 - value.abs()
    return torch.stack([white + value.clamp_min(0), white, white + (-value).clamp_min(0)]).clamp(0, 1)


def overlay(pixels: torch.Tensor, saliency: torch.Tensor) -> torch.Tensor:
    """The saliency (H, W, in [0, 1]) as red heat over the dimmed image (C, H, W) -> RGB (3, H, W)."""
    base = pixels.expand(3, -1, -1) * 0.6
    red = torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1)
    return base * (1 - saliency) + red * saliency


class Saliency:
    """One backward pass from the class score to the image, by `method`; the maps and raw arrays."""

    def __init__(self, cfg: DictConfig, model: VisionModel) -> None:
        if cfg.method not in METHODS:
            raise VisexpError(f"unknown method {cfg.method!r}: choose from {', '.join(METHODS)}")
        self.method = cfg.method
        self.model = model
        if cfg.image is None and picture_file(cfg) is None and not str(cfg.init.get("_target_", "")).endswith("DatasetStart"):
            raise VisexpError(
                f"task={cfg.task.name} explains a picture: give image=PATH (or init=dataset / init=image), "
                "not a blank or noise start"
            )
        begin = start(cfg, model)
        self.inputs = begin.base + begin.offset
        self.target = None if cfg.target is None else model.check_target(cfg.target)

    def explain(self) -> tuple[dict[str, Any], torch.Tensor]:
        """The class explained (the given target or the top-1) with its scores, and the attribution."""
        model = self.model
        with torch.inference_mode():
            logits = model.net(self.inputs)
        top = int(logits[0].argmax())
        target = top if self.target is None else self.target
        attribution, logits = attribute(model, self.inputs, target, self.method)
        probabilities = torch.softmax(logits[0].float(), dim=0)
        facts = {
            "method": self.method,
            "target": target,
            "target_name": model.classes[target],
            "target_source": "top-1 of the model" if self.target is None else "given",
            "score": float(logits[0, target]),
            "target_probability": float(probabilities[target]),
            "top1_class": top,
            "top1_name": model.classes[top],
        }
        return facts, attribution

    def run(self, outputs: JobOutputs, observer: Observer) -> Result:
        model = self.model
        facts, attribution = self.explain()
        shown = viewable_saliency(attribution)
        pixels = model.denormalise(self.inputs)[0].cpu().clamp(0, 1)
        pictures = {
            "saliency": to_pil(shown.unsqueeze(0)),
            "gradient": to_pil(signed_picture(attribution[0].cpu())),
            "overlay": to_pil(overlay(pixels, shown)),
            "input": to_pil(pixels),
        }
        for name, picture in pictures.items():
            outputs.save_png(f"{name}.png", picture)
        outputs.save_npy("input.npy", self.inputs.detach().cpu().numpy().astype(np.float32))
        outputs.save_npy("attribution.npy", attribution.cpu().numpy().astype(np.float32))
        summary = {**facts, "saliency_max": float(saliency_map(attribution).max()), "picture": "overlay.png"}
        return Result(summary, dict(pictures))

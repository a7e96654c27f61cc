"""task=visualise: the class model (or filter mean) of Simonyan et al., by gradient ascent.

One job optimises one image, or, with a list of targets (`target=[951,968]`) or channels
(`objective.channel=[3,7]`), one image per entry, all in one batch. A job of the batched launcher
has had its ascent done already, together with other points of its sweep (`replay`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig
from PIL import Image

from visexp.build import build
from visexp.errors import VisexpError
from visexp.grids import tile_grid
from visexp.images import dequantise, quantise, to_pil
from visexp.initialisers import Start
from visexp.models import VisionModel
from visexp.objectives import Objective
from visexp.optimise import Observer, Penalty, Snapshot, ascend, forward, make_optimizer, non_finite, updates_each_value
from visexp.outputs import JobOutputs
from visexp.parameter import ImageParameter
from visexp.tasks.common import FrameRecorder, Result, start


@dataclass
class Ascent:
    """One image's ascent, done elsewhere: what its observers saw, its progress frames, its final
    offset (1, C, H, W), how many images were optimised with it in how many seconds, and the
    step where its loss became NaN or infinite, if it did."""

    snapshots: list[Snapshot]
    frames: list[Image.Image]
    offset: torch.Tensor
    batch: int
    seconds: float
    failed_at: int | None = None


def entries(objective: Objective) -> list[int] | None:
    """The list of targets or channels an objective optimises one image each for, if any."""
    for name in ("target", "channel"):
        value = getattr(objective, name, None)
        if isinstance(value, list):
            return value
    return None


class Visualise:
    """Optimise the image(s) for the objective; save them, their progress and what the model makes of them."""

    def __init__(self, cfg: DictConfig, model: VisionModel) -> None:
        self.cfg = cfg
        self.model = model
        self.objective: Objective = build(cfg.objective, model=model)
        self.penalty: Penalty = build(cfg.reg)
        self.entries = entries(self.objective)
        begin = start(cfg, model)
        if self.entries is not None:
            count = len(self.entries)
            if len(set(self.entries)) != count:
                raise VisexpError(f"{self.entries} names one entry twice: each one gets an image of its own (image_<entry>.png)")
            if not updates_each_value(cfg.optim):
                raise VisexpError(
                    f"a list of entries needs an optimiser that moves each value by itself (adam, sgd, ...): "
                    f"{cfg.optim.get('_target_')} would let the images of the batch steer each other"
                )
            begin = Start(base=begin.base.expand(count, -1, -1, -1), offset=begin.offset.expand(count, -1, -1, -1))
        self.parameter = ImageParameter(model, begin)
        self.optimizer = make_optimizer(cfg.optim, self.parameter)
        self.ascent: Ascent | None = None

    def replay(self, ascent: Ascent) -> None:
        """Take the result of an ascent done in a batch with other jobs instead of doing it here."""
        self.ascent = ascent

    def run(self, outputs: JobOutputs, observer: Observer) -> Result:
        model, parameter = self.model, self.parameter
        with torch.inference_mode():
            start_scores = forward(model, self.objective, parameter.inputs(), need_logits=False, precise=True)[0].tolist()
        if self.ascent is None:
            recorders = [FrameRecorder(model, index) for index in range(len(start_scores))]
            ascend(
                model, self.objective, self.penalty, parameter, self.optimizer,
                steps=self.cfg.steps, clamp=self.cfg.clamp, log_every=self.cfg.log_every,
                observers=[*recorders, observer], description=model.name,
            )
            frames = [recorder.viewable() for recorder in recorders]
        else:
            failed_at = self.ascent.failed_at
            for snapshot in self.ascent.snapshots:
                if failed_at is None or snapshot.step < failed_at:
                    observer(snapshot)
            if failed_at is not None:
                raise non_finite(failed_at)
            with torch.no_grad():
                parameter.leaves[0].copy_(self.ascent.offset)
            frames = [FrameRecorder.enlarged(self.ascent.frames)]
        saved = quantise(model.denormalise(parameter.inputs().detach()))
        metrics = self.final_metrics(saved)
        for one, score in zip(metrics, start_scores):
            one["start_score"] = score
        images = [to_pil(image) for image in saved]
        if self.entries is None:
            summary = {**metrics[0], "steps": self.cfg.steps, "picture": "image.png"}
            if self.ascent is not None:
                summary["batched"] = {"images": self.ascent.batch, "seconds": round(self.ascent.seconds, 3)}
            outputs.save_png("image.png", images[0])
            outputs.save_gif("progress.gif", frames[0])
            return Result(summary, {"image": images[0]}, {"progress": "progress.gif"})
        return self.save_each(outputs, metrics, images, frames)

    def save_each(
        self, outputs: JobOutputs, metrics: list[dict[str, Any]], images: list[Image.Image],
        frames: Sequence[list[Image.Image]],
    ) -> Result:
        """A job over a list: image_<entry>.png and progress_<entry>.gif for each entry, and
        image.png, all of them side by side, captioned with what each one maximises."""
        assert self.entries is not None
        key = "target" if isinstance(getattr(self.objective, "target", None), list) else "channel"
        captions = [
            f"{key} {entry}" + (f" ({self.model.classes[entry]})" if key == "target" else "") for entry in self.entries
        ]
        animations = {}
        for entry, image, progress in zip(self.entries, images, frames):
            outputs.save_png(f"image_{entry}.png", image)
            outputs.save_gif(f"progress_{entry}.gif", progress)
            animations[f"progress_{entry}"] = f"progress_{entry}.gif"
        overview = tile_grid(images, captions)
        outputs.save_png("image.png", overview)
        summary = {key: list(self.entries), "images": metrics, "steps": self.cfg.steps, "picture": "image.png"}
        return Result(summary, {"image": overview}, animations)

    def final_metrics(self, saved: torch.Tensor) -> list[dict[str, Any]]:
        """Score each image exactly as saved (8-bit), so the numbers hold for the PNG itself."""
        model, offset = self.model, self.parameter.offset.detach()
        with torch.inference_mode():
            score, logits = forward(model, self.objective, model.normalise(dequantise(saved)), precise=True)
            probabilities = torch.softmax(logits, dim=1)
            cost = self.penalty(offset)
        norms = offset.flatten(1).norm(dim=1)
        metrics = []
        for index in range(len(saved)):
            top = int(probabilities[index].argmax())
            one: dict[str, Any] = {
                "score": float(score[index]),
                "penalty": float(cost[index]),
                "image_norm": float(norms[index]),
                "top1_class": top,
                "top1_name": model.classes[top],
                "top1_probability": float(probabilities[index, top]),
            }
            target = self.objective.target
            if isinstance(target, list):
                target = target[index]
            if target is not None:
                one.update(target=target, target_name=model.classes[target],
                           target_probability=float(probabilities[index, target]))
            if isinstance(getattr(self.objective, "channel", None), list):
                one["channel"] = self.objective.channel[index]  # type: ignore[attr-defined]
            metrics.append(one)
        return metrics

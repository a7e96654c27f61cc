"""task=visualise: the class model (or filter mean) of Simonyan et al., by gradient ascent."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig

from visexp.build import build
from visexp.images import dequantise, quantise, to_pil
from visexp.models import VisionModel
from visexp.objectives import Objective
from visexp.optimise import Observer, Penalty, ascend, forward, make_optimizer
from visexp.outputs import JobOutputs
from visexp.parameter import ImageParameter
from visexp.tasks.common import FrameRecorder, Result, start


class Visualise:
    """Optimise one image for the objective; save it, its progress and what the model makes of it."""

    def __init__(self, cfg: DictConfig, model: VisionModel) -> None:
        self.cfg = cfg
        self.model = model
        self.objective: Objective = build(cfg.objective, model=model)
        self.penalty: Penalty = build(cfg.reg)
        self.parameter = ImageParameter(model, start(cfg, model))
        self.optimizer = make_optimizer(cfg.optim, self.parameter)

    def run(self, outputs: JobOutputs, observer: Observer) -> Result:
        model, parameter = self.model, self.parameter
        with torch.inference_mode():
            start_score = float(forward(model, self.objective, parameter.inputs(), need_logits=False)[0][0])
        frames = FrameRecorder(model)
        ascend(
            model, self.objective, self.penalty, parameter, self.optimizer,
            steps=self.cfg.steps, clamp=self.cfg.clamp, log_every=self.cfg.log_every,
            observers=[frames, observer], description=model.name,
        )
        saved = quantise(model.denormalise(parameter.inputs().detach()))
        summary = self.final_metrics(saved)
        summary.update(start_score=start_score, steps=self.cfg.steps, picture="image.png")
        image = to_pil(saved[0])
        outputs.save_png("image.png", image)
        outputs.save_gif("progress.gif", frames.viewable())
        return Result(summary, {"image": image}, {"progress": "progress.gif"})

    def final_metrics(self, saved: torch.Tensor) -> dict[str, Any]:
        """Score the image exactly as saved (8-bit), so the numbers hold for image.png itself."""
        model, offset = self.model, self.parameter.offset.detach()
        with torch.inference_mode():
            score, logits = forward(model, self.objective, model.normalise(dequantise(saved)))
            probabilities = torch.softmax(logits.float(), dim=1)[0]
            cost = self.penalty(offset)
        top = int(probabilities.argmax())
        metrics: dict[str, Any] = {
            "score": float(score[0]),
            "penalty": float(cost[0]),
            "image_norm": float(offset.flatten(1).norm(dim=1)[0]),
            "top1_class": top,
            "top1_name": model.classes[top],
            "top1_probability": float(probabilities[top]),
        }
        if self.objective.target is not None:
            metrics["target"] = self.objective.target
            metrics["target_name"] = model.classes[self.objective.target]
            metrics["target_probability"] = float(probabilities[self.objective.target])
        return metrics

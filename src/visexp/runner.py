"""One job: compose the pieces a config names, optimise the image, write and log the results.

`run(cfg)` is a plain function (run.py only hands Hydra's config to it), so tests call it
directly with a composed config and a temporary output folder.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from PIL import Image

from visexp.build import build
from visexp.errors import VisexpError
from visexp.images import dequantise, enlarge, quantise, to_pil
from visexp.models import VisionModel
from visexp.objectives import Objective
from visexp.optimise import Penalty, Snapshot, ascend, forward
from visexp.outputs import METRICS, JobOutputs, clear_results
from visexp.parameter import ImageParameter
from visexp.tracking import Tracker

GIF_MIN_SIDE = 256
"""Small models' images are enlarged (nearest neighbour) to at least this size in the GIF."""


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; otherwise the named device, checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise VisexpError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VisexpError(f"device {name!r} asked for, but this machine has no CUDA GPU: use device=cpu or auto")
    return device


def check_config(cfg: DictConfig) -> None:
    """Fail early, in one line, on values that are missing or cannot be right."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise VisexpError(f"missing value for {', '.join(missing)}: set it on the command line, e.g. {missing[0]}=...")
    for key in ("steps", "log_every"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] <= 0:
            raise VisexpError(f"{key} must be a positive integer, not {cfg[key]!r}")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise VisexpError(f"seed must be an integer, not {cfg.seed!r}")
    if not isinstance(cfg.clamp, bool):
        raise VisexpError(f"clamp must be true or false, not {cfg.clamp!r}")
    if isinstance(cfg["lambda"], bool) or not isinstance(cfg["lambda"], (int, float)) or not cfg["lambda"] >= 0:
        raise VisexpError(f"lambda must be a non-negative number, not {cfg['lambda']!r}")


def make_optimizer(cfg: DictConfig, parameter: ImageParameter) -> torch.optim.Optimizer:
    """The configured optimiser over the image offset, with its own complaints in one line."""
    factory = build(cfg.optim)
    try:
        return factory([parameter.offset])
    except (TypeError, ValueError) as error:
        raise VisexpError(f"cannot make optimiser {cfg.optim.get('_target_')}: {error}") from error


class FrameRecorder:
    """Keeps the image at every snapshot (8-bit, model size), for progress.gif."""

    def __init__(self, model: VisionModel) -> None:
        self.model = model
        self.frames: list[Image.Image] = []

    def __call__(self, snapshot: Snapshot) -> None:
        self.frames.append(to_pil(self.model.denormalise(snapshot.parameter.inputs().detach())[0]))

    def viewable(self) -> list[Image.Image]:
        """The frames enlarged for looking at."""
        return [enlarge(frame, GIF_MIN_SIDE) for frame in self.frames]


def final_metrics(
    model: VisionModel, objective: Objective, penalty: Penalty, parameter: ImageParameter, saved: torch.Tensor
) -> dict[str, Any]:
    """Score the image exactly as saved (8-bit), so the numbers hold for image.png itself."""
    with torch.inference_mode():
        score, logits = forward(model, objective, model.normalise(dequantise(saved)))
        probabilities = torch.softmax(logits.float(), dim=1)[0]
        cost = penalty(parameter.offset.detach())
    top = int(probabilities.argmax())
    metrics: dict[str, Any] = {
        "score": float(score[0]),
        "penalty": float(cost[0]),
        "image_norm": float(parameter.offset.detach().flatten(1).norm(dim=1)[0]),
        "top1_class": top,
        "top1_name": model.classes[top],
        "top1_probability": float(probabilities[top]),
    }
    if objective.target is not None:
        metrics["target"] = objective.target
        metrics["target_name"] = model.classes[objective.target]
        metrics["target_probability"] = float(probabilities[objective.target])
    return metrics


def run(cfg: DictConfig, output_dir: Path | None = None) -> dict[str, Any]:
    """Visualise what `cfg` asks for and write image.png, progress.gif and metrics.json.

    Args:
        cfg: a composed config (conf/config.yaml and its groups).
        output_dir: where to write; by default the Hydra job's output folder.

    Returns:
        The metrics, as written to metrics.json.
    """
    if output_dir is None:
        from hydra.core.hydra_config import HydraConfig

        output_dir = Path(HydraConfig.get().runtime.output_dir)
    output_dir = Path(output_dir)
    clear_results(output_dir)
    check_config(cfg)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)

    model: VisionModel = build(cfg.model).to(device)
    objective: Objective = build(cfg.objective, model=model)
    penalty: Penalty = build(cfg.reg)
    parameter = ImageParameter(model, build(cfg.init)(model))
    optimizer = make_optimizer(cfg, parameter)

    frames = FrameRecorder(model)
    tracker: Tracker = build(cfg.logger, config=OmegaConf.to_container(cfg, resolve=True), directory=output_dir)
    failed = True
    summary: dict[str, Any] = {}
    images: dict[str, Image.Image] = {}
    try:
        with JobOutputs(output_dir) as outputs:
            with torch.inference_mode():
                start_score = float(forward(model, objective, parameter.inputs())[0][0])
            began = time.perf_counter()
            ascend(
                model, objective, penalty, parameter, optimizer,
                steps=cfg.steps, clamp=cfg.clamp, log_every=cfg.log_every,
                observers=[frames, tracker], description=f"{model.name}",
            )
            seconds = time.perf_counter() - began
            saved = quantise(model.denormalise(parameter.inputs().detach()))
            summary = final_metrics(model, objective, penalty, parameter, saved)
            summary.update(
                start_score=start_score,
                model=model.name, steps=cfg.steps, seconds=round(seconds, 3), seed=cfg.seed, device=str(device)
            )
            images = {"image": to_pil(saved[0])}
            outputs.save_png("image.png", images["image"])
            outputs.save_gif("progress.gif", frames.viewable())
            outputs.save_json(METRICS, summary)
        failed = False
    finally:
        tracker.finish(summary, images, failed=failed)
    return summary

"""task=dream: DeepDream, gradient ascent on a layer's response with an octave pyramid.

The image is shrunk into `octaves` levels, each `octave_scale` times smaller than the next.
Starting from the smallest, each level is optimised for `steps` steps through the shared loop
(with random jitter and a normalised gradient), and the detail it added (the offset from that
level's picture) is enlarged and carried up to the next. The result has the input's size.
`octaves=1` is single-scale DeepDream.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from omegaconf import DictConfig

from visexp.build import build
from visexp.errors import VisexpError
from visexp.hooks import LayerTap
from visexp.images import dequantise, load_whole, quantise, to_pil
from visexp.initialisers import Start
from visexp.models import VisionModel
from visexp.objectives import Objective
from visexp.optimise import Observer, Penalty, ascend, forward, make_optimizer
from visexp.outputs import JobOutputs
from visexp.parameter import ImageParameter
from visexp.tasks.common import FrameRecorder, Result, start

MIN_SIDE = 8
"""No pyramid level may be smaller than this many pixels on a side."""


class Jitter:
    """Shifts the image by a random offset of up to `pixels` (wrapping round) at every step."""

    def __init__(self, pixels: int, seed: int) -> None:
        self.pixels = pixels
        self.generator = torch.Generator().manual_seed(seed)

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        dy, dx = torch.randint(-self.pixels, self.pixels + 1, (2,), generator=self.generator).tolist()
        return torch.roll(inputs, shifts=(dy, dx), dims=(2, 3))


def pyramid(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Sizes of the levels, smallest first; the last is the image's own size."""
    return [(round(height / scale**level), round(width / scale**level)) for level in reversed(range(octaves))]


class Dream:
    """DeepDream on `image` (or on what the init group makes, at the model's input size)."""

    def __init__(self, cfg: DictConfig, model: VisionModel) -> None:
        self.cfg = cfg
        self.model = model
        self.objective: Objective = build(cfg.objective, model=model)
        if self.objective.layer is None:
            raise VisexpError(
                "task=dream needs a layer objective: objective=layer objective.layer=NAME (or objective=filter)"
            )
        octaves, scale = cfg.octaves, cfg.octave_scale
        if isinstance(octaves, bool) or not isinstance(octaves, int) or octaves < 1:
            raise VisexpError(f"octaves must be a positive integer, not {octaves!r}")
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not scale > 1:
            raise VisexpError(f"octave_scale must be a number greater than 1, not {scale!r}")
        jitter = cfg.task.jitter
        if isinstance(jitter, bool) or not isinstance(jitter, int) or jitter < 0:
            raise VisexpError(f"task.jitter must be a whole number of pixels >= 0, not {jitter!r}")
        if cfg.image is not None:
            pixels = load_whole(cfg.image, model.channels, cfg.task.max_side).to(model.device)
            self.picture = model.normalise(pixels)
        else:
            begin = start(cfg, model)
            self.picture = begin.base + begin.offset
        height, width = self.picture.shape[-2:]
        self.sizes = pyramid(height, width, octaves, float(scale))
        self._check_smallest_level(height, width)
        self.penalty: Penalty = build(cfg.reg)
        self.jitter = Jitter(jitter, cfg.seed) if jitter else None

    def _takes(self, size: tuple[int, int]) -> str | None:
        """None if the network up to the objective's layer takes the picture at `size`, else why not."""
        probe = F.interpolate(self.picture, size=size, mode="bilinear", align_corners=False, antialias=True)
        try:
            with LayerTap(self.model.layer(self.objective.layer), stop_after=self.objective.calls), torch.inference_mode():
                self.model.net(probe)
        except RuntimeError as error:
            return str(error).splitlines()[0]
        return None

    def _check_smallest_level(self, height: int, width: int) -> None:
        whole = self._takes((height, width))
        if whole is not None:
            raise VisexpError(
                f"layer {self.objective.layer!r} of {self.model.name} cannot take the {width}x{height} px picture "
                f"itself (too small for it, or the layer needs the model's input size): {whole}"
            )
        small = self.sizes[0]
        problem = f"the smallest level would be {small[1]}x{small[0]} px"
        fits = min(small) >= MIN_SIDE
        if fits and self._takes(small) is not None:
            fits, problem = False, f"layer {self.objective.layer!r} cannot take the smallest level, {small[1]}x{small[0]} px"
        if not fits:
            raise VisexpError(
                f"the image ({width}x{height} px) is too small for {self.cfg.octaves} octaves of scale "
                f"{self.cfg.octave_scale}: {problem}; use fewer octaves, a smaller octave_scale or a larger image"
            )

    def run(self, outputs: JobOutputs, observer: Observer) -> Result:
        model, cfg = self.model, self.cfg
        with torch.inference_mode():
            start_score = float(forward(model, self.objective, self.picture, need_logits=False, precise=True)[0][0])
        frames = FrameRecorder(model)
        detail = torch.zeros(1, model.channels, *self.sizes[0], device=model.device)
        for level, size in enumerate(self.sizes):
            base = F.interpolate(self.picture, size=size, mode="bilinear", align_corners=False, antialias=True)
            if detail.shape[-2:] != base.shape[-2:]:
                detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
            parameter = ImageParameter(model, Start(base=base, offset=detail))
            ascend(
                model, self.objective, self.penalty, parameter, make_optimizer(cfg.optim, parameter),
                steps=cfg.steps, clamp=cfg.clamp, log_every=cfg.log_every, observers=[frames, observer],
                description=f"octave {level + 1}/{len(self.sizes)}", transform=self.jitter,
                normalise_gradient=cfg.task.normalise_gradient, first_step=level * cfg.steps,
            )
            detail = parameter.offset.detach()
        saved = quantise(model.denormalise(parameter.inputs().detach()))
        with torch.inference_mode():
            score = float(forward(model, self.objective, model.normalise(dequantise(saved)), need_logits=False, precise=True)[0][0])
        image = to_pil(saved[0])
        original = to_pil(quantise(model.denormalise(self.picture))[0])
        outputs.save_png("image.png", image)
        outputs.save_png("input.png", original)
        outputs.save_gif("progress.gif", frames.viewable())
        summary = {
            "layer": self.objective.layer,
            "score": score,
            "start_score": start_score,
            "octaves": len(self.sizes),
            "octave_sizes": [list(size) for size in self.sizes],
            "steps": cfg.steps * len(self.sizes),
            "picture": "image.png",
        }
        return Result(summary, {"image": image, "input": original}, {"progress": "progress.gif"})

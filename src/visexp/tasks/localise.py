"""task=localise: the paper's weakly supervised localisation, a box from a saliency map."""

from __future__ import annotations

import json

import numpy as np
from omegaconf import DictConfig
from PIL import Image, ImageDraw

from visexp.attribution import viewable_saliency
from visexp.errors import VisexpError
from visexp.images import SquareCrop, open_image, to_pil
from visexp.localisation import localise
from visexp.models import VisionModel
from visexp.optimise import Observer
from visexp.outputs import JobOutputs
from visexp.tasks.common import Result
from visexp.tasks.saliency import Saliency, picture_file


class Localise(Saliency):
    """Saliency of the target (default: top-1), GrabCut from its seeds, the box of the largest part.

    The box is given in the pixels of the image file (mapped back through the centre crop the
    model saw), or of the model input for a dataset or init picture.
    """

    def __init__(self, cfg: DictConfig, model: VisionModel) -> None:
        super().__init__(cfg, model)
        self.foreground = float(cfg.task.foreground)
        self.background = float(cfg.task.background)
        if not 0 <= self.background < self.foreground <= 1:
            raise VisexpError(
                f"need 0 <= task.background < task.foreground <= 1, not {self.background} and {self.foreground}"
            )
        path = picture_file(cfg)
        self.original = open_image(path, model.channels) if path is not None else None

    def run(self, outputs: JobOutputs, observer: Observer) -> Result:
        model = self.model
        facts, attribution = self.explain()
        pixels = model.denormalise(self.inputs)[0].cpu().clamp(0, 1)
        saliency = viewable_saliency(attribution)
        found = localise(pixels, saliency, self.foreground, self.background)
        if self.original is None:
            picture, box = to_pil(pixels).convert("RGB"), found.box
        else:
            crop = SquareCrop(self.original.width, self.original.height, model.input_size)
            picture, box = self.original.convert("RGB"), crop.to_image(found.box)
        drawn = picture.copy()
        width = max(1, round(max(picture.size) / 100))
        ImageDraw.Draw(drawn).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), outline=(255, 0, 0), width=width)
        outputs.save_png("localised.png", drawn)
        outputs.save_png("mask.png", Image.fromarray((found.mask * 255).astype(np.uint8)))
        outputs.save_png("saliency.png", to_pil(saliency.unsqueeze(0)))
        x0, y0, x1, y1 = box
        outputs.save_text("box.json", json.dumps({"x0": x0, "y0": y0, "x1": x1, "y1": y1}) + "\n")
        summary = {**facts, "box": list(box), "image_size": list(picture.size), "model_box": list(found.box),
                   "segmentation": found.segmentation, "picture": "localised.png"}
        return Result(summary, {"localised": drawn})

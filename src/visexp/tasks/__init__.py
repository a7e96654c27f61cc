"""The jobs the runner can do, chosen by the `task` config group.

Every task is built from the config and the model first, which checks all input and fails in
one line before anything is written or logged, and then run into the job's outputs.
"""

from __future__ import annotations

from omegaconf import DictConfig

from visexp.errors import VisexpError
from visexp.models import VisionModel
from visexp.tasks.common import Task
from visexp.tasks.dream import Dream
from visexp.tasks.features import FeatureMaps
from visexp.tasks.filters import FilterWeights
from visexp.tasks.localise import Localise
from visexp.tasks.saliency import Saliency
from visexp.tasks.visualise import Visualise

TASKS: dict[str, type[Task]] = {
    "visualise": Visualise,
    "features": FeatureMaps,
    "filters": FilterWeights,
    "dream": Dream,
    "saliency": Saliency,
    "localise": Localise,
}


def make_task(cfg: DictConfig, model: VisionModel) -> Task:
    """The task `cfg.task.name`, built and checked for `model`."""
    name = cfg.task.name
    if name not in TASKS:
        raise VisexpError(f"unknown task {name!r}: choose from {', '.join(TASKS)}")
    return TASKS[name](cfg, model)

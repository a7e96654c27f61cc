"""Points of a sweep optimised as one batch: which points can share one, and the shared ascent.

Points of a `task=visualise` sweep that differ only in what each image may have for itself (the
target, lambda, seed, start, objective channel, optimiser settings such as the learning rate)
can run as one batch: one forward and backward pass moves all their images. Each image keeps
its own start, target or channel, penalty weight and optimiser parameter group, so every
image's update follows the same rule as in a run of its own; the numbers agree with one-by-one
runs up to float rounding (a batched convolution adds up in another order).

The batched launcher (`hydra/launcher=batched`) uses this in two steps: `ascend_together` runs a
group of points' ascents and `keep` files each result under its job folder; then every point
runs as a job of its own, as with the default launcher, and the runner takes the ascent found
for its folder (`batched_ascent`) instead of doing it, and writes the outputs and W&B run.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from visexp.build import build
from visexp.errors import VisexpError
from visexp.initialisers import Start
from visexp.models import VisionModel
from visexp.optimise import Snapshot, ascend, make_optimizer, updates_each_value
from visexp.parameter import ImageParameter
from visexp.resume import IGNORED, fingerprint
from visexp.tasks.common import FrameRecorder, start
from visexp.tasks.visualise import Ascent

PER_IMAGE = {"target", "lambda", "seed", "init", "image"}
"""Top-level keys whose values each image of a batch may have for itself."""

PER_IMAGE_IN = {"objective": {"target", "channel"}, "reg": {"weight"}}
"""Keys of config groups whose values each image of a batch may have for itself; besides
these, every optimiser setting but the optimiser itself (`optim._target_`)."""


def batch_key(job: DictConfig) -> str | None:
    """What points must share to run in one batch (their resolved configs without the
    per-image values), or None for a job that cannot share one: not `task=visualise`, a job
    that is a batch already (a list of targets or channels), or one whose optimiser does not
    move each value by itself (LBFGS: its images would steer each other)."""
    if job.task.name != "visualise" or not updates_each_value(job.optim):
        return None
    shared: dict[str, Any] = OmegaConf.to_container(job, resolve=True)  # type: ignore[assignment]
    if any(isinstance(shared["objective"].get(key), list) for key in PER_IMAGE_IN["objective"]):
        return None
    for key in PER_IMAGE | IGNORED:
        shared.pop(key, None)
    for group, keys in PER_IMAGE_IN.items():
        shared[group] = {key: value for key, value in shared[group].items() if key not in keys}
    shared["optim"] = {key: value for key, value in shared["optim"].items() if key.startswith("_")}
    return json.dumps(shared, sort_keys=True, default=str)


def optimiser_settings(job: DictConfig) -> dict[str, Any]:
    """A point's optimiser settings (`lr`, `momentum`, ...), for its parameter group."""
    return {key: value for key, value in OmegaConf.to_container(job.optim, resolve=True).items()  # type: ignore[union-attr]
            if not str(key).startswith("_")}


def ascend_together(jobs: list[DictConfig], model: VisionModel) -> list[Ascent | None]:
    """The ascents of `jobs` (points with one `batch_key`), run as one batch on `model`.

    A point whose objective or start is refused (a target out of range, a missing picture) is
    left out, None: its own job says what is wrong. A point whose loss becomes NaN or infinite
    does not stop the others: its ascent carries the step, and its job fails with that error.
    """
    usable: list[tuple[DictConfig, Start]] = []
    for job in jobs:
        try:
            build(job.objective, model=model)
            usable.append((job, start(job, model)))
        except VisexpError:
            continue
    if not usable:
        return [None] * len(jobs)
    chosen = [job for job, _ in usable]
    first = chosen[0]
    per_image = {key: [job.objective[key] for job in chosen] for key in PER_IMAGE_IN["objective"] if key in first.objective}
    objective = build(first.objective, model=model, **per_image)
    penalty = build(first.reg, weight=[job.reg.weight for job in chosen]) if "weight" in first.reg else build(first.reg)
    batch = Start(base=torch.cat([one.base for _, one in usable]), offset=torch.cat([one.offset for _, one in usable]))
    settings = [optimiser_settings(job) for job in chosen]
    if all(one == settings[0] for one in settings):
        # One leaf for all: the same update rule, element by element, in fewer operations.
        parameter = ImageParameter(model, batch)
        optimizer = make_optimizer(first.optim, parameter)
    else:
        parameter = ImageParameter(model, batch, separate=True)
        optimizer = make_optimizer(first.optim, parameter, settings)
    recorders = [FrameRecorder(model, index) for index in range(len(chosen))]
    seen: list[list[Snapshot]] = [[] for _ in chosen]

    def each_image(snapshot: Snapshot) -> None:
        for index, snapshots in enumerate(seen):
            snapshots.append(snapshot.image(index))

    began = time.perf_counter()
    failures = ascend(
        model, objective, penalty, parameter, optimizer, steps=first.steps, clamp=first.clamp,
        log_every=first.log_every, observers=[*recorders, each_image], description=f"{model.name}, {len(chosen)} points",
        isolate_failures=True,
    )
    seconds = time.perf_counter() - began
    offsets = parameter.offset.detach().split(1)
    ascents = {
        id(job): Ascent(snapshots, recorder.frames, offset.clone(), len(chosen), seconds, failures.get(index))
        for index, (job, snapshots, recorder, offset) in enumerate(zip(chosen, seen, recorders, offsets))
    }
    return [ascents.get(id(job)) for job in jobs]


_ascents: dict[Path, tuple[str, Ascent]] = {}
"""Ascents done in a batch and not yet taken, by job folder, with the fingerprint of the job's config."""


def keep(output_dir: Path, job: DictConfig, ascent: Ascent) -> None:
    """File `ascent` for the job that will run in `output_dir` with config `job`."""
    _ascents[Path(output_dir).resolve()] = (fingerprint(job), ascent)


def batched_ascent(output_dir: Path, job: DictConfig) -> Ascent | None:
    """The ascent done in a batch for this job (its folder and config), taken out of the store;
    None if there is none (its job runs its own ascent)."""
    kept = _ascents.pop(Path(output_dir).resolve(), None)
    return kept[1] if kept is not None and kept[0] == fingerprint(job) else None

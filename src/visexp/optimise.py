"""The one optimisation loop: gradient ascent on objective - penalty, with respect to the image only.

Class models, filter means and DeepDream all run through `ascend`. The model is frozen,
so backward computes the input gradient and nothing else. Values leave the device only every
`log_every` steps, when observers (progress bar, tracker, GIF frames) are told about them; a
non-finite loss is remembered on the device and reported with the step where it first appeared.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from tqdm import tqdm

from visexp.build import build
from visexp.errors import VisexpError
from visexp.hooks import LayerTap
from visexp.models import VisionModel
from visexp.objectives import Objective
from visexp.parameter import ImageParameter

Penalty = Callable[[torch.Tensor], torch.Tensor]
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """The state after `step` steps, with scalars averaged over the batch."""

    step: int
    score: float
    penalty: float
    norm: float
    parameter: ImageParameter


class Observer(Protocol):
    def __call__(self, snapshot: Snapshot) -> None: ...


def forward(
    model: VisionModel, objective: Objective, inputs: torch.Tensor, need_logits: bool = True
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run the network once; return the objective per image (B,) and the logits.

    Without `need_logits`, a layer objective stops the pass at its layer (logits: None).
    """
    if objective.layer is None:
        logits = model.net(inputs)
        return objective(logits), logits
    logits = None
    with LayerTap(model.layer(objective.layer), stop_after=None if need_logits else objective.calls) as tap:
        logits = model.net(inputs)
    return objective(tap.output), logits


def make_optimizer(optim_cfg: Any, parameter: ImageParameter) -> torch.optim.Optimizer:
    """The configured optimiser (a `_partial_` config) over the image offset; its complaints in one line."""
    factory = build(optim_cfg)
    try:
        return factory([parameter.offset])
    except (TypeError, ValueError) as error:
        raise VisexpError(f"cannot make optimiser {optim_cfg.get('_target_')}: {error}") from error


def normalise_gradient_(gradient: torch.Tensor) -> None:
    """Scale each image's gradient to a mean absolute value of 1 (DeepDream's step rule)."""
    gradient.div_(gradient.abs().flatten(1).mean(dim=1).clamp_min(1e-12).view(-1, *[1] * (gradient.dim() - 1)))


def ascend(
    model: VisionModel,
    objective: Objective,
    penalty: Penalty,
    parameter: ImageParameter,
    optimizer: torch.optim.Optimizer,
    steps: int,
    clamp: bool,
    log_every: int,
    observers: Sequence[Observer] = (),
    description: str = "optimising",
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    normalise_gradient: bool = False,
    first_step: int = 0,
) -> None:
    """Maximise `objective - penalty` over `parameter.offset` for `steps` steps.

    Args:
        transform: applied to the network input at every step (DeepDream's jitter).
        normalise_gradient: divide the gradient by its mean absolute value before each step.
        first_step: number of the step before this call (observers see `first_step + step`),
            so that DeepDream's octaves read as one run. A call with `first_step > 0` continues
            a run: its start is the previous call's end, so it is neither observed again (the
            step numbers stay increasing, as W&B needs) nor checked for a dead start.

    Observers see the start and every `log_every` steps, and always the last step.

    Raises:
        VisexpError: the loss became NaN or infinite (names the first step where it did).
    """
    if steps <= 0:
        raise VisexpError(f"steps must be a positive number of steps, not {steps}")
    if log_every <= 0:
        raise VisexpError(f"log_every must be positive, not {log_every}")
    first_bad = torch.full((), -1, dtype=torch.long, device=parameter.offset.device)

    def observe(step: int) -> None:
        with torch.no_grad():
            score, _ = forward(model, objective, parameter.inputs(), need_logits=False)
            cost = penalty(parameter.offset)
            norm = parameter.offset.flatten(1).norm(dim=1)
        bad = int(first_bad.item())
        if bad < 0 and not all(torch.isfinite(value).all() for value in (score, cost, norm)):
            bad = step  # the last update overflowed, after the last loss was taken
        if bad >= 0:
            raise VisexpError(
                f"the loss became NaN or infinite at step {first_step + bad}: lower optim.lr or lambda, or turn clamp on"
            )
        snapshot = Snapshot(first_step + step, score.mean().item(), cost.mean().item(), norm.mean().item(), parameter)
        for observer in observers:
            observer(snapshot)

    def closure() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        inputs = parameter.inputs()
        score, _ = forward(model, objective, transform(inputs) if transform else inputs, need_logits=False)
        loss = (penalty(parameter.offset) - score).sum()
        loss.backward()
        if normalise_gradient:
            normalise_gradient_(parameter.offset.grad)
        return loss

    if first_step == 0:
        observe(0)
    for step in tqdm(range(1, steps + 1), desc=description, unit="step", disable=None, leave=False):
        # Through a closure, so that optimisers which re-evaluate the loss (LBFGS) work too.
        loss = optimizer.step(closure)
        if step == 1 and first_step == 0 and not parameter.offset.grad.any():
            log.warning(
                "the gradient is exactly zero at the start, so the image will not change: the start is a "
                "dead point of the network (a random-weight model at a constant image, say); start from noise"
            )
        if clamp:
            parameter.clamp_()
        finite = torch.isfinite(loss.detach())
        first_bad = torch.where((first_bad < 0) & ~finite, torch.full_like(first_bad, step), first_bad)
        if step % log_every == 0 or step == steps:
            observe(step)

"""The one optimisation loop: gradient ascent on objective - penalty, with respect to the image only.

Class models, filter means and DeepDream all run through `ascend`. The model is frozen,
so backward computes the input gradient and nothing else. Values leave the device only every
`log_every` steps, when observers (progress bar, tracker, GIF frames) are told about them, and
they are the values of the training pass that sees that state, not of a pass of their own; a
non-finite loss is remembered on the device and reported with the step where it first appeared.
"""

from __future__ import annotations

import importlib
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
    """The state after `step` steps: score, penalty and offset norm of each image of the batch
    (`score`, `penalty` and `norm` are their means), and the parameter of the whole batch."""

    step: int
    scores: tuple[float, ...]
    penalties: tuple[float, ...]
    norms: tuple[float, ...]
    parameter: ImageParameter

    @property
    def score(self) -> float:
        return sum(self.scores) / len(self.scores)

    @property
    def penalty(self) -> float:
        return sum(self.penalties) / len(self.penalties)

    @property
    def norm(self) -> float:
        return sum(self.norms) / len(self.norms)

    def image(self, index: int) -> Snapshot:
        """The snapshot of image `index` alone (its parameter is still the whole batch's)."""
        return Snapshot(self.step, self.scores[index:index + 1], self.penalties[index:index + 1],
                        self.norms[index:index + 1], self.parameter)


class Observer(Protocol):
    def __call__(self, snapshot: Snapshot) -> None: ...


def forward(
    model: VisionModel, objective: Objective, inputs: torch.Tensor, need_logits: bool = True, precise: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run the network once; return the objective per image (B,) and the logits, in float32
    (the objective is taken in float32 also from a pass under autocast).

    Without `need_logits`, a layer objective stops the pass at its layer (logits: None). A
    `precise` pass runs in float32 even under autocast.
    """
    if objective.layer is None:
        logits = model(inputs, precise=precise).float()
        return objective(logits), logits
    logits = None
    with LayerTap(model.layer(objective.layer), stop_after=None if need_logits else objective.calls) as tap:
        logits = model(inputs, whole=False, precise=precise)
    return objective(tap.output.float()), logits if logits is None else logits.float()


ELEMENTWISE = (
    torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.Adamax, torch.optim.NAdam, torch.optim.RAdam,
    torch.optim.RMSprop, torch.optim.Adagrad, torch.optim.Adadelta, torch.optim.Rprop, torch.optim.ASGD,
)
"""Optimisers that move every value by its own gradient history alone, so that images optimised
in one batch follow the same path as alone; LBFGS, for one, searches along all of them at once."""


def updates_each_value(optim_cfg: Any) -> bool:
    """Whether the configured optimiser is one of ELEMENTWISE (or a subclass); False for a
    `_target_` that names no class (building it says what is wrong)."""
    module, _, name = str(optim_cfg.get("_target_")).rpartition(".")
    try:
        optimiser = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return False
    return isinstance(optimiser, type) and issubclass(optimiser, ELEMENTWISE)


def make_optimizer(
    optim_cfg: Any, parameter: ImageParameter, options: Sequence[dict[str, Any]] | None = None
) -> torch.optim.Optimizer:
    """The configured optimiser (a `_partial_` config) over the image offset; its complaints in
    one line. With `options`, each leaf of the parameter is a group of its own with those
    settings (`lr`, `momentum`, ...) over the config's."""
    factory = build(optim_cfg)
    groups = parameter.leaves if options is None else [
        {"params": [leaf], **settings} for leaf, settings in zip(parameter.leaves, options, strict=True)
    ]
    try:
        return factory(groups)
    except (TypeError, ValueError) as error:
        raise VisexpError(f"cannot make optimiser {optim_cfg.get('_target_')}: {error}") from error


def normalise_gradient_(gradient: torch.Tensor) -> None:
    """Scale each image's gradient to a mean absolute value of 1 (DeepDream's step rule)."""
    gradient.div_(gradient.abs().flatten(1).mean(dim=1).clamp_min(1e-12).view(-1, *[1] * (gradient.dim() - 1)))


def non_finite(step: int) -> VisexpError:
    """The error of a run whose loss became NaN or infinite at `step`."""
    return VisexpError(f"the loss became NaN or infinite at step {step}: lower optim.lr or lambda, or turn clamp on")


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
    isolate_failures: bool = False,
) -> dict[int, int]:
    """Maximise `objective - penalty` over `parameter.offset` for `steps` steps.

    Args:
        transform: applied to the network input at every step (DeepDream's jitter).
        normalise_gradient: divide the gradient by its mean absolute value before each step.
        first_step: number of the step before this call (observers see `first_step + step`),
            so that DeepDream's octaves read as one run. A call with `first_step > 0` continues
            a run: its start is the previous call's end, so it is neither observed again (the
            step numbers stay increasing, as W&B needs) nor checked for a dead start.
        isolate_failures: an image whose loss becomes NaN or infinite does not stop the run
            (its values do not reach the other images of the batch: each image's gradient
            comes from its own pass through the frozen network); it is returned instead.

    Observers see the start and every `log_every` steps, and always the last step.

    Returns:
        The images whose loss became NaN or infinite (only with `isolate_failures`), each with
        the first step where it did.

    Raises:
        VisexpError: the loss became NaN or infinite (names the first step where it did).
    """
    if steps <= 0:
        raise VisexpError(f"steps must be a positive number of steps, not {steps}")
    if log_every <= 0:
        raise VisexpError(f"log_every must be positive, not {log_every}")
    losses = torch.zeros(steps + 1, parameter.batch, device=parameter.offset.device)
    """Each image's loss at every step (row = step), kept on the device until the next observation."""
    latest = losses[0]
    """Each image's loss in the latest training pass."""
    due: int | None = 0 if first_step == 0 else None
    """A state to show the observers; the next training pass computes its values anyway."""
    failures: dict[int, int] = {}
    """Images whose loss became NaN or infinite (isolate_failures), with the first step where it did."""

    def observe(step: int, score: torch.Tensor | None = None, cost: torch.Tensor | None = None) -> None:
        """Show the observers the state after `step` steps, given its score and penalty if known;
        first check every image for a loss that became NaN or infinite since the start."""
        with torch.inference_mode():
            if score is None or cost is None:
                score, _ = forward(model, objective, parameter.inputs(), need_logits=False)
                cost = penalty(parameter.offset)
            norm = parameter.offset.flatten(1).norm(dim=1)
            finite = torch.isfinite(losses[: step + 1])
            first_bad = torch.where(finite.all(dim=0), -1, (~finite).int().argmax(dim=0))
            # A state that is not finite where every loss so far was: the last update overflowed.
            state_bad = ~(torch.isfinite(score) & torch.isfinite(cost) & torch.isfinite(norm))
            first_bad = torch.where((first_bad < 0) & state_bad, step, first_bad)
        bad = {index: first_step + at for index, at in enumerate(first_bad.tolist()) if at >= 0}
        if bad and not isolate_failures:
            raise non_finite(min(bad.values()))
        for index, at in bad.items():
            failures.setdefault(index, at)
        snapshot = Snapshot(
            first_step + step, tuple(score.float().tolist()), tuple(cost.float().tolist()), tuple(norm.tolist()), parameter
        )
        for observer in observers:
            observer(snapshot)

    def closure() -> torch.Tensor:
        nonlocal due, latest
        optimizer.zero_grad(set_to_none=True)
        inputs = parameter.inputs()
        score, _ = forward(model, objective, transform(inputs) if transform else inputs, need_logits=False)
        cost = penalty(parameter.offset)
        if due is not None and transform is None:
            # This pass sees the state due to be shown: show it with these values, which saves
            # the observers a forward pass of their own (a jittered pass sees another image).
            observe(due, score.detach(), cost.detach())
            due = None
        per_image = cost - score
        latest = per_image.detach()
        loss = per_image.sum()
        loss.backward()
        if normalise_gradient:
            for gradient in parameter.gradients():
                normalise_gradient_(gradient)
        return loss

    for step in tqdm(range(1, steps + 1), desc=description, unit="step", disable=None, leave=False):
        if due is not None and transform is not None:
            observe(due)
            due = None
        # Through a closure, so that optimisers which re-evaluate the loss (LBFGS) work too.
        optimizer.step(closure)
        if step == 1 and first_step == 0 and not any(gradient.any() for gradient in parameter.gradients()):
            log.warning(
                "the gradient is exactly zero at the start, so the image will not change: the start is a "
                "dead point of the network (a random-weight model at a constant image, say); start from noise"
            )
        if clamp:
            parameter.clamp_()
        losses[step] = latest
        if step % log_every == 0 and step < steps:
            due = step
    observe(steps)
    return failures

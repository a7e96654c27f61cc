"""Image-specific class saliency: the gradient of a class score with respect to the input.

Three rules for passing the gradient back through a ReLU (Simonyan et al. 2013, section 4,
relate the gradient to the DeconvNet of Zeiler & Fergus; guided backpropagation is from
Springenberg et al. 2014):

- `gradient`: the true gradient, dS_c/dI;
- `guided`: pass back only positive gradient, and only where the forward input was positive;
- `deconvnet`: pass back the ReLU of the gradient, whatever the forward input was.

"Every ReLU" means every one: the rules are applied with a `TorchFunctionMode` for the duration
of the forward pass, so `nn.ReLU` modules (in-place or reused), `F.relu`, `torch.relu`,
`Tensor.relu` and `relu_` are all caught, and so are ReLUs written as `clamp(min=0)`,
`clamp_min(0)` or `threshold(0, 0)` (`nn.Threshold`). Nothing is registered on the model, so it is left as
it was. A network with other activations (GELU, SiLU, ReLU6, ...) is refused for `guided`
and `deconvnet`, whose rules are defined for ReLUs only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from visexp.errors import VisexpError
from visexp.models import VisionModel

METHODS = ("gradient", "guided", "deconvnet")

RELUS = {torch.relu, torch.relu_, F.relu, F.relu_, torch.Tensor.relu, torch.Tensor.relu_}
"""Every way a ReLU is called: nn.ReLU calls F.relu, which the mode sees as such."""
CLAMPS = {torch.clamp, torch.clamp_, torch.Tensor.clamp, torch.Tensor.clamp_, torch.clamp_min, torch.clamp_min_,
          torch.Tensor.clamp_min, torch.Tensor.clamp_min_}
THRESHOLDS = {F.threshold, F.threshold_, torch.threshold, torch.threshold_}
IN_PLACE = {torch.relu_, F.relu_, torch.Tensor.relu_, torch.clamp_, torch.Tensor.clamp_, torch.clamp_min_,
            torch.Tensor.clamp_min_, F.threshold_, torch.threshold_}

OTHER_ACTIVATIONS = {
    F.gelu: "GELU", F.silu: "SiLU", F.mish: "Mish", F.elu: "ELU", F.selu: "SELU", F.celu: "CELU",
    F.leaky_relu: "LeakyReLU", F.hardtanh: "ReLU6/Hardtanh", F.relu6: "ReLU6", F.hardswish: "Hardswish",
    F.hardsigmoid: "Hardsigmoid", F.softplus: "Softplus", F.prelu: "PReLU", torch.sigmoid: "Sigmoid",
    torch.tanh: "Tanh", torch.Tensor.sigmoid: "Sigmoid", torch.Tensor.tanh: "Tanh",
    torch.sigmoid_: "Sigmoid", torch.tanh_: "Tanh", torch.Tensor.sigmoid_: "Sigmoid", torch.Tensor.tanh_: "Tanh",
    F.elu_: "ELU", F.leaky_relu_: "LeakyReLU", F.hardtanh_: "Hardtanh", F.logsigmoid: "LogSigmoid",
    F.rrelu: "RReLU", F.rrelu_: "RReLU", F.glu: "GLU", F.softsign: "Softsign", F.tanhshrink: "Tanhshrink",
}


def _argument(args: tuple, kwargs: dict, position: int, name: str) -> Any:
    return kwargs[name] if name in kwargs else (args[position] if len(args) > position else None)


def relu_like(func: Any, args: tuple, kwargs: dict) -> bool:
    """Whether the call computes max(x, 0): a ReLU, clamp(min=0) without a max, threshold(0, 0)."""
    if func in RELUS:
        return True
    if func in CLAMPS:
        low = _argument(args, kwargs, 1, "min")
        high = None if func in (torch.clamp_min, torch.clamp_min_, torch.Tensor.clamp_min, torch.Tensor.clamp_min_) else _argument(args, kwargs, 2, "max")
        return isinstance(low, (int, float)) and low == 0 and high is None
    if func in THRESHOLDS:
        return _argument(args, kwargs, 1, "threshold") == 0 and _argument(args, kwargs, 2, "value") == 0
    return False


class GuidedReLU(torch.autograd.Function):
    """ReLU forward; backward passes positive gradient where the forward input was positive."""

    @staticmethod
    def forward(ctx: Any, inputs: torch.Tensor) -> torch.Tensor:
        # The mask, not the input: an in-place ReLU overwrites its input after this.
        ctx.save_for_backward(inputs > 0)
        return inputs.clamp_min(0)

    @staticmethod
    def backward(ctx: Any, gradient: torch.Tensor) -> torch.Tensor:
        (positive,) = ctx.saved_tensors
        return gradient.clamp_min(0) * positive


class DeconvReLU(torch.autograd.Function):
    """ReLU forward; backward is the ReLU of the gradient, ignoring the forward input."""

    @staticmethod
    def forward(ctx: Any, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.clamp_min(0)

    @staticmethod
    def backward(ctx: Any, gradient: torch.Tensor) -> torch.Tensor:
        return gradient.clamp_min(0)


class ReluRule(TorchFunctionMode):
    """While active, every ReLU call runs `rule` instead; other activations are refused."""

    def __init__(self, rule: Callable[[torch.Tensor], torch.Tensor], method: str) -> None:
        super().__init__()
        self.rule = rule
        self.method = method
        self.relus = 0

    def __torch_function__(self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None) -> Any:
        kwargs = kwargs or {}
        if relu_like(func, args, kwargs):
            self.relus += 1
            inputs = args[0]
            result = self.rule(inputs)
            in_place = func in IN_PLACE or kwargs.get("inplace", False)
            return inputs.copy_(result) if in_place else result
        if func in OTHER_ACTIVATIONS:
            raise VisexpError(
                f"method={self.method} is defined for ReLU networks, but this model uses {OTHER_ACTIVATIONS[func]}: "
                "use method=gradient"
            )
        return func(*args, **kwargs)


def attribute(model: VisionModel, inputs: torch.Tensor, target: int, method: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The attribution of class `target` for `inputs` (1, C, H, W in input space) by `method`.

    Returns:
        The attribution, the same shape as `inputs`, and the logits of the forward pass.
    """
    if method not in METHODS:
        raise VisexpError(f"unknown method {method!r}: choose from {', '.join(METHODS)}")
    image = inputs.detach().clone().requires_grad_(True)
    if method == "gradient":
        logits = model.net(image)
    else:
        rule = ReluRule(GuidedReLU.apply if method == "guided" else DeconvReLU.apply, method)
        with rule:
            logits = model.net(image)
        if rule.relus == 0:
            raise VisexpError(f"method={method} found no ReLU in model {model.name}: use method=gradient")
    logits[0, target].backward()
    return image.grad.detach(), logits.detach()


def saliency_map(attribution: torch.Tensor) -> torch.Tensor:
    """The paper's saliency map: the maximum over colour channels of |attribution|, (H, W)."""
    return attribution[0].abs().amax(dim=0)


def viewable_saliency(attribution: torch.Tensor) -> torch.Tensor:
    """The saliency map on the CPU, divided by its maximum (an all-zero map stays zero), (H, W)."""
    saliency = saliency_map(attribution).cpu()
    return saliency / saliency.max() if saliency.max() > 0 else saliency

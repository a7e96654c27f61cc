"""Models to look inside: torchvision classifiers, user checkpoints and the bundled `digits` CNN.

Every loader returns a `VisionModel`: the network, frozen and in eval mode (no parameter
gradient is ever computed), together with what its config says about its input (size,
per-channel normalisation) and its output (class names), and the bundled dataset it was
trained on, if any.
"""

from __future__ import annotations

import difflib
import os
import pickle
import warnings
from collections.abc import Sequence
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn
from torchvision.models import WeightsEnum

from visexp.errors import VisexpError
from visexp.speed import Speed, whole_pass_network


@dataclass
class VisionModel:
    """A frozen classifier plus the facts about its input and output that visualisation needs.

    Attributes:
        name: how the user called the model (shown in outputs and errors).
        net: the network, in eval mode, with `requires_grad` off on every parameter.
        input_size: side of the square input the network expects, in pixels.
        mean, std: per-channel normalisation; the network sees `(pixels - mean) / std`.
        classes: one name per output logit.
        data: name of a bundled dataset the model was trained on (`digits`), or None.
        speed: the fast paths its passes take (`use_speed`).
    """

    name: str
    net: nn.Module
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: list[str]
    data: str | None = None
    speed: Speed = field(default_factory=Speed)
    _whole: Callable[[torch.Tensor], torch.Tensor] | None = field(default=None, repr=False)

    def use_speed(self, speed: Speed) -> VisionModel:
        """Run the network's passes with the fast paths of `speed` from now on."""
        probe = torch.rand(2, self.channels, self.input_size, self.input_size, device=self.device)
        self._whole = whole_pass_network(self.net, speed, self.normalise(probe))
        self.speed = speed
        return self

    def __call__(self, inputs: torch.Tensor, whole: bool = True, precise: bool = False) -> torch.Tensor:
        """The network's output under its fast paths (`speed`). A `whole` pass, one that reads
        the logits and nothing else, may run on a folded or compiled copy; a pass that a layer
        tap watches or stops runs on `net` itself, whose layers are as the model defines them.
        A `precise` pass runs in float32 even under autocast (the numbers a job reports)."""
        dtype = self.speed.autocast_dtype
        with torch.autocast(inputs.device.type, dtype=dtype, enabled=dtype is not None and not precise):
            return (self._whole if whole and self._whole is not None else self.net)(inputs)

    @property
    def channels(self) -> int:
        """Number of colour channels of the input (1 for grey, 3 for RGB)."""
        return len(self.mean)

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def to(self, device: torch.device | str) -> VisionModel:
        self.net.to(device)
        return self

    def _stats(self, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        shape = (1, self.channels, 1, 1)
        mean = torch.tensor(self.mean, dtype=like.dtype, device=like.device).view(shape)
        std = torch.tensor(self.std, dtype=like.dtype, device=like.device).view(shape)
        return mean, std

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        """Map (B, C, H, W) pixels in [0, 1] to the network's input space."""
        mean, std = self._stats(pixels)
        return (pixels - mean) / std

    def denormalise(self, inputs: torch.Tensor) -> torch.Tensor:
        """Map network inputs back to pixels (not clamped)."""
        mean, std = self._stats(inputs)
        return inputs * std + mean

    def check_target(self, target: int) -> int:
        """Return `target` if it indexes one of the model's classes, else explain the range."""
        if isinstance(target, bool) or not isinstance(target, int):
            raise VisexpError(f"target must be a class index (an integer), not {target!r}")
        if not 0 <= target < len(self.classes):
            raise VisexpError(
                f"target {target} is out of range for model {self.name}: "
                f"it has {len(self.classes)} classes, 0-{len(self.classes) - 1}"
            )
        return target

    def layer(self, name: str) -> nn.Module:
        """The submodule called `name` in `net.named_modules()`, or an error naming close ones."""
        name = str(name)  # Hydra reads `layer=0` (an nn.Sequential index) as an integer
        modules = dict(self.net.named_modules())
        if name in modules and name != "":
            return modules[name]
        close = difflib.get_close_matches(str(name), [n for n in modules if n], n=4, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise VisexpError(
            f"unknown layer {name!r} in model {self.name}{hint} "
            f"(names as in model.named_modules(), e.g. {', '.join(list(modules)[1:4])})"
        )


def _ready(
    name: str, net: nn.Module, input_size: int, mean: Sequence[float], std: Sequence[float],
    classes: list[str], data: str | None,
) -> VisionModel:
    """Freeze the network and check, with one blank input, that it fits what its config says.

    Frozen means eval mode and no parameter gradients: visualisation differentiates the input
    only. The probe turns a wrong input size, channel count or class list into one line now
    instead of a shape error deep in the network, or an index error after a whole run.
    """
    if len(mean) != len(std):
        raise VisexpError(f"model {name}: mean has {len(mean)} channels but std has {len(std)}")
    net.eval().requires_grad_(False)
    probe = torch.zeros(1, len(mean), input_size, input_size)
    try:
        with torch.inference_mode():
            logits = net(probe)
    except RuntimeError as error:
        raise VisexpError(
            f"model {name} does not take 1x{len(mean)}x{input_size}x{input_size} inputs "
            f"(check model.input_size and model.mean/std): {str(error).splitlines()[0]}"
        ) from error
    if not isinstance(logits, torch.Tensor) or logits.dim() != 2 or logits.shape[1] != len(classes):
        shape = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
        raise VisexpError(
            f"model {name} gives outputs of shape {shape} but its config names {len(classes)} classes: "
            "set model.classes to one name per output"
        )
    return VisionModel(name, net, input_size, tuple(mean), tuple(std), classes, data)


def _class_names(classes: str | Sequence[str]) -> list[str]:
    """Class names from a list, or `imagenet` for the 1000 names torchvision stores offline."""
    if isinstance(classes, str):
        if classes != "imagenet":
            raise VisexpError(f"classes must be a list of names or 'imagenet', not {classes!r}")
        return list(torchvision.models.ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    return [str(name) for name in classes]


def _architecture(name: str) -> None:
    """Check that `name` is a torchvision classification architecture."""
    known = torchvision.models.list_models(module=torchvision.models)
    if name not in known:
        close = difflib.get_close_matches(name, known, n=3)
        hint = f"did you mean {', '.join(close)}?" if close else "see torchvision.models.list_models()"
        raise VisexpError(f"unknown torchvision classifier {name!r}: {hint}")


def _random_architecture(name: str, num_classes: int) -> nn.Module:
    """Torchvision architecture `name` with randomly initialised weights."""
    _architecture(name)
    with warnings.catch_warnings():
        # GoogLeNet and Inception warn that their random init will change in a future release.
        warnings.filterwarnings("ignore", message="The default weight initialization")
        return torchvision.models.get_model(name, weights=None, num_classes=num_classes)


def _weights_enum(name: str, weights: str) -> WeightsEnum:
    """Resolve `DEFAULT` or a weight name such as `IMAGENET1K_V1` for architecture `name`."""
    enum = torchvision.models.get_model_weights(name)
    allowed = ["DEFAULT", *(member.name for member in enum)]
    key = str(weights).removeprefix(f"{enum.__name__}.")
    if key not in allowed:
        raise VisexpError(
            f"unknown weights {weights!r} for {name}: choose from {', '.join(allowed)} or null (random init)"
        )
    return enum[key]


def weights_file(weights: WeightsEnum) -> Path:
    """Where torch hub keeps (and looks for) the file of these pretrained weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(urlparse(weights.url).path)


def load_torchvision(
    name: str,
    weights: str | None,
    input_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    classes: str | Sequence[str],
    data: str | None = None,
) -> VisionModel:
    """A torchvision classifier by architecture name, pretrained (`weights`) or random (null).

    Pretrained weights come from the torch hub cache, downloaded there if the machine is
    online; offline, a missing file is reported with its name and the folder to put it in.
    """
    names = _class_names(classes)
    if weights is None:
        net = _random_architecture(name, len(names))
    else:
        _architecture(name)
        enum = _weights_enum(name, weights)
        try:
            net = torchvision.models.get_model(name, weights=enum)
        except (OSError, RuntimeError) as error:
            target = weights_file(enum)
            if target.exists():
                first = str(error).splitlines()[0]
                raise VisexpError(f"cannot load pretrained weights from {target} (remove it to download again): {first}") from error
            raise VisexpError(
                f"pretrained weights {enum} for {name} are not on this machine and could not be "
                f"downloaded: put {target.name} (from {enum.url}) in {target.parent}"
            ) from error
    return _ready(name, net, input_size, mean, std, names, data)


def _bundled_architectures() -> dict[str, type[nn.Module]]:
    from visexp.canvas import CanvasNet
    from visexp.digits import DigitsNet

    return {"digits": DigitsNet, "canvas": CanvasNet}


def load_bundled(
    name: str,
    input_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    classes: Sequence[str],
    data: str | None = None,
) -> VisionModel:
    """A model shipped inside the package (`digits`, `canvas`) with its trained weights."""
    architectures = _bundled_architectures()
    if name not in architectures:
        raise VisexpError(f"unknown bundled model {name!r}: choose from {', '.join(architectures)}")
    weights = resources.files("visexp") / "weights" / f"{name}.pt"
    if not weights.is_file():
        raise VisexpError(f"bundled {name} weights missing at {weights}: run python scripts/train_{name}.py")
    net = architectures[name]()
    with resources.as_file(weights) as path:
        net.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return _ready(name, net, input_size, mean, std, list(classes), data)


def _read_checkpoint(file: Path) -> object:
    """torch.load, safely (weights only) first; whole pickled modules need the full unpickler."""
    try:
        try:
            return torch.load(file, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as error:
            if "Weights only load failed" not in str(error):
                raise
            return torch.load(file, map_location="cpu", weights_only=False)
    except Exception as error:  # torch.load raises many types for a corrupt file
        raise VisexpError(f"cannot read checkpoint {file}: {str(error).splitlines()[0]}") from error


def load_checkpoint(
    path: str,
    arch: str | None,
    input_size: int,
    mean: Sequence[float],
    std: Sequence[float],
    classes: str | Sequence[str],
    data: str | None = None,
    name: str | None = None,
) -> VisionModel:
    """The user's own model: a state_dict for torchvision architecture `arch`, or a whole module.

    A whole module (`torch.save(model)`) is unpickled with `weights_only=False`, which runs
    code from the file: load only checkpoints you made or trust.
    """
    file = Path(path).expanduser()
    if not file.is_file():
        raise VisexpError(f"checkpoint file not found: {file}")
    names = _class_names(classes)
    loaded = _read_checkpoint(file)
    if isinstance(loaded, nn.Module):
        net = loaded
    elif isinstance(loaded, dict):
        if arch is None:
            raise VisexpError(f"{file} holds a state_dict: set model.arch to its torchvision architecture")
        net = _random_architecture(arch, len(names))
        try:
            net.load_state_dict(loaded)
        except RuntimeError as error:
            first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
            raise VisexpError(f"{file} does not fit {arch} with {len(names)} classes: {first}") from error
    else:
        raise VisexpError(f"{file} holds a {type(loaded).__name__}, not a state_dict or an nn.Module")
    return _ready(name or file.stem, net, input_size, mean, std, names, data)

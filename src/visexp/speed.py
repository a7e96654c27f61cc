"""Fast paths: how the network runs, chosen by the `speed` config, with defaults that suit each device.

- `channels_last`: convolutions in channels-last memory order. On a 2-core CPU it makes the
  GoogLeNet class-model step about 1.2x faster for one image and 1.4x for a batch of 8 (oneDNN
  takes that layout natively); on CUDA it is the layout tensor cores want under autocast.
- `fold_batchnorm`: passes that read the logits run on a copy of the network with every batch
  norm that follows a convolution folded into the convolution's weights (exact up to float
  rounding; GoogLeNet and ResNet have one after every convolution). Passes that watch a layer
  keep the network as it is, so every layer still shows what it always did.
- `autocast`: `bf16` or `fp16` mixed precision for the network (the image and the optimiser stay
  float32), on CUDA; off by default, since it changes results beyond float32 rounding.
- `compile`: `torch.compile` of the network for passes that read the logits. It costs minutes of
  compiling on the first step; on this project's 2-core CPU it made steps slower (7.1 against 9.3
  image-steps/s for GoogLeNet), so it is off by default and meant for long CUDA sweeps.
- `cudnn_benchmark`: let cuDNN time its algorithms once per input size (CUDA; off under
  `deterministic=true`).
- `keep_memory`: on the CPU, freed memory stays in the process for the next step instead of
  going back to the operating system (glibc's malloc returns every large block at once, so each
  step faulted its activations in afresh: about 10,000 page faults a GoogLeNet step at batch 8).
  It is a setting of the whole process, and stays on for its later jobs once one turned it on:
  the memory the process holds stays at its peak.

Weights are always frozen and, where no gradient is needed, passes run under
`torch.inference_mode`; those are not switches because they never change a result.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import ctypes
import functools
import platform

import torch
from torch import nn
from torch.fx.experimental.optimization import fuse

from visexp.errors import VisexpError

AUTOCAST = {"bf16": torch.bfloat16, "fp16": torch.float16}
"""The `speed.autocast` names and the dtypes they stand for."""


@dataclass(frozen=True)
class Speed:
    """The fast paths one job runs with (see the module docstring)."""

    channels_last: bool = False
    fold_batchnorm: bool = False
    autocast: str | None = None
    compile: bool = False
    cudnn_benchmark: bool = False
    keep_memory: bool = False

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return AUTOCAST[self.autocast] if self.autocast else None


def speed_settings(config: Any, device: torch.device) -> Speed:
    """The `speed` config as a checked `Speed` for `device` (one-line errors for bad values)."""
    settings = dict(config or {})
    unknown = sorted(set(settings) - set(Speed.__dataclass_fields__))
    if unknown:
        raise VisexpError(f"unknown speed setting {unknown[0]!r}: choose from {', '.join(Speed.__dataclass_fields__)}")
    for key in ("channels_last", "fold_batchnorm", "compile", "cudnn_benchmark", "keep_memory"):
        if not isinstance(settings.get(key, False), bool):
            raise VisexpError(f"speed.{key} must be true or false, not {settings[key]!r}")
    autocast = settings.get("autocast")
    if autocast is not None and autocast not in AUTOCAST:
        raise VisexpError(f"speed.autocast must be null, {' or '.join(AUTOCAST)}, not {autocast!r}")
    if autocast == "fp16" and device.type != "cuda":
        raise VisexpError("speed.autocast=fp16 needs a CUDA device: on the CPU use bf16 or null")
    return Speed(**settings)


def whole_pass_network(net: nn.Module, speed: Speed, probe: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """What runs a frozen network's passes that read its logits under `speed`: the network, in
    channels-last order if asked, with its batch norms folded and compiled if asked.
    `channels_last` changes `net` itself (every pass gains from it); the others make a copy."""
    if speed.channels_last:
        net.to(memory_format=torch.channels_last)
    whole: nn.Module = (folded(net, probe) if speed.fold_batchnorm else None) or net
    return torch.compile(whole) if speed.compile else whole


def folded(net: nn.Module, probe: torch.Tensor) -> nn.Module | None:
    """A copy of `net` in which each batch norm that follows a convolution is folded into it
    (torch.fx's conv-bn fusion), or None if there is none, the network cannot be traced, or the
    copy does not give the same logits for `probe` within float rounding."""
    def norms(module: nn.Module) -> int:
        return sum(isinstance(layer, nn.modules.batchnorm._BatchNorm) for layer in module.modules())

    if norms(net) == 0:
        return None
    try:
        fused = fuse(net)
    except Exception:  # noqa: BLE001 - fx cannot trace every network (Python control flow on values); then no folding
        return None
    if norms(fused) == norms(net):
        return None
    with torch.inference_mode():
        expected, got = net(probe), fused(probe)
    return fused if torch.allclose(got, expected, rtol=1e-3, atol=1e-3 * float(expected.abs().max())) else None


def set_process_paths(speed: Speed, device: torch.device, deterministic: bool) -> None:
    """The fast paths that are settings of the process, as this job asks: cuDNN autotuning if
    results need not be repeatable, and freed memory kept for reuse when it runs on the CPU
    (from then on, for the whole process)."""
    torch.backends.cudnn.benchmark = speed.cudnn_benchmark and not deterministic
    if speed.keep_memory and device.type == "cpu":
        keep_freed_memory()


M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
"""glibc's `mallopt` parameters (malloc.h): free memory at the top of the heap kept before it is
returned, and the most blocks served by mmap (each given back to the system when freed)."""


@functools.cache
def keep_freed_memory() -> bool:
    """From now on, keep memory that tensors free inside this process for the next allocation:
    large blocks come from the heap rather than from mmap, and the heap is never trimmed, so a
    tensor of the next step reuses pages that are already mapped instead of faulting in fresh
    zeroed ones. For the rest of the process: glibc cannot go back to its adaptive defaults once
    they are set. Returns whether memory is kept (never where the C library is not glibc)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    return bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, 2**31 - 1))

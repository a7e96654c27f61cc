"""The training loop of the bundled models (digits, canvas): deterministic on a given machine.

Fixed seed, one thread and deterministic algorithms: the same torch version on the same CPU
gives the same weights bit for bit. Normalisation comes from the model's config file, the one
place it is defined.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "visexp" / "weights"

Augment = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def normalisation(model_name: str) -> tuple[float, float]:
    """Mean and std of the model input, as conf/model/NAME.yaml states them."""
    model_cfg = OmegaConf.load(ROOT / "conf" / "model" / f"{model_name}.yaml").model
    return float(model_cfg.mean[0]), float(model_cfg.std[0])


def accuracy(net: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float) -> float:
    """Share of the images the network classifies correctly."""
    net.eval()
    with torch.inference_mode():
        predicted = torch.cat([net((batch - mean) / std).argmax(dim=1) for batch in images.split(256)])
    return (predicted == labels).float().mean().item()


def fit(
    net: nn.Module, images: torch.Tensor, labels: torch.Tensor, mean: float, std: float,
    epochs: int, augment: Augment | None = None, batch_size: int = 64, seed: int = 0, lr: float = 2e-3,
) -> nn.Module:
    """Adam with cosine decay and weight decay; returns the network in eval mode."""
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            inputs = augment(images[batch], generator) if augment else images[batch]
            loss = F.cross_entropy(net((inputs - mean) / std), labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
        print(f"epoch {epoch + 1:2d}/{epochs}  loss {loss.item():.4f}", file=sys.stderr)
    return net.eval()


def deterministic(seed: int = 0) -> None:
    """Seed torch and make its CPU kernels repeatable (at the cost of one thread)."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)


def save_or_check(net: nn.Module, name: str, check: bool) -> None:
    """Write weights/NAME.pt, or (check) compare with it and exit 1 if they differ."""
    target = WEIGHTS / f"{name}.pt"
    if check:
        shipped = torch.load(target, weights_only=True)
        same = all(torch.equal(shipped[key], value) for key, value in net.state_dict().items())
        print("identical to the shipped weights" if same else "DIFFERENT from the shipped weights")
        sys.exit(0 if same else 1)
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), target)
    print(f"wrote {target.relative_to(ROOT)}")

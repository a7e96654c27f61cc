"""Train the bundled `digits` model and write src/visexp/weights/digits.pt.

Deterministic: the same torch version on the same CPU gives the same weights bit for bit
(fixed seed, one thread, deterministic algorithms). The normalisation comes from
conf/model/digits.yaml, the one place it is defined.

    python scripts/train_digits.py            # train, report held-out accuracy, write weights
    python scripts/train_digits.py --check    # train and compare with the shipped weights
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from visexp.digits import DigitsNet, load_split

ROOT = Path(__file__).resolve().parents[1]
WEIGHTS = ROOT / "src" / "visexp" / "weights" / "digits.pt"
CONFIG = ROOT / "conf" / "model" / "digits.yaml"


def normalisation() -> tuple[float, float]:
    """Mean and std of the model input, as the model config states them."""
    model_cfg = OmegaConf.load(CONFIG).model
    return float(model_cfg.mean[0]), float(model_cfg.std[0])


def shift(images: torch.Tensor, generator: torch.Generator, max_shift: int = 3) -> torch.Tensor:
    """Translate each image by a random whole-pixel offset, filling with background (0)."""
    padded = F.pad(images, [max_shift] * 4)
    size = images.shape[-1]
    offsets = torch.randint(0, 2 * max_shift + 1, (len(images), 2), generator=generator)
    return torch.stack(
        [padded[i, :, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(offsets.tolist())]
    )


def accuracy(model: DigitsNet, split: str, mean: float, std: float) -> float:
    """Share of the split's images the model classifies correctly."""
    data = load_split(split)
    model.eval()
    with torch.inference_mode():
        predicted = model((data.images - mean) / std).argmax(dim=1)
    return (predicted == data.labels).float().mean().item()


def train(epochs: int = 30, batch_size: int = 64, seed: int = 0) -> DigitsNet:
    """Train a fresh DigitsNet on the train split with shift augmentation."""
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    mean, std = normalisation()
    data = load_split("train")
    model = DigitsNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3, weight_decay=1e-4)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs)
    generator = torch.Generator().manual_seed(seed)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(data.labels), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            images = shift(data.images[batch], generator)
            loss = F.cross_entropy(model((images - mean) / std), data.labels[batch])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
        print(f"epoch {epoch + 1:2d}/{epochs}  loss {loss.item():.4f}", file=sys.stderr)
    return model.eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the shipped weights, write nothing")
    args = parser.parse_args()
    model = train()
    mean, std = normalisation()
    print(f"held-out accuracy: {accuracy(model, 'test', mean, std):.4f}")
    if args.check:
        shipped = torch.load(WEIGHTS, weights_only=True)
        same = all(torch.equal(shipped[k], v) for k, v in model.state_dict().items())
        print("identical to the shipped weights" if same else "DIFFERENT from the shipped weights")
        sys.exit(0 if same else 1)
    WEIGHTS.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), WEIGHTS)
    print(f"wrote {WEIGHTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()

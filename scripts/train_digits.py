"""Train the bundled `digits` model and write src/visexp/weights/digits.pt.

Deterministic (see training.py): retraining gives the shipped weights bit for bit.

    python scripts/train_digits.py            # train, report held-out accuracy, write weights
    python scripts/train_digits.py --check    # train and compare with the shipped weights
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from training import accuracy, deterministic, fit, normalisation, save_or_check

from visexp.digits import DigitsNet, load_split


def shift(images: torch.Tensor, generator: torch.Generator, max_shift: int = 3) -> torch.Tensor:
    """Translate each image by a random whole-pixel offset, filling with background (0)."""
    padded = F.pad(images, [max_shift] * 4)
    size = images.shape[-1]
    offsets = torch.randint(0, 2 * max_shift + 1, (len(images), 2), generator=generator)
    return torch.stack(
        [padded[i, :, dy : dy + size, dx : dx + size] for i, (dy, dx) in enumerate(offsets.tolist())]
    )


def train(epochs: int = 30, seed: int = 0) -> DigitsNet:
    """Train a fresh DigitsNet on the train split with shift augmentation."""
    deterministic(seed)
    mean, std = normalisation("digits")
    data = load_split("train")
    return fit(DigitsNet(), data.images, data.labels, mean, std, epochs, augment=shift, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the shipped weights, write nothing")
    args = parser.parse_args()
    net = train()
    test = load_split("test")
    print(f"held-out accuracy: {accuracy(net, test.images, test.labels, *normalisation('digits')):.4f}")
    save_or_check(net, "digits", args.check)


if __name__ == "__main__":
    main()

"""Train the bundled `canvas` model and write src/visexp/weights/canvas.pt.

It learns the digit's class from 6000 generated canvases (src/visexp/canvas.py), never its box,
which makes it a fair subject for weakly supervised localisation. Deterministic (training.py).

    python scripts/train_canvas.py            # train, report held-out accuracy, write weights
    python scripts/train_canvas.py --check    # train and compare with the shipped weights
"""

from __future__ import annotations

import argparse

from training import accuracy, deterministic, fit, normalisation, save_or_check

from visexp.canvas import CanvasNet, make_canvases

TRAIN, TEST = 6000, 1000


def train(epochs: int = 12, seed: int = 0) -> CanvasNet:
    deterministic(seed)
    mean, std = normalisation("canvas")
    data = make_canvases("train", TRAIN)
    return fit(CanvasNet(), data.images, data.labels, mean, std, epochs, seed=seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare with the shipped weights, write nothing")
    args = parser.parse_args()
    net = train()
    test = make_canvases("test", TEST)
    print(f"held-out accuracy: {accuracy(net, test.images, test.labels, *normalisation('canvas')):.4f}")
    save_or_check(net, "canvas", args.check)


if __name__ == "__main__":
    main()

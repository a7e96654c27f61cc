"""Rebuild the README's task figures on the bundled digits model (offline, about a minute).

    python scripts/task_figures.py      # writes docs/digits-features.png and docs/digits-dream.png

Each picture comes from a real job of the runner, configured as the README's commands are.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hydra import compose, initialize_config_dir
from PIL import Image

from visexp.digits import load_split
from visexp.grids import tile_grid
from visexp.images import to_pil
from visexp.runner import run

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def job(folder: Path, *overrides: str) -> Path:
    """Run one job with `overrides` (W&B off) into `folder`."""
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose(config_name="config", overrides=["model=digits", "logger=none", *overrides])
    run(cfg, folder)
    return folder


def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        work = Path(scratch)
        six = work / "six.png"
        to_pil(load_split("test").images[0]).resize((96, 96), Image.BILINEAR).save(six)
        features = job(work / "features", "task=features", f"image={six}", "layer=features.2", "task.top_k=16")
        with Image.open(features / "features.png") as grid:
            grid.save(DOCS / "digits-features.png")
        dreams = [
            ("layer features.5, 4 octaves", ["objective=layer", "objective.layer=features.5", f"image={six}"]),
            ("channel 7 of features.5", ["objective=filter", "objective.layer=features.5", "objective.channel=7", f"image={six}"]),
            ("features.5 from noise, 1 octave", ["objective=layer", "objective.layer=features.5", "init=noise", "octaves=1"]),
        ]
        pictures, captions = [Image.open(six)], ["input: a held-out 6"]
        for number, (caption, overrides) in enumerate(dreams):
            folder = job(work / f"dream{number}", "task=dream", *overrides)
            pictures.append(Image.open(folder / "image.png"))
            captions.append(caption)
        tile_grid(pictures, captions, "task=dream on the digits model", side=192, columns=4).save(DOCS / "digits-dream.png")
    print(f"wrote {DOCS / 'digits-features.png'} and {DOCS / 'digits-dream.png'}")


if __name__ == "__main__":
    main()

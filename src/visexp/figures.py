"""The paper's Figures 1 and 2 (Simonyan et al. 2013), each rebuilt by one command.

A figure is a preset of conf/experiment/ (`figure1_digits`, `figure2_imagenet`, ...) run as a real
multirun of run.py, as a user would run it, and then laid out as in the paper: Figure 1 as a grid
of class models captioned with their classes, Figure 2 as images over their saliency maps
(`visexp.sweep.saliency_figure`). `main` is the command line of scripts/figures/figure1.py and
figure2.py: it writes the figure to docs/, or with --check compares a fresh build with it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf
from PIL import Image

from visexp.grids import tile_grid
from visexp.outputs import METRICS
from visexp.sweep import TILE, Job, find_jobs, saliency_figure

COLUMNS = {"digits": 5, "imagenet": 3}
"""The figures' variants and how many class models a row of Figure 1 holds: the ten digits in two
rows of five; the paper's twelve ImageNet classes three to a row, as the paper shows them."""
TOLERANCE = 5.0
"""--check fails when the mean absolute pixel difference exceeds this many grey levels (of 255).
With the presets' pinned thread count a rebuild on the same machine differs by 0. Measured on
Figure 1 (digits): rounding noise (1 thread against 2, amplified over 200 steps) 3.0; a real
change, lambda 0.03 -> 0.04, 8.6."""
LOG = "sweep.log"
"""The multirun's full output, kept in the sweep folder."""


def _metrics(job: Job) -> dict[str, Any]:
    """What a complete job measured (its metrics.json)."""
    return json.loads((job.folder / METRICS).read_text())


def class_models_figure(jobs: list[Job], columns: int = 5) -> Image.Image:
    """Figure 1: the class model (image.png) of each complete job, `columns` to a row in job
    order, captioned with its class name, under a title naming model, regulariser and lambda."""
    done = [job for job in jobs if job.complete]
    if not done:
        raise ValueError("no complete jobs to draw")
    pictures = []
    for job in done:
        with Image.open(job.folder / "image.png") as image:
            pictures.append(image.convert("RGB"))
    names = [_metrics(job)["target_name"] for job in done]
    config = OmegaConf.load(done[0].folder / ".hydra" / "config.yaml")
    choices = OmegaConf.load(done[0].folder / ".hydra" / "hydra.yaml").hydra.runtime.choices
    title = (
        f"Class models, model {config.model.name}: reg {choices.reg}, lambda {config['lambda']}, "
        f"{config.steps} steps from init {choices.init}"
    )
    return tile_grid(pictures, names, title, side=TILE, columns=columns)


def class_captions(jobs: list[Job]) -> tuple[list[str], str]:
    """Figure 2's captions for `sweep.saliency_figure`: the class each map explains, and a title
    naming the model and the saliency method."""
    metrics = [_metrics(job) for job in jobs]
    first = metrics[0]
    found = all(m["target_source"] != "given" for m in metrics)
    title = (
        f"Saliency maps ({first['method']}), model {first['model']}: each image over its map, "
        f"captioned with {'its top-1 class' if found else 'the class explained'}"
    )
    return [m["target_name"] for m in metrics], title


def saliency_pairs_figure(jobs: list[Job]) -> Image.Image:
    """Figure 2: each image above its saliency map, one column per image, captioned with its class."""
    if not any(job.complete for job in jobs):
        raise ValueError("no complete jobs to draw")
    return saliency_figure(jobs, caption=class_captions)


def _setting(overrides: Sequence[str], key: str) -> Any:
    """The value the overrides give `key` (the last one, as Hydra takes it), or None. Overrides
    that Hydra cannot parse end the command here, in one line, before anything is removed."""
    try:
        parsed = OverridesParser.create().parse_overrides(list(overrides))
    except HydraException as error:
        raise SystemExit(f"error: overrides {' '.join(overrides)}: {str(error).splitlines()[0]}") from None
    values = [item.value() for item in parsed if item.key_or_group == key]
    return values[-1] if values else None


def sweep_dir(name: str, overrides: Sequence[str], root: Path) -> Path:
    """Where preset `name` writes its jobs: `multirun/NAME` (the preset's own `hydra.sweep.dir`)
    unless the overrides set `hydra.sweep.dir`; relative paths are taken from `root`."""
    return root / str(_setting(overrides, "hydra.sweep.dir") or Path("multirun") / name)


def _failure(output: str) -> str:
    """The reason a multirun failed, in one line: the jobs' own error messages (once each),
    else its last `error:` line, else its last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    reasons = list(dict.fromkeys(line.partition(": ")[2] for line in lines if line.startswith("error in job ")))
    if reasons:
        return "; ".join(reasons)
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else (lines[-1] if lines else "no output")


def run_preset(name: str, overrides: Sequence[str], root: Path) -> list[Job]:
    """Run preset `name` as `python run.py -m experiment=NAME OVERRIDES` from `root`; its jobs.

    Job folders of an earlier sweep in the same folder are removed first, so that the figure
    shows this run's jobs only, unless `resume=true` asks to keep (and skip) the complete ones.
    Hydra's launch lines are passed on as progress; the whole output is kept in the sweep
    folder's sweep.log. A failed sweep raises SystemExit with one line.
    """
    folder = sweep_dir(name, overrides, root)
    if not _setting(overrides, "resume"):
        for job in find_jobs(folder):
            shutil.rmtree(job.folder)
    command = [sys.executable, str(root / "run.py"), "-m", f"experiment={name}", *overrides]
    output = []
    with subprocess.Popen(command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as process:
        assert process.stdout is not None
        for line in process.stdout:
            output.append(line)
            if "[HYDRA]" in line:
                print(line.rstrip(), file=sys.stderr, flush=True)
    if folder.is_dir():
        (folder / LOG).write_text("".join(output))
    if process.returncode != 0:
        log = f" (output: {folder / LOG})" if folder.is_dir() else ""
        raise SystemExit(f"error: experiment={name} failed: {_failure(''.join(output))}{log}")
    return find_jobs(folder)


def difference(built: Image.Image, reference: Image.Image) -> tuple[float, int]:
    """Mean and largest absolute difference of two equally sized images, in grey levels (RGB)."""
    if built.size != reference.size:
        (w, h), (rw, rh) = built.size, reference.size
        raise ValueError(f"sizes differ: {w}x{h} built, {rw}x{rh} reference")
    new, old = (np.asarray(image.convert("RGB"), dtype=np.int16) for image in (built, reference))
    gap = np.abs(new - old)
    return float(gap.mean()), int(gap.max())


def main(argv: Sequence[str], number: int, root: Path) -> int:
    """The command line of scripts/figures/figure{number}.py; returns the exit status."""
    parser = argparse.ArgumentParser(
        prog=f"figure{number}.py",
        description=f"Build Figure {number} of Simonyan et al. (2013) by a multirun of run.py with preset "
        f"experiment=figure{number}_VARIANT (conf/experiment/), and write it to docs/figure{number}-VARIANT.png.",
        epilog=f"example: python scripts/figures/figure{number}.py digits logger=none hydra/launcher=joblib --check",
    )
    parser.add_argument("variant", metavar="digits|imagenet", help="the bundled digits model, or GoogLeNet on ImageNet")
    parser.add_argument(
        "overrides", nargs="*", metavar="OVERRIDE", help="Hydra overrides for run.py: steps=50, logger=none, ..."
    )
    parser.add_argument(
        "--check", action="store_true",
        help=f"build into the sweep folder and compare with the docs file: exit 1 if the mean absolute "
        f"difference exceeds {TOLERANCE:g} grey levels",
    )
    parser.add_argument("--output", type=Path, help="the figure file to write or check (default: docs/...)")
    args = parser.parse_intermixed_args(list(argv))
    if args.variant not in COLUMNS:
        parser.exit(2, f"error: unknown figure {args.variant!r}: choose {' or '.join(COLUMNS)}\n")
    reference = args.output or root / "docs" / f"figure{number}-{args.variant}.png"
    if args.check and not reference.is_file():
        parser.exit(2, f"error: nothing to check against: {reference} does not exist (build it without --check)\n")

    began = time.perf_counter()
    name = f"figure{number}_{args.variant}"
    jobs = run_preset(name, args.overrides, root)
    figure = class_models_figure(jobs, COLUMNS[args.variant]) if number == 1 else saliency_pairs_figure(jobs)
    built = sweep_dir(name, args.overrides, root) / "figure.png"
    figure.save(built)
    seconds = time.perf_counter() - began
    if not args.check:
        reference.parent.mkdir(parents=True, exist_ok=True)
        figure.save(reference)
        print(f"wrote {reference} ({figure.width}x{figure.height}, {len(jobs)} jobs, {seconds:.0f} s)")
        return 0
    with Image.open(built) as new, Image.open(reference) as old:
        try:
            mean, largest = difference(new, old)
        except ValueError as error:
            print(f"{built} differs from {reference}: {error}")
            return 1
    verdict = "same" if mean <= TOLERANCE else f"differs (mean above {TOLERANCE:g})"
    print(f"{built} against {reference}: mean absolute difference {mean:.3f}, max {largest} grey levels: {verdict}")
    return 0 if mean <= TOLERANCE else 1

"""Before a sweep starts: its settings checked, whichever launcher runs it, and resuming explained.

Registered as a Hydra callback in conf/config.yaml. It runs in the process that launches the
sweep, before any job is started or submitted, so a mistake costs one `error: ...` line (exit
status 2) instead of one failed job per sweep point, or a traceback from a launcher plugin.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from visexp.cli import fail
from visexp.errors import VisexpError
from visexp.resume import differences, earlier_sweep

SLURM_REQUIRED = {"partition": "the cluster's GPU partition (`sinfo -s` lists them)"}
"""Settings of hydra/launcher=submitit_slurm without which our GPU preset cannot submit."""


def swept_keys(config: DictConfig) -> set[str]:
    """Keys that the command line or the sweep's parameters give values to."""
    keys = set(config.hydra.sweeper.get("params") or {})
    parser = OverridesParser.create()
    for override in parser.parse_overrides(list(config.hydra.overrides.task)):
        keys.add(override.key_or_group)
    return keys


def check_missing(config: DictConfig) -> None:
    """Refuse a sweep that leaves a required value (`???`) of the jobs' config unset."""
    given = swept_keys(config)
    job = OmegaConf.masked_copy(config, [key for key in config if key != "hydra"])
    missing = sorted(key for key in OmegaConf.missing_keys(job) if key not in given)
    if missing:
        raise VisexpError(f"missing value for {', '.join(missing)}: set it on the command line, e.g. {missing[0]}=...")


def check_launcher(config: DictConfig) -> None:
    """The batched launcher needs a positive batch size, the SLURM launcher SLURM's commands:
    say so before the plugin fails deep inside."""
    launcher = config.hydra.launcher
    if str(launcher.get("_target_", "")).endswith("BatchedLauncher"):
        size = launcher.get("max_batch")
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise VisexpError(f"hydra.launcher.max_batch must be a positive integer, not {size!r}")
    if not str(launcher.get("_target_", "")).endswith("SlurmLauncher"):
        return
    for key, meaning in SLURM_REQUIRED.items():
        if launcher.get(key) is None:
            raise VisexpError(f"hydra/launcher=submitit_slurm needs hydra.launcher.{key}=NAME: {meaning}")
    if not (shutil.which("sbatch") and shutil.which("srun")):
        raise VisexpError(
            "hydra/launcher=submitit_slurm needs SLURM's sbatch and srun, which are not on this machine's PATH: "
            "run from the cluster's login node, or try the same path here with hydra/launcher=submitit_local"
        )


def check_resume(config: DictConfig, sweep_dir: Path) -> None:
    """With resume=true, refuse a folder made by a different config, naming the keys that differ;
    without it, say that an earlier sweep's results in the folder will be redone."""
    if not isinstance(config.get("resume"), bool):
        raise VisexpError(f"resume must be true or false, not {config.get('resume')!r}")
    earlier = earlier_sweep(sweep_dir)
    if earlier is None:
        if config.resume:
            print(f"resume=true: no earlier sweep in {sweep_dir}, running every job", file=sys.stderr)
        return
    if not config.resume:
        print(f"{sweep_dir} holds an earlier sweep: its jobs are redone (resume=true keeps the complete ones)",
              file=sys.stderr)
        return
    changed = differences(earlier, config)
    if changed:
        raise VisexpError(
            f"cannot resume {sweep_dir}: it was made by a different config; these differ: {'; '.join(changed)}. "
            "Resume with the same settings, or give a new hydra.sweep.dir"
        )


class SweepChecks(Callback):
    """Hydra callback: check a multirun before it launches anything, and name its folder."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        try:
            check_missing(config)
            check_launcher(config)
            check_resume(config, sweep_dir)
        except VisexpError as error:
            fail(error)
        hint = "" if config.resume else (
            f" (stopped half-way? run the same command with hydra.sweep.dir={sweep_dir} resume=true)"
        )
        print(f"sweep folder: {sweep_dir}{hint}", file=sys.stderr, flush=True)

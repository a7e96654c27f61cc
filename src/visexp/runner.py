"""One job: build the model and the task the config names, run it, write and log the results.

`run(cfg)` is a plain function (run.py only hands Hydra's config to it), so tests call it
directly with a composed config and a temporary output folder.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from visexp.batching import batched_ascent
from visexp.build import build
from visexp.errors import VisexpError
from visexp.models import VisionModel
from visexp.outputs import METRICS, JobOutputs, clear_results
from visexp.provenance import provenance, set_deterministic
from visexp.resume import completed, fingerprint, job_overrides
from visexp.speed import Speed, set_process_paths, speed_settings
from visexp.tasks import make_task
from visexp.tasks.common import Result
from visexp.tasks.visualise import Visualise
from visexp.tracking import Tracker, run_labels

STARTING_THREADS = torch.get_num_threads()
"""torch's thread count when this process started (after any limit its launcher set): what a
job with `threads=null` gets, also after an earlier job in the same process set its own."""


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; otherwise the named device, checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise VisexpError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise VisexpError(f"device {name!r} asked for, but this machine has no CUDA GPU: use device=cpu or auto")
    return device


_loaded: dict[str, VisionModel] = {}
"""The model this process built last, by its resolved config, device and fast paths."""


def load_model(model_cfg: DictConfig, device: torch.device, speed: Speed = Speed()) -> VisionModel:
    """The configured model on `device` with the fast paths of `speed`, built once per process:
    the jobs of a sweep run one after another in one process (the default launcher) reuse it
    while its config stays the same. Only the last one is kept, so a sweep over models does not
    pile them up. Reuse is safe because models are frozen and no task leaves anything on them."""
    config = json.dumps(OmegaConf.to_container(model_cfg, resolve=True), sort_keys=True, default=str)
    key = f"{config}@{device}:{speed}"
    if key not in _loaded:
        _loaded.clear()
        _loaded[key] = build(model_cfg).to(device).use_speed(speed)
    return _loaded[key]


def check_config(cfg: DictConfig) -> None:
    """Fail early, in one line, on values that are missing or cannot be right."""
    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise VisexpError(f"missing value for {', '.join(missing)}: set it on the command line, e.g. {missing[0]}=...")
    for key in ("steps", "log_every") if cfg.threads is None else ("steps", "log_every", "threads"):
        if isinstance(cfg[key], bool) or not isinstance(cfg[key], int) or cfg[key] <= 0:
            raise VisexpError(f"{key} must be a positive integer, not {cfg[key]!r}")
    if isinstance(cfg.seed, bool) or not isinstance(cfg.seed, int):
        raise VisexpError(f"seed must be an integer, not {cfg.seed!r}")
    for key in ("clamp", "resume", "deterministic"):
        if not isinstance(cfg[key], bool):
            raise VisexpError(f"{key} must be true or false, not {cfg[key]!r}")
    if isinstance(cfg["lambda"], bool) or not isinstance(cfg["lambda"], (int, float)) or not cfg["lambda"] >= 0:
        raise VisexpError(f"lambda must be a non-negative number, not {cfg['lambda']!r}")


def set_up(cfg: DictConfig) -> tuple[torch.device, Speed]:
    """Set this process up as the job asks (determinism, CPU threads, seed, the fast paths that
    are process settings); the device and fast paths it runs with."""
    set_deterministic(cfg.deterministic)
    torch.set_num_threads(cfg.threads or STARTING_THREADS)
    torch.manual_seed(cfg.seed)
    device = resolve_device(cfg.device)
    speed = speed_settings(cfg.speed, device)
    set_process_paths(speed, device, cfg.deterministic)
    return device, speed


def run(cfg: DictConfig, output_dir: Path | None = None) -> dict[str, Any]:
    """Do the task `cfg` names and write its outputs and metrics.json.

    With `resume=true` a job whose folder already holds a complete result (metrics.json) is
    skipped and its metrics returned. Every other start removes earlier results first. The W&B
    run is started before the model is built, so a job that fails for any reason ends as a
    failed run carrying the error.

    Args:
        cfg: a composed config (conf/config.yaml and its groups).
        output_dir: where to write; by default the Hydra job's output folder.

    Returns:
        The metrics, as written to metrics.json.
    """
    if output_dir is None:
        output_dir = Path(HydraConfig.get().runtime.output_dir)
    output_dir = Path(output_dir)
    check_config(cfg)
    ascent = batched_ascent(output_dir, cfg)  # taken whatever happens next, so none is left behind
    earlier = completed(output_dir, cfg) if cfg.resume else None
    if earlier is not None:
        print(f"complete, skipped (resume=true): {output_dir}", file=sys.stderr, flush=True)
        return earlier
    clear_results(output_dir)
    device, speed = set_up(cfg)

    tracker: Tracker = build(
        cfg.logger, config=OmegaConf.to_container(cfg, resolve=True), directory=output_dir,
        labels=run_labels(job_type=cfg.task.name),
    )
    result = Result(summary={})
    failed = True
    try:
        model = load_model(cfg.model, device, speed)
        task = make_task(cfg, model)
        if ascent is not None and isinstance(task, Visualise):
            task.replay(ascent)
        with JobOutputs(output_dir) as outputs:
            began = time.perf_counter()
            result = task.run(outputs, tracker)
            result.summary.update(
                task=cfg.task.name, model=model.name, seconds=round(time.perf_counter() - began, 3),
                overrides=job_overrides(), config=fingerprint(cfg),
                **provenance(cfg.seed, device, cfg.deterministic),
            )
            outputs.save_json(METRICS, result.summary)
        failed = False
    except BaseException as error:
        failure = {"error": str(error) or type(error).__name__}
        result = Result(summary={**failure, **provenance(cfg.seed, device, cfg.deterministic)})
        raise
    finally:
        animations = {name: output_dir / file for name, file in result.animations.items()} if not failed else {}
        tracker.finish(result.summary, result.images, animations, failed=failed)
    return result.summary

"""`hydra/launcher=batched`: a sweep's points that can share a batch are optimised together.

A Hydra launcher plugin (found by Hydra in the `hydra_plugins` namespace). It runs the jobs of a
sweep one after another in this process, as the default launcher does, with one difference:
points of `task=visualise` that differ only in per-image values (target, lambda, seed, init,
objective channel, optimiser settings; see `visexp.batching`) are first optimised as one batch,
at most `max_batch` images at a time, with the model loaded once. Then each point runs as its
own job, with its own folder, `.hydra/` record, log, outputs and W&B run, which take the result
of the batch instead of an ascent of their own. A batch that fails (out of memory, a value one
point cannot take) is said in one line and its points run one by one, each with its own result
or error. With `resume=true` complete points are left out of the batches.
"""

# No `from __future__ import annotations`: Hydra's plugin scan runs this module without
# registering it in sys.modules, where dataclasses look string annotations up.
import copy
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hydra.core.config_store import ConfigStore
from hydra.core.hydra_config import HydraConfig
from hydra.core.utils import JobReturn, configure_log, filter_overrides, run_job, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict, read_write

log = logging.getLogger(__name__)


@dataclass
class BatchedLauncherConf:
    _target_: str = "hydra_plugins.visexp_batched_launcher.batched_launcher.BatchedLauncher"
    max_batch: int = 32  # most images optimised together (lower it if a batch runs out of memory)


ConfigStore.instance().store(group="hydra/launcher", name="batched", node=BatchedLauncherConf, provider="visexp")


@dataclass
class Point:
    """One job of the sweep: its number, Hydra config, job config and output folder."""

    number: int
    config: DictConfig
    job: DictConfig
    output_dir: Path


def job_config(config: DictConfig) -> DictConfig:
    """The config the job sees (without the `hydra` node), as `run_job` makes it."""
    job = copy.deepcopy(config)
    with read_write(job), open_dict(job):
        del job["hydra"]
    return job


def groups(points: list[Point], max_batch: int) -> list[list[Point]]:
    """The points in groups that run as one batch each (in the order their first point comes,
    at most `max_batch` to a group); a point that cannot share a batch is a group of its own."""
    from visexp.batching import batch_key
    from visexp.resume import completed
    from visexp.runner import check_config

    shared: dict[str, list[list[Point]]] = {}
    order: list[list[Point]] = []
    for point in points:
        HydraConfig.instance().set_config(point.config)
        try:
            check_config(point.job)
            done = point.job.resume and completed(point.output_dir, point.job, quiet=True) is not None
            key = None if done else batch_key(point.job)
        except Exception:  # noqa: BLE001 - whatever is wrong with the point, its own job says it when it runs
            key = None
        if key is None:
            order.append([point])
            continue
        if key not in shared or len(shared[key][-1]) == max_batch:
            shared.setdefault(key, []).append([])
            order.append(shared[key][-1])
        shared[key][-1].append(point)
    return order


def ascend_group(group: list[Point]) -> None:
    """Optimise a group's points as one batch and keep each result for its job; on failure
    say so in one line and leave the points to run one by one."""
    from visexp.batching import ascend_together, keep
    from visexp.runner import load_model, set_up

    first = group[0]
    HydraConfig.instance().set_config(first.config)
    try:
        device, speed = set_up(first.job)
        model = load_model(first.job.model, device, speed)
        ascents = ascend_together([point.job for point in group], model)
    except Exception as error:  # noqa: BLE001 - any failure (out of memory too): the points run one by one
        numbers = ", ".join(f"#{point.number}" for point in group)
        reason = (str(error).splitlines() or [type(error).__name__])[0]
        print(f"batched launcher: jobs {numbers} could not run as one batch ({reason}); they run one by one",
              file=sys.stderr, flush=True)
        return
    for point, ascent in zip(group, ascents):
        if ascent is not None:
            keep(point.output_dir, point.job, ascent)


class BatchedLauncher(Launcher):
    """Runs a sweep's jobs in this process, points that can share a batch optimised together."""

    def __init__(self, max_batch: int = 32) -> None:
        super().__init__()
        self.max_batch = max_batch  # checked before the sweep starts (visexp.launchers.check_launcher)
        self.config: DictConfig | None = None
        self.task_function: TaskFunction | None = None
        self.hydra_context: HydraContext | None = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        setup_globals()
        assert self.hydra_context is not None and self.config is not None and self.task_function is not None
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        log.info(f"Launching {len(job_overrides)} jobs locally")
        points = [self.point(initial_job_idx + index, overrides) for index, overrides in enumerate(job_overrides)]
        batches = groups(points, self.max_batch)
        log.info(f"\t{len(batches)} batches: {' + '.join(str(len(group)) for group in batches)} images")
        returns: dict[int, JobReturn] = {}
        for group in batches:
            if len(group) > 1:
                ascend_group(group)
            for point in group:
                log.info(f"\t#{point.number} : {' '.join(filter_overrides(point.config.hydra.overrides.task))}")
                returns[point.number] = run_job(
                    hydra_context=self.hydra_context, task_function=self.task_function, config=point.config,
                    job_dir_key="hydra.sweep.dir", job_subdir_key="hydra.sweep.subdir",
                )
                configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        return [returns[point.number] for point in points]

    def point(self, number: int, overrides: Sequence[str]) -> Point:
        """Job `number` of the sweep, its config composed as the default launcher does."""
        assert self.hydra_context is not None and self.config is not None
        config = self.hydra_context.config_loader.load_sweep_config(self.config, list(overrides))
        with open_dict(config):
            config.hydra.job.id = number
            config.hydra.job.num = number
        HydraConfig.instance().set_config(config)
        output_dir = Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir)
        return Point(number, config, job_config(config), output_dir)

"""Resuming a sweep: which settings of an earlier sweep in the same folder differ from this one's.

A sweep run again into its folder with `resume=true` skips the jobs that are complete. First the
sweep as a whole is compared with the one that made the folder, and refused, naming the keys, if
they differ: the composed config (values as written, before interpolation), the command line's
overrides and the sweep's parameters, all but what cannot change a result (Hydra's own settings,
so the launcher may change; the logger; `resume` itself). Then each job is skipped only if its
folder holds a complete result (metrics.json, written last) of the same point, made by the same
resolved config: the fingerprint in metrics.json also covers what the sweep's record does not
show, such as an edited option file of a config group.
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from visexp.outputs import METRICS

MULTIRUN_RECORD = "multirun.yaml"
"""What Hydra writes into a sweep folder when a sweep starts: the sweep's whole config."""

IGNORED = {"resume", "logger"}
"""Top-level keys that cannot change a job's results."""


def ignored(key: str) -> bool:
    """Whether a dotted key or override key (`logger.mode`, `+resume`) is one of IGNORED."""
    return key.lstrip("+~").split(".")[0].split("/")[0] in IGNORED


def _flatten(node: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts as one dict of dotted keys (lists and empty dicts stay values)."""
    if isinstance(node, dict) and node:
        flat: dict[str, Any] = {}
        for key, value in node.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.removesuffix("."): node}


def sweep_settings(config: DictConfig) -> dict[str, str]:
    """What decides a sweep's jobs and their results, as dotted key -> value (as text). A key's
    command-line override (`target=1,2,3`) stands for it, being what decides its values."""
    plain = OmegaConf.to_container(config, resolve=False)
    hydra = plain.pop("hydra", {}) or {}
    settings = {key: str(value) for key, value in _flatten(plain).items()}
    for override in hydra.get("overrides", {}).get("task", []):
        key, _, value = str(override).partition("=")
        if not key.lstrip("+~").startswith("hydra"):
            settings[key] = value
    for key, value in (hydra.get("sweeper", {}).get("params") or {}).items():
        settings[f"hydra.sweeper.params.{key}"] = str(value)
    return {key: value for key, value in settings.items() if not ignored(key.removeprefix("hydra.sweeper.params."))}


def differences(earlier: DictConfig, now: DictConfig) -> list[str]:
    """`key (earlier -> now)` for every setting that differs between two sweeps' configs."""
    before, after = sweep_settings(earlier), sweep_settings(now)
    missing = "not set"
    return [
        f"{key} ({before.get(key, missing)} -> {after.get(key, missing)})"
        for key in sorted(before.keys() | after.keys())
        if before.get(key, missing) != after.get(key, missing)
    ]


def earlier_sweep(sweep_dir: Path) -> DictConfig | None:
    """The config of the sweep that last ran in `sweep_dir`, if one did."""
    record = Path(sweep_dir) / MULTIRUN_RECORD
    return OmegaConf.load(record) if record.is_file() else None  # type: ignore[return-value]


def job_overrides() -> list[str] | None:
    """This job's command-line overrides, sorted, those of IGNORED keys left out (None outside
    Hydra): what tells one point of a sweep from another, whatever order they were typed in."""
    if not HydraConfig.initialized():
        return None
    return sorted(item for item in HydraConfig.get().overrides.task if not ignored(item.partition("=")[0]))


def fingerprint(cfg: DictConfig) -> str:
    """A hash of the job's resolved config, IGNORED keys left out: equal for equal results."""
    resolved = OmegaConf.to_container(cfg, resolve=True)
    kept = {key: value for key, value in resolved.items() if not ignored(str(key))}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]


def completed(output_dir: Path, cfg: DictConfig, quiet: bool = False) -> dict[str, Any] | None:
    """The metrics of a complete earlier result in `output_dir` of this same point made by this
    same config, or None when the job has to run (nothing complete there, another point's
    result, or one made by a config that has changed since: said in one line unless `quiet`)."""
    metrics_file = Path(output_dir) / METRICS
    if not metrics_file.is_file():
        return None
    metrics = json.loads(metrics_file.read_text())
    if metrics.get("overrides") != job_overrides():
        reason = f"the result of other overrides ({' '.join(metrics.get('overrides') or [])})"
    elif metrics.get("config") != fingerprint(cfg):
        reason = "a result of another config (an option file changed since?)"
    else:
        return metrics
    if not quiet:
        print(f"{output_dir} holds {reason}: running this job again", file=sys.stderr, flush=True)
    return None

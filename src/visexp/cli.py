"""Command-line front: the headline command as typed, and one-line errors instead of tracebacks.

`multirun_flag_first` lets `-m` stand between overrides, as in the headline command
`python run.py objective=class target=968 reg=l2 -m lambda=1e-4,1e-3`: Hydra's argument
parser stops taking overrides at the flag and rejects the rest. `check_choices` looks at the
overrides before Hydra composes anything, so a typo such as `model=resnt50` or `step=5` gets
one line naming what there is. `fail` prints a `VisexpError` as `error: ...` and exits.
"""

from __future__ import annotations

import difflib
import sys
from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import OmegaConf

from visexp.errors import VisexpError


def _requested(override_text: str) -> tuple[str, list[str]] | None:
    """The key and the value(s) of one override, or None where Hydra will judge it itself."""
    try:
        override = OverridesParser.create().parse_override(override_text)
    except HydraException:
        return None
    if override.is_delete():
        return None
    key = override.key_or_group
    if override.is_sweep_override():
        return key, list(override.sweep_string_iterator())
    value = override.value()
    return (key, [str(value)]) if isinstance(value, (str, int, float)) else None


MULTIRUN_FLAGS = ("-m", "--multirun")


def multirun_flag_first(arguments: list[str]) -> list[str]:
    """The same arguments with `-m`/`--multirun` moved in front of the overrides."""
    flags = [argument for argument in arguments if argument in MULTIRUN_FLAGS]
    return flags[:1] + [argument for argument in arguments if argument not in MULTIRUN_FLAGS]


def known_keys(conf_dir: Path) -> set[str]:
    """Top-level keys of config.yaml and those that group options in the global package add
    (`method` of task=saliency, say)."""
    keys = set(OmegaConf.load(conf_dir / "config.yaml"))
    for option in conf_dir.glob("*/*.yaml"):
        if option.read_text().startswith("# @package _global_"):
            keys |= set(OmegaConf.load(option))
    return keys - {"defaults", "hydra"}


CHECKED_HYDRA_GROUPS = ("hydra/launcher",)
"""Hydra's own groups whose options are checked here (the others are left to Hydra)."""


def group_options(group: str, conf_dir: Path) -> list[str]:
    """The options of a config group: its files in conf/ and, for Hydra's own groups, the
    configs that Hydra and the installed plugins register (hydra/launcher=joblib, ...)."""
    options = {path.stem for path in (conf_dir / group).glob("*.yaml")}
    if group.startswith("hydra/"):
        from hydra.core.config_store import ConfigStore
        from hydra.core.plugins import Plugins

        Plugins.instance()  # imports the installed plugins, which register their configs
        options |= {name.removesuffix(".yaml") for name in ConfigStore.instance().list(group)}
    return sorted(options)


def check_choices(arguments: list[str], conf_dir: Path) -> None:
    """Raise VisexpError for an override of a key the config does not have, or of an option
    its config group does not have (the launcher included). Keys added with `+` and Hydra's
    other settings are left to Hydra."""
    groups = sorted(path.name for path in conf_dir.iterdir() if path.is_dir() and path.name != "hydra")
    keys = sorted(known_keys(conf_dir) | set(groups))
    for argument in arguments:
        if argument.startswith(("-", "+", "~")) or "=" not in argument:
            continue
        requested = _requested(argument)
        if requested is None:
            continue
        key, values = requested
        top = key.split(".")[0].split("/")[0]
        if top not in keys and top != "hydra":
            close = difflib.get_close_matches(top, keys, n=1)
            hint = f"did you mean {close[0]}? " if close else ""
            raise VisexpError(f"unknown key {top!r}: {hint}(keys: {', '.join(keys)}; add a new one with +{argument})")
        if key not in groups and key not in CHECKED_HYDRA_GROUPS:
            continue
        options = group_options(key, conf_dir)
        for value in values:
            if value not in options:
                raise VisexpError(f"unknown {key} {value!r}: choose from {', '.join(options)}")
    check_launcher_settings(arguments, conf_dir)


def check_launcher_settings(arguments: list[str], conf_dir: Path) -> None:
    """Raise VisexpError for a `hydra.launcher.KEY=...` setting that the chosen launcher (one of
    conf/hydra/launcher/) does not have, naming the launchers that do: `hydra.launcher.n_jobs=4`
    without `hydra/launcher=joblib` would otherwise get a screen of Hydra's messages."""
    chosen = "basic"
    for argument in arguments:
        if argument.startswith("hydra/launcher="):
            chosen = argument.partition("=")[2]
    launchers = {path.stem: set(OmegaConf.load(path)) for path in (conf_dir / "hydra" / "launcher").glob("*.yaml")}
    if chosen not in launchers:
        return
    for argument in arguments:
        key = argument.partition("=")[0]
        if not key.startswith("hydra.launcher.") or "=" not in argument:
            continue
        setting = key.removeprefix("hydra.launcher.").split(".")[0]
        if setting not in launchers[chosen]:
            owners = sorted(name for name, settings in launchers.items() if setting in settings)
            own = sorted(launchers[chosen] - {"_target_"})
            close = difflib.get_close_matches(setting, own, n=1)
            if owners:
                hint = f"it is a setting of {' and '.join(f'hydra/launcher={name}' for name in owners)}"
            else:
                hint = f"{f'did you mean {close[0]}? ' if close else ''}(settings: {', '.join(own) or 'none'})"
            raise VisexpError(f"hydra/launcher={chosen} has no setting {setting!r}: {hint}")


def fail(error: VisexpError, code: int = 2) -> None:
    """Print the error as one line and leave with a non-zero status."""
    print(f"error: {error}", file=sys.stderr, flush=True)
    raise SystemExit(code)

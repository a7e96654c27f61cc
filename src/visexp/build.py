"""The single route from a config node to an object (`hydra.utils.instantiate`).

Two things Hydra does that we do not want are handled here, once:
- it wraps any exception raised by a target in an `InstantiationException`; a `VisexpError`
  from one of our constructors is a user-facing one-liner, so it is unwrapped and re-raised;
- it merges keyword arguments into the config, which would turn a runtime object such as a
  `VisionModel` (a dataclass) into a DictConfig; so runtime objects are passed to the target
  in a plain call instead.
"""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate

from visexp.errors import VisexpError


def build(node: Any, **runtime: Any) -> Any:
    """Instantiate `node` (a config with `_target_`), calling its target with `runtime` objects too."""
    try:
        made = instantiate(node, _partial_=True) if runtime else instantiate(node)
    except InstantiationException as error:
        cause = error.__cause__
        while cause is not None and not isinstance(cause, VisexpError):
            cause = cause.__cause__
        if cause is not None:
            raise cause from None
        reason = str(error.__cause__ or error).strip().splitlines()[0]
        raise VisexpError(f"cannot build {node.get('_target_', 'config')}: {reason}") from error
    return made(**runtime) if runtime else made

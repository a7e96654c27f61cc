"""visexp entry point: python run.py [group=option ...] [key=value ...] [-m key=a,b ...]

Thin by design: Hydra composes conf/, `visexp.runner.run` does the work, so tests can call
`run(cfg)` directly. Mistakes the user can fix end in one `error: ...` line and exit status 2.
"""

import signal
import sys
import traceback
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from visexp.cli import check_choices, fail, multirun_flag_first
from visexp.errors import VisexpError
from visexp.runner import run

CONF = Path(__file__).resolve().parent / "conf"


@hydra.main(version_base="1.3", config_path="conf", config_name="config")
def main(cfg: DictConfig) -> None:
    try:
        run(cfg)
    except Exception as error:
        if HydraConfig.get().mode != RunMode.MULTIRUN:
            if isinstance(error, VisexpError):
                fail(error)
            raise
        # The sweep goes on; the job has no metrics.json and is reported when the sweep ends.
        # An error that is not a mistake in the input (a bug, CUDA out of memory) shows where.
        if not isinstance(error, VisexpError):
            traceback.print_exc()
        print(f"error in job {HydraConfig.get().job.num}: {error}", file=sys.stderr, flush=True)


def stop_on_signal(number: int, frame: object) -> None:
    """SIGTERM (kill) ends the running job as Ctrl-C does: its W&B run is closed as failed and
    its half-written outputs are dropped, instead of the process dying mid-write. (The default
    launcher's jobs run in this process; the other launchers' workers have their own handling.)"""
    raise SystemExit(f"stopped by {signal.Signals(number).name}")


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, stop_on_signal)
    sys.argv[1:] = multirun_flag_first(sys.argv[1:])
    try:
        check_choices(sys.argv[1:], CONF)
    except VisexpError as error:
        fail(error)
    main()

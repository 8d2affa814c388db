"""Train one config and track it in MLflow.

    python -m src.train [overrides]          e.g. model=dien model/evolution=augru train.epochs=3
    python -m src.train --cfg job            print the composed config
    python -m src.train --help               config groups and options

Overrides use Hydra's grammar; the config tree is conf/. Every run lands in the
MLflow store (`make ui` to browse it); `python -m src.reproduce RUN_ID` reruns one.
"""

from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig


def run_cli(cfg: DictConfig, overrides: list[str], result: dict | None = None, **kwargs) -> int:
    """Runs one config with the project's error handling: clear messages, exit codes.

    The config is checked before TensorFlow loads, so a wrong value is refused at once. Ctrl-C (or
    SIGTERM, as a cluster scheduler sends) ends the run as KILLED in MLflow and prints one line.
    `result`, if given, receives the run's id and status.
    """
    from src.config.validate import ConfigError, validate

    try:
        validate(cfg)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from src.run.logger import AccessError, check_access, resolve_uri

    try:
        check_access(resolve_uri(cfg.tracking.get("uri")))
    except AccessError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    from src.data import DataError
    from src.run import interrupts
    from src.run.training import Diverged, train_run

    started = {}
    user_on_start = kwargs.pop("on_start", None)

    def on_start(run_id):
        started["run_id"] = run_id
        if user_on_start is not None:
            user_on_start(run_id)

    try:
        with interrupts.stoppable():
            out = train_run(cfg, overrides, on_start=on_start, **kwargs)
        if result is not None:
            result.update(run_id=out.run_id, status=out.status, result=out)
    except (ConfigError, DataError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ValueError as e:  # a model or optimizer argument: raised before any run exists
        print(f"error: {e}", file=sys.stderr)
        return 2
    except Diverged as e:
        print(f"error: the run diverged: {e} (marked FAILED in MLflow)", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        where = f"; run {started['run_id']} is marked KILLED in MLflow" if started else "; no run was started"
        print(f"\n{interrupts.reason(e)}{where}", file=sys.stderr)
        return interrupts.exit_code(e)
    return 0


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from hydra.core.hydra_config import HydraConfig

    overrides = list(HydraConfig.get().overrides.task)
    code = run_cli(cfg, overrides)
    if code:
        sys.exit(code)


if __name__ == "__main__":
    from src.run.runtime import entry_point

    entry_point()
    main()

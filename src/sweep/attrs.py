"""What a study remembers: the name and type of every attribute a sweep keeps on its Optuna study and trials.

Everything in `src/` reads and writes Optuna's `user_attrs` through these keys (tests/test_architecture.py
holds it to that), so a name lives in one place: a reader cannot drift from its writer, and a value of
the wrong type is refused when it is written, not found missing in the report.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Key(Generic[T]):
    """One attribute: its name in the storage, the types its value may have, and what reads as missing."""

    name: str
    kinds: tuple[type, ...]
    missing: Callable[[], Any] = lambda: None

    def get(self, holder) -> T:
        """The value on a study, a trial or a frozen trial; `missing()` when it was never written."""
        v = holder.user_attrs.get(self.name)
        return self.missing() if v is None else v

    def has(self, holder) -> bool:
        return self.name in holder.user_attrs

    def set(self, holder, value: T) -> None:
        holder.set_user_attr(self.name, self.check(value))

    def check(self, value):
        if not isinstance(value, self.kinds) or isinstance(value, bool) and bool not in self.kinds:
            raise TypeError(f"study attribute {self.name!r} takes {' or '.join(k.__name__ for k in self.kinds)}, "
                            f"not {type(value).__name__} ({value!r:.80})")
        return value


def enqueued(values: dict[Key, Any]) -> dict[str, Any]:
    """The `user_attrs` of a trial put in the queue (`study.enqueue_trial(..., user_attrs=...)`), checked."""
    return {k.name: k.check(v) for k, v in values.items()}


def enqueued_params(trial) -> dict:
    """The parameters a waiting trial was enqueued with (Optuna keeps them as a system attribute)."""
    return dict(trial.system_attrs.get("fixed_params") or {})


NUMBER = (int, float)

# A trial: where it runs and that it is alive
HOST: Key[str] = Key("host", (str,))                  # the machine of the worker that runs it
PID: Key[int] = Key("pid", (int,))                    # that worker's process
NODE: Key[str] = Key("node", (str,))                  # its Ray node (sweep.launcher=ray)
HEARTBEAT: Key[float] = Key("heartbeat", NUMBER)      # last sign of life (storages without Optuna's heartbeat)
# A trial: the cell it is, set when it is queued
SEED: Key[int] = Key("seed", (int,))                  # a designed sweep's cell seed; absent: every seed
RETRY_OF: Key[int] = Key("retry_of", (int,))          # the trial whose worker died, that this one runs again
RETRY_REASON: Key[str] = Key("retry_reason", (str,))
# A trial: what it trained and measured
OVERRIDES: Key[list] = Key("overrides", (list,), list)           # the sampled overrides ("k=v")
MLFLOW_RUN_IDS: Key[list] = Key("mlflow_run_ids", (list,), list)  # its cells' runs, one per seed
SEED_VALUES: Key[dict] = Key("seed_values", (dict,), dict)       # seed -> best validation metric
TEST_VALUES: Key[dict] = Key("test_values", (dict,), dict)       # seed -> test metric at that epoch
EVAL_BOOTSTRAP: Key[dict] = Key("eval_bootstrap", (dict,), dict)  # seed -> bootstrap of the validation metric
ATTENTION: Key[dict] = Key("attention", (dict,), dict)           # seed -> attention summary
SPREAD: Key[float] = Key("spread", NUMBER)                       # the seeds' standard deviation
PRUNED_AT_EPOCH: Key[int] = Key("pruned_at_epoch", (int,))
# A trial: why it did not complete
FAILURE: Key[str] = Key("failure", (str,), str)
TRACEBACK: Key[str] = Key("traceback", (str,), str)
SURPLUS: Key[bool] = Key("surplus", (bool,), bool)   # asked for a slot another worker took: not a cell

# The study
SIGNATURE: Key[str] = Key("signature", (str,))        # the definition a resume must match (JSON)
DEFINITION: Key[dict] = Key("definition", (dict,), dict)  # base overrides and search space, for people
SEEDS: Key[list] = Key("seeds", (list,), list)        # every seed queued so far (sweep.until adds some)
SECONDS_PER_CELL: Key[float] = Key("seconds_per_cell", NUMBER)   # a training's wall share at the parallelism
SECONDS_PER_BLOCK: Key[float] = Key("seconds_per_block", NUMBER)  # a block's fixed cost: start-up, look
LOOKS: Key[list] = Key("looks", (list,), list)        # the sequential looks taken, in order
PLAN: Key[dict] = Key("plan", (dict,))                # fixed at the first look: src/answer/boundary.Plan's fields, or
#                                                       {} (none); absent in studies recorded before plans were
ENDED_BLOCKS: Key[dict] = Key("ended_blocks", (dict,), dict)  # block -> seeds it holds (its questions all decided)
DROPPED: Key[dict] = Key("dropped", (dict,), dict)  # configuration -> seeds it holds (shown worse than another: racing)
RACE: Key[dict] = Key("race", (dict,), dict)  # a sampled sweep's race (until=best), once its search is done:
#     {"points": its top configurations, "searched": finished trials then, "first": seeds in its first block}
MLFLOW_PARENT_RUN_ID: Key[str] = Key("mlflow_parent_run_id", (str,))

TRIAL = (HOST, PID, NODE, HEARTBEAT, SEED, RETRY_OF, RETRY_REASON, OVERRIDES, MLFLOW_RUN_IDS, SEED_VALUES,
         TEST_VALUES, EVAL_BOOTSTRAP, ATTENTION, SPREAD, PRUNED_AT_EPOCH, FAILURE, TRACEBACK, SURPLUS)
STUDY = (SIGNATURE, DEFINITION, SEEDS, SECONDS_PER_CELL, SECONDS_PER_BLOCK, LOOKS, PLAN, ENDED_BLOCKS, DROPPED,
         RACE, MLFLOW_PARENT_RUN_ID)

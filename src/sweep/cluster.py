"""The Ray launcher (`sweep.launcher=ray`): the sweep's workers as Ray tasks on every node of a cluster.

Ray starts the processes and places them by the resources they declare; the study stays the source of
truth (each worker asks it for cells, as a local worker does). Each live node holds worker slots:

    a node with GPUs       sweep.trials_per_gpu workers per GPU, each asking num_gpus = 1/trials_per_gpu
                           and an equal share of the node's CPUs (Ray sets the GPU it sees)
    a node without GPUs    one worker per sweep.ray_cpus CPUs

Each worker is pinned to its node (NodeAffinitySchedulingStrategy), so the driver knows what every node
runs: a node that joins gets workers at the next poll (every POLL_S seconds), a node that dies loses
its workers, and the cell one of them was training is failed and queued again once by the study's
stale-trial recovery (a dead worker never tells its cell complete). `sweep.workers` caps the number
of workers. Ctrl-C or a SIGTERM to the driver cancels every worker (ray.cancel: a KeyboardInterrupt in
it, so its cell is told failed and its run ends KILLED), then stops the Ray instance the driver started,
if it started one.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass

from src.config.paths import ROOT
from src.sweep import SweepError, worker
from src.sweep.worker import Ended, Job

POLL_S = 2.0
CANCEL_WAIT_S = 60
RELAUNCHES = 2  # a slot whose worker crashed is given a new one this many times, then left empty
PASSED_ENV = ("KERAS_BACKEND", "DIL_TF_LOGS", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
              "MLFLOW_TRACKING_TOKEN", "TF_CPP_MIN_LOG_LEVEL", "DIL_FAULT", "DIL_FAULT_DIR")  # the driver's, given
# to every worker (DIL_FAULT*: the interrupt tests' fault points, src/run/faults.py)


@dataclass(frozen=True)
class Slot:
    """Where one worker runs: a node, its index there, the resources it asks of Ray."""

    node: str
    index: int
    num_cpus: float
    num_gpus: float = 0.0

    @property
    def key(self) -> tuple[str, int]:
        return self.node, self.index


def slots(nodes: list[dict], per_gpu: int, cpus: float) -> list[Slot]:
    """The worker slots of the live nodes (`ray.nodes()` entries), node by node."""
    out = []
    for n in nodes:
        if not n.get("Alive"):
            continue
        r, node = n.get("Resources", {}), n["NodeID"]
        gpus, node_cpus = int(r.get("GPU", 0)), float(r.get("CPU", 0))
        if gpus:
            k = gpus * per_gpu
            out += [Slot(node, i, round(node_cpus / k, 4), 1 / per_gpu) for i in range(k)]
        else:
            out += [Slot(node, i, cpus) for i in range(int(node_cpus // cpus))]
    return out


def machines(nodes: list[dict]) -> set[str]:
    """The addresses of the machines the live nodes run on (simulated nodes share one)."""
    return {n["NodeManagerAddress"] for n in nodes if n.get("Alive")}


def check_shared_stores(nodes: list[dict], storage_url: str, tracking_uri: str) -> None:
    """Refuses stores on one machine's disk when the cluster spans several machines.

    Raises:
        SweepError: names the store and what to use instead.
    """
    from src.redact import redact
    from src.run.logger import is_server
    from src.sweep.study import on_this_disk

    hosts = machines(nodes)
    if len(hosts) < 2:
        return
    if on_this_disk(storage_url):
        raise SweepError(f"the Ray cluster spans {len(hosts)} machines, but the study's storage "
                         f"{redact(storage_url)} is on this machine's disk, which the other machines do not see: "
                         f"use a PostgreSQL server (sweep.storage=postgresql://USER@DBHOST/optuna)")
    if not (is_server(tracking_uri) or str(tracking_uri).startswith("databricks")):
        raise SweepError(f"the Ray cluster spans {len(hosts)} machines, but the MLflow store "
                         f"{redact(str(tracking_uri))} is on this machine's disk: use a tracking server "
                         f"(tracking=server tracking.uri=http://HOST:5000)")


_started_here = False  # whether this process's connection is to a local instance it started


def connect(address: str) -> bool:
    """Connects this process to the Ray cluster at `address` ("auto": the running one, else a local one
    started here); True if the connection is to a local instance started here. A process already
    connected (a sequential sweep's next block) keeps its connection, and the answer stays the same.
    `close` ends the connection, and the instance started here."""
    global _started_here
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # the sweep sends nothing to Ray's usage service
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every worker's progress lines, not "[repeated 2x]"
    if not sys.stdout.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # plain "(sweep-worker-0 pid=...)" prefixes in a log file
    import ray

    from src.run import interrupts

    if ray.is_initialized():
        return _started_here
    env = {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1",
           **{k: os.environ[k] for k in PASSED_ENV if k in os.environ}}
    options = {"runtime_env": {"env_vars": env}, "logging_level": "WARNING"}
    _started_here = False
    if address == "auto":
        try:
            _init("auto", options)
        except ConnectionError:  # no running cluster: a local one, on this machine's cores and GPUs
            ray.init(address="local", include_dashboard=False, **options)
            _started_here = True
    else:
        try:
            _init(address, options)
        except ConnectionError:
            raise SweepError(f"no Ray cluster answers at {address} (sweep.ray_address): start it "
                             f"(ray start --head) or name the head node's address") from None
    interrupts.reclaim()  # SIGTERM stops the sweep as Ctrl-C does, not as ray.init's handler would (exit)
    return _started_here


def _answers(address: str) -> bool:
    """Whether something accepts connections at host:port."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=3):
            return True
    except (OSError, ValueError):
        return False


TOKEN_HELP = ("Ray's token authentication: set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN to the cluster's token "
              "(`ray get-auth-token` on the head node prints it), or put it in ~/.ray/auth_token; nothing was "
              "trained")


def _init(address: str, options: dict) -> None:
    """ray.init at an address. A cluster that refuses this driver (no token, or another token than the
    cluster's) is one line; one that cannot be found stays a ConnectionError.

    Raises:
        SweepError: the cluster asks for a token this driver does not have, or refused the one it has.
    """
    import re

    import ray
    from ray.exceptions import AuthenticationError

    try:
        ray.init(address=address, **options)
    except AuthenticationError:
        raise SweepError(f"the Ray cluster at {address} asks for a token and this driver has none: "
                         f"{TOKEN_HELP}") from None
    except ConnectionError as e:
        # Ray says only "Failed to connect" when a running cluster refused the token: its GCS answers
        found = re.search(r"Failed to connect to Ray cluster at (\S+)", str(e))
        if found and _answers(found[1]):
            raise SweepError(f"the Ray cluster at {found[1]} refused this driver: its token is missing or not the "
                             f"cluster's. {TOKEN_HELP}") from None
        raise


def _work(job: Job) -> Ended:
    """A worker, inside its Ray task: the GPU Ray gave it (if any), then the local worker's loop."""
    import ray

    from src.run import interrupts

    ctx = ray.get_runtime_context()
    gpus = [str(g) for g in ctx.get_accelerator_ids().get("GPU", [])]
    with interrupts.stoppable():  # Ray's cancel (a SIGINT) and a SIGTERM end the cell's run KILLED
        return worker.main(dataclasses.replace(job, gpu=",".join(gpus) or None, node=ctx.get_node_id()))


def describe(nodes: list[dict], started: bool, found: list[Slot]) -> str:
    live = [n for n in nodes if n.get("Alive")]
    cpus = sum(n["Resources"].get("CPU", 0) for n in live)
    gpus = sum(n["Resources"].get("GPU", 0) for n in live)
    how = "a local Ray instance started for this sweep" if started else "Ray cluster"
    return (f"{how}: {len(live)} node(s) on {len(machines(nodes))} machine(s), {cpus:g} CPUs, {gpus:g} GPUs; "
            f"{len(found)} worker slot(s)")


class Launcher:
    """The driver's side: keeps a worker on every free slot until one of them ends the sweep."""

    def __init__(self, sw, nodes: list[dict]):
        import ray

        self.ray, self.sw, self.s = ray, sw, sw.definition.settings
        self.remote = ray.remote(_work)
        self.live: dict = {}    # ObjectRef -> Slot
        self.crashes: dict = {}  # slot key -> crashes so far
        self.known = {n["NodeID"] for n in nodes}  # nodes seen (a new one is announced)
        self.count = 0
        self.total = 0           # slots of the live nodes at the last poll

    def free(self) -> list[Slot]:
        found = slots(self.ray.nodes(), self.s.trials_per_gpu, self.s.ray_cpus)
        self.total = min(len(found), self.s.workers or len(found))
        taken = {sl.key for sl in self.live.values()}
        room = (self.s.workers or len(found)) - len(self.live)
        free = [sl for sl in found if sl.key not in taken and self.crashes.get(sl.key, 0) <= RELAUNCHES]
        return free[:max(room, 0)]

    def launch(self, slot: Slot) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        share = self.s.trials_per_gpu if slot.num_gpus else 1
        job = dataclasses.replace(self.sw.job(self.count, max(self.total, 2), None, max(1, int(slot.num_cpus)), share),
                                  node=slot.node)
        if slot.node not in self.known:
            print(f"Ray node {slot.node[:12]} joined: it gets workers", flush=True)
        self.known.add(slot.node)
        ref = self.remote.options(num_cpus=slot.num_cpus, num_gpus=slot.num_gpus, max_retries=0,
                                  scheduling_strategy=NodeAffinitySchedulingStrategy(slot.node, soft=False),
                                  name=f"sweep-worker-{self.count}").remote(job)
        self.live[ref] = slot
        self.count += 1
        gpu = f", {slot.num_gpus:g} GPU" if slot.num_gpus else ""
        print(f"worker {self.count - 1}: Ray node {slot.node[:12]} ({slot.num_cpus:g} CPU{gpu})", flush=True)

    def ended(self, ref) -> dict | None:
        """A worker's outcome, or None when its task died (the node went, the process crashed)."""
        from ray.exceptions import RayError, RayTaskError

        slot = self.live.pop(ref)
        try:
            return self.ray.get(ref)
        except RayTaskError as e:  # the worker's own code raised: its message and traceback, then a new worker
            print(f"worker on Ray node {slot.node[:12]} raised:\n{e}", file=sys.stderr, flush=True)
        except RayError as e:  # the node or the process died
            first = (str(e).strip().splitlines() or [type(e).__name__])[0].split(". ")[0][:300]
            print(f"worker on Ray node {slot.node[:12]} was lost ({type(e).__name__}: {first}); the cell it was "
                  f"training is failed and queued again by the study", flush=True)
        self.crashes[slot.key] = self.crashes.get(slot.key, 0) + 1
        return None

    def run(self) -> Ended:
        stop, errors = False, []
        while True:
            if not stop:
                for slot in self.free():
                    self.launch(slot)
            if not self.live:
                return errors[0] if errors else Ended() if stop else Ended(
                    "the Ray cluster has no live node with the resources of a worker "
                    f"({self.s.ray_cpus:g} CPU, sweep.ray_cpus, or a GPU)")
            done, _ = self.ray.wait(list(self.live), num_returns=1, timeout=POLL_S)
            for ref in done:
                outcome = self.ended(ref)
                if outcome is not None:  # a worker stops only when the study is done or the sweep gives up
                    stop = True
                    if outcome.error:
                        errors.append(outcome)

    def cancel(self, why: str) -> None:
        """The driver was stopped (Ctrl-C, SIGTERM): a KeyboardInterrupt in every worker, then force for
        those that did not end in time."""
        print(f"{why}: cancelling {len(self.live)} Ray worker(s)", file=sys.stderr, flush=True)
        for ref in self.live:
            self.ray.cancel(ref)
        if self.live:
            _, late = self.ray.wait(list(self.live), num_returns=len(self.live), timeout=CANCEL_WAIT_S)
            for ref in late:
                self.ray.cancel(ref, force=True)
            if late:
                print(f"{len(late)} worker(s) did not stop within {CANCEL_WAIT_S}s and were killed; their trials "
                      f"are recovered at the next start", file=sys.stderr)


def run_workers(sw) -> Ended:
    """Runs the sweep's workers on the Ray cluster until the study holds its target; an `Ended` with its
    error if the sweep gave up."""
    s = sw.definition.settings
    started = connect(s.ray_address)
    import ray

    nodes = ray.nodes()
    check_shared_stores(nodes, sw.url, sw.tracking.get("uri") or "sqlite:///mlruns/mlflow.db (the default)")
    launcher = Launcher(sw, nodes)
    print(describe(nodes, started, slots(nodes, s.trials_per_gpu, s.ray_cpus)), flush=True)
    t = time.time()
    try:
        return launcher.run()
    except KeyboardInterrupt as e:
        from src.run import interrupts

        launcher.cancel(interrupts.reason(e))
        raise
    finally:
        print(f"Ray workers: {launcher.count} started in {time.time() - t:.0f}s", flush=True)


def close() -> None:
    """Disconnects from Ray at the end of the sweep; a local instance `connect` started stops with it."""
    global _started_here
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            ray.shutdown()
    _started_here = False

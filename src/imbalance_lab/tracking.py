"""MLflow: experiment, parent run per sweep, child run per job, params, metrics, artifacts, run keys.

Everything goes through an explicit MlflowClient and run ids (no fluent "active run" state), so
that many runs in one process, and runs in several processes, never step on each other.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from imbalance_lab.paths import project_root

log = logging.getLogger(__name__)

PARENT_FILE = ".imbalance_lab_parent.json"
BATCH = 900  # MLflow accepts at most 1000 entities per log_batch call


# -- store and experiment ----------------------------------------------------------------------

def client_for(uri: str) -> LockRetryingClient:
    with _store_opening_lock(uri):
        return LockRetryingClient(MlflowClient(tracking_uri=uri))


@contextlib.contextmanager
def _store_opening_lock(uri: str) -> Iterator[None]:
    """Opening an SQLite store creates or upgrades its schema; processes doing it at the same moment
    race ("table experiments already exists") and can leave it half-migrated, so they take turns."""
    db_path = Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None
    if db_path is None or not db_path.parent.is_dir() or os.name != "posix":
        yield
        return
    import fcntl

    with open(db_path.with_name(db_path.name + "-lock"), "a") as handle:  # gitignored: mlflow.db-*
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class LockRetryingClient:
    """An MlflowClient whose calls are retried while an SQLite store is locked by another writer
    (parallel workers). A locked write is rolled back whole, so trying it again is safe."""

    RETRIES = 8

    def __init__(self, client: MlflowClient):
        self._client = client

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            for attempt in range(self.RETRIES):
                try:
                    return attr(*args, **kwargs)
                except Exception as err:
                    if "database is locked" not in str(err) or attempt == self.RETRIES - 1:
                        raise
                    log.warning("MLflow store locked by another writer; retrying %s.", name)
                    time.sleep(0.5 * 2**attempt)

        return call


def artifact_root_for(uri: str) -> str | None:
    """Artifacts of an SQLite store live beside the database file (mlartifacts/), not in ./mlruns
    relative to wherever the command happened to start."""
    parsed = urlparse(uri)
    if parsed.scheme != "sqlite":
        return None
    db_path = Path(uri[len("sqlite:///"):])
    return (db_path.parent / "mlartifacts").resolve().as_uri()


_experiment_ids: dict[tuple[str, str], str] = {}


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it (and the store) if needed; safe against a concurrent creator.
    Asked of the store once per process (experiments are not renamed or deleted under a sweep)."""
    key = (client.tracking_uri, name)
    if key not in _experiment_ids:
        _experiment_ids[key] = _open_experiment(client, name)
    return _experiment_ids[key]


def _open_experiment(client: MlflowClient, name: str) -> str:
    for attempt in range(5):
        try:  # opening a new SQLite store creates its schema, which races with any other opener
            found = client.get_experiment_by_name(name)
            if found is not None:
                return found.experiment_id
            return client.create_experiment(name, artifact_location=artifact_root_for(client.tracking_uri))
        except Exception as err:  # another process created the schema or the experiment first
            log.debug("Opening experiment %r, attempt %d: %s", name, attempt + 1, err)
            time.sleep(0.2 * (attempt + 1))
    found = client.get_experiment_by_name(name)
    if found is None:
        raise RuntimeError(f"Could not create or find the MLflow experiment {name!r} at {client.tracking_uri}.")
    return found.experiment_id


def finished_run_id(client: MlflowClient, exp_id: str, key: str) -> str | None:
    runs = client.search_runs(
        [exp_id], filter_string=f"tags.run_key = '{key}' and attributes.status = 'FINISHED'", max_results=1
    )
    return runs[0].info.run_id if runs else None


def mark_orphans_killed(client: MlflowClient, exp_id: str) -> int:
    """Runs left RUNNING by a process of this host that no longer exists are marked KILLED."""
    host = socket.gethostname()
    killed = 0
    for run in client.search_runs([exp_id], filter_string="attributes.status = 'RUNNING'", max_results=5000):
        tags = run.data.tags
        if tags.get("imbalance_lab.host") != host or not tags.get("imbalance_lab.pid", "").isdigit():
            continue
        if not _pid_alive(int(tags["imbalance_lab.pid"])):
            client.set_tag(run.info.run_id, "error", "the process running it died (killed or crashed)")
            client.set_terminated(run.info.run_id, status="KILLED")
            killed += 1
    return killed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@lru_cache(maxsize=1)
def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project_root(), capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def process_tags() -> dict[str, str]:
    tags = {"imbalance_lab.host": socket.gethostname(), "imbalance_lab.pid": str(os.getpid()),
            "git_commit": git_commit()}
    if "tensorflow" in sys.modules:  # how wide this worker's thread pools are (0 = TensorFlow's default)
        threading = sys.modules["tensorflow"].config.threading
        tags["imbalance_lab.tf_threads"] = str(threading.get_intra_op_parallelism_threads())
    return tags


# -- one run ---------------------------------------------------------------------------------------

class RunRecorder:
    """Logs to one MLflow run by id, in batches."""

    def __init__(self, client: MlflowClient, run_id: str):
        self.client, self.run_id = client, run_id

    def log_batch(self, metrics: dict[str, float] | None = None, history: list[dict] = (),
                  params: dict[str, str] | None = None, tags: dict[str, str] | None = None) -> None:
        """Metrics, per-epoch curves, params and tags in as few calls as MLflow's limits allow
        (each call is a store transaction: ~5-40 ms on SQLite)."""
        now = int(time.time() * 1000)
        items = ([Metric(k, float(v), now, 0) for k, v in (metrics or {}).items()]
                 + [Metric(k, float(v), now, int(row["epoch"])) for row in history for k, v in row.items() if k != "epoch"])
        param_items = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        tag_items = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        while items or param_items or tag_items:  # per call: <= 100 params, <= 100 tags, <= 1000 in all
            p, t = param_items[:100], tag_items[:100]
            m = items[: BATCH - len(p) - len(t)]
            self.client.log_batch(self.run_id, metrics=m, params=p, tags=t)
            items, param_items, tag_items = items[len(m):], param_items[100:], tag_items[100:]

    def log_artifacts(self, local_dir: str | Path) -> None:
        self.client.log_artifacts(self.run_id, str(local_dir))


def log_dataset_input(client: MlflowClient, run_id: str, features, targets, name: str, source: str,
                      digest: str, context: str = "train") -> None:
    """The data as an MLflow dataset input (what `mlflow.log_input` records), so that the UI's
    Dataset column shows it; by run id, not through a fluent active run."""
    import mlflow.data
    from mlflow.data.sources import CodeDatasetSource, LocalArtifactDatasetSource
    from mlflow.entities import DatasetInput, InputTag

    # A file is a local source; generated or bundled data is named by the code that makes it.
    origin = LocalArtifactDatasetSource(source) if source and Path(source).is_file() else \
        CodeDatasetSource({"loader": source or name})
    dataset = mlflow.data.from_numpy(features, source=origin, targets=targets, name=name, digest=digest[:36])
    client.log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", context)])])


class Writer:
    """Where a run's MLflow writes happen: now (`background=False`), or on one background thread,
    in the order they were submitted, so that a sweep's next job trains while the last one's
    figure, metrics and artifacts are written. The thread finishes its queue before the process
    exits (concurrent.futures joins it at interpreter shutdown); `wait()` drains it sooner. A new
    run starts only when at most `ahead` earlier writes (the last run's finishing) are pending."""

    def __init__(self, background: bool, ahead: int = 1):
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="mlflow-writer") if background else None
        self._pending: list[Future] = []
        self._keys: set[str] = set()  # run_keys of the runs submitted here
        self.ahead = ahead

    @property
    def background(self) -> bool:
        return self._pool is not None

    def submit(self, fn, *args) -> None:
        if self._pool is None:
            fn(*args)
            return
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._pool.submit(fn, *args))

    def admit(self, run_key: str) -> None:
        """A new run of `run_key` may start once at most `ahead` earlier tasks are queued or running."""
        self._keys.add(run_key)
        while len(self._pending) > self.ahead:
            self._pending.pop(0).result()

    def wait(self) -> None:
        while self._pending:
            self._pending.pop(0).result()

    def settle(self, run_key: str) -> None:
        """Before a skip check: a run of the same key submitted here is written to the end first, so
        that a sweep listing one config twice trains it once."""
        if run_key in self._keys:
            self.wait()


class QueuedRun:
    """One MLflow run whose writes go through a Writer in order: create (RUNNING, with its params),
    then either finish (log, then FINISHED) or end (FAILED / KILLED with the error). A write that
    fails on the background thread ends the run FAILED and is reported, never lost silently."""

    def __init__(self, writer: Writer, client: MlflowClient, exp_id: str, name: str, tags: dict[str, str],
                 params: dict[str, str]):
        self.writer, self.client, self.name = writer, client, name
        self.run_id: str | None = None
        self.failure: str | None = None
        writer.admit(tags.get("run_key", ""))
        writer.submit(self._create, exp_id, tags, params)

    def _create(self, exp_id: str, tags: dict[str, str], params: dict[str, str]) -> None:
        try:
            run = self.client.create_run(exp_id, run_name=self.name, tags={**process_tags(), **tags})
            self.run_id = run.info.run_id
            RunRecorder(self.client, self.run_id).log_batch(params=params)
        except Exception as err:
            self._failed(err)

    def finish(self, log: Callable[[RunRecorder], None], report: Callable[[str, str | None, str], None]) -> None:
        """Log with `log(recorder)`, then FINISHED; `report(status, run_id, reason)` says how it ended."""
        self.writer.submit(self._finish, log, report)

    def _finish(self, log: Callable[[RunRecorder], None], report) -> None:
        if self.failure is None:
            try:
                log(RunRecorder(self.client, self.run_id))
                self.client.set_terminated(self.run_id, status="FINISHED")
            except Exception as err:
                self._failed(err)
        report("FAILED" if self.failure else "FINISHED", self.run_id, self.failure or "")

    def end(self, status: str, error: str, tb: str | None = None) -> None:
        self.writer.submit(self._end, status, error, tb)

    def _end(self, status: str, error: str, tb: str | None) -> None:
        if self.run_id is not None:
            with contextlib.suppress(Exception):
                _end(self.client, self.run_id, status, error, tb)

    def _failed(self, err: Exception) -> None:
        self.failure = f"logging to MLflow failed: {type(err).__name__}: {err}"
        self._end("FAILED", self.failure, traceback.format_exc())
        if not self.writer.background:
            raise err
        log.error("Run %s: %s\n%s", self.name, self.failure, traceback.format_exc())


_background_writer: Writer | None = None


def background_writer() -> Writer:
    """The process's one background Writer (a sweep's jobs share it)."""
    global _background_writer
    if _background_writer is None:
        _background_writer = Writer(background=True)
    return _background_writer


def wait_for_writes() -> None:
    """Everything submitted to the background writer is in the store (or reported failed)."""
    if _background_writer is not None:
        _background_writer.wait()


def _end(client: MlflowClient, run_id: str, status: str, error: str, tb: str | None = None) -> None:
    """End a run whatever else is failing: never leave it RUNNING."""
    with contextlib.suppress(Exception):
        client.set_tag(run_id, "error", error[:5000])
        if tb:
            client.log_text(run_id, tb, "traceback.txt")
    client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.from_string(status)))


# -- sweeps ----------------------------------------------------------------------------------------

def write_parent(sweep_dir: Path, info: dict) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / PARENT_FILE).write_text(json.dumps(info))


def read_parent(sweep_dir: Path) -> dict | None:
    path = sweep_dir / PARENT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def ui_command(uri: str) -> str:
    if uri.startswith("sqlite:///") and Path(uri[len("sqlite:///"):]) == project_root() / "mlflow.db":
        return "make ui"
    return f"mlflow ui --backend-store-uri {uri} --host 127.0.0.1 --port 5000"


def start_sweep(uri: str, experiment: str, sweep_dir: Path, overrides: list[str]) -> dict:
    """Before any job starts: create the store and experiment once (no schema race between
    workers), mark runs orphaned by killed sweeps, open the parent run."""
    client = client_for(uri)
    exp_id = experiment_id(client, experiment)
    killed = mark_orphans_killed(client, exp_id)
    if killed:
        log.warning("Marked %d run(s) left RUNNING by a dead process as KILLED; they will be retrained.", killed)
    name = f"sweep {time.strftime('%Y-%m-%d %H:%M:%S')}"
    run = client.create_run(exp_id, run_name=name, tags={
        **process_tags(), "imbalance_lab.role": "sweep", "sweep.dir": str(sweep_dir),
        "sweep.overrides": " ".join(overrides)[:5000],
    })
    info = {"run_id": run.info.run_id, "experiment_id": exp_id, "uri": uri}
    write_parent(sweep_dir, info)
    return info


def end_sweep(info: dict, n_failed: int) -> None:
    client = client_for(info["uri"])
    client.set_tag(info["run_id"], "sweep.failed", str(n_failed))
    client.set_terminated(info["run_id"], status="FAILED" if n_failed else "FINISHED")


def child_tags(parent: dict | None) -> dict[str, str]:
    return {"mlflow.parentRunId": parent["run_id"]} if parent else {}


def tempdir() -> tempfile.TemporaryDirectory:
    return tempfile.TemporaryDirectory(prefix="imbalance-lab-")

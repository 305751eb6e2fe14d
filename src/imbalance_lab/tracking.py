"""MLflow: experiment, parent run per sweep, child run per job, params, metrics, artifacts, run keys.

Everything goes through an explicit MlflowClient and run ids (no fluent "active run" state), so
that many runs in one process, and runs in several processes, never step on each other.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import multiprocessing
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
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

_clients: dict[str, LockRetryingClient] = {}


def client_for(uri: str) -> LockRetryingClient:
    """This process's client of the store at `uri` (MLflow keeps one store object per URI anyway);
    the first opens the store, creating it if new."""
    if uri not in _clients:
        with _store_opening_lock(uri):
            _write_ahead_log(uri)
            _clients[uri] = LockRetryingClient(MlflowClient(tracking_uri=uri))
    return _clients[uri]


def _sqlite_path(uri: str) -> Path | None:
    """The database file of an SQLite store URI whose folder exists, else None."""
    db_path = Path(uri[len("sqlite:///"):].split("?", 1)[0]) if uri.startswith("sqlite:///") else None
    return db_path if db_path is not None and db_path.parent.is_dir() and db_path.name != ":memory:" else None


def _write_ahead_log(uri: str) -> None:
    """An SQLite store is switched to write-ahead logging (a property of the file, kept), and this
    process's connections to a store in that mode commit without waiting for the disk at every
    transaction (synchronous=NORMAL): a run's writes take ~1/3 less time. A commit is still never
    lost when a process crashes or is killed, only possibly the last ones on a power cut or OS crash,
    and the database stays consistent (sqlite.org/wal.html). If another process holds the store
    locked right now, it stays in its journal mode, with SQLite's full syncs. WAL needs the store
    on a local disk (for stores shared between machines, `tracking=server`): a store that a new
    connection cannot read once switched is switched back."""
    db_path = _sqlite_path(uri)
    if db_path is None:
        return
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    if not event.contains(Engine, "connect", _sqlite_connected):
        event.listen(Engine, "connect", _sqlite_connected)
    try:
        with contextlib.closing(sqlite3.connect(db_path, timeout=0.5)) as connection:
            if connection.execute("PRAGMA journal_mode=WAL").fetchone()[0] != "wal":
                return
    except sqlite3.Error as err:  # locked by another process right now: next time
        log.debug("Store %s stays in its journal mode: %s", db_path, err)
        return
    try:
        with contextlib.closing(sqlite3.connect(db_path, timeout=5)) as check:
            check.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except sqlite3.Error as err:
        log.warning("The store %s cannot be read in write-ahead-log mode (%s); back to a rollback journal.", db_path, err)
        with contextlib.suppress(sqlite3.Error), contextlib.closing(sqlite3.connect(db_path, timeout=5)) as connection:
            connection.execute("PRAGMA journal_mode=DELETE")


def _sqlite_connected(connection, _record) -> None:
    """Each new SQLite connection (SQLAlchemy's "connect" event): synchronous=NORMAL if its
    database is in WAL mode, the setting SQLite recommends for it; any other mode keeps FULL."""
    if isinstance(connection, sqlite3.Connection) and \
            connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal":
        connection.execute("PRAGMA synchronous=NORMAL")


@contextlib.contextmanager
def _store_opening_lock(uri: str) -> Iterator[None]:
    """Opening an SQLite store creates or upgrades its schema; processes doing it at the same moment
    race ("table experiments already exists") and can leave it half-migrated, so they take turns."""
    db_path = _sqlite_path(uri)
    if db_path is None or os.name != "posix":
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
    (parallel workers). A locked write is rolled back whole, so trying it again is safe. Also
    retried: logging a dataset input that another process is inserting at the same moment (MLflow
    looks the dataset up, then inserts it; the loser of that race finds it on the second try)."""

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
                    if not _retryable(name, err) or attempt == self.RETRIES - 1:
                        raise
                    log.warning("MLflow store busy with another writer (%s); retrying %s.", str(err)[:80], name)
                    time.sleep(0.5 * 2**attempt)

        return call


def _retryable(call: str, err: Exception) -> bool:
    text = str(err)
    return "database is locked" in text or (call == "log_inputs" and "UNIQUE constraint failed: datasets" in text)


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
    """The id of an active FINISHED run of `key` in the experiment, if any (the skip check, once per
    job). An SQLite store is asked with one indexed query (<1 ms); MLflow's search_runs, used
    otherwise, costs 3-8 ms a job in a sweep (its filter parser and ORM)."""
    found = _finished_in_sqlite(client.tracking_uri, exp_id, key)
    if found is not _ASK_MLFLOW:
        return found
    runs = client.search_runs(
        [exp_id], filter_string=f"tags.run_key = '{key}' and attributes.status = 'FINISHED'", max_results=1
    )
    return runs[0].info.run_id if runs else None


_ASK_MLFLOW = object()
# MLflow's schema for runs and their tags (unchanged since MLflow 1.x; a store without it, or any
# error, goes to search_runs); "active": what search_runs returns by default (not deleted), in its
# order (the latest start first, then the run id).
_FINISHED_SQL = ("SELECT runs.run_uuid FROM runs JOIN tags ON tags.run_uuid = runs.run_uuid "
                 "WHERE runs.experiment_id = ? AND runs.status = 'FINISHED' AND runs.lifecycle_stage = 'active' "
                 "AND tags.key = 'run_key' AND tags.value = ? ORDER BY runs.start_time DESC, runs.run_uuid LIMIT 1")
_readers: dict[tuple[int, str], sqlite3.Connection] = {}  # (pid, store URI) -> connection: never shared across fork


def _finished_in_sqlite(uri: str, exp_id: str, key: str):
    if not str(exp_id).isdigit():
        return _ASK_MLFLOW
    try:
        reader = _readers.get((os.getpid(), uri))
        if reader is None:  # once per store and process: the file is looked up then, not per job
            db_path = _sqlite_path(uri)
            if db_path is None:
                return _ASK_MLFLOW
            reader = _readers[(os.getpid(), uri)] = sqlite3.connect(db_path, timeout=30, check_same_thread=False)
        rows = reader.execute(_FINISHED_SQL, (int(exp_id), key)).fetchall()  # to the end: no read left open
    except sqlite3.Error as err:
        log.debug("Skip check through MLflow's search (%s).", err)
        return _ASK_MLFLOW
    return rows[0][0] if rows else None


def mark_orphans_killed(client: MlflowClient, exp_id: str, parent_run_id: str | None = None) -> int:
    """Runs left RUNNING by a process of this host that no longer exists are marked KILLED (only
    the children of `parent_run_id` if given)."""
    host = socket.gethostname()
    killed = 0
    query = "attributes.status = 'RUNNING'" + (f" and tags.mlflow.parentRunId = '{parent_run_id}'"
                                               if parent_run_id else "")
    for run in client.search_runs([exp_id], filter_string=query, max_results=5000):
        tags = run.data.tags
        if tags.get("imbalance_lab.host") != host or not tags.get("imbalance_lab.pid", "").isdigit():
            continue
        if not _pid_alive(int(tags["imbalance_lab.pid"])):
            client.set_tag(run.info.run_id, "error", "the process running it stopped before ending it "
                                                     "(killed, crashed, or its sweep was interrupted)")
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
    return not _zombie(pid)


def _zombie(pid: int) -> bool:
    """Dead but not yet reaped by its parent (Linux; elsewhere assumed not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]


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


def dataset_input(features, targets, name: str, source: str, digest: str, context: str = "train"):
    """The data as an MLflow DatasetInput (what `mlflow.log_input` records, so that the UI's Dataset
    column shows it): schema and shape only, so it is small enough to hand to the writer."""
    import mlflow.data
    from mlflow.data.sources import CodeDatasetSource, LocalArtifactDatasetSource
    from mlflow.entities import DatasetInput, InputTag

    # A file is a local source; generated or bundled data is named by the code that makes it.
    origin = LocalArtifactDatasetSource(source) if source and Path(source).is_file() else \
        CodeDatasetSource({"loader": source or name})
    dataset = mlflow.data.from_numpy(features, source=origin, targets=targets, name=name, digest=digest[:36])
    return DatasetInput(dataset._to_mlflow_entity(), [InputTag("mlflow.data.context", context)])


@dataclass
class RunPayload:
    """Everything a finished run receives, as plain data (it may cross to the writer process):
    metrics, curves, params and tags for one batch; artifacts as texts and as figures drawn by
    `drawer` ("module:function", called as function(path=..., **kwargs)); the dataset input."""
    metrics: dict[str, float]
    history: list[dict]
    params: dict[str, str]
    tags: dict[str, str]
    texts: dict[str, str] = field(default_factory=dict)
    figures: dict[str, tuple[str, dict]] = field(default_factory=dict)
    dataset: object | None = None


def write_payload(client: MlflowClient, run_id: str, payload: RunPayload) -> None:
    RunRecorder(client, run_id).log_batch(payload.metrics, payload.history, payload.params, payload.tags)
    with tempdir() as tmp:
        folder = Path(tmp)
        for name, text in payload.texts.items():
            (folder / name).write_text(text)
        for name, (drawer, kwargs) in payload.figures.items():
            module, function = drawer.split(":")
            getattr(importlib.import_module(module), function)(path=folder / name, **kwargs)
        log_artifacts(client, run_id, folder)
    if payload.dataset is not None:
        client.log_inputs(run_id, [payload.dataset])


def log_artifacts(client: MlflowClient, run_id: str, folder: Path) -> None:
    """A folder's files into the run's artifacts. For a run created here, straight into the artifact
    location its creation returned: MlflowClient.log_artifacts would first read the whole run back
    from the store to find it (~13 ms on SQLite, a request to a server)."""
    location = _artifact_uris.get(run_id)  # dropped with the run's token (_finish_run, _end_run)
    if location is None or client.tracking_uri.startswith("databricks"):
        client.log_artifacts(run_id, str(folder))
        return
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    get_artifact_repository(location, tracking_uri=client.tracking_uri).log_artifacts(str(folder))


# The MLflow side of QueuedRun. These run where the Writer writes (this process, or its writer
# process), in submission order; a run is known there by a token until MLflow gives it an id.
_runs: dict[str, str] = {}       # token -> run id
_failures: dict[str, str] = {}   # token -> why its writes failed
_artifact_uris: dict[str, str] = {}  # run id -> its artifact location, until its artifacts are logged

def _create_run(uri: str, token: str, exp_id: str, name: str, tags: dict[str, str], params: dict[str, str],
                strict: bool) -> str | None:
    """Open the run RUNNING with its tags and params; its id."""
    client = client_for(uri)
    try:
        info = client.create_run(exp_id, run_name=name, tags=tags).info
        _runs[token], _artifact_uris[info.run_id] = info.run_id, info.artifact_uri
        RunRecorder(client, _runs[token]).log_batch(params=params)
    except Exception as err:
        _write_failed(client, token, err, strict)
    return _runs.get(token)


def _finish_run(uri: str, token: str, payload: RunPayload, strict: bool,
                run_id: str | None = None) -> tuple[str, str | None, str]:
    """Log the payload, then FINISHED; (status, run id, reason). `run_id`: the id the run was
    created with, for a writer that did not create it (the one before it died)."""
    client = client_for(uri)
    if run_id is not None:
        _runs.setdefault(token, run_id)
    if token not in _runs:
        _failures.setdefault(token, "the MLflow run was never created (its writer process died first)")
    if token not in _failures:
        try:
            write_payload(client, _runs[token], payload)
            client.set_terminated(_runs[token], status="FINISHED")
        except Exception as err:
            _write_failed(client, token, err, strict)
    failure, run_id = _failures.pop(token, ""), _runs.pop(token, None)
    _artifact_uris.pop(run_id, None)
    return ("FAILED" if failure else "FINISHED"), run_id, failure


def _end_run(uri: str, token: str, status: str, error: str, tb: str | None, run_id: str | None = None) -> None:
    _failures.pop(token, None)
    run_id = _runs.pop(token, run_id)
    _artifact_uris.pop(run_id, None)
    if run_id is not None:
        with contextlib.suppress(Exception):
            _end(client_for(uri), run_id, status, error, tb)


def _write_failed(client: MlflowClient, token: str, err: Exception, strict: bool) -> None:
    """A write failed: the run ends FAILED with the error; raised when writing now (`strict`), else
    kept for the run's report."""
    _failures[token] = f"logging to MLflow failed: {type(err).__name__}: {err}"
    if token in _runs:
        with contextlib.suppress(Exception):
            _end(client, _runs[token], "FAILED", _failures[token], traceback.format_exc())
    if strict:
        _failures.pop(token)
        _artifact_uris.pop(_runs.pop(token, None), None)
        raise err
    log.error("%s\n%s", _failures[token], traceback.format_exc())


def _writer_process() -> ProcessPoolExecutor:
    return ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"), initializer=_writer_started)


def _writer_started() -> None:
    """In the writer process: no TensorFlow, only the store (its logging goes to the terminal).
    Ctrl-C reaches the whole process group, but only the sweep's process acts on it: it ends the
    interrupted run KILLED, and the writer finishes every write queued before (nothing trained is
    lost). If the sweep's process is killed outright, the writer ends at once: what it had not
    written stays RUNNING, and the next sweep marks it KILLED (its pid is dead). The store's code
    is imported now (~1 s), not later under the store-opening lock."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:  # the sweep was killed (kill -9): stop too, as the thread of old did
        threading.Thread(target=lambda: (parent.join(), os._exit(1)), daemon=True).start()
    logging.basicConfig(level=logging.WARNING, format="[mlflow-writer] %(levelname)s %(message)s")
    importlib.import_module("mlflow.store.tracking.sqlalchemy_store")


class Writer:
    """Where a run's MLflow writes happen: now (`background=False`), or in order in one writer
    process, so that a sweep's next job trains while the last one's figure, metrics and artifacts
    are written; a process (not a thread) because MLflow's store is Python that would otherwise
    compete with training for the GIL. The process finishes its queue before this one exits
    (concurrent.futures joins it at interpreter shutdown); `wait()` drains it sooner. A new run
    starts only when at most `ahead` earlier writes are pending: by default the last run's two
    (its creation and its finishing), so that a quick run does not wait for the writes of the run
    before while the writer catches up, which it does during any run that trains longer."""

    def __init__(self, background: bool, ahead: int = 2):
        self._pool = _writer_process() if background else None
        self._pending: list[Future] = []
        if self._pool is not None:  # start it now: it imports MLflow while this process goes on
            self.submit(os.getpid)
        self._keys: set[tuple[str, str, str]] = set()  # (store, experiment id, run_key) of the runs submitted here
        self.ahead = ahead

    @property
    def background(self) -> bool:
        return self._pool is not None

    def submit(self, fn, *args, then: Callable | None = None) -> None:
        """`fn(*args)` here and now (its errors raised), or queued in the writer process; then
        `then(result, error)` here (in the background: once `fn` is done, before `wait()` returns)."""
        if self._pool is None:
            result = fn(*args)
            if then is not None:
                then(result, None)
            return
        settled: Future = Future()  # done once `then` has run: what wait() waits for

        def after(written: Future) -> None:
            try:
                if then is not None:
                    error = written.exception()
                    then(None if error else written.result(), error)
            finally:
                settled.set_result(None)

        try:
            written = self._pool.submit(fn, *args)
        except BrokenProcessPool as err:  # the writer process died (killed, out of memory): a new one
            log.error("The MLflow writer process died (%s); starting another.", err)
            self._pool = _writer_process()
            written = self._pool.submit(fn, *args)
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(settled)
        written.add_done_callback(after)

    def admit(self, run: tuple[str, str, str]) -> None:
        """A new run, (store, experiment id, run_key), may start once at most `ahead` earlier tasks
        are queued or running."""
        self._keys.add(run)
        while len(self._pending) > self.ahead:
            self._pending.pop(0).result()

    def wait(self) -> None:
        while self._pending:
            self._pending.pop(0).result()

    def settle(self, run: tuple[str, str, str]) -> None:
        """Before a skip check: a run of the same (store, experiment id, run_key) submitted here is
        written to the end first, so that a sweep listing one config twice trains it once."""
        if run in self._keys:
            self.wait()


class QueuedRun:
    """One MLflow run whose writes go through a Writer in order: create (RUNNING, with its params),
    then either finish (log, then FINISHED) or end (FAILED / KILLED with the error). A write that
    fails in the background ends the run FAILED and is reported, never lost silently."""

    def __init__(self, writer: Writer, uri: str, exp_id: str, name: str, tags: dict[str, str],
                 params: dict[str, str]):
        self.writer, self.uri, self.name = writer, uri, name
        self.token = uuid.uuid4().hex
        self.run_id: str | None = None  # once the run exists (at once when writing now)
        writer.admit((uri, exp_id, tags.get("run_key", "")))
        writer.submit(_create_run, uri, self.token, exp_id, name, {**process_tags(), **tags}, params,
                      not writer.background, then=self._created)

    def _created(self, run_id: str | None, error: BaseException | None) -> None:
        self.run_id = run_id

    def finish(self, payload: RunPayload, report: Callable[[str, str | None, str], None]) -> None:
        """Log `payload`, then FINISHED; `report(status, run_id, reason)` says how it ended."""
        def reported(outcome: tuple | None, error: BaseException | None) -> None:
            if error is not None:  # not handed over (e.g. could not be pickled) or the writer died
                reason = f"the MLflow writer failed: {type(error).__name__}: {error}"
                log.error("Run %s: %s", self.name, reason)
                if self.run_id is not None:  # ended from here: not left RUNNING under a live pid
                    with contextlib.suppress(Exception):
                        _end(client_for(self.uri), self.run_id, "FAILED", reason)
                outcome = ("FAILED", self.run_id, reason)
            report(*outcome)

        self.writer.submit(_finish_run, self.uri, self.token, payload, not self.writer.background, self.run_id,
                           then=reported)

    def end(self, status: str, error: str, tb: str | None = None) -> None:
        self.writer.submit(_end_run, self.uri, self.token, status, error, tb, self.run_id)


_background_writer: Writer | None = None


def background_writer(uri: str | None = None) -> Writer:
    """The process's one background Writer (a sweep's jobs share it). Started with the store at
    `uri` opened and the modules of a run's writes imported in it, while this process imports
    TensorFlow (else the first run waits ~1 s for them)."""
    global _background_writer
    if _background_writer is None:
        _background_writer = Writer(background=True)
        if uri is not None:
            _background_writer.submit(_warm_up, uri)
    return _background_writer


def _warm_up(uri: str) -> None:
    """In the writer process: what the first run's writes would otherwise do first. A store that
    cannot be opened is reported by those writes (and by the sweep's start before them)."""
    with contextlib.suppress(Exception):
        client_for(uri)
    for module in ("mlflow.data", "mlflow.store.artifact.local_artifact_repo", "imbalance_lab.report.plots"):
        importlib.import_module(module)


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

"""MLflow through its public API: the store and experiment, one parent run per sweep, one child run
per job (params at its start, per-epoch curves as it trains, metrics, tags and artifacts at its
end), the run keys that let a rerun skip finished configs, and runs orphaned by dead processes.

Every write happens in the process that runs the job, through MlflowClient (runs are addressed by
id, so many runs of one process never step on each other); the dataset input goes through the
fluent API (`mlflow.log_input`), which is the public way to log one.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlparse

import mlflow
from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.tracking import MlflowClient

from imbalance_lab.errors import FULL_TEXTS, ImbalanceLabError, disk_full
from imbalance_lab.paths import console_script, one_at_a_time, project_root

log = logging.getLogger(__name__)

PARENT_FILE = ".imbalance_lab_parent.json"
BATCH = 1000            # MLflow accepts at most 1000 entities per log_batch call (100 params, 100 tags)
FLUSH_SECONDS = 5.0     # per-epoch curves reach the store at least this often while a run trains
MIN_FREE_MB = 50        # a store's disk with less free space is refused at the start (a run writes ~0.1-1 MB)


# -- store and experiment ----------------------------------------------------------------------

class _FullDiskRecords(logging.Filter):
    """MLflow logs each SQL write that fails with its traceback; a full disk stops the sweep with one
    sentence instead (sweep.stop_if_disk_full), so MLflow's records of that error are left out."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return disk_full(error) is None and not any(text in record.getMessage().lower() for text in FULL_TEXTS)


logging.getLogger("mlflow.store.db.utils").addFilter(_FullDiskRecords())

_clients: dict[str, RetryingClient] = {}


def client_for(uri: str) -> RetryingClient:
    """This process's client of the store at `uri`; the first opens the store, creating it if new."""
    if uri not in _clients:
        with _store_opening_lock(uri):
            _clients[uri] = RetryingClient(MlflowClient(tracking_uri=uri))
    return _clients[uri]


def sqlite_path(uri: str) -> Path | None:
    """The database file of an SQLite store URI, else None."""
    if not uri.startswith("sqlite:///"):
        return None
    path = Path(uri[len("sqlite:///"):].split("?", 1)[0])
    return None if path.name == ":memory:" else path


@contextlib.contextmanager
def _store_opening_lock(uri: str) -> Iterator[None]:
    """Opening an SQLite store creates or upgrades its schema; processes doing it at the same moment
    race ("table experiments already exists") and can leave it half-migrated, so they take turns."""
    db_path = sqlite_path(uri)
    if db_path is None or not db_path.parent.is_dir():
        yield
        return
    with one_at_a_time(db_path.with_name(db_path.name + "-lock")):  # gitignored: mlflow.db-*
        yield


RETRIES = 8


def retrying(call, name: str, *args, **kwargs):
    """`call(*args, **kwargs)`, tried again while another process holds an SQLite store locked past
    MLflow's own wait, or inserts the same new dataset at the same moment (MLflow looks a dataset
    up, then inserts it: the loser of that race finds it on the second try). A failed write is
    rolled back whole, so trying it again is safe."""
    for attempt in range(RETRIES):
        try:
            return call(*args, **kwargs)
        except Exception as err:
            text = str(err)
            if attempt == RETRIES - 1 or not ("database is locked" in text or "UNIQUE constraint failed: datasets" in text):
                raise
            log.warning("MLflow store busy with another writer (%s); retrying %s.", text[:80], name)
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")


class RetryingClient:
    """An MlflowClient whose calls go through `retrying`."""

    def __init__(self, client: MlflowClient):
        self._client = client

    def __getattr__(self, name: str):
        attr = getattr(self._client, name)
        if not callable(attr):
            return attr
        return lambda *args, **kwargs: retrying(attr, name, *args, **kwargs)


def check_store(uri: str) -> None:
    """Before anything trains: the store answers, or one sentence says why not and what to do."""
    parsed = urlparse(uri)
    if parsed.scheme in ("http", "https"):
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10) as response:
                response.read()
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ImbalanceLabError(
                f"The MLflow tracking server at {uri} does not answer ({reason}): is the server running? Start "
                f"one with `make server`, or log to the embedded store by unsetting MLFLOW_TRACKING_URI and "
                f"tracking.uri.") from None
        return
    db_path = sqlite_path(uri)
    if db_path is None:
        return
    if not db_path.parent.is_dir():
        raise ImbalanceLabError(f"tracking.uri={uri}: the folder {db_path.parent} does not exist; create it or "
                                f"point tracking.uri at sqlite:///ABSOLUTE/PATH/mlflow.db in an existing folder.")
    if db_path.exists():
        with open(db_path, "rb") as handle:
            head = handle.read(16)
        if head and head != b"SQLite format 3\x00":
            raise ImbalanceLabError(f"tracking.uri={uri}: {db_path} is not an SQLite database (damaged or another "
                                    f"file); move it away or point tracking.uri at a new file.")
    target = db_path if db_path.exists() else db_path.parent
    if not os.access(target, os.W_OK):
        raise ImbalanceLabError(f"tracking.uri={uri}: {target} is read-only for this user; make it writable or "
                                f"point tracking.uri at a store in a folder you can write.")
    free = shutil.disk_usage(db_path.parent).free
    if free < MIN_FREE_MB * 2**20:
        raise ImbalanceLabError(f"tracking.uri={uri}: the disk holding {db_path.parent} has {free / 2**20:.1f} MB free, "
                                f"too little for the runs' metrics and artifacts (keep {MIN_FREE_MB} MB or more); free "
                                f"some space or point tracking.uri at a store on another disk.")


def artifact_root_for(uri: str) -> str | None:
    """Artifacts of an SQLite store live beside the database file (mlartifacts/), not in ./mlruns
    relative to wherever the command happened to start."""
    db_path = sqlite_path(uri)
    return None if db_path is None else (db_path.parent / "mlartifacts").resolve().as_uri()


_experiment_ids: dict[tuple[str, str], str] = {}


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it (and the store) if needed; safe against a concurrent creator."""
    key = (client.tracking_uri, name)
    if key not in _experiment_ids:
        _experiment_ids[key] = _open_experiment(client, name)
    return _experiment_ids[key]


def _open_experiment(client: MlflowClient, name: str) -> str:
    for attempt in range(5):
        try:
            found = client.get_experiment_by_name(name)
            if found is not None:
                return found.experiment_id
            return client.create_experiment(name, artifact_location=artifact_root_for(client.tracking_uri))
        except Exception as err:  # another process created it first
            log.debug("Opening experiment %r, attempt %d: %s", name, attempt + 1, err)
            time.sleep(0.2 * (attempt + 1))
    found = client.get_experiment_by_name(name)
    if found is None:
        raise ImbalanceLabError(f"Could not create or find the MLflow experiment {name!r} at {client.tracking_uri}; "
                                f"check that the store is reachable and writable.")
    return found.experiment_id


def finished_run_id(client: MlflowClient, exp_id: str, key: str) -> str | None:
    """The latest FINISHED (and not deleted) run of `key` in the experiment, if any."""
    runs = client.search_runs([exp_id], filter_string=f"tags.run_key = '{key}' and attributes.status = 'FINISHED'",
                              max_results=1)
    return runs[0].info.run_id if runs else None


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
        if not pid_alive(int(tags["imbalance_lab.pid"])):
            end_run(client, run.info.run_id, "KILLED", "the process running it stopped before ending it "
                                                       "(killed, crashed, or its sweep was interrupted)")
            killed += 1
    return killed


def pid_alive(pid: int) -> bool:
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
    threads = os.environ.get("TF_NUM_INTRAOP_THREADS")  # how wide this worker's pools are (sweep.limit_tf_threads)
    if not threads and "tensorflow" in sys.modules:
        threads = str(sys.modules["tensorflow"].config.threading.get_intra_op_parallelism_threads())
    tags["imbalance_lab.tf_threads"] = threads or "0"  # 0: TensorFlow's default, every core
    return tags


def end_run(client: MlflowClient, run_id: str, status: str, error: str, tb: str | None = None) -> None:
    """End a run whatever else is failing: never leave it RUNNING."""
    with contextlib.suppress(Exception):
        client.set_tag(run_id, "error", error[:5000])
        if tb:
            client.log_text(run_id, tb, "traceback.txt")
    client.set_terminated(run_id, status=RunStatus.to_string(RunStatus.from_string(status)))


# -- one run ---------------------------------------------------------------------------------------

@dataclass
class RunPayload:
    """Everything a finished run receives besides what it logged while training."""
    metrics: dict[str, float]
    params: dict[str, str]
    tags: dict[str, str]
    texts: dict[str, str] = field(default_factory=dict)      # artifact name -> text
    figures: dict[str, object] = field(default_factory=dict)  # artifact name -> matplotlib Figure
    dataset: object | None = None                             # an mlflow.data Dataset (the training rows)


class ChildRun:
    """One job's MLflow run: created RUNNING with its tags and params, fed per-epoch curves while it
    trains, then either finished (its payload, then FINISHED) or ended FAILED/KILLED with the error."""

    def __init__(self, uri: str, exp_id: str, name: str, tags: dict[str, str], params: dict[str, str]):
        self.uri, self.client = uri, client_for(uri)
        self.run_id = self.client.create_run(exp_id, run_name=name, tags={**process_tags(), **tags}).info.run_id
        self._pending: list[Metric] = []
        self._flushed = time.monotonic()
        self.log_batch(params=params)

    def log_batch(self, metrics: list[Metric] = (), params: dict[str, str] | None = None,
                  tags: dict[str, str] | None = None) -> None:
        """As few calls as MLflow's limits allow: <= 100 params, <= 100 tags, <= 1000 entities each."""
        items = list(metrics)
        param_items = [Param(k, str(v)[:6000]) for k, v in (params or {}).items()]
        tag_items = [RunTag(k, str(v)) for k, v in (tags or {}).items()]
        while items or param_items or tag_items:
            p, t = param_items[:100], tag_items[:100]
            m = items[: BATCH - len(p) - len(t)]
            self.client.log_batch(self.run_id, metrics=m, params=p, tags=t)
            items, param_items, tag_items = items[len(m):], param_items[100:], tag_items[100:]

    def log_epoch(self, row: dict) -> None:
        """One epoch's curves (step = epoch), written at least every FLUSH_SECONDS."""
        now = int(time.time() * 1000)
        self._pending += [Metric(k, float(v), now, int(row["epoch"])) for k, v in row.items() if k != "epoch"]
        if time.monotonic() - self._flushed >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        self.log_batch(pending)
        self._flushed = time.monotonic()

    def finish(self, payload: RunPayload) -> None:
        """Curves, metrics, params, tags, artifacts and the dataset input, then FINISHED."""
        now = int(time.time() * 1000)
        self.flush()
        self.log_batch([Metric(k, float(v), now, 0) for k, v in payload.metrics.items()], payload.params, payload.tags)
        for name, figure in payload.figures.items():
            self.client.log_figure(self.run_id, figure, name, save_kwargs={"bbox_inches": "tight", "dpi": 100})
        for name, text in payload.texts.items():
            self.client.log_text(self.run_id, text, name)
        if payload.dataset is not None:
            retrying(log_dataset_and_finish, "log_input", self.uri, self.run_id, payload.dataset)
        else:
            self.client.set_terminated(self.run_id, "FINISHED")

    def end(self, status: str, error: str, tb: str | None = None) -> None:
        with contextlib.suppress(Exception):  # the curves so far are kept
            self.flush()
        with contextlib.suppress(Exception):
            if mlflow.active_run() is not None:
                mlflow.end_run(status)
        end_run(self.client, self.run_id, status, error, tb)


def log_dataset_and_finish(uri: str, run_id: str, dataset, context: str = "train") -> None:
    """The dataset as the run's input (fluent API: the public way to log one), then FINISHED."""
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_id=run_id, log_system_metrics=False):  # FINISHED on leaving the block
        mlflow.log_input(dataset, context=context)


def dataset_input(features, targets, name: str, source: str, digest: str):
    """The training rows as an MLflow dataset (the UI's Dataset column): schema and shape, named
    by the file they come from or by the code that makes them."""
    import mlflow.data
    from mlflow.data.sources import CodeDatasetSource, LocalArtifactDatasetSource

    origin = LocalArtifactDatasetSource(source) if source and Path(source).is_file() else \
        CodeDatasetSource({"loader": source or name})
    return mlflow.data.from_numpy(features, source=origin, targets=targets, name=name, digest=digest[:36])


# -- sweeps ----------------------------------------------------------------------------------------

def write_parent(sweep_dir: Path, info: dict) -> None:
    sweep_dir.mkdir(parents=True, exist_ok=True)
    (sweep_dir / PARENT_FILE).write_text(json.dumps(info))


def read_parent(sweep_dir: Path) -> dict | None:
    path = sweep_dir / PARENT_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def ui_command(uri: str) -> str:
    """How to browse the runs in the store at `uri`, pasteable from any folder with the venv inactive:
    `make ui` in the project for its own store, else the absolute `mlflow ui` command over the
    store's absolute path; a tracking server serves its own UI, so its address."""
    import shlex

    if urlparse(uri).scheme in ("http", "https"):
        return f"{uri} (the tracking server's own UI)"
    db_path = sqlite_path(uri)
    if db_path is not None:
        db_path = db_path.resolve()
        uri = f"sqlite:///{db_path}"
        if db_path == project_root() / "mlflow.db" and os.environ.get("MLFLOW_TRACKING_URI") in (None, "", uri):
            return f"make -C {shlex.quote(str(project_root()))} ui"
    return ("MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false " + shlex.join(
        [console_script("mlflow"), "ui", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", "5000",
         "--workers", "1"]))


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
    info = {"run_id": run.info.run_id, "experiment_id": exp_id, "uri": uri, "pid": os.getpid(),
            "host": socket.gethostname(), "started": time.time()}
    write_parent(sweep_dir, info)
    return info


def end_sweep(info: dict, n_failed: int) -> None:
    client = client_for(info["uri"])
    client.set_tag(info["run_id"], "sweep.failed", str(n_failed))
    client.set_terminated(info["run_id"], status="FAILED" if n_failed else "FINISHED")


def child_tags(parent: dict | None) -> dict[str, str]:
    return {"mlflow.parentRunId": parent["run_id"]} if parent else {}

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
from collections.abc import Iterator
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


def experiment_id(client: MlflowClient, name: str) -> str:
    """The experiment's id, creating it (and the store) if needed; safe against a concurrent creator."""
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

    def log_params(self, params: dict[str, str]) -> None:
        items = [Param(k, str(v)[:6000]) for k, v in params.items()]
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[i : i + 100])

    def set_tags(self, tags: dict[str, str]) -> None:
        items = [RunTag(k, str(v)) for k, v in tags.items()]
        for i in range(0, len(items), BATCH):
            self.client.log_batch(self.run_id, tags=items[i : i + BATCH])

    def log_metrics(self, values: dict[str, float], step: int = 0) -> None:
        now = int(time.time() * 1000)
        self._log_metric_entities([Metric(k, float(v), now, step) for k, v in values.items()])

    def log_history(self, rows: list[dict]) -> None:
        """Per-epoch curves (step = epoch) in as few calls as possible."""
        now = int(time.time() * 1000)
        metrics = [Metric(k, float(v), now, int(row["epoch"])) for row in rows for k, v in row.items() if k != "epoch"]
        self._log_metric_entities(metrics)

    def _log_metric_entities(self, metrics: list[Metric]) -> None:
        for i in range(0, len(metrics), BATCH):
            self.client.log_batch(self.run_id, metrics=metrics[i : i + BATCH])

    def log_artifacts(self, local_dir: str | Path) -> None:
        self.client.log_artifacts(self.run_id, str(local_dir))

    def log_text(self, text: str, name: str) -> None:
        self.client.log_text(self.run_id, text, name)


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


@contextlib.contextmanager
def run_context(client: MlflowClient, exp_id: str, name: str, tags: dict[str, str]) -> Iterator[RunRecorder]:
    """A run that always ends: FINISHED, FAILED (error tag + traceback.txt) or KILLED (Ctrl-C)."""
    run = client.create_run(exp_id, run_name=name, tags={**process_tags(), **tags})
    recorder = RunRecorder(client, run.info.run_id)
    try:
        yield recorder
    except KeyboardInterrupt:
        _end(client, run.info.run_id, "KILLED", error="interrupted (Ctrl-C)")
        raise
    except BaseException as err:
        _end(client, run.info.run_id, "FAILED", error=f"{type(err).__name__}: {err}", tb=traceback.format_exc())
        raise
    else:
        client.set_terminated(run.info.run_id, status="FINISHED")


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

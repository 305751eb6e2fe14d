"""Shared fixtures: a real SQLite MLflow store per test and tiny, fast configs."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Resampled sets are cached on disk between runs: this test session's own cache, never the project's.
os.environ.setdefault("IMBALANCE_LAB_CACHE", tempfile.mkdtemp(prefix="imbalance-lab-test-cache-"))
# Hydra's run and sweep folders of the commands the tests start: under the session's temp folder.
os.environ.setdefault("IMBALANCE_LAB_OUTPUT", tempfile.mkdtemp(prefix="imbalance-lab-test-output-"))

from imbalance_lab.configs import compose  # noqa: E402


class _CurrentStderr:
    """absl's log handler (made when TensorFlow is first imported, here during collection) keeps
    the sys.stderr of that moment, pytest's capture file; Hydra's logging setup in an in-process
    command closes every handler, and absl closes a stream that is not the current sys.stderr, so
    the session's capture would be closed under pytest. Write to whatever sys.stderr is now, and
    never close it (a real process's handler holds the real stderr, which absl never closes)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def close(self) -> None:
        pass


def _absl_writes_to_the_current_stderr() -> None:
    import absl.logging

    absl.logging.get_absl_handler().python_handler.stream = _CurrentStderr()


_absl_writes_to_the_current_stderr()

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# Small enough to train in a second or two, imbalanced enough to matter.
TINY = [
    "dataset=synthetic", "dataset.n_samples=600", "dataset.n_features=8", "dataset.n_informative=4",
    "dataset.priors=[0.7,0.2,0.1]", "trainer=quick", "trainer.epochs=3", "model.widths=[16]",
]


@pytest.fixture(scope="session")
def thread_folder(tmp_path_factory) -> Path:
    """The forum thread's Train/ and Test/ folders in miniature: six expressions, 20-60 training
    and 4-20 test PNGs of 32x32 per class, in the thread's proportions."""
    from image_folders import THREAD_TEST_COUNTS, THREAD_TRAIN_COUNTS, scaled_counts, write_folder

    root = tmp_path_factory.mktemp("faces")
    write_folder(root / "Train", scaled_counts(THREAD_TRAIN_COUNTS, 60, 20), seed=0)
    write_folder(root / "Test", scaled_counts(THREAD_TEST_COUNTS, 20, 4), seed=1)
    return root


@pytest.fixture
def store(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def make_cfg(store):
    """Compose a config as the command line would, logging to the test's own store."""

    def make(*overrides: str):
        return compose([*TINY, *overrides, f"tracking.uri={store}", "tracking.experiment=test"])

    return make


def client(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri)


def cli_env(store: str, **extra: str) -> dict[str, str]:
    """The environment of a command the tests start: the test's store, and tests/ importable (gate.py)."""
    path = os.pathsep.join(p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "MLFLOW_TRACKING_URI": store, "PYTHONPATH": path, **extra}


def run_cli(*args: str, cwd: Path, store: str, timeout: int = 600, check: bool = True,
            env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed console script, in a fresh process, as a user types it."""
    proc = subprocess.run([str(BIN / "imbalance-lab"), *args], cwd=cwd, env=env or cli_env(store),
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"imbalance-lab {' '.join(args)} exited {proc.returncode}:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return proc


# A small real sweep (2 losses x 2 samplers x 3 seeds, ~1 min) shared by the report's end-to-end
# test and the MLflow UI browser test: enough seeds for the statistics, cheap enough to run once.
SMALL_SWEEP = [*TINY, "loss=ce,bce", "sampler=none,random_over", "seed=0,1,2"]


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("small_sweep")
    store = f"sqlite:///{folder / 'mlflow.db'}"
    proc = run_cli("-m", *SMALL_SWEEP, cwd=folder, store=store)
    return {"store": store, "folder": folder, "stdout": proc.stdout}


def mount_tmpfs(folder: Path, megabytes: int) -> str:
    """A real filesystem of `megabytes` (a tmpfs) mounted on `folder`: '' when mounted, else why it
    could not be (it needs root on Linux, and a container may forbid it even then)."""
    folder.mkdir(parents=True, exist_ok=True)
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return "mounting a tmpfs needs root on Linux"
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={megabytes}m", "tmpfs", str(folder)],
                          capture_output=True, text=True)
    return "" if proc.returncode == 0 else f"mount -t tmpfs failed: {proc.stderr.strip()}"


@pytest.fixture
def small_disk(tmp_path):
    """mount(megabytes) -> (folder, why_not): a real small disk for the test, unmounted afterwards;
    where none can be mounted, a plain folder and the reason (the test then says what it did instead)."""
    mounted = []

    def mount(megabytes: int) -> tuple[Path, str]:
        folder = tmp_path / f"disk{len(mounted)}"
        why_not = mount_tmpfs(folder, megabytes)
        if not why_not:
            mounted.append(folder)
        return folder, why_not

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Write zeros into `folder` until its disk is full; returns the file (delete it to free the disk)."""
    ballast = folder / "ballast"
    block = b"\0" * 2**20
    with open(ballast, "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(block)
        except OSError:
            pass
    return ballast


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def mlflow_server_in(folder: Path) -> Iterator[tuple[str, str, Path]]:
    """A real `mlflow server` on a free loopback port, as `make server` starts it, over a SQLite store
    and an artifact folder in `folder`: (url, backend store URI, artifacts folder); always stopped."""
    port = free_port()
    backend = f"sqlite:///{folder / 'server.db'}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", backend, "--artifacts-destination",
         str(folder / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.time() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield url, backend, folder / "artifacts"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


@pytest.fixture
def mlflow_server(tmp_path):
    with mlflow_server_in(tmp_path) as server:
        yield server

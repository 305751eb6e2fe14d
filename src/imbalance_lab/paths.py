"""Where the project lives, so that the default MLflow store and every output folder are absolute
whatever the directory a command starts in (Hydra's or the user's)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
CONF_DIR = PACKAGE_DIR.parent.parent / "conf"


def project_root() -> Path:
    """The checkout holding conf/ (editable install), else the directory the command started in."""
    override = os.environ.get("IMBALANCE_LAB_ROOT")
    if override:
        return Path(override).resolve()
    candidate = PACKAGE_DIR.parent.parent
    if (candidate / "conf" / "config.yaml").is_file():
        return candidate
    return Path.cwd().resolve()


def output_root() -> Path:
    """The one folder that holds Hydra's run and sweep folders, reports and caches:
    $IMBALANCE_LAB_OUTPUT, else the project root. `make clean` empties it (the MLflow store aside)."""
    override = os.environ.get("IMBALANCE_LAB_OUTPUT")
    return Path(override).resolve() if override else project_root()


def cache_dir() -> Path:
    """Where computed data is kept between runs and sweeps (resampled training sets, image
    embeddings): $IMBALANCE_LAB_CACHE, else <project root>/.cache. `make clean-cache` empties it."""
    override = os.environ.get("IMBALANCE_LAB_CACHE")
    return Path(override).resolve() if override else project_root() / ".cache"


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"


def console_script(name: str) -> str:
    """The absolute path of one of this install's commands (beside the running Python, e.g. in
    .venv/bin): a command the tool prints names it, so that it works with the venv inactive."""
    import shutil
    import sys

    beside = Path(sys.executable).parent / name  # not resolved: a venv's python is a symlink out of it
    return str(beside) if beside.is_file() else shutil.which(name) or name


@contextlib.contextmanager
def one_at_a_time(lock_file: Path) -> Iterator[None]:
    """Processes entering with the same lock file take turns (an advisory file lock). Where there
    are no such locks (Windows) or the file cannot be opened (a read-only folder), nobody waits."""
    try:
        import fcntl

        handle = open(lock_file, "a")
    except (ImportError, OSError):
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

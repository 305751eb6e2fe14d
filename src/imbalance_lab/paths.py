"""Where the project lives, so that the default MLflow store is absolute whatever Hydra's cwd."""

from __future__ import annotations

import os
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


def default_tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{project_root() / 'mlflow.db'}"

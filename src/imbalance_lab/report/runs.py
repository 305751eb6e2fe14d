"""Runs -> DataFrame: the child runs of an experiment (or of one sweep), one row per run, with the
axes, the seed, the data they ran on, and their metrics.

No TensorFlow here: reading a store must not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from imbalance_lab import tracking
from imbalance_lab.errors import ImbalanceLabError

# The axes that make up a combination of remedies; `dataset` and `seed` are what runs are paired by.
REMEDY_AXES = ("preprocess", "model", "activation", "loss", "bias_init", "class_weight", "sampler", "decision", "trainer")
# Params that never define a combination: the data and seed (paired by), and bookkeeping.
NOT_COMBINATION_PARAMS = ("seed", "dataset", "tracking")
FAILED_STATUSES = ("FAILED", "KILLED")
ROLE_TAG = "imbalance_lab.role"
# Runs that trained nothing: a sweep's parent run, a report logged as a run of its own.
NOT_TRAINING_ROLES = ("sweep", "report")


@dataclass
class StudyRuns:
    """The runs a report is about: finished ones to rank, failed ones to count."""

    finished: pd.DataFrame
    failed: pd.DataFrame
    experiment: str
    experiment_id: str
    parent_run_id: str | None     # --parent: the one sweep reported on (its runs only); None: the whole experiment
    uri: str
    duplicates: int = 0           # older FINISHED runs of a run_key finished again (tracking.rerun=true), left out
    rerun_keys: int = 0           # how many run_keys that is
    sweeps: int = 0               # sweep parent runs the finished runs came from
    outside_sweeps: int = 0       # finished runs started alone (no parent run)


def store_client(uri: str):
    """The report's one way into the store (retried while a sweep's workers hold an SQLite store)."""
    return tracking.client_for(uri)


def load_runs(uri: str, experiment: str, parent: str | None = None) -> StudyRuns:
    """All runs of `experiment` that trained something (or only the children of sweep `parent`),
    deduplicated by run_key: a config trained twice (tracking.rerun=true) counts once, with its
    latest run, and the number left out is kept to be said."""
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise ImbalanceLabError(f"No MLflow store at {uri[len('sqlite:///'):]}; run a sweep first "
                                "(`make sweep`) or pass --tracking-uri with the store the runs went to.")
    client = store_client(uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in client.search_experiments())
        raise ImbalanceLabError(f"No MLflow experiment named {experiment!r} in {uri}; pass --experiment with "
                                f"one of {names} (or --tracking-uri for another store).")
    raw = search_frame(client, [found.experiment_id])
    role = _column(raw, f"tags.{ROLE_TAG}")
    children = raw[~role.isin(NOT_TRAINING_ROLES)]
    if parent is not None:
        if parent not in set(raw.loc[role == "sweep", "run_id"]):
            raise ImbalanceLabError(f"Run {parent!r} is not a sweep parent run in experiment {experiment!r}; "
                                    "pass --parent with the run id the sweep printed, or leave it out.")
        children = children[_column(children, "tags.mlflow.parentRunId") == parent]
    return _study(tidy(children), experiment, found.experiment_id, parent, uri)


def load_run_ids(uri: str, experiment_id: str, run_ids: list[str]) -> StudyRuns:
    """The runs `run_ids` of one experiment (a sweep's jobs, as its end knows them), read like load_runs."""
    client = store_client(uri)
    frames = []
    for start in range(0, len(run_ids), 100):   # the filter's IN list is kept short
        chunk = ", ".join(f"'{r}'" for r in run_ids[start:start + 100])
        frames.append(search_frame(client, [experiment_id], f"attributes.run_id IN ({chunk})"))
    raw = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["run_id", "status", "start_time"])
    name = client.get_experiment(experiment_id).name
    return _study(tidy(raw), name, experiment_id, None, uri)


def search_frame(client, experiment_ids: list[str], filter_string: str = "") -> pd.DataFrame:
    """search_runs, every page, as one row per run: run_id, status, start_time, and `tags.X`,
    `params.X`, `metrics.X` columns (each metric's latest value), as mlflow.search_runs names them."""
    rows, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=1000, page_token=token)
        for run in page:
            rows.append({"run_id": run.info.run_id, "status": run.info.status, "start_time": run.info.start_time,
                         **{f"tags.{k}": v for k, v in run.data.tags.items()},
                         **{f"params.{k}": v for k, v in run.data.params.items()},
                         **{f"metrics.{k}": v for k, v in run.data.metrics.items()}})
        token = page.token
        if not token:
            break
    return pd.DataFrame(rows, columns=None if rows else ["run_id", "status", "start_time"])


def _study(frame: pd.DataFrame, experiment: str, experiment_id: str, parent: str | None, uri: str) -> StudyRuns:
    done = frame[frame["status"] == "FINISHED"]
    finished = _latest_per_key(done)
    failed = frame[frame["status"].isin(FAILED_STATUSES) & ~frame["run_key"].isin(finished["run_key"])]
    counts = done["run_key"].value_counts()
    parents = finished["parent"].dropna()
    return StudyRuns(finished, _latest_per_key(failed), experiment, experiment_id, parent, uri,
                     duplicates=int((counts - 1).sum()), rerun_keys=int((counts > 1).sum()),
                     sweeps=int(parents.nunique()), outside_sweeps=int(finished["parent"].isna().sum()))


def tidy(raw: pd.DataFrame) -> pd.DataFrame:
    """search_runs' columns -> plain ones: run_id, status, name, parent, run_key, seed, dataset, each axis,
    collapsed, every param (`params.` dropped) and every metric (keeps its MLflow name)."""
    frame = pd.DataFrame({
        "run_id": raw["run_id"].astype(str),
        "status": raw["status"].astype(str),
        "name": _column(raw, "tags.mlflow.runName"),
        "parent": _column(raw, "tags.mlflow.parentRunId"),
        "run_key": _column(raw, "tags.run_key").fillna(raw["run_id"]),
        "start_time": raw["start_time"],
        "collapsed": _column(raw, "tags.collapsed") == "true",
        "doctor": _column(raw, "tags.doctor.warnings"),
        "seed": pd.to_numeric(_column(raw, "params.seed"), errors="coerce"),
        "dataset": _axis(raw, "dataset"),
    }, index=raw.index)
    for axis in REMEDY_AXES:
        frame[axis] = _axis(raw, axis)
    params = {c[len("params."):]: raw[c] for c in raw.columns if c.startswith("params.")}
    params = {k: v for k, v in params.items() if k not in frame.columns}
    metrics = {c[len("metrics."):]: raw[c] for c in raw.columns if c.startswith("metrics.")}
    return pd.concat([frame, pd.DataFrame(params, index=raw.index), pd.DataFrame(metrics, index=raw.index)],
                     axis=1).reset_index(drop=True)


def varying_axes(frame: pd.DataFrame) -> list[str]:
    """The remedy axes that take more than one option in the study."""
    return [axis for axis in REMEDY_AXES if frame[axis].nunique(dropna=True) > 1]


def combination_columns(frame: pd.DataFrame) -> list[str]:
    """The varying axes, plus any hyperparameter swept within them (e.g. `loss.gamma=1,2`): a
    param that still varies once the axes are fixed is part of what a combination is."""
    axes = varying_axes(frame)
    candidates = [c for c in frame.columns if "." in c and "/" not in c
                  and c.split(".")[0] not in NOT_COMBINATION_PARAMS and c not in ("dataset.fingerprint",)]
    swept = []
    for column in candidates:
        within = frame.groupby(axes, dropna=False)[column] if axes else [(None, frame[column])]
        if any(values.nunique(dropna=False) > 1 for _, values in within):
            swept.append(column)
    return axes + swept


def data_column(frame: pd.DataFrame) -> pd.Series:
    """What a run was trained and tested on: the dataset option plus any dataset param that varies
    (a sweep over `dataset.priors` is a sweep over data, paired like datasets)."""
    swept = [c for c in frame.columns if c.startswith("dataset.") and c != "dataset.fingerprint"
             and frame[c].nunique(dropna=False) > 1]
    if not swept:
        return frame["dataset"].astype(str)
    return frame["dataset"].astype(str) + frame[swept].astype(str).apply(
        lambda row: "(" + ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in row.items()) + ")", axis=1)


def _latest_per_key(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.sort_values("start_time").drop_duplicates("run_key", keep="last").reset_index(drop=True)


def _column(raw: pd.DataFrame, name: str) -> pd.Series:
    return raw[name] if name in raw.columns else pd.Series([None] * len(raw), index=raw.index, dtype=object)


def _axis(raw: pd.DataFrame, axis: str) -> pd.Series:
    """An axis's option: the tag (what the UI filters on), else the param."""
    return _column(raw, f"tags.{axis}").fillna(_column(raw, f"params.{axis}"))

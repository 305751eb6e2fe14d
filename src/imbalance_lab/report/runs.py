"""Runs -> DataFrame: the child runs of an experiment (or of one sweep), one row per run, with the
axes, the seed, the data they ran on, and their metrics.

No TensorFlow here: reading a store must not pay for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlflow
import pandas as pd

from imbalance_lab.errors import ImbalanceLabError

# The axes that make up a combination of remedies; `dataset` and `seed` are what runs are paired by.
REMEDY_AXES = ("model", "activation", "loss", "bias_init", "class_weight", "sampler", "decision", "trainer")
# Params that never define a combination: the data and seed (paired by), and bookkeeping.
NOT_COMBINATION_PARAMS = ("seed", "dataset", "tracking")
FAILED_STATUSES = ("FAILED", "KILLED")


@dataclass
class StudyRuns:
    """The runs a report is about: finished ones to rank, failed ones to count."""

    finished: pd.DataFrame
    failed: pd.DataFrame
    experiment: str
    experiment_id: str
    parent_run_id: str | None     # the sweep's parent run, where the report is logged
    uri: str


def load_runs(uri: str, experiment: str, parent: str | None = None) -> StudyRuns:
    """All child runs of `experiment` (or only the children of sweep `parent`), deduplicated by
    run_key: a config trained twice (tracking.rerun=true) counts once, with its latest run."""
    if uri.startswith("sqlite:///") and not Path(uri[len("sqlite:///"):]).is_file():
        raise ImbalanceLabError(f"No MLflow store at {uri[len('sqlite:///'):]}; run a sweep first "
                                "(`make sweep`) or pass --tracking-uri with the store the runs went to.")
    mlflow.set_tracking_uri(uri)
    found = mlflow.get_experiment_by_name(experiment)
    if found is None:
        names = sorted(e.name for e in mlflow.search_experiments())
        raise ImbalanceLabError(f"No MLflow experiment named {experiment!r} in {uri}; pass --experiment with "
                                f"one of {names} (or --tracking-uri for another store).")
    raw = mlflow.search_runs([found.experiment_id], output_format="pandas", max_results=100_000)
    raw = raw if not raw.empty else pd.DataFrame(columns=["run_id", "status", "start_time"])
    parents = _column(raw, "tags.imbalance_lab.role") == "sweep"
    children = raw[~parents]
    if parent is not None:
        if parent not in set(raw.loc[parents, "run_id"]):
            raise ImbalanceLabError(f"Run {parent!r} is not a sweep parent run in experiment {experiment!r}; "
                                    "pass --parent with the run id the sweep printed, or leave it out.")
        children = children[_column(children, "tags.mlflow.parentRunId") == parent]
    frame = tidy(children)
    finished = _latest_per_key(frame[frame["status"] == "FINISHED"])
    failed = frame[frame["status"].isin(FAILED_STATUSES) & ~frame["run_key"].isin(finished["run_key"])]
    failed = _latest_per_key(failed)
    return StudyRuns(finished, failed, experiment, found.experiment_id,
                     parent or _latest_parent(raw[parents]), uri)


def tidy(raw: pd.DataFrame) -> pd.DataFrame:
    """search_runs' columns -> plain ones: run_id, status, name, run_key, seed, dataset, each axis,
    collapsed, every param (`params.` dropped) and every metric (keeps its MLflow name)."""
    frame = pd.DataFrame({
        "run_id": raw["run_id"].astype(str),
        "status": raw["status"].astype(str),
        "name": _column(raw, "tags.mlflow.runName"),
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


def _latest_parent(parents: pd.DataFrame) -> str | None:
    return None if parents.empty else str(parents.sort_values("start_time")["run_id"].iloc[-1])


def _column(raw: pd.DataFrame, name: str) -> pd.Series:
    return raw[name] if name in raw.columns else pd.Series([None] * len(raw), index=raw.index, dtype=object)


def _axis(raw: pd.DataFrame, axis: str) -> pd.Series:
    """An axis's option: the tag (what the UI filters on), else the param."""
    return _column(raw, f"tags.{axis}").fillna(_column(raw, f"params.{axis}"))

"""Hand-made runs written straight into a real SQLite MLflow store, with the tags, params, metrics
and artifacts a trained run has, so the report's numbers can be checked against values we chose."""

from __future__ import annotations

import json

from mlflow.entities import Metric, Param

from conftest import client

SWEEP_ROLE = {"imbalance_lab.role": "sweep"}


def new_store(folder, experiment: str):
    """A store in `folder` with one experiment: (uri, client, experiment id)."""
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    c = client(uri)
    return uri, c, c.create_experiment(experiment)


def sweep_parent(c, exp: str, start: int, name: str = "sweep") -> str:
    return c.create_run(exp, run_name=name, tags=SWEEP_ROLE, start_time=start).info.run_id


def log_run(c, exp: str, key: str, axes: dict, seed: int, metrics: dict | None, start: int, parent: str | None = None,
            params: dict | None = None, history: dict | None = None, confusion: tuple | None = None,
            collapsed: bool = False) -> str:
    """One run of `axes` (dataset included) and `seed`: FINISHED with `metrics`, or FAILED when
    metrics is None. `history`: {metric: [value per epoch]} logged with step = epoch; `confusion`:
    (labels, matrix) as confusion_matrix.json."""
    tags = {**axes, "run_key": key, "collapsed": str(collapsed).lower(),
            **({"mlflow.parentRunId": parent} if parent else {})}
    run_id = c.create_run(exp, run_name=key, start_time=start, tags=tags).info.run_id
    logged = [Param(k, str(v)) for k, v in {**axes, "seed": seed, **(params or {})}.items()]
    if metrics is None:
        c.log_batch(run_id, params=logged)
        c.set_terminated(run_id, "FAILED")
        return run_id
    values = [Metric(k, float(v), 0, 0) for k, v in metrics.items()]
    values += [Metric(k, float(v), 0, epoch) for k, series in (history or {}).items() for epoch, v in enumerate(series)]
    c.log_batch(run_id, params=logged, metrics=values)
    if confusion:
        labels, matrix = confusion
        c.log_text(run_id, json.dumps({"labels": labels, "matrix": matrix, "rows": "true", "columns": "predicted"}),
                   "confusion_matrix.json")
    c.set_terminated(run_id, "FINISHED")
    return run_id

"""Equal tuning budgets: a remedy run at a fixed learning rate against a baseline at its best one is
not a fair comparison (Elor & Averbuch-Elor 2022, "To SMOTE, or not to SMOTE?"). For each remedy
combination, data and seed, the run with the best validation score over the tuned axis's values is
picked, and its TEST metric reported (DomainBed's training-domain validation protocol: selection
per trial, on validation only). The fixed-setting column keeps the tuned axis at its reference."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.report import stats
from imbalance_lab.report.effects import paired_effects, reference_label, value_labels
from imbalance_lab.report.runs import store_client
from imbalance_lab.report.tables import combination_label, natural_key, own_columns, ranked

SELECTION_NOTE = ("each run's selection value is the best epoch's {metric} (step = epoch), which is the epoch whose "
                  "weights early stopping restored and the test metrics were computed with")


TABLE_COLUMNS = ["combination", "fixed_seeds", "fixed_mean", "fixed_ci_low", "fixed_ci_high", "seeds", "mean",
                 "ci_low", "ci_high", "picked", "tried"]


@dataclass
class Tuning:
    axis: str
    select_on: str
    reference: str | None
    remedy_columns: list[str]
    table: pd.DataFrame      # one row per remedy combination: fixed_* and tuned columns, rank, verdict
    picks: pd.DataFrame      # per (combination, data, seed): the value picked, its selection value and metric, its run
    effects: pd.DataFrame    # paired effects of the remedy axes, each at its tuned best
    notes: list[str] = field(default_factory=list)


def lower_is_better(metric: str) -> bool:
    return "loss" in metric.rsplit("/", 1)[-1]


def selection_values(uri: str, run_ids: list[str], metric: str) -> pd.Series:
    """Per run: the best value over its logged history of `metric` (max; min for a loss); runs
    that never logged it are left out."""
    client = store_client(uri)
    best = min if lower_is_better(metric) else max
    found = {}
    for run_id in run_ids:
        history = client.get_metric_history(run_id, metric)
        if history:
            found[run_id] = best(m.value for m in history)
    return pd.Series(found, dtype=float)


def tune(finished: pd.DataFrame, columns: list[str], axis: str, select_on: str, metric: str,
         refs: dict[str, str], data: pd.Series, selection: pd.Series) -> Tuning:
    if axis not in columns:
        raise ImbalanceLabError(f"--tune {axis!r} is not an axis or hyperparameter that varies in these runs; "
                                f"use one of {columns or ['(none varies)']}.")
    if selection.empty:
        raise ImbalanceLabError(f"No run logged {select_on!r} to select on; pass --select-on with a metric the "
                                "runs log, e.g. --select-on val/macro_f1.")
    remedy = [c for c in columns if c not in own_columns(axis, columns)]
    reference = reference_label(finished, axis, columns, refs)
    runs = finished.assign(combination=combination_label(finished, remedy), _value=value_labels(finished, axis, columns),
                           _data=data.astype(str).values, _select=finished["run_id"].map(selection))
    notes = [f"Tuned over {axis} on {select_on}: {SELECTION_NOTE.format(metric=select_on)}."]
    missing = int(runs["_select"].isna().sum())
    if missing:
        notes.append(f"{missing} run(s) logged no {select_on}: left out of the tuned column.")
    candidates = runs.dropna(subset=["_value", "_select", metric])
    order = {v: i for i, v in enumerate(sorted(set(candidates["_value"]), key=natural_key))}
    candidates = candidates.assign(
        _score=candidates["_select"] * (-1 if lower_is_better(select_on) else 1),
        _other=candidates["_value"] != reference,                # a tie goes to the reference, then the smallest
        _order=candidates["_value"].map(order))
    keys = ["combination", "_data", "seed"]
    picked = (candidates.sort_values(["_score", "_other", "_order"], ascending=[False, True, True], kind="stable")
              .groupby(keys, sort=False).head(1))
    tried = candidates.groupby(keys)["_value"].nunique()
    notes += _edge_note(picked["_value"], list(order), axis)
    table = _side_by_side(runs[runs["_value"] == reference], picked, tried, metric)
    if tried.nunique() > 1:
        notes.append(f"Unequal budgets: some combination/seed tried {tried.min()} value(s) of {axis}, others "
                     f"{tried.max()} (column `tried`); a row that tried fewer had less tuning.")
    picks = picked.rename(columns={"_data": "data", "_value": "picked", "_select": "selection_value"})[
        ["combination", "data", "seed", "picked", "selection_value", metric, "run_id"]].reset_index(drop=True)
    effects = paired_effects(picked, remedy, metric, refs, picked["_data"]) if remedy else pd.DataFrame()
    return Tuning(axis, select_on, reference, remedy, table, picks, effects, notes)


def _edge_note(picked: pd.Series, values: list[str], axis: str) -> list[str]:
    """A numeric axis whose picks sit on the smallest or largest value tried may have its best
    outside the values tried: then the tuning budget was not what it seems."""
    if len(values) < 3 or any(natural_key(v)[0] for v in values):
        return []
    at_edge = int(picked.isin([values[0], values[-1]]).sum())
    if not at_edge:
        return []
    return [f"{at_edge} of {len(picked)} pick(s) are the smallest or largest {axis} tried ({values[0]} or "
            f"{values[-1]}): the best value may lie outside the values tried; widen them to be sure."]


def _side_by_side(fixed: pd.DataFrame, picked: pd.DataFrame, tried: pd.Series, metric: str) -> pd.DataFrame:
    """Per remedy combination: the fixed setting's seeds, mean and interval, then the tuned ones,
    the values picked (how many seeds picked each) and how many values were tried."""
    rows = []
    for combination in sorted(set(fixed["combination"]) | set(picked["combination"])):
        at_fixed = fixed.loc[fixed["combination"] == combination]
        at_best = picked.loc[picked["combination"] == combination]
        f, t = stats.t_interval(at_fixed[metric]), stats.t_interval(at_best[metric])
        counts = at_best["_value"].value_counts()
        budget = tried.loc[combination] if combination in tried.index.get_level_values(0) else pd.Series(dtype=int)
        rows.append({"combination": combination,
                     "fixed_seeds": int(at_fixed["seed"].nunique()), "fixed_mean": f.mean,
                     "fixed_ci_low": f.low, "fixed_ci_high": f.high,
                     "seeds": int(at_best["seed"].nunique()), "mean": t.mean, "ci_low": t.low, "ci_high": t.high,
                     "picked": ", ".join(f"{v} ×{n}" for v, n in counts.items()),
                     "tried": (f"{budget.min()}" if budget.min() == budget.max() else f"{budget.min()}-{budget.max()}")
                     if len(budget) else "0"})
    return ranked(pd.DataFrame(rows, columns=TABLE_COLUMNS))

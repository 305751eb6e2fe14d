"""Effects that compare like with like. The effect of an axis value is the difference it makes
against the axis's reference value in runs that agree on everything else: every other axis (and
swept hyperparameter), the data and the seed. Averaging each value over whatever combinations a
sweep happened to run (a "main effect") credits a value with the company it kept; on a grid that
is not fully crossed that can rank the values backwards. A value with no such pair gets no number."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from imbalance_lab.report import stats
from imbalance_lab.report.tables import natural_key, own_columns

EFFECT_COLUMNS = ["axis", "value", "reference", "n_pairs", "mean_diff", "ci_low", "ci_high", "note"]
NO_PAIRS = "no pairs: no run of this value shares its other axes, data and seed with a reference run"


def value_labels(frame: pd.DataFrame, axis: str, columns: list[str]) -> pd.Series:
    """Each run's value on `axis`: the option, with the hyperparameters swept within it where the
    run has them (`focal (gamma=2)`); NaN where the run has no such param (loss.gamma under ce)."""
    values = frame[axis].astype(object).where(frame[axis].notna())
    owned = [c for c in own_columns(axis, columns) if c != axis]
    if not owned:
        return values.map(lambda v: v if pd.isna(v) else str(v))

    def label(row) -> str | float:
        if pd.isna(row[axis]):
            return np.nan
        extra = ", ".join(f"{c.split('.', 1)[1]}={row[c]}" for c in owned if pd.notna(row[c]))
        return f"{row[axis]} ({extra})" if extra else str(row[axis])

    return frame.apply(label, axis=1)


def reference_label(frame: pd.DataFrame, axis: str, columns: list[str], refs: dict[str, str]) -> str | None:
    """The value label of the reference runs: the reference option and, for each hyperparameter it
    owns, the reference value (or none: a param the reference option does not take)."""
    if axis not in refs:
        return None
    keep = frame[axis].astype(str) == refs[axis]
    for column in own_columns(axis, columns)[1:]:
        if column in refs:
            keep &= frame[column].isna() | (frame[column].astype(str) == refs[column])
    labels = value_labels(frame[keep], axis, columns).dropna()
    if labels.empty:
        return None
    counts = labels.value_counts()
    return str(sorted(counts.index[counts == counts.max()])[0])


def pair_table(frame: pd.DataFrame, metric: str, data: pd.Series, columns: list[str], owned: list[str],
               value: pd.Series) -> pd.DataFrame:
    """Rows: one setting of everything but `owned` (other axes, data, seed); columns: the value
    labels; cells: the metric. Two cells of one row are a pair."""
    keys = [c for c in columns if c not in owned]
    table = pd.DataFrame({k: frame[k].astype(str) for k in keys}, index=frame.index)
    table["_data"], table["_seed"] = data.astype(str).values, frame["seed"].astype(str).values
    table["_value"], table["_metric"] = value.values, frame[metric].astype(float).values
    table = table.dropna(subset=["_value", "_metric"])
    return table.pivot_table(index=[*keys, "_data", "_seed"], columns="_value", values="_metric", aggfunc="mean")


def paired_effects(frame: pd.DataFrame, columns: list[str], metric: str, refs: dict[str, str],
                   data: pd.Series) -> pd.DataFrame:
    """For each column (axis or swept hyperparameter) and each of its values other than the
    reference: the number of pairs, the mean paired difference (value minus reference) with its 95 %
    t interval; `note` says when there is no pair (then no number) or one (then no interval)."""
    rows = []
    for axis in columns:
        reference = reference_label(frame, axis, columns, refs)
        labels = value_labels(frame, axis, columns)
        table = pair_table(frame, metric, data, columns, own_columns(axis, columns), labels)
        for value in sorted(set(labels.dropna()) - {reference}, key=natural_key):
            if reference is None or reference not in table.columns:
                diffs = np.array([])
            else:
                both = table[[value, reference]].dropna()
                diffs = (both[value] - both[reference]).to_numpy()
            interval = stats.t_interval(diffs)
            note = NO_PAIRS if interval.n == 0 else ("one pair: no interval" if interval.n == 1 else "")
            rows.append({"axis": axis, "value": value, "reference": reference or "(none)", "n_pairs": interval.n,
                         "mean_diff": interval.mean, "ci_low": interval.low, "ci_high": interval.high, "note": note})
    effects = pd.DataFrame(rows, columns=EFFECT_COLUMNS)
    order = {axis: i for i, axis in enumerate(columns)}
    effects["_axis"] = effects["axis"].map(order)
    return (effects.sort_values(["_axis", "mean_diff"], ascending=[True, False], na_position="last", kind="stable")
            .drop(columns="_axis").reset_index(drop=True))


@dataclass
class PairedGrid:
    """The heatmap's numbers: for each (row value, column value) the mean paired difference against
    the reference cell over runs that agree on everything else, its interval's half-width, and the
    number of pairs (0: no pairs, no number)."""

    rows: str
    columns: str
    reference: tuple[str, str]
    mean: pd.DataFrame
    half_width: pd.DataFrame
    n_pairs: pd.DataFrame


def paired_grid(frame: pd.DataFrame, columns: list[str], rows_axis: str, columns_axis: str, metric: str,
                refs: dict[str, str], data: pd.Series) -> PairedGrid | None:
    """None when no run holds the reference cell (then nothing can be paired)."""
    every = list(dict.fromkeys([*columns, rows_axis, columns_axis]))
    refs = {**{a: str(frame[a].dropna().iloc[0]) for a in (rows_axis, columns_axis)
               if a not in refs and frame[a].notna().any()}, **refs}   # a constant axis: its one value
    row_labels, col_labels = value_labels(frame, rows_axis, every), value_labels(frame, columns_axis, every)
    reference = (reference_label(frame, rows_axis, every, refs), reference_label(frame, columns_axis, every, refs))
    cell = (row_labels + "\x1f" + col_labels).where(row_labels.notna() & col_labels.notna())
    owned = own_columns(rows_axis, every) + own_columns(columns_axis, every)
    table = pair_table(frame, metric, data, every, owned, cell)
    ref_cell = f"{reference[0]}\x1f{reference[1]}"
    if None in reference or ref_cell not in table.columns:
        return None
    row_values = sorted(set(row_labels.dropna()), key=natural_key)
    col_values = sorted(set(col_labels.dropna()), key=natural_key)
    mean, half, count = (pd.DataFrame(np.nan, index=row_values, columns=col_values) for _ in range(3))
    for r in row_values:
        for c in col_values:
            key = f"{r}\x1f{c}"
            if key == ref_cell:
                mean.loc[r, c], count.loc[r, c] = 0.0, int(table[ref_cell].notna().sum())
                continue
            if key not in table.columns:
                count.loc[r, c] = 0
                continue
            both = table[[key, ref_cell]].dropna()
            interval = stats.t_interval((both[key] - both[ref_cell]).to_numpy())
            mean.loc[r, c], count.loc[r, c] = interval.mean, interval.n
            half.loc[r, c] = (interval.high - interval.low) / 2
    for axis_frame in (mean, half, count):
        axis_frame.index.name, axis_frame.columns.name = rows_axis, columns_axis
    return PairedGrid(rows_axis, columns_axis, reference, mean, half, count.astype(int))

"""The leaderboard (one row per combination of the varying axes) and the main effect of each axis."""

from __future__ import annotations

import pandas as pd

from imbalance_lab.errors import ImbalanceLabError

# "All remedies off": the study's baseline unless --baseline says otherwise.
REMEDIES_OFF = {"loss": "ce", "bias_init": "zeros", "class_weight": "none", "sampler": "none",
                "decision": "argmax"}
NAIVE_METRIC = "naive/macro_f1"
KERAS_ACCURACY = "keras/accuracy"


def _doctor_codes(values: pd.Series) -> str:
    """The doctor's warning codes of a combination's runs (`none` when it had none)."""
    codes = sorted({c for v in values.dropna() for c in str(v).split("; ") if c and c != "none"})
    return ", ".join(codes) or "none"


def combination_label(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """`loss=focal sampler=smote` (or `all runs` when nothing varies): one name per combination."""
    if not columns:
        return pd.Series("all runs", index=frame.index)
    return frame[columns].astype(str).apply(lambda row: " ".join(f"{k}={v}" for k, v in row.items()), axis=1)


def config_defaults(experiment: str | None = None) -> dict[str, str]:
    """Each group's default option in conf/config.yaml (e.g. activation=softmax, model=mlp), with
    the `override /group: option` defaults of the study experiments/<experiment>.yaml on top (the
    quickstart study's baseline is the forum's sigmoid model)."""
    from omegaconf import OmegaConf

    from imbalance_lab.paths import CONF_DIR

    def entries(path):
        return OmegaConf.to_container(OmegaConf.load(path)).get("defaults", []) if path.is_file() else []

    chosen = {k: str(v) for entry in entries(CONF_DIR / "config.yaml") if isinstance(entry, dict)
              for k, v in entry.items() if not k.startswith("override")}
    study = CONF_DIR / "experiment" / f"{experiment}.yaml" if experiment else None
    for entry in entries(study) if study else []:
        for key, value in (entry.items() if isinstance(entry, dict) else ()):
            if key.startswith("override /"):
                chosen[key[len("override /"):]] = str(value)
    return chosen


def parse_baseline(pairs: list[str] | None, experiment: str | None = None) -> dict[str, str]:
    """The baseline's options: the config's (and the study's) defaults with every remedy off, then
    `--baseline AXIS=OPTION` pairs (e.g. `--baseline activation=softmax`)."""
    chosen = {**config_defaults(experiment), **REMEDIES_OFF}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise ImbalanceLabError(f"--baseline {pair!r} is not AXIS=OPTION; write e.g. --baseline sampler=none.")
        if key.strip() not in chosen and "." not in key:   # `loss.gamma=2`: a swept hyperparameter
            raise ImbalanceLabError(f"--baseline {pair!r} names no axis; use one of {sorted(chosen)} "
                                    "(or a swept hyperparameter such as loss.gamma).")
        chosen[key.strip()] = value.strip()
    return chosen


def baseline_label(finished: pd.DataFrame, columns: list[str], baseline: dict[str, str]) -> str | None:
    """The combination that is the baseline: it matches every baseline option on the columns that
    vary (a swept hyperparameter with no baseline value: its most common value, then the first in
    sorted order). None when no combination matches."""
    if finished.empty:
        return None
    labels = combination_label(finished, columns)
    keep = pd.Series(True, index=finished.index)
    for column in columns:
        if column in baseline:
            keep &= finished[column].astype(str) == str(baseline[column])
    if not keep.any():
        return None
    counts = labels[keep].value_counts()
    return str(sorted(counts.index[counts == counts.max()])[0])


def leaderboard(finished: pd.DataFrame, failed: pd.DataFrame, columns: list[str], metric: str,
                baseline: str | None) -> pd.DataFrame:
    """One row per combination: mean and std of `metric` over its runs (seeds x datasets), the
    number of seeds, the difference from the baseline's mean, the naive macro-F1, how many runs
    collapsed to (almost) one class, how many failed. Best mean first."""
    if metric not in finished.columns:
        known = sorted(c for c in finished.columns if "/" in c)
        raise ImbalanceLabError(f"No run has the metric {metric!r}; pass --metric with one of {known}.")
    runs = finished.assign(combination=combination_label(finished, columns))
    grouped = runs.groupby("combination", sort=False)
    table = pd.DataFrame({
        "mean": grouped[metric].mean(),
        "std": grouped[metric].std(ddof=1),
        "seeds": grouped["seed"].nunique(),
        "runs": grouped.size(),
    })
    base_mean = table["mean"].get(baseline, float("nan")) if baseline else float("nan")
    table["delta"] = table["mean"] - base_mean
    table["naive"] = grouped[NAIVE_METRIC].mean() if NAIVE_METRIC in runs.columns else float("nan")
    table["collapsed"] = grouped["collapsed"].sum().astype(int)
    if KERAS_ACCURACY in runs.columns:  # what metrics=['accuracy'] would have shown (issue: the 83 % illusion)
        table["keras_acc"] = grouped[KERAS_ACCURACY].mean()
    if "doctor" in runs.columns:
        table["doctor"] = grouped["doctor"].agg(_doctor_codes)
    failed_counts = combination_label(failed, columns).value_counts() if not failed.empty else pd.Series(dtype=int)
    table["failed"] = 0
    for label, count in failed_counts.items():  # a combination whose every run failed still gets a row
        table.loc[label, "failed"] = int(count)
    table["failed"] = table["failed"].astype(int)
    table["runs"] = table["runs"].fillna(0).astype(int)
    table["seeds"] = table["seeds"].fillna(0).astype(int)
    table["collapsed"] = table["collapsed"].fillna(0).astype(int)
    table["baseline"] = table.index == baseline
    table = table.sort_values("mean", ascending=False, na_position="last")
    table.index.name = "combination"
    return table.reset_index()


def main_effects(finished: pd.DataFrame, axes: list[str], metric: str) -> pd.DataFrame:
    """For each option of each varying axis: the mean metric over every run that has it (whatever
    the other axes), and its rank within the axis (1 = best)."""
    rows = []
    for axis in axes:
        means = finished.groupby(axis)[metric].agg(["mean", "size"])
        ranks = means["mean"].rank(ascending=False, method="min").astype(int)
        for option, row in means.iterrows():
            rows.append({"axis": axis, "option": str(option), "mean": row["mean"], "runs": int(row["size"]),
                         "rank": int(ranks[option])})
    frame = pd.DataFrame(rows, columns=["axis", "option", "mean", "runs", "rank"])
    return frame.sort_values(["axis", "rank"], key=lambda s: s.map(axes.index) if s.name == "axis" else s,
                             ignore_index=True)


def two_axis_means(finished: pd.DataFrame, rows: str, columns: str, metric: str) -> pd.DataFrame:
    """Mean metric for each (rows option, columns option): the heatmap's numbers."""
    return finished.pivot_table(index=rows, columns=columns, values=metric, aggfunc="mean")

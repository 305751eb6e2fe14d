"""The leaderboard (one row per combination of the varying axes, with intervals and verdicts), and
what every axis is compared against (its reference value)."""

from __future__ import annotations

import pandas as pd

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.report import stats

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


def study_values(experiment: str | None, keys: list[str]) -> dict[str, str]:
    """Each hyperparameter's value when nothing sweeps it (e.g. trainer.learning_rate=0.01 in the
    quickstart study), as the run logs it: the config composed with the study on top. Keys the
    config lacks (loss.gamma when the default loss is ce) are left out."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    from imbalance_lab.configs import compose
    from imbalance_lab.paths import CONF_DIR

    if not keys:
        return {}
    study = experiment and (CONF_DIR / "experiment" / f"{experiment}.yaml").is_file()
    try:
        cfg, _ = compose([f"+experiment={experiment}"] if study else [])
    except Exception:  # a study file that no longer composes: the runs' most common values stand in
        return {}
    found = {}
    for key in keys:
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if value is not None and not isinstance(value, DictConfig | ListConfig):
            found[key] = str(value)
    return found


def own_columns(axis: str, columns: list[str]) -> list[str]:
    """An axis and the hyperparameters swept within it (`loss` owns `loss.gamma`): what differs
    between two of its values. A hyperparameter column owns only itself."""
    if "." in axis:
        return [axis]
    return [axis] + [c for c in columns if c.startswith(axis + ".")]


def references(finished: pd.DataFrame, columns: list[str], options: dict[str, str],
               experiment: str | None = None) -> tuple[dict[str, str], list[str]]:
    """The value each column is compared against: --baseline, else the remedy-off option or the
    config's default (options), else the study's own hyperparameter value; when that value has no
    run, the most common one (ties: the smallest). Returns the values and a note for each fallback."""
    defaults = study_values(experiment, [c for c in columns if c not in options])
    chosen, notes = {}, []
    for column in columns:
        present = finished[column].dropna().astype(str)
        wanted = options.get(column, defaults.get(column))
        if wanted is not None and wanted in set(present):
            chosen[column] = wanted
            continue
        counts = present.value_counts()
        if counts.empty:
            continue
        chosen[column] = sorted(counts.index[counts == counts.max()], key=natural_key)[0]
        if wanted is not None:
            notes.append(f"Reference for {column}: {chosen[column]} (its default {wanted} has no finished run).")
    return chosen, notes


def natural_key(value: str):
    """Numbers in numeric order, before any text in text order."""
    try:
        return (0, float(value), "")
    except (TypeError, ValueError):
        return (1, 0.0, str(value))


def baseline_label(finished: pd.DataFrame, columns: list[str], baseline: dict[str, str],
                   refs: dict[str, str] | None = None) -> str | None:
    """The combination that is the baseline: it matches every baseline option on the columns that
    vary, and each swept hyperparameter's reference where it has one (a run without the param,
    e.g. loss.gamma under ce, matches). None when no combination matches."""
    if finished.empty:
        return None
    labels = combination_label(finished, columns)
    keep = pd.Series(True, index=finished.index)
    for column in columns:
        wanted = baseline.get(column, (refs or {}).get(column))
        if wanted is not None:
            keep &= finished[column].isna() | (finished[column].astype(str) == str(wanted))
    if not keep.any():
        return None
    counts = labels[keep].value_counts()
    return str(sorted(counts.index[counts == counts.max()])[0])


def leaderboard(finished: pd.DataFrame, failed: pd.DataFrame, columns: list[str], metric: str,
                baseline: str | None) -> pd.DataFrame:
    """One row per combination: its rank by mean `metric`, the number of seeds and runs (seeds x
    datasets), the mean with its 95 % t interval over the runs, whether it can be told apart from
    the best (verdict), the std, the naive macro-F1, how many runs collapsed to (almost) one class,
    how many failed. Best mean first."""
    if metric not in finished.columns:
        known = sorted(c for c in finished.columns if "/" in c)
        raise ImbalanceLabError(f"No run has the metric {metric!r}; pass --metric with one of {known}.")
    runs = finished.assign(combination=combination_label(finished, columns))
    grouped = runs.groupby("combination", sort=False)
    intervals = grouped[metric].apply(lambda v: stats.t_interval(v.to_numpy()))
    table = pd.DataFrame({
        "seeds": grouped["seed"].nunique(),
        "runs": grouped[metric].count(),
        "mean": intervals.map(lambda i: i.mean),
        "ci_low": intervals.map(lambda i: i.low),
        "ci_high": intervals.map(lambda i: i.high),
        "std": grouped[metric].std(ddof=1),
    })
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
    for column in ("failed", "runs", "seeds", "collapsed"):
        table[column] = table[column].fillna(0).astype(int)
    table["baseline"] = table.index == baseline
    table.index.name = "combination"
    return ranked(table.reset_index())


def ranked(table: pd.DataFrame, mean: str = "mean", low: str = "ci_low", high: str = "ci_high",
           seeds: str = "seeds") -> pd.DataFrame:
    """Sorted by mean, best first, with a `rank` (ties share one) and a `verdict` against the best
    row that has an interval and more than one seed: `best`, `not distinguishable` (the intervals
    overlap), `below the best`, `one seed` (no interval to compare), `no finished run`."""
    table = table.sort_values(mean, ascending=False, na_position="last", kind="stable").reset_index(drop=True)
    rank = table[mean].rank(ascending=False, method="min")
    comparable = table[table[low].notna() & (table[seeds] > 1)]
    best = comparable.index[0] if not comparable.empty else None

    def verdict(i: int, row) -> str:
        if pd.isna(row[mean]):
            return "no finished run"
        if row[seeds] <= 1 or pd.isna(row[low]):
            return "one seed" if row[seeds] <= 1 else "one run"
        if i == best:
            return "best"
        return "not distinguishable" if row[high] >= table.loc[best, low] else "below the best"

    table.insert(0, "rank", rank.astype("Int64"))
    table.insert(list(table.columns).index(high) + 1, "verdict", [verdict(i, row) for i, row in table.iterrows()])
    return table


def one_seed_warning(table: pd.DataFrame, name: str = "combination", seeds: str = "seeds") -> str | None:
    """One line naming the rows that rest on a single seed, or None."""
    single = table.loc[table[seeds] == 1, name].tolist()
    if not single:
        return None
    shown = ", ".join(f"`{s}`" for s in single[:5]) + (f" and {len(single) - 5} more" if len(single) > 5 else "")
    return (f"Warning: {len(single)} row(s) rest on one seed, so their mean has no interval and their rank is not "
            f"evidence: {shown}. Run more seeds, e.g. `seed=0,1,2`.")

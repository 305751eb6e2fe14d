"""A Report as Markdown (figures linked beside it), as one HTML file (figures embedded, so it opens
from disk or as an MLflow artifact without its folder), and as JSON with the same tables for scripts."""

from __future__ import annotations

import base64
import html as html_lib
import math
import time

import numpy as np
import pandas as pd

from imbalance_lab.report.stats import INTERVAL_NAME, MIN_BLOCKS
from imbalance_lab.report.summary import interval_text
from imbalance_lab.report.tables import combination_label

LEADERBOARD_ROWS = 100


def sections(report) -> list[tuple[str, list]]:
    """(heading, blocks) in reading order; a block is a str paragraph or a DataFrame table."""
    metric = report.metric
    intro = [*_scope_text(report), f"Metric: `{metric}`. Every mean and every paired difference comes with its "
             f"{INTERVAL_NAME}, over the runs (seeds x datasets) or pairs it rests on.",
             _baseline_text(report), *report.warnings, *report.notes]
    board = report.leaderboard
    board_text = [
        f"One row per combination of the axes that vary ({', '.join(report.columns) or 'none'}), ranked by mean "
        f"{metric}. `seeds`/`runs`: how many it rests on; `95 % interval`: the t interval of the mean; `verdict`: "
        "`best` (the best row with more than one seed), `not distinguishable` (its interval overlaps the best's), "
        "`below the best`, or `one seed` (no interval: its rank is not evidence). `naive` = mean macro-F1 of always "
        "predicting the training majority class, `collapsed` = runs that predicted one class or fewer than half of "
        "them, `failed` = runs that never finished, `keras_acc` = what Keras's metrics=['accuracy'] would have "
        "reported (binary accuracy for bce), `doctor` = the doctor's warnings for the runs (e.g. unscaled_inputs, "
        "heavy_regularisation, optimizer_stalls; `imbalance-lab-doctor OVERRIDES --why` tests which is the cause)."
        + (f" Top {LEADERBOARD_ROWS} of {len(board)}: all rows are in leaderboard.csv and report.json."
           if len(board) > LEADERBOARD_ROWS else ""),
        interval_columns(board.head(LEADERBOARD_ROWS).assign(baseline=board["baseline"].map({True: "yes", False: ""}))),
    ]
    effect_text = [
        "Each value against its axis's reference, only in runs that agree on every other axis (and swept "
        "hyperparameter), the data and the seed: `pairs` = how many such pairs the estimate uses, `mean_diff` = "
        "the mean of value minus reference over them. A value with no pair gets no number (`no pairs`), "
        "instead of an average over runs that differ in other ways.",
        interval_columns(report.effects)] if not report.effects.empty else ["No axis varies."]
    return [
        (f"imbalance-lab report: {report.runs.experiment}", intro),
        ("Leaderboard", board_text),
        ("Effects (paired)", effect_text),
        *([("Equal tuning budget", _tuning(report))] if report.tuning else []),
        ("Statistics", _statistics(report)),
        ("Figures", list(report.figures.items())),
    ]


def payload(report) -> dict:
    """The report's tables as plain data (report.json): NaN becomes null."""
    runs, t = report.runs, report.tuning
    grid = report.grid
    data = {
        "experiment": runs.experiment, "uri": runs.uri, "scope": "sweep" if runs.parent_run_id else "experiment",
        "parent_run_id": runs.parent_run_id, "logged_to": report.logged_to, "metric": report.metric,
        "interval": INTERVAL_NAME,
        "runs": {"finished": len(runs.finished), "failed": len(runs.failed), "sweeps": runs.sweeps,
                 "outside_sweeps": runs.outside_sweeps, "rerun_keys": runs.rerun_keys,
                 "older_duplicates_left_out": runs.duplicates},
        "baseline": report.baseline, "references": report.references,
        "rows": [{"rank": r["rank"], "combination": r["combination"], "axes": axes.get(r["combination"], {}),
                  "n_seeds": r["seeds"], "n_runs": r["runs"], "mean": r["mean"],
                  "interval": [r["ci_low"], r["ci_high"]], "verdict": r["verdict"], "std": r["std"],
                  "naive": r["naive"], "collapsed": r["collapsed"], "failed": r["failed"], "baseline": r["baseline"]}
                 for axes in [_axes(report, report.columns)] for r in report.leaderboard.to_dict("records")],
        "effects": _effects(report.effects),
        "heatmap": None if grid is None else {
            "rows": grid.rows, "columns": grid.columns, "reference": list(grid.reference),
            "cells": [{"row": r, "column": c, "n_pairs": grid.n_pairs.loc[r, c], "mean_difference": grid.mean.loc[r, c],
                       "half_width": grid.half_width.loc[r, c]} for r in grid.mean.index for c in grid.mean.columns]},
        "tuned": None if t is None else {
            "axis": t.axis, "select_on": t.select_on, "reference": t.reference,
            "rows": [{"rank": r["rank"], "combination": r["combination"], "axes": axes.get(r["combination"], {}),
                      "fixed": {"n_seeds": r["fixed_seeds"], "mean": r["fixed_mean"],
                                "interval": [r["fixed_ci_low"], r["fixed_ci_high"]]},
                      "tuned": {"n_seeds": r["seeds"], "mean": r["mean"], "interval": [r["ci_low"], r["ci_high"]],
                                "picked": picked.get(r["combination"], {}), "tried": r["tried"]},
                      "verdict": r["verdict"]}
                     for axes in [_axes(report, t.remedy_columns)]
                     for picked in [{c: g["picked"].value_counts().to_dict() for c, g in t.picks.groupby("combination")}]
                     for r in t.table.to_dict("records")],
            "picks": t.picks.to_dict("records"), "effects": _effects(t.effects), "notes": t.notes},
        "statistics": {"friedman": vars(report.friedman), "wilcoxon": report.wilcoxon.to_dict("records")},
        "warnings": report.warnings, "notes": report.notes,
    }
    return _plain(data)


def markdown(report) -> str:
    lines = []
    for level, (heading, blocks) in enumerate(sections(report)):
        lines += [f"{'#' if level == 0 else '##'} {heading}", ""]
        for block in blocks:
            if isinstance(block, pd.DataFrame):
                lines += [markdown_table(block), ""]
            elif isinstance(block, tuple):
                caption, path = block
                lines += [f"**{caption}**", "", f"![{caption}]({path.name})", ""]
            else:
                lines += [block, ""]
    lines.append(f"_Written {time.strftime('%Y-%m-%d %H:%M:%S')} by imbalance-lab-report._")
    return "\n".join(lines) + "\n"


def html(report) -> str:
    body = []
    for level, (heading, blocks) in enumerate(sections(report)):
        body.append(f"<h{1 if level == 0 else 2}>{html_lib.escape(heading)}</h{1 if level == 0 else 2}>")
        for block in blocks:
            if isinstance(block, pd.DataFrame):
                body.append(block.to_html(index=False, na_rep="", float_format=_fmt, border=0, classes="table"))
            elif isinstance(block, tuple):
                caption, path = block
                data = base64.b64encode(path.read_bytes()).decode()
                body.append(f'<figure><img alt="{html_lib.escape(caption)}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{html_lib.escape(caption)}</figcaption></figure>")
            else:
                body.append(f"<p>{_inline_code(block)}</p>")
    title = html_lib.escape(f"imbalance-lab report: {report.runs.experiment}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _statistics(report) -> list:
    f = report.friedman
    if f.p_value is None:
        friedman = f.note
    else:
        friedman = (f"Friedman test over {f.n_combinations} combinations in {f.n_blocks} seed/dataset blocks where "
                    f"all finished: chi-square = {f.statistic:.3f}, p = {f.p_value:.3g}"
                    + (" (the combinations differ)." if f.p_value < 0.05 else
                       " (no evidence that the combinations differ).") + (f" {f.note}" if f.note else ""))
    if report.baseline is None:
        return [friedman, "No Wilcoxon tests: there is no baseline combination."]
    table = report.wilcoxon
    tested = table["p_value"].notna().sum()
    if tested == 0:
        wilcoxon = (f"Wilcoxon tests against the baseline not run: too few pairs (the same seed and dataset run "
                    f"by both) — at least {MIN_BLOCKS} per combination are needed; run more seeds, e.g. `seed=0,1,2,3,4,5`.")
        return [friedman, wilcoxon]
    significant = int((table["p_holm"] < 0.05).sum())
    intro = (f"Each combination against the baseline: Wilcoxon signed-rank test (two-sided) on the paired "
             f"differences of {report.metric} (pairs share seed and dataset), Holm-corrected over {tested} "
             f"test(s); {significant} differ at p_holm < 0.05. `mean_diff`: the mean paired difference with its "
             "95 % interval; `wins`/`losses`: pairs where the combination scored higher/lower.")
    return [friedman, intro, interval_columns(table.sort_values("p_value", na_position="last"))]


def _baseline_text(report) -> str:
    refs = ", ".join(f"{k}={v}" for k, v in report.references.items()) or "none"
    if report.baseline is None:
        return f"Baseline: none of the combinations (see the note below). References of the effects: {refs}."
    board = report.leaderboard.set_index("combination")
    mean = board.loc[report.baseline, "mean"]
    return (f"Baseline (all remedies off unless --baseline says otherwise): `{report.baseline}`, "
            f"mean {report.metric} {_fmt(mean)}. References of the effects (each axis's default, or --baseline): {refs}.")


def _scope_text(report) -> list[str]:
    runs = report.runs
    if runs.parent_run_id:
        scope = f"the runs of the sweep whose parent run is `{runs.parent_run_id}`"
    else:
        scope = f"the whole experiment, {runs.sweeps} sweep(s)" + (
            f" and {runs.outside_sweeps} run(s) started outside any sweep" if runs.outside_sweeps else "")
    lines = [f"Experiment `{runs.experiment}` in `{runs.uri}`, {scope}: {len(runs.finished)} finished run(s), "
             f"{len(runs.failed)} failed run(s) never finished."]
    if runs.duplicates:
        lines.append(f"{runs.rerun_keys} run_key(s) finished more than once (tracking.rerun=true): each counts once, "
                     f"with its latest run ({runs.duplicates} older run(s) left out).")
    else:
        lines.append("Each run_key finished once: no duplicate to leave out.")
    if report.logged_to:
        lines.append(f"Logged to MLflow run `{report.logged_to}` (artifacts under report/).")
    return lines


def _tuning(report) -> list:
    t = report.tuning
    table = t.table.rename(columns={"fixed_seeds": "fixed seeds", "fixed_mean": "fixed mean", "seeds": "tuned seeds",
                                    "mean": "tuned mean", "verdict": "tuned verdict", "rank": "tuned rank"})
    table.insert(4, "fixed 95 % interval", [interval_text(lo, hi) for lo, hi in
                                            zip(t.table["fixed_ci_low"], t.table["fixed_ci_high"])])
    table = table.drop(columns=["fixed_ci_low", "fixed_ci_high"])
    blocks = [
        f"For each remedy combination (of {', '.join(t.remedy_columns) or 'nothing: all runs'}), data and seed, the "
        f"value of `{t.axis}` with the best `{t.select_on}` is picked, and its TEST `{report.metric}` reported: every "
        f"remedy gets the same tuning budget. `fixed`: {t.axis} kept at its reference `{t.reference}`; `tuned`: the "
        "picked runs; `picked`: the values picked, with how many seeds picked each; `tried`: how many values each "
        "seed could pick from. Ranked by tuned mean.",
        *t.notes, interval_columns(table)]
    if not t.effects.empty:
        blocks += ["Paired effects at equal tuning budget: each remedy value at its tuned best against the reference "
                   "at its tuned best, paired by the other axes, data and seed.", interval_columns(t.effects)]
    return blocks


def interval_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """A table for reading: `ci_low`/`ci_high` become one `95 % interval` column after the mean."""
    if "ci_low" not in frame.columns:
        return frame
    shown = frame.copy()
    at = list(shown.columns).index("ci_low")
    shown.insert(at, "95 % interval", [interval_text(lo, hi) for lo, hi in zip(frame["ci_low"], frame["ci_high"])])
    return shown.drop(columns=["ci_low", "ci_high"])


def _axes(report, columns: list[str]) -> dict[str, dict]:
    """Each combination label's values on `columns` (from its first run, finished or failed)."""
    every = pd.concat([report.runs.finished, report.runs.failed], ignore_index=True)
    if every.empty:
        return {}
    labelled = every.assign(_label=combination_label(every, columns)).drop_duplicates("_label")
    return {row["_label"]: {c: row[c] for c in columns} for row in labelled.to_dict("records")}


def _effects(frame: pd.DataFrame) -> list[dict]:
    return [{"axis": r["axis"], "value": r["value"], "reference": r["reference"], "n_pairs": r["n_pairs"],
             "mean_difference": r["mean_diff"], "interval": [r["ci_low"], r["ci_high"]], "note": r["note"]}
            for r in frame.to_dict("records")] if not frame.empty else []


def _plain(value):
    """JSON-ready: NaN and NA -> None, numpy scalars -> Python ones."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if value is None or value is pd.NA:
        return None
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(value) -> str:
    if value is None or value is pd.NA:
        return ""
    if isinstance(value, float):
        return _fmt(value)
    return str(value).replace("|", "\\|")


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and 0 < abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _inline_code(text: str) -> str:
    parts = html_lib.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table.table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0 1.5em; }
table.table th, table.table td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; }
table.table th:first-child, table.table td:first-child { text-align: left; }
code { background: #f3f3f3; padding: 0 3px; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; }
figcaption { font-size: 13px; color: #555; }
"""

"""A study's report: load its runs, compute the tables, intervals, paired effects, tuned picks,
statistics and figures, write report.md, report.html and report.json, and log them to MLflow (a
report over a whole experiment as a run of its own there, a --parent report to that sweep's run)."""

from __future__ import annotations

import json
import re
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from imbalance_lab import tracking
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.report import plots, render, stats, summary, tables
from imbalance_lab.report.effects import PairedGrid, paired_effects, paired_grid
from imbalance_lab.report.runs import (
    ROLE_TAG,
    StudyRuns,
    combination_columns,
    data_column,
    load_runs,
    store_client,
)
from imbalance_lab.report.tuning import Tuning, selection_values
from imbalance_lab.report.tuning import tune as tuned_by

DEFAULT_HEATMAP = ("loss", "sampler")
TOP_RECALL = 5
ARTIFACT_DIR = "report"


@dataclass
class Report:
    runs: StudyRuns
    metric: str
    columns: list[str]
    baseline_options: dict[str, str]
    references: dict[str, str]                 # column -> the value its effects are measured against
    baseline: str | None
    leaderboard: pd.DataFrame
    effects: pd.DataFrame
    grid: PairedGrid | None
    friedman: stats.FriedmanResult
    wilcoxon: pd.DataFrame
    tuning: Tuning | None = None
    figures: dict[str, Path] = field(default_factory=dict)   # caption -> PNG
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    logged_to: str | None = None               # the MLflow run holding the report


def compute(runs: StudyRuns, metric: str = "test/macro_f1", baseline_pairs: list[str] | None = None,
            heatmap_axes: tuple[str, str] = DEFAULT_HEATMAP, tune: str | None = None,
            select_on: str = "val/macro_f1") -> Report:
    """Everything but the figures."""
    finished = runs.finished
    if finished.empty:
        raise ImbalanceLabError(f"Experiment {runs.experiment!r} has no FINISHED child run to compare "
                                f"({len(runs.failed)} failed); run a sweep first, e.g. `imbalance-lab -m loss=ce,bce`.")
    columns = combination_columns(pd.concat([finished, runs.failed], ignore_index=True))
    options = tables.parse_baseline(baseline_pairs, runs.experiment)
    refs, notes = tables.references(finished, columns, options, runs.experiment)
    base = tables.baseline_label(finished, columns, options, refs)
    board = tables.leaderboard(finished, runs.failed, columns, metric, base)
    data = data_column(finished)
    paired = paired_effects(finished, [c for c in columns if finished[c].nunique() > 1], metric, refs, data)
    pair = _heatmap_axes(columns, finished, heatmap_axes)
    grid = paired_grid(finished, columns, pair[0], pair[1], metric, refs, data) if pair else None
    block_table = stats.blocks(finished, tables.combination_label(finished, columns), data, metric)
    report = Report(runs, metric, columns, options, refs, base, board, paired, grid, stats.friedman(block_table),
                    stats.wilcoxon_vs_baseline(block_table, base), notes=notes)
    if tune:
        selection = selection_values(runs.uri, list(finished["run_id"]), select_on)
        report.tuning = tuned_by(finished, columns, tune, select_on, metric, refs, data, selection)
    if base is None and columns:
        wanted = ", ".join(f"{c}={options[c]}" for c in columns if c in options)
        report.notes.append(f"No combination matches the baseline ({wanted}); the tests against it are "
                            "left out. Name one with --baseline AXIS=OPTION.")
    if pair and grid is None:
        report.notes.append(f"No heatmap: no run has the reference cell of {pair[0]} x {pair[1]}, so no cell has a pair.")
    for table in (board, report.tuning.table if report.tuning else None):
        warning = tables.one_seed_warning(table) if table is not None else None
        if warning and warning not in report.warnings:
            report.warnings.append(warning)
    return report


def draw(report: Report, folder: Path) -> None:
    """The figures, as PNG files in `folder`; a figure that cannot be drawn gets a note instead."""
    finished, metric = report.runs.finished, report.metric
    figures = report.figures
    figures[f"Leaderboard: mean {metric} with its 95 % interval, best first"] = plots.save(
        plots.leaderboard_figure(report.leaderboard, metric), folder / "leaderboard.png")
    if not report.effects.empty:
        figures["Paired effects: each value against its axis's reference, with 95 % intervals"] = plots.save(
            plots.effects_figure(report.effects, metric), folder / "effects.png")
    if report.grid is not None:
        figures[f"Paired differences by {report.grid.rows} x {report.grid.columns}"] = plots.save(
            plots.heatmap_figure(report.grid, metric), folder / "heatmap.png")
    recalls = _recall_table(report)
    if recalls is not None:
        figures["Per-class test recall: the best combinations and the baseline"] = plots.save(
            plots.recall_bars_figure(recalls), folder / "per_class_recall.png")
    panels = _confusion_panels(report)
    if panels:
        figures["Confusion matrices (row-normalised, summed over seeds)"] = plots.save(
            plots.confusion_figure(panels), folder / "confusion_matrices.png")
    else:
        report.notes.append("No confusion matrices: the runs have no confusion_matrix.json artifact.")
    if tables.NAIVE_METRIC in finished.columns:
        figures[f"{metric} against naive macro-F1, every run"] = plots.save(
            plots.f1_vs_naive_figure(finished, metric, tables.NAIVE_METRIC), folder / "f1_vs_naive.png")


def write(report: Report, folder: Path) -> tuple[Path, Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md, html, data = folder / "report.md", folder / "report.html", folder / "report.json"
    md.write_text(render.markdown(report))
    html.write_text(render.html(report))
    data.write_text(json.dumps(render.payload(report), indent=2, allow_nan=False))
    report.leaderboard.to_csv(folder / "leaderboard.csv", index=False)
    return md, html, data


@contextmanager
def logged_run(report: Report) -> Iterator[str]:
    """The run that receives the report. A --parent report goes to that sweep's parent run. A report
    over the whole experiment becomes a run of its own there, tagged imbalance_lab.role=report (no
    sweep counts it as a child, no report as a training run), with the leaderboard as its
    description and the best row's mean as a metric; it ends FINISHED, or FAILED if writing fails."""
    runs = report.runs
    if runs.parent_run_id:
        yield runs.parent_run_id
        return
    client = store_client(runs.uri)
    run_id = client.create_run(runs.experiment_id, run_name=f"report {time.strftime('%Y-%m-%d %H:%M:%S')}",
                               tags={**tracking.process_tags(),   # a killed report: KILLED by the next sweep
                                     ROLE_TAG: "report", "report.scope": "experiment"}).info.run_id
    try:
        yield run_id
        sweeps = f"{runs.sweeps} sweep(s)" + (f" and {runs.outside_sweeps} run(s) outside any" if runs.outside_sweeps else "")
        client.set_tag(run_id, "mlflow.note.content", summary.note_text(
            report.leaderboard, report.metric, len(runs.finished), report.warnings, f"the whole experiment: {sweeps}"))
        best = summary.best_mean(report.leaderboard)
        if best is not None:
            client.log_metric(run_id, summary.BEST_METRIC, best)
    except BaseException:
        client.set_terminated(run_id, "FAILED")   # never a run left RUNNING
        raise
    client.set_terminated(run_id, "FINISHED")


def build(uri: str, experiment: str, output: Path, parent: str | None = None, metric: str = "test/macro_f1",
          baseline_pairs: list[str] | None = None, heatmap_axes: tuple[str, str] = DEFAULT_HEATMAP,
          log: bool = True, tune: str | None = None, select_on: str = "val/macro_f1") -> Report:
    report = compute(load_runs(uri, experiment, parent), metric, baseline_pairs, heatmap_axes, tune, select_on)
    output.mkdir(parents=True, exist_ok=True)
    draw(report, output)
    if not log:
        write(report, output)
        return report
    with logged_run(report) as run_id:
        report.logged_to = run_id           # the report says where it is logged
        write(report, output)
        store_client(uri).log_artifacts(run_id, str(output), ARTIFACT_DIR)
    return report


def _heatmap_axes(columns: list[str], finished: pd.DataFrame, wanted: tuple[str, str]) -> tuple[str, str] | None:
    """The requested pair when both vary, else the varying axes with most options (one may be a
    constant axis: a one-row heatmap still shows a one-axis study)."""
    varying = [c for c in columns if finished[c].nunique() > 1]
    if all(axis in varying for axis in wanted):
        return wanted
    ranked = sorted(varying, key=lambda c: -finished[c].nunique())
    if len(ranked) >= 2:
        return ranked[0], ranked[1]
    if len(ranked) == 1:
        other = next(a for a in ("model", "activation", "loss") if a != ranked[0])
        return other, ranked[0]
    return None


def _recall_table(report: Report) -> pd.DataFrame | None:
    finished = report.runs.finished
    recall_columns = sorted((c for c in finished.columns if c.startswith("test/recall_")), key=_natural)
    if not recall_columns:
        report.notes.append("No per-class recall plot: the runs have no test/recall_<label> metric.")
        return None
    best = [c for c in report.leaderboard["combination"] if c != report.baseline and
            c in set(report.leaderboard.dropna(subset=["mean"])["combination"])][:TOP_RECALL]
    chosen = best + ([report.baseline] if report.baseline else [])
    labels = tables.combination_label(finished, report.columns)
    means = finished.assign(combination=labels).groupby("combination")[recall_columns].mean()
    recalls = means.loc[chosen]
    recalls.columns = [c[len("test/recall_"):] for c in recall_columns]
    recalls.index = [f"{name} (baseline)" if name == report.baseline else name for name in chosen]
    return recalls


def _confusion_panels(report: Report) -> dict[str, tuple[list, np.ndarray]]:
    """The summed confusion matrix of the baseline's runs and of the best combination's runs (the
    best of the others when the baseline itself ranks first: a comparison needs two)."""
    ranked = [c for c in report.leaderboard.dropna(subset=["mean"])["combination"] if c != report.baseline]
    wanted = [(f"baseline: {report.baseline}", report.baseline)] if report.baseline else []
    if ranked:
        first = report.leaderboard.dropna(subset=["mean"])["combination"].iloc[0]
        wanted.append((f"best: {ranked[0]}" if first != report.baseline else
                       f"best after the baseline: {ranked[0]}", ranked[0]))
    labels = tables.combination_label(report.runs.finished, report.columns)
    client = store_client(report.runs.uri)
    panels = {}
    for title, combination in wanted:
        run_ids = report.runs.finished.loc[labels == combination, "run_id"].head(20)
        summed = _summed_confusion(client, list(run_ids))
        if summed:
            panels[title] = summed
    return panels


def _summed_confusion(client: MlflowClient, run_ids: list[str]) -> tuple[list, np.ndarray] | None:
    labels, total = None, None
    with tempfile.TemporaryDirectory(prefix="imbalance-lab-report-") as tmp:
        for run_id in run_ids:
            try:
                path = client.download_artifacts(run_id, "confusion_matrix.json", str(Path(tmp) / run_id))
            except Exception:  # an older run without the artifact: the others still count
                continue
            payload = json.loads(Path(path).read_text())
            matrix = np.asarray(payload["matrix"], dtype=float)
            if labels is None:
                labels, total = payload["labels"], matrix
            elif payload["labels"] == labels:
                total = total + matrix
    return (labels, total) if labels is not None else None


def _natural(name: str):
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name)]

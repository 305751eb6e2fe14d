"""A study's report: load its runs, compute the tables, statistics and figures, write report.md and
report.html, log them to the sweep's parent run."""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow.tracking import MlflowClient

from imbalance_lab import tracking
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.report import plots, render, stats, tables
from imbalance_lab.report.runs import StudyRuns, combination_columns, data_column, load_runs, varying_axes

DEFAULT_HEATMAP = ("loss", "sampler")
TOP_RECALL = 5
ARTIFACT_DIR = "report"


@dataclass
class Report:
    runs: StudyRuns
    metric: str
    columns: list[str]
    baseline_options: dict[str, str]
    baseline: str | None
    leaderboard: pd.DataFrame
    effects: pd.DataFrame
    friedman: stats.FriedmanResult
    wilcoxon: pd.DataFrame
    figures: dict[str, Path] = field(default_factory=dict)   # caption -> PNG
    notes: list[str] = field(default_factory=list)


def compute(runs: StudyRuns, metric: str = "test/macro_f1", baseline_pairs: list[str] | None = None) -> Report:
    """Everything but the figures: leaderboard, main effects, Friedman and Wilcoxon-Holm."""
    finished = runs.finished
    if finished.empty:
        raise ImbalanceLabError(f"Experiment {runs.experiment!r} has no FINISHED child run to compare "
                                f"({len(runs.failed)} failed); run a sweep first, e.g. `imbalance-lab -m loss=ce,bce`.")
    columns = combination_columns(pd.concat([finished, runs.failed], ignore_index=True))
    options = tables.parse_baseline(baseline_pairs, runs.experiment)
    base = tables.baseline_label(finished, columns, options)
    board = tables.leaderboard(finished, runs.failed, columns, metric, base)
    effects = tables.main_effects(finished, [c for c in columns if c in varying_axes(finished)], metric)
    block_table = stats.blocks(finished, tables.combination_label(finished, columns), data_column(finished), metric)
    report = Report(runs, metric, columns, options, base, board, effects, stats.friedman(block_table),
                    stats.wilcoxon_vs_baseline(block_table, base))
    if base is None and columns:
        wanted = ", ".join(f"{c}={options[c]}" for c in columns if c in options)
        report.notes.append(f"No combination matches the baseline ({wanted}); deltas and tests against it are "
                            "left out. Name one with --baseline AXIS=OPTION.")
    return report


def draw(report: Report, folder: Path, heatmap_axes: tuple[str, str] = DEFAULT_HEATMAP) -> None:
    """The four figures, as PNG files in `folder`; a figure that cannot be drawn gets a note instead."""
    finished, metric = report.runs.finished, report.metric
    pair = _heatmap_axes(report.columns, finished, heatmap_axes)
    if pair:
        means = tables.two_axis_means(finished, pair[0], pair[1], metric)
        report.figures[f"Mean {metric} by {pair[0]} x {pair[1]}"] = plots.heatmap_png(
            means, folder / "heatmap.png", metric)
    else:
        report.notes.append("No heatmap: no axis varies in this study.")
    recalls = _recall_table(report)
    if recalls is not None:
        report.figures["Per-class test recall: the best combinations and the baseline"] = plots.recall_bars_png(
            recalls, folder / "per_class_recall.png")
    panels = _confusion_panels(report)
    if panels:
        report.figures["Confusion matrices (row-normalised, summed over seeds)"] = plots.confusion_pair_png(
            panels, folder / "confusion_matrices.png")
    else:
        report.notes.append("No confusion matrices: the runs have no confusion_matrix.json artifact.")
    if tables.NAIVE_METRIC in finished.columns:
        report.figures[f"{metric} against naive macro-F1, every run"] = plots.f1_vs_naive_png(
            finished, folder / "f1_vs_naive.png", metric, tables.NAIVE_METRIC)


def write(report: Report, folder: Path) -> tuple[Path, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    md, html = folder / "report.md", folder / "report.html"
    md.write_text(render.markdown(report))
    html.write_text(render.html(report))
    report.leaderboard.to_csv(folder / "leaderboard.csv", index=False)
    return md, html


def log_to_parent(report: Report, folder: Path) -> str | None:
    """The report and its figures become artifacts of the sweep's parent run (under report/)."""
    run_id = report.runs.parent_run_id
    if run_id:
        tracking.client_for(report.runs.uri).log_artifacts(run_id, str(folder), ARTIFACT_DIR)
    return run_id


def build(uri: str, experiment: str, output: Path, parent: str | None = None, metric: str = "test/macro_f1",
          baseline_pairs: list[str] | None = None, heatmap_axes: tuple[str, str] = DEFAULT_HEATMAP,
          log: bool = True) -> Report:
    report = compute(load_runs(uri, experiment, parent), metric, baseline_pairs)
    output.mkdir(parents=True, exist_ok=True)
    draw(report, output, heatmap_axes)
    write(report, output)
    if log:
        log_to_parent(report, output)
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
    client = tracking.client_for(report.runs.uri)  # retried while sweep workers hold the store
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

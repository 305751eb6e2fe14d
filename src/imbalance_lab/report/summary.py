"""The answer at a glance in the MLflow UI: a sweep's leaderboard (top rows, with seeds and
intervals) as its parent run's description (`mlflow.note.content`), and the best row's mean test
macro-F1 as a metric of that run, so a user who opens the experiment needs no extra column.

No matplotlib here: the sweep's end calls it."""

from __future__ import annotations

import math

import pandas as pd

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.report import stats, tables
from imbalance_lab.report.runs import combination_columns, load_run_ids, store_client

NOTE_ROWS = 10
NOTE_TAG = "mlflow.note.content"
BEST_METRIC = "best/test_macro_f1"   # the best leaderboard row's mean over its seeds (not one lucky run)
NOTE_LIMIT = 7000                    # characters; MLflow keeps tag values up to 8000


def sweep_note(uri: str, experiment_id: str, run_ids: list[str], parent_run_id: str | None = None,
               metric: str = "test/macro_f1") -> tuple[str, float | None]:
    """The leaderboard of the runs `run_ids` (a sweep's jobs, the earlier runs it skipped included)
    as Markdown, and the best row's mean `metric` (best_mean; None without a finished run)."""
    runs = load_run_ids(uri, experiment_id, run_ids)
    if runs.finished.empty:
        return f"No run of this sweep finished ({len(runs.failed)} failed).", None
    columns = combination_columns(pd.concat([runs.finished, runs.failed], ignore_index=True))
    try:
        board = tables.leaderboard(runs.finished, runs.failed, columns, metric, None)
    except ImbalanceLabError as err:   # a sweep's end must not fail over its summary
        return str(err), None
    command = f"imbalance-lab-report --experiment {runs.experiment}" + (f" --parent {parent_run_id}"
                                                                         if parent_run_id else "")
    warning = tables.one_seed_warning(board)
    text = note_text(board, metric, len(runs.finished), [warning] if warning else [], "this sweep",
                     f"Full report (paired effects, tests, figures): `{command}`")
    return text, best_mean(board)


def write_sweep_note(uri: str, experiment_id: str, parent_run_id: str, run_ids: list[str]) -> str:
    """sweep_note, written to the sweep's parent run: the text as its description, the best row's
    mean as the metric BEST_METRIC. Returns the text."""
    text, best = sweep_note(uri, experiment_id, run_ids, parent_run_id)
    client = store_client(uri)
    client.set_tag(parent_run_id, NOTE_TAG, text)
    if best is not None:
        client.log_metric(parent_run_id, BEST_METRIC, best)
    return text


def best_mean(board: pd.DataFrame) -> float | None:
    """The mean of the row marked `best` (the best that rests on more than one seed), else of the
    top row (every row has one seed), or None."""
    best = board.loc[board["verdict"] == "best", "mean"]
    means = best if not best.empty else board["mean"].dropna()
    return float(means.iloc[0]) if not means.empty else None


def note_text(board: pd.DataFrame, metric: str, n_runs: int, warnings: list[str], scope: str,
              footer: str = "") -> str:
    """The top rows as a Markdown table: rank, combination, seeds, mean, 95 % interval, verdict."""
    head = (f"**Leaderboard** of {scope}: `{metric}`, mean over seeds with its {stats.INTERVAL_NAME}; "
            f"{n_runs} finished run(s), {len(board)} row(s).")
    lines = ["| rank | combination | seeds | mean | 95 % interval | verdict |", "| --- | --- | --- | --- | --- | --- |"]
    for row in board.head(NOTE_ROWS).itertuples():
        lines.append(f"| {_cell(row.rank)} | {_cell(row.combination)} | {row.seeds} | {_number(row.mean)} | "
                     f"{interval_text(row.ci_low, row.ci_high)} | {row.verdict} |")
    more = [f"Top {NOTE_ROWS} of {len(board)} rows."] if len(board) > NOTE_ROWS else []
    tail = [*more, *warnings, *([footer] if footer else [])]
    while len("\n".join([head, "", *lines, "", *tail])) > NOTE_LIMIT and len(lines) > 3:
        lines.pop()
    return "\n".join([head, "", *lines, "", *tail]).strip() + "\n"


def interval_text(low, high) -> str:
    if low is None or high is None or any(isinstance(v, float) and math.isnan(v) for v in (low, high)):
        return "n/a"
    return f"[{low:.4f}, {high:.4f}]"


def _number(value) -> str:
    return "" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _cell(value) -> str:
    return "" if value is None or value is pd.NA else str(value).replace("|", "\\|").replace("\n", " ")

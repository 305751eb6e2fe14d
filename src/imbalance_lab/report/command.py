"""`imbalance-lab-report`: leaderboard, effects, statistics and plots of a study, from MLflow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.paths import default_tracking_uri

TOP_PRINTED = 10


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="imbalance-lab-report",
        description="Compare the runs of a study: leaderboard over seeds, main effect of each axis, Friedman "
                    "and Wilcoxon-Holm tests against the baseline, plots. Writes report.md and report.html and "
                    "logs them to the sweep's parent run.")
    p.add_argument("--experiment", default="imbalance-lab", help="MLflow experiment (the study's name)")
    p.add_argument("--parent", help="only the runs of this sweep (its parent run id); default: the whole "
                                    "experiment, logged to its latest sweep")
    p.add_argument("--metric", default="test/macro_f1", help="metric to rank by (default test/macro_f1)")
    p.add_argument("--output", type=Path, help="folder for the report (default reports/<experiment>/)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow store (default $MLFLOW_TRACKING_URI, else sqlite:///<project>/mlflow.db)")
    p.add_argument("--baseline", action="append", metavar="AXIS=OPTION",
                   help="the baseline's option on an axis (repeatable); default: every remedy off")
    p.add_argument("--heatmap", default="loss,sampler", metavar="ROWS,COLUMNS", help="the heatmap's two axes")
    p.add_argument("--no-log", action="store_true", help="do not log the report to the parent run")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # --help and bad arguments end here, before the imports below
    from imbalance_lab.report.build import build  # matplotlib, MLflow, scipy, pandas: seconds to import

    heatmap = tuple(a.strip() for a in args.heatmap.split(","))
    try:
        if len(heatmap) != 2:
            raise ImbalanceLabError(f"--heatmap {args.heatmap!r} must name two axes; write e.g. --heatmap loss,sampler.")
        uri = args.tracking_uri or default_tracking_uri()
        output = args.output or Path("reports") / args.experiment
        report = build(uri, args.experiment, output, args.parent, args.metric, args.baseline, heatmap,
                       log=not args.no_log)
    except ImbalanceLabError as err:
        print(f"imbalance-lab-report: {err}", file=sys.stderr)
        return 2
    print(summary(report, output))
    return 0


def command_line(experiment: str, uri: str) -> str:
    """The command that reports on `experiment` in the store at `uri`, as short as it can be."""
    import shlex

    parts = ["imbalance-lab-report", "--experiment", experiment]
    if uri != default_tracking_uri():
        parts += ["--tracking-uri", uri]
    return " ".join(shlex.quote(p) for p in parts)


def summary(report, output: Path) -> str:
    board = report.leaderboard.head(TOP_PRINTED).drop(columns=["baseline"])
    shown = board.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    logged = (f"Logged to the parent run {report.runs.parent_run_id} (artifacts under report/)."
              if report.runs.parent_run_id else "No sweep parent run to log to.")
    return (f"Leaderboard ({report.metric}, top {len(board)} of {len(report.leaderboard)}; "
            f"baseline: {report.baseline or 'none'}):\n{shown}\n\n"
            f"Report: {output / 'report.md'} and {output / 'report.html'}\n{logged}")

"""`imbalance-lab-report`: leaderboard, effects, statistics and plots of a study, from MLflow."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.paths import default_tracking_uri, output_root

TOP_PRINTED = 10


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="imbalance-lab-report",
        description="Compare the runs of a study: leaderboard over seeds with 95 %% intervals, paired effects of "
                    "each axis, optionally each remedy at its tuned best (--tune), Friedman and Wilcoxon-Holm tests "
                    "against the baseline, figures. Writes report.md, report.html and report.json and logs them to "
                    "MLflow: a --parent report to that sweep's parent run, a whole-experiment report as a run of "
                    "its own in the experiment.")
    p.add_argument("--experiment", default="imbalance-lab", help="MLflow experiment (the study's name)")
    p.add_argument("--parent", help="only the runs of this sweep (its parent run id), logged to that run; "
                                    "default: the whole experiment, every sweep, logged as a report run of its own")
    p.add_argument("--metric", default="test/macro_f1", help="metric to rank by (default test/macro_f1)")
    p.add_argument("--output", type=Path, help="folder for the report (default <project>/reports/<experiment>/, or "
                                                     "$IMBALANCE_LAB_OUTPUT/reports/<experiment>/)")
    p.add_argument("--tracking-uri", default=None,
                   help="MLflow store (default $MLFLOW_TRACKING_URI, else sqlite:///<project>/mlflow.db)")
    p.add_argument("--baseline", action="append", metavar="AXIS=OPTION",
                   help="the baseline's option on an axis (repeatable); default: every remedy off")
    p.add_argument("--heatmap", default="loss,sampler", metavar="ROWS,COLUMNS", help="the heatmap's two axes")
    p.add_argument("--tune", metavar="AXIS", help="give every remedy the same tuning budget over this axis or "
                                                  "hyperparameter (e.g. trainer.learning_rate): per combination and "
                                                  "seed, the value with the best --select-on is picked and its test "
                                                  "metric reported beside the fixed setting")
    p.add_argument("--select-on", default="val/macro_f1", metavar="METRIC",
                   help="validation metric --tune picks by, best epoch of each run (default val/macro_f1)")
    p.add_argument("--no-log", action="store_true", help="do not log the report to MLflow")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)  # --help and bad arguments end here, before the imports below
    from imbalance_lab.report.build import build  # matplotlib, MLflow, scipy, pandas: seconds to import

    heatmap = tuple(a.strip() for a in args.heatmap.split(","))
    try:
        if len(heatmap) != 2:
            raise ImbalanceLabError(f"--heatmap {args.heatmap!r} must name two axes; write e.g. --heatmap loss,sampler.")
        uri = args.tracking_uri or default_tracking_uri()
        output = args.output or output_root() / "reports" / args.experiment
        report = build(uri, args.experiment, output, args.parent, args.metric, args.baseline, heatmap,
                       log=not args.no_log, tune=args.tune, select_on=args.select_on)
    except ImbalanceLabError as err:
        print(f"imbalance-lab-report: {err}", file=sys.stderr)
        return 2
    print(summary(report, output))
    return 0


def command_line(experiment: str, uri: str) -> str:
    """The command that reports on `experiment` in the store at `uri`, pasteable from any folder with
    the venv inactive: the console script's absolute path, and the store unless it is the project's."""
    import os
    import shlex

    from imbalance_lab.paths import console_script, project_root

    if uri.startswith("sqlite:///"):  # a relative database path would depend on the folder
        uri = f"sqlite:///{Path(uri[len('sqlite:///'):]).resolve()}"
    parts = [console_script("imbalance-lab-report"), "--experiment", experiment]
    if uri != f"sqlite:///{project_root() / 'mlflow.db'}" or os.environ.get("MLFLOW_TRACKING_URI"):
        parts += ["--tracking-uri", uri]
    return shlex.join(parts)


def summary(report, output: Path) -> str:
    from imbalance_lab.report.render import interval_columns

    columns = ["rank", "combination", "seeds", "mean", "ci_low", "ci_high", "verdict"]
    board = interval_columns(report.leaderboard.head(TOP_PRINTED)[columns])
    shown = board.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    lines = [f"Leaderboard ({report.metric}, mean over seeds with 95 % t interval; top {len(board)} of "
             f"{len(report.leaderboard)}; baseline: {report.baseline or 'none'}):", shown, *report.warnings]
    if report.tuning:
        t = report.tuning
        tuned = interval_columns(t.table.head(TOP_PRINTED)[["rank", "combination", "fixed_mean", "seeds", "mean", "ci_low",
                                                   "ci_high", "picked"]])
        lines += ["", f"Tuned over {t.axis} on {t.select_on} (test {report.metric}; fixed = {t.axis}={t.reference}):",
                  tuned.to_string(index=False, float_format=lambda v: f"{v:.4f}")]
    logged = (f"Logged to MLflow run {report.logged_to} (artifacts under report/)." if report.logged_to
              else "Not logged to MLflow (--no-log).")
    lines += ["", f"Report: {output / 'report.md'}, {output / 'report.html'} and {output / 'report.json'}", logged]
    return "\n".join(lines)

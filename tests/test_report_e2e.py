"""From a real small sweep to report.html: the command the sweep prints, run as printed."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

from conftest import BIN, client


def test_sweep_prints_the_report_command_and_it_writes_the_report(small_sweep):
    out = small_sweep["stdout"]
    assert "Leaderboard (test macro-F1, best first" in out  # all 12 runs: the top 40 are shown
    board = out.split("Leaderboard", 1)[1].split("Browse the runs", 1)[0]
    assert sum(bool(re.search(r"·s\d+ ", line)) for line in board.splitlines()) == 12
    line = next(x for x in out.splitlines() if x.startswith("Compare them"))
    command = shlex.split(line.split(": ", 1)[1])
    folder, store = small_sweep["folder"], small_sweep["store"]
    # pasteable from anywhere: the venv's script by its absolute path, the store named
    assert command == [str(BIN / "imbalance-lab-report"), "--experiment", "imbalance-lab", "--tracking-uri", store]

    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    proc = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert _tensorflow_modules_loaded(folder, env) == []

    report_dir = Path(os.environ["IMBALANCE_LAB_OUTPUT"]) / "reports" / "imbalance-lab"  # one place for outputs
    html = (report_dir / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6 and "<table" in html
    assert "Friedman test over 4 combinations in 3 seed/dataset blocks" in html
    assert "with 3 pairs no p-value can go below 0.25" in html   # said plainly, not hidden

    c = client(store)
    exp = c.get_experiment_by_name("imbalance-lab")
    runs = c.search_runs([exp.experiment_id])
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    parent = next(r for r in runs if r.data.tags.get("imbalance_lab.role") == "sweep")
    report_run = next(r for r in runs if r.data.tags.get("imbalance_lab.role") == "report")
    # The leaderboard's mean for the baseline, recomputed from the runs themselves.
    base = [r.data.metrics["test/macro_f1"] for r in children
            if r.data.tags["loss"] == "ce" and r.data.tags["sampler"] == "none"]
    board = pd.read_csv(report_dir / "leaderboard.csv").set_index("combination")
    assert len(base) == 3 and abs(board.loc["loss=ce sampler=none", "mean"] - np.mean(base)) < 1e-12
    assert board["runs"].tolist() == [3, 3, 3, 3] and board.loc["loss=ce sampler=none", "baseline"]
    assert board["seeds"].tolist() == [3, 3, 3, 3] and board["ci_low"].lt(board["mean"]).all()
    # The whole experiment's report is a run of its own in it (not under the sweep's parent run).
    assert "mlflow.parentRunId" not in report_run.data.tags and not c.list_artifacts(parent.info.run_id, "report")
    logged = {a.path for a in c.list_artifacts(report_run.info.run_id, "report")}
    assert {"report/report.html", "report/report.md", "report/report.json", "report/heatmap.png",
            "report/effects.png", "report/leaderboard.png", "report/per_class_recall.png",
            "report/confusion_matrices.png", "report/f1_vs_naive.png"} <= logged
    # Every run logs val/macro_f1 per epoch (step = epoch): what --tune selects on.
    history = c.get_metric_history(children[0].info.run_id, "val/macro_f1")
    assert [m.step for m in history] == list(range(len(history))) and len(history) >= 2


def _tensorflow_modules_loaded(folder, env) -> list[str]:
    """Top-level modules the report command's import chain loads: TensorFlow costs ~6 s and is not needed."""
    code = "import sys; import imbalance_lab.cli, imbalance_lab.report.build; print(' '.join(sorted(sys.modules)))"
    proc = subprocess.run([str(BIN / "python"), "-c", code], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=120)
    return [m for m in proc.stdout.split() if re.match(r"^tensorflow($|\.)", m)]

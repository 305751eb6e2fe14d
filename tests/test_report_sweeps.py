"""Reports across sweeps: an experiment of two sweeps reported as one (run_keys finished twice
counted once), where each report is logged, and the leaderboard a sweep puts on its parent run."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy import stats as scipy_stats

from imbalance_lab.report import build, summary
from imbalance_lab.report.runs import load_runs

from report_store import log_run, new_store, sweep_parent

FIXED = {"model": "mlp", "activation": "softmax", "bias_init": "zeros", "class_weight": "none", "sampler": "none",
         "decision": "argmax", "trainer": "default", "dataset": "digits"}
F1 = {("ce", 0): 0.30, ("ce", 1): 0.32, ("ce", 2): 0.35, ("focal", 0): 0.41, ("focal", 1): 0.45, ("focal", 2): 0.43}
RERUN_F1 = 0.36      # ce seed 0 trained again in sweep B (tracking.rerun=true): the value that counts
ROLE = "tags.`imbalance_lab.role` = 'report'"


def t_interval(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return scipy_stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values))


@pytest.fixture
def two_sweeps(tmp_path):
    """Sweep A ran seeds 0 and 1, sweep B seed 2 and ce seed 0 again; an earlier report run (which
    carries a macro-F1 and a loss tag, as a trap) sits in the experiment too."""
    store, c, exp = new_store(tmp_path, "two-sweeps")
    a, b = sweep_parent(c, exp, 1000, "sweep A"), sweep_parent(c, exp, 5000, "sweep B")
    for (loss, seed), f1 in F1.items():
        log_run(c, exp, f"{loss}-{seed}", {**FIXED, "loss": loss}, seed, {"test/macro_f1": f1},
                start=(2000 if seed < 2 else 6000) + seed, parent=a if seed < 2 else b)
    log_run(c, exp, "ce-0", {**FIXED, "loss": "ce"}, 0, {"test/macro_f1": RERUN_F1}, start=7000, parent=b)
    old = c.create_run(exp, run_name="report (earlier)", start_time=8000,
                       tags={"imbalance_lab.role": "report", "loss": "ce", "run_key": "r"}).info.run_id
    c.log_metric(old, "test/macro_f1", 0.99)
    c.log_param(old, "seed", "9")
    c.set_terminated(old, "FINISHED")
    return {"uri": store, "client": c, "exp": exp, "a": a, "b": b, "old_report": old}


def test_two_sweeps_are_reported_as_one_with_duplicates_counted_once(two_sweeps, tmp_path):
    c, uri = two_sweeps["client"], two_sweeps["uri"]
    report = build.build(uri, "two-sweeps", tmp_path / "out")
    runs = report.runs
    assert len(runs.finished) == 6 and runs.sweeps == 2 and runs.duplicates == 1 and runs.rerun_keys == 1
    board = report.leaderboard.set_index("combination")
    ce = [RERUN_F1, F1["ce", 1], F1["ce", 2]]          # the latest run of ce-0, never the earlier report's 0.99
    assert board.loc["loss=ce", "seeds"] == 3 and board.loc["loss=ce", "mean"] == pytest.approx(np.mean(ce))
    assert (board.loc["loss=ce", "ci_low"], board.loc["loss=ce", "ci_high"]) == pytest.approx(t_interval(ce))
    markdown = (tmp_path / "out" / "report.md").read_text()
    assert "the whole experiment, 2 sweep(s): 6 finished run(s)" in markdown
    assert "1 run_key(s) finished more than once (tracking.rerun=true): each counts once, with its latest run " \
           "(1 older run(s) left out)" in markdown

    # Logged as a run of its own, beside (not under) the sweeps; the sweeps' runs get nothing.
    reports = [r for r in c.search_runs([two_sweeps["exp"]], ROLE) if r.info.run_id != two_sweeps["old_report"]]
    assert len(reports) == 1 and reports[0].info.run_id == report.logged_to
    run = reports[0]
    assert run.info.status == "FINISHED" and "mlflow.parentRunId" not in run.data.tags
    assert run.data.tags["imbalance_lab.pid"] == str(os.getpid())    # what marks a killed process's runs KILLED
    assert {"report/report.json", "report/report.md", "report/report.html"} <= \
           {a.path for a in c.list_artifacts(run.info.run_id, "report")}
    assert json.loads((tmp_path / "out" / "report.json").read_text())["logged_to"] == run.info.run_id
    assert not c.list_artifacts(two_sweeps["a"], "report") and not c.list_artifacts(two_sweeps["b"], "report")

    # A second report counts the same runs: report runs are never training runs.
    again = build.compute(load_runs(uri, "two-sweeps"))
    assert len(again.runs.finished) == 6 and again.leaderboard.set_index("combination").loc["loss=ce", "seeds"] == 3


def test_a_parent_report_has_that_sweeps_runs_and_is_logged_to_its_parent(two_sweeps, tmp_path):
    c, uri = two_sweeps["client"], two_sweeps["uri"]
    report = build.build(uri, "two-sweeps", tmp_path / "out", parent=two_sweeps["b"])
    assert sorted(report.runs.finished["test/macro_f1"]) == sorted([F1["ce", 2], F1["focal", 2], RERUN_F1])
    assert report.logged_to == two_sweeps["b"]
    assert "report/report.json" in {a.path for a in c.list_artifacts(two_sweeps["b"], "report")}
    assert not c.list_artifacts(two_sweeps["a"], "report")
    assert [r.info.run_id for r in c.search_runs([two_sweeps["exp"]], ROLE)] == [two_sweeps["old_report"]]


def test_sweep_note_is_the_leaderboard_with_seeds_and_intervals(tmp_path):
    store, c, exp = new_store(tmp_path, "note")
    parent = sweep_parent(c, exp, 1000)
    ids = [log_run(c, exp, f"{loss}-{seed}", {**FIXED, "loss": loss}, seed, {"test/macro_f1": f1}, start=2000 + i,
                   parent=parent) for i, ((loss, seed), f1) in enumerate(F1.items())]
    ids.append(log_run(c, exp, "bce-0", {**FIXED, "loss": "bce"}, 0, {"test/macro_f1": 0.9}, start=3000,
                       parent=parent))
    other = sweep_parent(c, exp, 4000)      # another sweep's run: not in this sweep's note
    log_run(c, exp, "ldam-0", {**FIXED, "loss": "ldam"}, 0, {"test/macro_f1": 0.95}, start=5000, parent=other)

    text, best = summary.sweep_note(store, exp, ids, parent)
    focal = [F1["focal", s] for s in (0, 1, 2)]
    assert best == pytest.approx(np.mean(focal))         # the best row with seeds, not the one-seed bce
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("| ") and line[2].isdigit()]
    assert rows[0].startswith("| 1 | loss=bce | 1 | 0.9000 | n/a | one seed |")
    low, high = t_interval(focal)
    assert rows[1] == f"| 2 | loss=focal | 3 | {np.mean(focal):.4f} | [{low:.4f}, {high:.4f}] | best |"
    assert rows[2].startswith("| 3 | loss=ce | 3 |") and len(rows) == 3
    assert any(line.startswith("Warning: 1 row(s) rest on one seed") for line in lines)
    assert f"imbalance-lab-report --experiment note --parent {parent}" in text and "ldam" not in text

    written = summary.write_sweep_note(store, exp, parent, ids)
    run = c.get_run(parent)
    assert written == text and run.data.tags["mlflow.note.content"] == text
    assert run.data.metrics[summary.BEST_METRIC] == pytest.approx(best)

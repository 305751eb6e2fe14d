"""End to end through the installed console script: a real multirun into a real SQLite store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from conftest import TINY, client, free_port, run_cli

CONTRACT_METRICS = ["test/macro_f1", "test/accuracy", "test/balanced_accuracy", "test/mcc", "test/gmean",
                    "test/macro_roc_auc", "test/macro_pr_auc", "naive/macro_f1", "test/n_predicted_classes"]
ARTIFACTS = {"confusion_matrix.png", "confusion_matrix.json", "classification_report.json", "config.yaml",
             "history.csv", "remedies.json"}


def test_multirun_of_four_logs_the_contract(tmp_path, store):
    proc = run_cli("-m", *TINY, "loss=ce,bce", "sampler=none,random_over", cwd=tmp_path, store=store)
    assert "4 finished, 0 failed, 0 skipped" in proc.stdout
    assert "Leaderboard" in proc.stdout and "naive_f1" in proc.stdout and "collapsed" in proc.stdout
    c = client(store)
    exp = c.get_experiment_by_name("imbalance-lab")
    runs = c.search_runs([exp.experiment_id])
    parents = [r for r in runs if r.data.tags.get("imbalance_lab.role") == "sweep"]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    assert len(children) == 4 and {r.data.tags["mlflow.parentRunId"] for r in children} == {parents[0].info.run_id}
    # one place for outputs, whatever the folder the command started in
    assert Path(parents[0].data.tags["sweep.dir"]).is_relative_to(os.environ["IMBALANCE_LAB_OUTPUT"])
    assert not (tmp_path / "multirun").exists() and not (tmp_path / "outputs").exists()
    # the answer at a glance in the UI: the leaderboard as the parent's description, the best scores as metrics
    note = parents[0].data.tags["mlflow.note.content"]
    assert "Leaderboard" in note and "loss=" in note and "sampler=" in note
    best_run = max(r.data.metrics["test/macro_f1"] for r in children)
    assert parents[0].data.metrics["best_run/test_macro_f1"] == best_run
    assert parents[0].data.metrics["best/test_macro_f1"] <= best_run
    assert {(r.data.tags["loss"], r.data.tags["sampler"]) for r in children} == {
        ("ce", "none"), ("ce", "random_over"), ("bce", "none"), ("bce", "random_over")}
    for run in children:
        assert run.info.status == "FINISHED"
        metrics = run.data.metrics
        assert all(m in metrics for m in CONTRACT_METRICS)
        assert {"test/recall_0", "test/precision_2", "test/f1_1"} <= set(metrics)
        assert {"run_key", "collapsed", "doctor.warnings", "git_commit", "dataset.fingerprint"} <= set(run.data.tags)
        history = c.get_metric_history(run.info.run_id, "val/macro_f1")
        assert [h.step for h in history] == list(range(len(history))) and len(history) >= 1
        assert ARTIFACTS <= {a.path for a in c.list_artifacts(run.info.run_id)}
        cm_path = c.download_artifacts(run.info.run_id, "confusion_matrix.json", str(tmp_path / run.info.run_id))
        cm = json.loads(open(cm_path).read())
        matrix = np.array(cm["matrix"])
        assert cm["rows"] == "true" and cm["columns"] == "predicted" and cm["labels"] == ["0", "1", "2"]
        assert matrix.sum() == 120  # 20 % of 600 rows
        tp = np.diag(matrix)
        f1 = np.divide(2 * tp, matrix.sum(0) + matrix.sum(1), out=np.zeros(3), where=tp > 0)
        assert abs(f1.mean() - metrics["test/macro_f1"]) < 1e-9
        assert metrics["test/n_predicted_classes"] == np.count_nonzero(matrix.sum(0))


def test_single_run_from_the_issue(tmp_path, store):
    proc = run_cli("dataset=digits", "loss=bce", "activation=sigmoid", "trainer=quick", "trainer.epochs=2",
                   cwd=tmp_path, store=store)
    assert "make ui" in proc.stdout or "mlflow ui" in proc.stdout
    runs = client(store).search_runs([client(store).get_experiment_by_name("imbalance-lab").experiment_id])
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert runs[0].data.tags["dataset"] == "digits" and runs[0].data.params["loss"] == "bce"
    assert len([k for k in runs[0].data.metrics if k.startswith("test/recall_")]) == 10


def test_help_lists_groups_and_options(tmp_path, store):
    out = run_cli("--help", cwd=tmp_path, store=store).stdout
    for line in ("activation: sigmoid, softmax", "loss:", "sampler:", "experiment: ", "imbalance-lab -m"):
        assert line in out


def test_bad_input_is_one_sentence_and_no_run_left_running(tmp_path, store):
    proc = run_cli(*TINY, "sampler=smote", "sampler.k_neighbors=400", cwd=tmp_path, store=store, check=False)
    assert proc.returncode != 0
    message = proc.stderr.strip().splitlines()[-1]
    assert message.startswith("imbalance-lab: ") and "k_neighbors=400" in message and "Traceback" not in proc.stderr
    runs = client(store).search_runs([client(store).get_experiment_by_name("imbalance-lab").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]


def test_a_misspelt_option_and_a_bad_value_stop_before_any_run(tmp_path, store):
    """Through the command: one sentence each, no traceback, nothing in the store."""
    proc = run_cli(*TINY, "loss=focl", cwd=tmp_path, store=store, check=False)
    assert proc.returncode == 2 and proc.stderr.strip().splitlines()[-1].startswith("imbalance-lab: loss=focl")
    proc = run_cli(*TINY, "trainer.epochs=-1", cwd=tmp_path, store=store, check=False)
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("imbalance-lab:")]
    assert proc.returncode == 1 and "trainer.epochs=-1" in line and "Traceback" not in proc.stderr
    assert not (tmp_path / "mlflow.db").exists() or not client(store).search_runs(
        [e.experiment_id for e in client(store).search_experiments()])


@pytest.mark.slow
def test_the_commands_a_sweep_prints_work_pasted_elsewhere_without_the_venv(tmp_path, store):
    """The report and UI commands the summary prints, run by bash in another folder with neither the
    venv on PATH nor MLFLOW_TRACKING_URI set (a new terminal): the report is written, and the UI
    (on a free port instead of 5000, the one change) lists the sweep's runs. The resume command is
    pasted the same way in test_sweeps.py's full-disk test."""
    proc = run_cli("-m", *TINY, "seed=0,1", cwd=tmp_path, store=store)
    [browse] = [line.split(": ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("Browse the runs: ")]
    [compare] = [line.split("): ", 1)[1] for line in proc.stdout.splitlines() if line.startswith("Compare them (")]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = "/usr/bin:/bin"

    report = subprocess.run(["bash", "-c", compare], cwd=elsewhere, env=env, capture_output=True, text=True,
                            timeout=600)
    assert report.returncode == 0, report.stderr[-3000:]
    [written] = [line.split(": ", 1)[1].split(",")[0] for line in report.stdout.splitlines() if line.startswith("Report: ")]
    assert Path(written).is_absolute() and Path(written).is_file()

    port = free_port()
    assert "--port 5000" in browse
    with open(tmp_path / "ui.log", "w") as log:
        ui = subprocess.Popen(["bash", "-c", browse.replace("--port 5000", f"--port {port}")],
                              cwd=elsewhere, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while True:  # until the server is up (it never stops being up: nothing transient is waited for)
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert ui.poll() is None, (tmp_path / "ui.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the UI did not answer within 180 s"
            time.sleep(0.5)
        c = client(url)
        runs = c.search_runs([c.get_experiment_by_name("imbalance-lab").experiment_id])
        assert len([r for r in runs if "run_key" in r.data.tags]) == 2  # the sweep's two runs
    finally:
        if ui.poll() is None:
            os.killpg(ui.pid, signal.SIGTERM)
            ui.wait(timeout=30)


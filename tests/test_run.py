"""The recipe, in process, with real Keras and a real MLflow store."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import psutil
import pytest

from imbalance_lab.configs import compose
from imbalance_lab.data import load_splits
from imbalance_lab.paths import CONF_DIR
from imbalance_lab.run import execute, train_and_evaluate

from conftest import REPO, TINY, client


def test_same_config_and_seed_log_identical_metrics(make_cfg, store):
    cfg, choices = make_cfg("sampler=random_over", "tracking.rerun=true")
    first = execute(cfg, choices)
    second = execute(cfg, choices)
    assert first.status == second.status == "FINISHED" and first.run_id != second.run_id
    c = client(store)
    m1, m2 = c.get_run(first.run_id).data.metrics, c.get_run(second.run_id).data.metrics
    assert m1 == m2 and "test/macro_f1" in m1


def test_resampling_touches_the_training_split_only(make_cfg):
    cfg, _ = make_cfg("sampler=random_over")
    plain_cfg, _ = make_cfg()
    out = train_and_evaluate(cfg)
    plain = load_splits(plain_cfg.dataset, plain_cfg.seed)
    np.testing.assert_array_equal(out.data.class_counts("val"), plain.class_counts("val"))
    np.testing.assert_array_equal(out.data.class_counts("test"), plain.class_counts("test"))
    before = out.train.counts_before
    assert before == plain.class_counts("train").tolist()
    assert out.train.counts_after == [max(before)] * len(before)


def test_finished_config_is_skipped_unless_rerun(make_cfg, store):
    cfg, choices = make_cfg()
    first = execute(cfg, choices)
    again = execute(cfg, choices)
    assert again.status == "SKIPPED" and again.run_id == first.run_id
    assert len(client(store).search_runs([client(store).get_experiment_by_name("test").experiment_id])) == 1


def test_the_skip_check_answers_as_mlflow_search_does(store, tmp_path):
    """The skip check's own query of an SQLite store against MLflow's search_runs, its reference:
    FINISHED counts, RUNNING / FAILED / deleted runs and other experiments do not; a store it
    cannot read that way is asked through MLflow."""
    from imbalance_lab import tracking

    c = tracking.client_for(store)
    exp_id, other = tracking.experiment_id(c, "skip"), tracking.experiment_id(c, "elsewhere")

    def run(experiment: str, key: str, status: str | None) -> str:
        run_id = c.create_run(experiment, tags={"run_key": key}).info.run_id
        if status:
            c.set_terminated(run_id, status=status)
        return run_id

    for _ in range(5):  # trained again and again (tracking.rerun=true): the latest is the one named
        finished = run(exp_id, "done", "FINISHED")
        time.sleep(0.01)
    run(exp_id, "done", "FAILED")
    run(exp_id, "running", None)
    run(exp_id, "failed", "FAILED")
    c.delete_run(run(exp_id, "deleted", "FINISHED"))
    run(other, "elsewhere", "FINISHED")

    def searched(key: str) -> str | None:
        runs = client(store).search_runs([exp_id], f"tags.run_key = '{key}' and attributes.status = 'FINISHED'")
        return runs[0].info.run_id if runs else None

    for key in ("done", "running", "failed", "deleted", "elsewhere", "never"):
        assert tracking.finished_run_id(c, exp_id, key) == searched(key), key
    assert tracking.finished_run_id(c, exp_id, "done") == finished
    assert tracking._finished_in_sqlite(store, exp_id, "never") is None  # answered by the query, not by MLflow
    no_schema = f"sqlite:///{tmp_path / 'empty.db'}"
    (tmp_path / "empty.db").touch()
    assert tracking._finished_in_sqlite(no_schema, "1", "done") is tracking._ASK_MLFLOW


def test_remedies_json_records_what_the_remedies_did(make_cfg, store, tmp_path):
    cfg, choices = make_cfg("class_weight=balanced", "bias_init=log_prior")
    result = execute(cfg, choices)
    path = client(store).download_artifacts(result.run_id, "remedies.json", str(tmp_path))
    remedies = json.loads(open(path).read())
    counts = np.array(list(remedies["sampler"]["class_counts_after"].values()), dtype=float)
    weights = np.array(list(remedies["class_weight"]["weights"].values()))
    np.testing.assert_allclose(weights, counts.sum() / (len(counts) * counts), rtol=1e-5)
    bias = np.array(list(remedies["bias_init"]["output_bias"].values()))
    np.testing.assert_allclose(bias, np.log(counts / counts.sum()), atol=1e-5)


def test_a_failing_run_ends_failed_not_running(make_cfg, store):
    cfg, choices = make_cfg("sampler=smote", "sampler.k_neighbors=500")
    try:
        execute(cfg, choices)
    except Exception as err:
        assert "k_neighbors=500" in str(err) and "class" in str(err)
    else:
        raise AssertionError("SMOTE with k_neighbors above the smallest class must fail")
    c = client(store)
    runs = c.search_runs([c.get_experiment_by_name("test").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
    assert "k_neighbors" in runs[0].data.tags["error"]


REMEDY_GROUPS = ("bias_init", "class_weight", "sampler", "decision")
ONE_AT_A_TIME = [f"{group}={path.stem}" for group in REMEDY_GROUPS
                 for path in sorted((CONF_DIR / group).glob("*.yaml"))]
ONE_AT_A_TIME += [f"loss={p.stem} activation={a}" for p in sorted((CONF_DIR / "loss").glob("*.yaml"))
                  for a in ("softmax", "sigmoid")]
ONE_AT_A_TIME += ["model=linear", "model=cnn dataset=digits"]


@pytest.mark.parametrize("overrides", ONE_AT_A_TIME)
def test_every_option_trains_and_evaluates(make_cfg, overrides):
    """Each option of every remedy axis (each loss with both activations) runs the whole recipe."""
    if overrides.startswith("model="):  # TINY's model/dataset keys belong to the mlp and synthetic data
        tiny = [o for o in TINY if not o.startswith(("model.", "dataset")) or "digits" not in overrides]
        tiny = [o for o in tiny if not o.startswith("model.")]
        cfg, _ = compose([*tiny, *overrides.split(), "trainer.epochs=1"])
    else:
        cfg, _ = make_cfg(*overrides.split(), "trainer.epochs=1")
    out = train_and_evaluate(cfg)
    assert out.evaluation.confusion.sum() == len(out.data.y_test)
    assert all(np.isfinite(v) for k, v in out.evaluation.metrics.items() if "roc" not in k and "pr_auc" not in k)


# -- MLflow writes in a background writer process (in-process sweeps) ---------------------------------------

def test_background_writes_log_the_same_run_and_report_it_when_done(make_cfg, store):
    from imbalance_lab import tracking

    cfg, choices = make_cfg("tracking.rerun=true")
    reported = []
    writer = tracking.Writer(background=True)
    execute(cfg, choices, writer=writer, report=reported.append)
    sync = execute(cfg, choices)  # the same run, written now
    writer.wait()
    assert [r.status for r in reported] == ["FINISHED"] and reported[0].run_id not in (None, sync.run_id)
    c = client(store)
    background, now = c.get_run(reported[0].run_id), c.get_run(sync.run_id)
    assert background.info.status == now.info.status == "FINISHED"
    # written by the writer process, but tagged with this one (which trained it: orphan detection)
    assert background.data.tags["imbalance_lab.pid"] == now.data.tags["imbalance_lab.pid"] == str(os.getpid())
    assert background.data.tags["imbalance_lab.tf_threads"] == now.data.tags["imbalance_lab.tf_threads"]
    assert background.data.metrics == now.data.metrics and background.data.params == now.data.params
    assert len(c.get_metric_history(background.info.run_id, "val/macro_f1")) == cfg.trainer.epochs
    names = sorted(a.path for a in c.list_artifacts(background.info.run_id))
    assert names == sorted(a.path for a in c.list_artifacts(now.info.run_id)) and "confusion_matrix.png" in names


def test_a_runs_artifacts_go_where_mlflow_itself_puts_them(make_cfg, store, tmp_path):
    """The writer logs a run's artifacts straight into the location its creation returned, without
    reading the run back: they land beside what MlflowClient.log_artifacts puts in the same run."""
    from urllib.parse import urlparse

    from imbalance_lab import tracking

    cfg, choices = make_cfg("tracking.rerun=true")
    result = execute(cfg, choices)
    assert not tracking._artifact_uris  # nothing kept once a run's artifacts are logged
    c = client(store)
    theirs = tmp_path / "by_mlflow"
    theirs.mkdir()
    (theirs / "by_mlflow.txt").write_text("logged by MLflow's own client")
    c.log_artifacts(result.run_id, str(theirs))
    folder = Path(urlparse(c.get_run(result.run_id).info.artifact_uri).path)
    assert {"by_mlflow.txt", "config.yaml", "confusion_matrix.png", "history.csv"} <= {p.name for p in folder.iterdir()}


def test_the_background_writer_is_another_process():
    """MLflow's Python runs beside training, not in turns with it under one GIL."""
    from imbalance_lab import tracking

    writer, pids = tracking.Writer(background=True), []
    writer.submit(os.getpid, then=lambda pid, error: pids.append(pid))
    writer.wait()
    assert pids and pids[0] != os.getpid()


def test_a_sweeps_writer_starts_with_its_store_open(store, tmp_path, monkeypatch):
    """The sweep's writer process opens the store and imports the figure code as it starts (while
    the sweep imports TensorFlow), not in the first run's writes; a store it cannot open is left
    to those writes to report."""
    from imbalance_lab import tracking

    from conftest import writer_state  # (a module without TensorFlow, for the writer to import)

    monkeypatch.setattr(tracking, "_background_writer", None)  # this test's own, not the process's
    writer = tracking.background_writer(store)
    assert tracking.background_writer(store) is writer  # one per process
    states = []
    writer.submit(writer_state, store, then=lambda state, error: states.append(state))
    (tmp_path / "a_file").touch()
    writer.submit(tracking._warm_up, f"sqlite:///{tmp_path / 'a_file' / 'mlflow.db'}")  # cannot open: no raise
    writer.wait()
    assert states == [(True, True)]
    fresh = tracking.Writer(background=True)  # a writer not started for a sweep: nothing opened
    fresh.submit(writer_state, store, then=lambda state, error: states.append(state))
    fresh.wait()
    assert states[1] == (False, False)


def _queued(writer, store, name):
    from imbalance_lab import tracking

    exp_id = tracking.experiment_id(tracking.client_for(store), "test")
    return tracking.QueuedRun(writer, store, exp_id, name, {"run_key": name}, {"p": "1"})


def test_a_dead_writer_process_is_replaced_and_the_runs_it_held_are_finished(store):
    """The writer is killed (out of memory, say) after creating a run: a new writer finishes that
    run from its id, and takes the next runs."""
    from imbalance_lab import tracking

    writer, reported = tracking.Writer(background=True), []
    run = _queued(writer, store, "before")
    writer.wait()
    [pid] = list(writer._pool._processes)
    os.kill(pid, signal.SIGKILL)
    while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
        time.sleep(0.05)
    time.sleep(0.5)  # the pool notices its worker died
    run.finish(tracking.RunPayload({"m": 1.0}, [], {}, {}), lambda *outcome: reported.append(outcome))
    after = _queued(writer, store, "after")
    after.finish(tracking.RunPayload({"m": 2.0}, [], {}, {}), lambda *outcome: reported.append(outcome))
    writer.wait()
    assert [status for status, _, _ in reported] == ["FINISHED", "FINISHED"]
    c = client(store)
    assert [c.get_run(r).data.metrics["m"] for _, r, _ in reported] == [1.0, 2.0]


def test_a_run_that_cannot_be_handed_to_the_writer_ends_failed_not_running(store):
    from imbalance_lab import tracking

    writer, reported = tracking.Writer(background=True), []
    run = _queued(writer, store, "unpicklable")
    writer.wait()
    run.finish(tracking.RunPayload({"m": 1.0}, [], {}, {}, texts={"x.txt": lambda: "no"}),
               lambda *outcome: reported.append(outcome))
    writer.wait()
    [(status, run_id, reason)] = reported
    assert status == "FAILED" and "writer failed" in reason
    stored = client(store).get_run(run_id)
    assert stored.info.status == "FAILED" and "writer failed" in stored.data.tags["error"]


def test_the_writer_process_ends_when_the_sweep_process_is_killed(tmp_path):
    """kill -9 of the sweep's process alone (not its group): its writer does not live on."""
    import subprocess
    import sys

    script = ("from imbalance_lab import tracking; import time, os\n"
              "w = tracking.Writer(background=True); w.wait()\n"
              "print(list(w._pool._processes)[0], flush=True); time.sleep(600)\n")
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    writer_pid = int(parent.stdout.readline())
    assert psutil.pid_exists(writer_pid)
    parent.kill()
    parent.wait()
    deadline = time.time() + 60
    while psutil.pid_exists(writer_pid) and time.time() < deadline:
        if psutil.Process(writer_pid).status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.1)
    assert not psutil.pid_exists(writer_pid) or psutil.Process(writer_pid).status() == psutil.STATUS_ZOMBIE


def test_a_config_listed_twice_trains_once_even_while_its_first_run_is_being_written(make_cfg, store):
    from imbalance_lab import tracking

    cfg, choices = make_cfg()
    writer = tracking.Writer(background=True)
    reported = []
    execute(cfg, choices, writer=writer, report=reported.append)
    execute(cfg, choices, writer=writer, report=reported.append)  # at once: the first is still being written
    writer.wait()
    assert [r.status for r in reported] == ["FINISHED", "SKIPPED"] and reported[0].run_id == reported[1].run_id
    c = client(store)
    assert len(c.search_runs([c.get_experiment_by_name("test").experiment_id])) == 1


def test_a_background_write_that_fails_ends_its_run_failed_and_says_so(make_cfg, store):
    """A real failure in the writer process: the run's artifact folder cannot be made (a file is in
    the way, as on a broken disk); training was fine, the run ends FAILED and the writer goes on."""
    from imbalance_lab import tracking

    cfg, choices = make_cfg("tracking.rerun=true")
    blocker = Path(store[len("sqlite:///"):]).parent / "mlartifacts"  # where the store's artifacts go
    blocker.write_text("not a folder")
    reported = []
    writer = tracking.Writer(background=True)
    returned = execute(cfg, choices, writer=writer, report=reported.append)
    writer.wait()
    blocker.unlink()
    execute(cfg, choices, writer=writer, report=reported.append)  # the writer goes on with the next run
    writer.wait()
    assert returned.status == "FINISHED"  # training was fine; the write failed afterwards
    assert [r.status for r in reported] == ["FAILED", "FINISHED"] and "logging to MLflow failed" in reported[0].reason
    failed = client(store).get_run(reported[0].run_id)
    assert failed.info.status == "FAILED" and "logging to MLflow failed" in failed.data.tags["error"]


def test_queued_writes_reach_the_store_when_the_process_exits_without_waiting(store, tmp_path):
    """Nothing already trained is lost: the writer process finishes its queue at interpreter exit."""
    import subprocess
    import sys

    script = f"""
from imbalance_lab import tracking
from imbalance_lab.configs import compose
from imbalance_lab.run import execute
import conftest
writer = tracking.Writer(background=True)
for seed in (1, 2):
    cfg, choices = compose([*conftest.TINY, "seed=%d" % seed, "tracking.uri={store}", "tracking.experiment=test"])
    execute(cfg, choices, writer=writer)
"""  # no writer.wait(): the process just ends
    subprocess.run([sys.executable, "-c", script], check=True, cwd=REPO / "tests", timeout=300)
    c = client(store)
    runs = c.search_runs([c.get_experiment_by_name("test").experiment_id])
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]
    assert all("test/macro_f1" in r.data.metrics for r in runs)

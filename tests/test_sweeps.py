"""Sweeps that survive: failures, kill -9 and resume, parallel workers, submitit, a real tracking
server, and memory over a long in-process sweep. Real processes, real stores."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter

import joblib
import psutil
import pytest
from mlflow.exceptions import MlflowException

from imbalance_lab import tracking

from conftest import BIN, TINY, client, run_cli

CASES = {  # one sweep of six jobs; two fail, at different stages
    "ok_a": "seed: 0\n", "ok_b": "seed: 1\n", "ok_c": "seed: 2\n", "ok_d": "seed: 3\n",
    "smote_too_few": "defaults:\n  - override /sampler: smote\nsampler:\n  k_neighbors: 500\n",  # before training
    "nan_loss": "trainer:\n  optimizer: sgd\n  learning_rate: 1.0e+30\n",  # during training
}


def children(store: str, experiment: str = "imbalance-lab"):
    c = tracking.client_for(store)  # polls while a sweep may be creating the store: takes turns with it
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return [r for r in c.search_runs([exp.experiment_id], max_results=1000) if "run_key" in r.data.tags]


def parents(store: str, experiment: str = "imbalance-lab"):
    c = client(store)
    exp = c.get_experiment_by_name(experiment)
    runs = c.search_runs([exp.experiment_id], max_results=1000)
    return [r for r in runs if r.data.tags.get("imbalance_lab.role") == "sweep"]


def test_failing_jobs_end_failed_and_the_sweep_goes_on(tmp_path, store):
    case_dir = tmp_path / "extra_conf" / "case"
    case_dir.mkdir(parents=True)
    for name, body in CASES.items():
        (case_dir / f"{name}.yaml").write_text(f"# @package _global_\n{body}")
    proc = run_cli("-m", "--config-dir", str(tmp_path / "extra_conf"), *TINY, "+case=" + ",".join(CASES),
                   cwd=tmp_path, store=store, check=False)
    assert proc.returncode != 0
    assert "4 finished, 2 failed, 0 skipped" in proc.stdout
    failed_lines = [line for line in proc.stdout.splitlines() if line.strip().startswith("FAILED")]
    assert len(failed_lines) == 2
    assert any("k_neighbors=500" in line for line in failed_lines)
    assert any("training loss became" in line for line in failed_lines)
    runs = children(store)
    assert Counter(r.info.status for r in runs) == {"FINISHED": 4, "FAILED": 2}
    by_error = {r.data.tags["error"]: r for r in runs if r.info.status == "FAILED"}
    assert any("k_neighbors=500" in e for e in by_error) and any("training loss became" in e for e in by_error)
    for run in by_error.values():
        assert "traceback.txt" in {a.path for a in client(store).list_artifacts(run.info.run_id)}
    assert [p.info.status for p in parents(store)] == ["FAILED"]


# Runs of ~1.5 s here (no early stop), so that the store shows a run RUNNING across many polls of
# wait_for_run: a TINY run trains in ~0.03 s once traced, and a fast machine ended a 4-run sweep
# between two polls (one run RUNNING for ~0.04 s at 3 epochs, ~0.07 s at 30).
LONG_RUNS = ["dataset.n_samples=20000", "model.widths=[64]", "trainer.epochs=500", "trainer.patience=500"]


def wait_for_run(store: str, sweep: subprocess.Popen, number: int, timeout: float = 300,
                 running: tuple[int, ...] = (1,)) -> None:
    """Until the sweep is training its `number`-th run (the ones before FINISHED, one RUNNING, or
    as many as `running` allows when workers train at once)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        statuses = Counter(r.info.status for r in children(store))
        if statuses["FINISHED"] >= number - 1 and statuses["RUNNING"] in running:
            return
        assert sweep.poll() is None, f"the sweep ended before its run {number} could be caught"
        time.sleep(0.05)
    raise AssertionError(f"the sweep never reached its run {number}")


def test_kill_9_then_rerun_finishes_each_combination_once(tmp_path, store):
    args = ["-m", *TINY, *LONG_RUNS, "seed=0,1,2,3"]
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    sweep = subprocess.Popen([str(BIN / "imbalance-lab"), *args], cwd=tmp_path, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_run(store, sweep, 3)  # kill during the third run: two FINISHED, one RUNNING
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.wait()
    before = {r.info.run_id: (r.data.tags["run_key"], r.info.status) for r in children(store)}
    finished_keys = {key for key, status in before.values() if status == "FINISHED"}
    killed_key = next(key for key, status in before.values() if status == "RUNNING")
    n_done = len(finished_keys)  # 2, or 3 if the third run ended between the last poll and the kill
    assert n_done >= 2

    proc = run_cli(*args, cwd=tmp_path, store=store)
    assert f"{4 - n_done} finished, 0 failed, {n_done} skipped" in proc.stdout
    runs = children(store)
    per_key = Counter(r.data.tags["run_key"] for r in runs)
    finished = Counter(r.data.tags["run_key"] for r in runs if r.info.status == "FINISHED")
    assert len(finished) == 4 and set(finished.values()) == {1}
    assert all(per_key[key] == 1 for key in finished_keys)  # not trained again
    killed = [r for r in runs if r.data.tags["run_key"] == killed_key and r.info.status == "KILLED"]
    assert per_key[killed_key] == 2 and len(killed) == 1 and "stopped before ending it" in killed[0].data.tags["error"]
    assert sorted(p.info.status for p in parents(store)) == ["FINISHED", "KILLED"]


@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]],
                         ids=["in-process", "joblib-2"])
def test_ctrl_c_keeps_what_was_trained_and_leaves_nothing_running(tmp_path, store, launcher):
    """Ctrl-C reaches the sweep and its MLflow writer process, or its joblib workers and their fork
    server (one process group): runs already trained are written in full, the interrupted ones
    (one per worker) and the sweep's parent end KILLED."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    sweep = subprocess.Popen([str(BIN / "imbalance-lab"), "-m", *TINY, *LONG_RUNS, "seed=0,1,2,3,4,5",
                              *launcher],
                             cwd=tmp_path, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for_run(store, sweep, 2, running=(1, 2))  # interrupt during the second or a later run
        os.killpg(sweep.pid, signal.SIGINT)  # what a terminal sends the foreground group on Ctrl-C
        _, stderr = sweep.communicate(timeout=120)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    assert sweep.returncode != 0 and "KeyboardInterrupt" in stderr
    runs = children(store)
    statuses = Counter(r.info.status for r in runs)
    assert statuses["RUNNING"] == 0 and statuses["FINISHED"] >= 1 and statuses["KILLED"] <= max(1, len(launcher))
    for run in runs:
        if run.info.status == "FINISHED":  # written in full
            assert "test/macro_f1" in run.data.metrics
            assert "confusion_matrix.png" in {a.path for a in client(store).list_artifacts(run.info.run_id)}
        else:
            # ended by its own process, or (a joblib worker stopped first) by the sweep's at its exit
            assert run.info.status == "KILLED" and ("Ctrl-C" in run.data.tags["error"]
                                                    or "sweep was interrupted" in run.data.tags["error"])
    [parent] = parents(store)
    assert parent.info.status == "KILLED" and "interrupted" in parent.data.tags["error"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_dead_unreaped_process_counts_as_dead_for_orphan_runs():
    """A worker killed but not yet reaped by its parent (a zombie) no longer runs its run."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        stat = f"/proc/{child.pid}/stat"
        deadline = time.time() + 30
        while os.path.exists(stat) and open(stat).read().rsplit(")", 1)[-1].split()[0] != "Z":
            assert time.time() < deadline
            time.sleep(0.01)
        assert not tracking._pid_alive(child.pid)
    finally:
        child.wait()
    assert tracking._pid_alive(os.getpid()) and tracking._pid_alive(os.getppid())


def test_a_config_listed_twice_in_a_sweep_trains_once(tmp_path, store):
    """Through Hydra: the compose_once sweeper hands each job its own config, even for duplicates."""
    proc = run_cli("-m", *TINY, "seed=5,5", cwd=tmp_path, store=store)
    assert "1 finished, 0 failed, 1 skipped" in proc.stdout
    assert [r.info.status for r in children(store)] == ["FINISHED"]


def test_joblib_two_workers_share_one_store_and_parent(tmp_path, store):
    proc = run_cli("-m", *TINY, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "loss=ce,bce",
                   "sampler=none,random_over", "seed=0,1", cwd=tmp_path, store=store)
    assert "8 finished, 0 failed, 0 skipped" in proc.stdout
    assert "database is locked" not in proc.stdout + proc.stderr
    [parent] = parents(store)
    runs = children(store)
    assert len(runs) == 8 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    worker_pids = {r.data.tags["imbalance_lab.pid"] for r in runs}
    assert len(worker_pids) == 2 and parent.data.tags["imbalance_lab.pid"] not in worker_pids
    # the two seeds of a (loss, sampler) share a traced training function: one worker runs both
    pids = {}
    for r in runs:
        pids.setdefault((r.data.tags["loss"], r.data.tags["sampler"]), set()).add(r.data.tags["imbalance_lab.pid"])
    assert len(pids) == 4 and all(len(p) == 1 for p in pids.values())
    # each job's folder holds the run of its own overrides (the jobs ran out of batch order)
    by_id = {r.info.run_id: r for r in runs}
    results = list((tmp_path / "multirun").glob("*/*/*/job_result.json"))
    assert len(results) == 8
    for result in results:
        run = by_id[json.loads(result.read_text())["run_id"]]
        overrides = (result.parent / ".hydra" / "overrides.yaml").read_text()
        assert all(f"{group}={run.data.tags[group]}" in overrides for group in ("loss", "sampler"))
        assert f"seed={run.data.params['seed']}" in overrides
    threads = max(1, joblib.cpu_count() // 2)  # two workers share the cores (as joblib counts them)
    assert {r.data.tags["imbalance_lab.tf_threads"] for r in runs} == {str(threads)}


def test_submitit_local_runs_each_job_in_its_own_process(tmp_path, store):
    proc = run_cli("-m", *TINY, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "seed=0,1",
                   cwd=tmp_path, store=store)
    assert "2 finished, 0 failed, 0 skipped" in proc.stdout
    runs = children(store)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert len({r.data.tags["imbalance_lab.pid"] for r in runs}) == 2


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def mlflow_server(tmp_path):
    """A real `mlflow server` on a free loopback port, as `make server` starts it; always stopped."""
    port = _free_port()
    backend = f"sqlite:///{tmp_path / 'server.db'}"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    server = subprocess.Popen(
        [str(BIN / "mlflow"), "server", "--backend-store-uri", backend, "--artifacts-destination",
         str(tmp_path / "artifacts"), "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 120
        while True:
            try:
                if urllib.request.urlopen(f"{url}/health", timeout=2).status == 200:
                    break
            except OSError:
                pass
            assert server.poll() is None and time.time() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield url, backend, tmp_path / "artifacts"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_tracking_server_receives_the_sweep(tmp_path, mlflow_server):
    url, backend, artifacts = mlflow_server
    unused = f"sqlite:///{tmp_path / 'unused.db'}"  # MLFLOW_TRACKING_URI, overridden by tracking.uri
    proc = run_cli("-m", *TINY, "tracking=server", f"tracking.uri={url}", "seed=0,1", cwd=tmp_path, store=unused)
    assert "2 finished, 0 failed, 0 skipped" in proc.stdout
    runs = children(url)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parents(url)[0].info.run_id}
    assert "confusion_matrix.json" in {a.path for a in client(url).list_artifacts(runs[0].info.run_id)}
    assert len(children(backend)) == 2  # the server wrote them into its own store
    assert any(p.name == "confusion_matrix.json" for p in artifacts.rglob("*"))
    assert not (tmp_path / "unused.db").exists()


def test_long_in_process_sweep_memory_stays_bounded(tmp_path, store):
    env = {**os.environ, "MLFLOW_TRACKING_URI": store}
    sweep = subprocess.Popen([str(BIN / "imbalance-lab"), "-m", *TINY, "trainer.epochs=2", "seed=range(30)"],
                             cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    process = psutil.Process(sweep.pid)
    rss_after_5, peak_after_5 = None, 0
    try:
        while sweep.poll() is None:
            rss = process.memory_info().rss
            finished = sum(r.info.status == "FINISHED" for r in children(store))
            if finished >= 5:
                rss_after_5 = rss_after_5 or rss
                peak_after_5 = max(peak_after_5, rss)
            time.sleep(0.2)
    except psutil.NoSuchProcess:
        pass
    finally:
        if sweep.poll() is None:
            sweep.kill()
        _, stderr = sweep.communicate()
    assert sweep.returncode == 0, stderr[-3000:]
    assert sum(r.info.status == "FINISHED" for r in children(store)) == 30
    growth_mb = (peak_after_5 - rss_after_5) / 2**20
    print(f"RSS after run 5: {rss_after_5 / 2**20:.0f} MB; peak up to run 30: {peak_after_5 / 2**20:.0f} MB")
    assert growth_mb < 150, f"RSS grew {growth_mb:.0f} MB between run 5 and run 30"


def test_a_sweep_whose_store_cannot_open_stops_before_any_job(tmp_path):
    (tmp_path / "a_file").write_text("")
    proc = run_cli("-m", "seed=0,1", cwd=tmp_path, store=f"sqlite:///{tmp_path / 'a_file' / 'mlflow.db'}",
                   check=False)
    assert proc.returncode == 1
    assert "imbalance-lab: could not open the sweep in MLflow" in proc.stderr and "check tracking.uri" in proc.stderr
    assert "Launching" not in proc.stdout + proc.stderr


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    store = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = ("from imbalance_lab import tracking; "
            f"print(tracking.experiment_id(tracking.client_for({store!r}), 'shared'))")
    openers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in openers]
    assert [p.returncode for p in openers] == [0, 0, 0], outputs[0][1][-2000:]
    assert {out.strip().splitlines()[-1] for out, _ in outputs} == {"1"}


def test_an_sqlite_store_writes_ahead_and_syncs_normally_only_then(tmp_path):
    """A store opened here is in WAL mode (kept in the file, so `mlflow ui` and other writers use
    it too) and this process's connections to it sync at checkpoints only (NORMAL); a database in
    another journal mode keeps SQLite's full sync on every commit."""
    import sqlite3

    import sqlalchemy

    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracking.experiment_id(tracking.client_for(store), "wal")
    with sqlite3.connect(tmp_path / "mlflow.db") as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    other = tmp_path / "rollback.db"
    sqlite3.connect(other).close()
    for uri, expected in ((store, 1), (f"sqlite:///{other}", 2)):  # 1: NORMAL, 2: FULL
        engine = sqlalchemy.create_engine(uri)
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == expected, uri
        engine.dispose()
    assert client(store).get_experiment_by_name("wal") is not None  # a client of MLflow's own reads it
    assert tracking._sqlite_path(f"{store}?timeout=20") == tmp_path / "mlflow.db"


def test_a_store_unreadable_in_wal_mode_goes_back_to_a_rollback_journal(tmp_path, monkeypatch):
    """WAL needs shared memory beside the file (not on some network or virtual disks): when a new
    connection cannot read the store once switched, it is switched back."""
    import sqlite3

    path = tmp_path / "mlflow.db"
    with sqlite3.connect(path) as setup:
        setup.execute("CREATE TABLE t (x)")
    real, opened = sqlite3.connect, []

    class Unreadable:
        def __init__(self, connection):
            self.connection = connection

        def execute(self, sql, *args):
            if "sqlite_master" in sql:
                raise sqlite3.OperationalError("disk I/O error")
            return self.connection.execute(sql, *args)

        def close(self):
            self.connection.close()

    def connect(*args, **kwargs):
        opened.append(args[0])
        connection = real(*args, **kwargs)
        return Unreadable(connection) if len(opened) == 2 else connection  # the check after the switch

    monkeypatch.setattr(tracking.sqlite3, "connect", connect)
    tracking._write_ahead_log(f"sqlite:///{path}")
    monkeypatch.undo()
    assert len(opened) == 3
    with sqlite3.connect(path) as plain:
        assert plain.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_a_finished_job_leaves_no_graph_behind(make_cfg):
    """What keeps a long in-process sweep flat: TensorFlow's gradient registry (one entry per traced
    training function, holding its graphs) and Keras's global state end each job as they began."""
    import keras

    from imbalance_lab.epoch_loop import forget_trainers
    from imbalance_lab.run import execute
    from imbalance_lab.sweep import _gradient_registry, release_job_memory

    cfg, choices = make_cfg("tracking.rerun=true")
    forget_trainers()
    sizes = []
    for job in range(3):
        before = set(_gradient_registry())
        assert execute(cfg, choices).status == "FINISHED"
        if job == 0:
            assert len(_gradient_registry()) > len(before)  # the job did register its gradients
        release_job_memory(before)  # (later jobs train the first one's kept trainer: nothing new to trace)
        sizes.append(len(_gradient_registry()))
    assert sizes[0] == sizes[1] == sizes[2]
    assert keras.backend.get_uid("dense") == 1  # Keras's global naming state was reset


def test_a_locked_sqlite_store_is_retried(tmp_path, monkeypatch):
    """The lock is real MLflow's error text; holding a real SQLite lock past MLflow's own ~20 s wait
    would cost the suite 20 s, so the second writer is a callable that is locked out twice."""
    calls = []

    def locked_twice(value):
        calls.append(value)
        if len(calls) <= 2:
            raise MlflowException("(sqlite3.OperationalError) database is locked")
        return value

    monkeypatch.setattr(tracking.time, "sleep", lambda seconds: None)
    retrying = tracking.LockRetryingClient(type("Store", (), {"write": staticmethod(locked_twice)})())
    assert retrying.write(7) == 7 and len(calls) == 3
    with pytest.raises(MlflowException, match="no such table"):
        tracking.LockRetryingClient(type("Store", (), {"write": staticmethod(_other_error)})()).write(1)


def _other_error(_):
    raise MlflowException("no such table: runs")


def _log_same_datasets(store: str, exp_id: str, barrier, rounds: int) -> int:
    """One of several processes: per round, all log the same new dataset to their own runs at once."""
    import numpy as np

    c = tracking.client_for(store)
    for i in range(rounds):
        run_id = c.create_run(exp_id).info.run_id
        entity = tracking.dataset_input(np.zeros((4, 2), "float32"), np.array(["a"] * 4), "race", "", f"digest-{i}")
        barrier.wait(timeout=60)  # a process that failed breaks the barrier for the others: no hang
        c.log_inputs(run_id, [entity])
    return rounds


def test_processes_logging_the_same_new_dataset_at_once_all_succeed(tmp_path):
    """MLflow looks a dataset up, then inserts it: two writers doing both at once made the second
    run's logging fail (UNIQUE constraint on datasets), seen in this suite; it is retried."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    store = f"sqlite:///{tmp_path}/mlflow.db"
    exp_id = tracking.experiment_id(tracking.client_for(store), "race")
    context = mp.get_context("spawn")
    barrier = context.Manager().Barrier(3)
    with ProcessPoolExecutor(3, mp_context=context) as pool:
        done = [f.result(timeout=300) for f in [pool.submit(_log_same_datasets, store, exp_id, barrier, 8)
                                                for _ in range(3)]]
    assert done == [8, 8, 8]
    runs = client(store).search_runs([exp_id], max_results=100)
    assert len(runs) == 24 and all(len(r.inputs.dataset_inputs) == 1 for r in runs)
    assert tracking._retryable("log_inputs", MlflowException("UNIQUE constraint failed: datasets.experiment_id"))
    assert not tracking._retryable("log_batch", MlflowException("UNIQUE constraint failed: params.key"))


def test_threads_per_job_follows_the_launcher():
    from omegaconf import OmegaConf

    from imbalance_lab.sweep import threads_per_job

    cores = joblib.cpu_count()
    assert threads_per_job(OmegaConf.create({"_target_": "hydra._internal.BasicLauncher"})) is None
    assert threads_per_job(OmegaConf.create({"n_jobs": 2})) == max(1, cores // 2)
    assert threads_per_job(OmegaConf.create({"n_jobs": -1})) == 1
    assert threads_per_job(OmegaConf.create({"_target_": "x.SlurmLauncher", "cpus_per_task": 4})) == 4
    assert threads_per_job(OmegaConf.create({"_target_": "hydra_plugins.hydra_submitit_launcher.x"})) == 1


def test_slurm_launcher_config_composes():
    from hydra import compose, initialize_config_dir

    from imbalance_lab.paths import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["hydra/launcher=slurm", "tracking=server"], return_hydra_config=True)
    assert cfg.hydra.launcher._target_.endswith("SlurmLauncher")
    assert cfg.hydra.launcher.cpus_per_task == 4 and cfg.hydra.launcher.timeout_min == 60


def test_the_default_sweeper_composes_each_job_once_the_same_config_as_hydra():
    """Hydra's basic sweeper composes every job's config to validate the batch, and its launcher
    composes each again; ours hands the validated config over (once), equal to a fresh one."""
    import pickle

    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from imbalance_lab.paths import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base=None):
        # imported after Hydra's plugin discovery, which loads the module anew
        from hydra_plugins.imbalance_lab_sweeper.compose_once import ComposedConfigs, ComposeOnceSweeper

        hydra_cfg = compose("config", return_hydra_config=True).hydra
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=[], run_mode=RunMode.MULTIRUN)
        composed_by_hydra = []

        class Counting:  # the real loader, its compositions counted
            def load_sweep_config(self, master_config, overrides):
                composed_by_hydra.append(list(overrides))
                return loader.load_sweep_config(master_config, overrides)

        configs = ComposedConfigs(Counting())
        configs.keep(master, ["seed=3", "loss=focal"])  # the sweeper validating the batch
        [validated] = configs._kept[(id(master), ("seed=3", "loss=focal"))]
        over_hydras = ComposedConfigs(loader)
        over_hydras.keep(master, ["seed=4"])
        shipped = pickle.loads(pickle.dumps(over_hydras))  # to a joblib/submitit worker: nothing kept travels
        launched = configs.load_sweep_config(master, ["seed=3", "loss=focal"])
        again = configs.load_sweep_config(master, ["seed=3", "loss=focal"])
        fresh = loader.load_sweep_config(master, ["seed=3", "loss=focal"])
    assert hydra_cfg.sweeper._target_.endswith(ComposeOnceSweeper.__name__)
    assert launched is validated and again is not launched and len(composed_by_hydra) == 2  # kept one, handed once
    assert OmegaConf.to_container(launched) == OmegaConf.to_container(fresh)
    assert launched.loss._target_ == fresh.loss._target_ and launched.seed == 3
    assert shipped._kept == {} and len(over_hydras._kept) == 1 and configs._kept == {}


@pytest.fixture
def sweep_composition():
    """Hydra's real config loader and a multirun master config, and compose_once's module (imported
    after Hydra's plugin discovery, which loads it anew)."""
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from hydra.types import RunMode

    from imbalance_lab.paths import CONF_DIR

    with initialize_config_dir(str(CONF_DIR), version_base=None):
        from hydra_plugins.imbalance_lab_sweeper import compose_once

        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=[], run_mode=RunMode.MULTIRUN)
        yield loader, master, compose_once


def test_a_batch_composed_in_a_child_while_this_process_starts_equals_hydras(sweep_composition):
    """In-process sweeps: the batch is composed in a forked child while this process imports
    TensorFlow; the configs that come back are Hydra's own, and none was composed here."""
    from omegaconf import OmegaConf

    loader, master, compose_once = sweep_composition
    configs, meanwhile = _recording(compose_once, loader), []
    batch = [["seed=3", "loss=focal"], ["seed=4"], ["seed=4"], ["loss=bce", "sampler=smote", "dataset=digits"]]
    composed = compose_once.composed_in_child(configs, master, batch, 3, meanwhile=lambda: meanwhile.append(1))
    assert configs.composed_here == [] and meanwhile == [1] and len(composed) == 3  # the first `limit` come back
    for overrides, config in zip(batch, composed):
        fresh = loader.load_sweep_config(master, list(overrides))
        assert OmegaConf.to_yaml(config) == OmegaConf.to_yaml(fresh)
        assert OmegaConf.to_container(config.loss, resolve=True) == OmegaConf.to_container(fresh.loss, resolve=True)
        assert OmegaConf.is_struct(config) == OmegaConf.is_struct(fresh) and config.hydra.job.override_dirname
        assert OmegaConf.get_cache(config) == OmegaConf.get_cache(fresh)
    assert composed[1] is not composed[2]  # a config listed twice: one object per job


def test_a_batch_the_child_cannot_compose_is_composed_here_for_hydras_error(sweep_composition, tmp_path, store):
    from hydra.errors import MissingConfigException

    loader, master, compose_once = sweep_composition
    configs, meanwhile = compose_once.ComposedConfigs(loader), []
    batch = [["loss=ce"], ["loss=no_such_loss"]]
    assert compose_once.composed_in_child(configs, master, batch, 256, lambda: meanwhile.append(1)) is None
    assert meanwhile == [1]
    with pytest.raises(MissingConfigException):
        configs.keep(master, batch[1])
    # through the command line: Hydra's message, and no job ran
    proc = run_cli("-m", *TINY, "loss=ce,no_such_loss", cwd=tmp_path, store=store, check=False)
    assert proc.returncode != 0 and "Could not find 'loss/no_such_loss'" in proc.stderr
    assert children(store) == []


def _recording(compose_once, loader):
    """compose_once's ComposedConfigs over `loader`, noting in `.composed_here` the pid of each
    composition (a forked child notes in its own copy of the list)."""
    class Recording(compose_once.ComposedConfigs):
        def compose(self, master_config, sweep_overrides):
            self.composed_here.append(os.getpid())
            return super().compose(master_config, sweep_overrides)

    recording = Recording(loader)
    recording.composed_here = []
    return recording


@pytest.fixture
def forked(monkeypatch):
    """The pids of the children os.fork makes in this process during the test."""
    pids, real_fork = [], os.fork

    def fork():
        pid = real_fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(os, "fork", fork)
    return pids


def test_the_composing_child_is_reaped_when_this_process_fails_meanwhile(sweep_composition, forked):
    loader, master, compose_once = sweep_composition

    def failing():
        raise RuntimeError("import failed")

    batch = [[f"seed={s}"] for s in range(40)]  # the child is still composing: it is stopped, not waited for
    with pytest.raises(RuntimeError, match="import failed"):
        compose_once.composed_in_child(compose_once.ComposedConfigs(loader), master, batch, 256, failing)
    [pid] = forked
    with pytest.raises(ChildProcessError):  # already waited for: neither running nor a zombie
        os.waitpid(pid, os.WNOHANG)


def test_only_sweeps_whose_jobs_run_here_compose_in_a_child():
    from hydra import compose, initialize_config_dir

    from imbalance_lab.paths import CONF_DIR

    def runs_here(*overrides):
        with initialize_config_dir(str(CONF_DIR), version_base=None):
            from hydra_plugins.imbalance_lab_sweeper.compose_once import ComposeOnceSweeper

            cfg = compose("config", overrides=list(overrides), return_hydra_config=True)
        sweeper = ComposeOnceSweeper.__new__(ComposeOnceSweeper)
        sweeper.config = cfg
        sweeper.launcher = type(cfg.hydra.launcher._target_.rsplit(".", 1)[-1], (), {})()
        return sweeper._jobs_run_here()

    assert runs_here()  # the basic launcher
    assert runs_here("hydra/launcher=joblib", "hydra.launcher.n_jobs=1")
    assert not runs_here("hydra/launcher=joblib", "hydra.launcher.n_jobs=2")


def test_a_child_that_overruns_its_time_is_stopped_and_the_batch_composed_here(sweep_composition, monkeypatch,
                                                                               forked):
    loader, master, compose_once = sweep_composition
    monkeypatch.setattr(compose_once, "CHILD_SECONDS", 0.0)
    monkeypatch.setattr(compose_once, "CHILD_SECONDS_PER_JOB", 0.0)
    configs = compose_once.ComposedConfigs(loader)
    assert compose_once.composed_in_child(configs, master, [["seed=1"], ["seed=2"]], 256, lambda: None) is None
    with pytest.raises(ChildProcessError):
        os.waitpid(forked[0], os.WNOHANG)


def test_the_sweeper_hands_the_childs_configs_to_the_launcher(sweep_composition, monkeypatch):
    """validate_batch_is_legal on the first batch of a sweep whose jobs run here: the configs the
    child composed are kept for the launcher, and this process composes none."""
    from hydra import compose
    from hydra.types import HydraContext

    loader, master, compose_once = sweep_composition
    sweeper = compose_once.ComposeOnceSweeper.__new__(compose_once.ComposeOnceSweeper)
    sweeper.config = compose("config", overrides=["hydra/launcher=joblib", "hydra.launcher.n_jobs=1"],
                             return_hydra_config=True)
    sweeper.launcher = type("JoblibLauncher", (), {})()
    configs = _recording(compose_once, loader)
    sweeper.hydra_context = HydraContext(config_loader=configs, callbacks=None)
    monkeypatch.setattr(compose_once.ComposeOnceSweeper, "_compose_in_child", lambda self: True)
    batch = [["seed=1"], ["seed=2", "loss=bce"]]
    sweeper.validate_batch_is_legal(batch)
    assert configs.composed_here == []
    assert [configs.take(sweeper.config, o).seed for o in batch] == [1, 2] and configs._kept == {}

"""Sweeps that survive: failures, kill -9 and resume, Ctrl-C, parallel workers, submitit, a real
tracking server, and memory over a long in-process sweep. Real processes, real stores."""

from __future__ import annotations

import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import joblib
import psutil
import pytest
from mlflow.exceptions import MlflowException

from gate import wait_for_arrivals
from imbalance_lab import tracking

from conftest import BIN, TINY, cli_env, client, fill, free_port, run_cli

CASES = {  # one sweep of six jobs; two fail, at different stages
    "ok_a": "seed: 0\n", "ok_b": "seed: 1\n", "ok_c": "seed: 2\n", "ok_d": "seed: 3\n",
    "smote_too_few": "defaults:\n  - override /sampler: smote\nsampler:\n  k_neighbors: 500\n",  # before training
    "nan_loss": "trainer:\n  optimizer: sgd\n  learning_rate: 1.0e+30\n",  # during training
}
# Each job loads its data through tests/gate.py and waits there until the test lets it pass (the
# data's seed follows the run's, so that no job reuses another's loaded data).
GATED = [*TINY, "dataset._target_=gate.gated_synthetic", "dataset.seed=${seed}"]


def children(store: str, experiment: str = "imbalance-lab"):
    c = tracking.client_for(store)
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


def _gated_sweep(tmp_path, store, gate, *args) -> subprocess.Popen:
    """The sweep in its own process group, its output in files (pipes would stay open in any
    worker that outlives it)."""
    gate.mkdir()
    with open(tmp_path / "sweep.out", "w") as out, open(tmp_path / "sweep.err", "w") as err:
        return subprocess.Popen([str(BIN / "imbalance-lab"), "-m", *GATED, *args], cwd=tmp_path,
                                env=cli_env(store, IMBALANCE_LAB_TEST_GATE=str(gate)), start_new_session=True,
                                stdout=out, stderr=err, preexec_fn=_as_a_shell_starts_it)


def _as_a_shell_starts_it() -> None:
    """Signals as a shell leaves them for a command: default Ctrl-C, none blocked. A process
    inherits both from its parent, and this test session's may differ after what ran in it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_SETMASK, [])


def _rerun(tmp_path, store, gate, *args):
    (gate / "open").touch()
    return run_cli("-m", *GATED, *args, cwd=tmp_path, store=store,
                   env=cli_env(store, IMBALANCE_LAB_TEST_GATE=str(gate)))


def _finished_once_each(store, n_keys: int) -> None:
    runs = children(store)
    finished = Counter(r.data.tags["run_key"] for r in runs if r.info.status == "FINISHED")
    assert len(finished) == n_keys and set(finished.values()) == {1}
    assert not [r for r in runs if r.info.status == "RUNNING"]


def test_kill_9_then_rerun_finishes_each_combination_once(tmp_path, store):
    """kill -9 of an in-process sweep during its third run: the rerun skips the two finished ones,
    marks the killed one KILLED and trains it and the fourth."""
    gate = tmp_path / "gate"
    sweep = _gated_sweep(tmp_path, store, gate, "seed=0,1,2,3")
    try:
        for ticket in range(2):
            wait_for_arrivals(gate, ticket + 1, sweep)
            (gate / f"pass-{ticket}").touch()
        wait_for_arrivals(gate, 3, sweep)  # the third run is RUNNING, waiting for its data
        before = {r.data.tags["run_key"]: r.info.status for r in children(store)}
        assert sorted(before.values()) == ["FINISHED", "FINISHED", "RUNNING"]
    finally:
        os.killpg(sweep.pid, signal.SIGKILL)
        sweep.wait()
    killed_key = next(key for key, status in before.items() if status == "RUNNING")

    proc = _rerun(tmp_path, store, gate, "seed=0,1,2,3")
    assert "2 finished, 0 failed, 2 skipped" in proc.stdout
    _finished_once_each(store, 4)
    runs = children(store)
    killed = [r for r in runs if r.data.tags["run_key"] == killed_key and r.info.status == "KILLED"]
    assert len(killed) == 1 and "stopped before ending it" in killed[0].data.tags["error"]
    assert sorted(p.info.status for p in parents(store)) == ["FINISHED", "KILLED"]


@pytest.mark.slow
def test_kill_9_of_a_joblib_sweeps_parent_stops_its_workers(tmp_path, store):
    """kill -9 of the sweep's process alone (not its process group): its joblib workers, each inside
    a run, end those runs KILLED and exit within 10 s; the rerun trains each combination once."""
    gate = tmp_path / "gate"
    launcher = ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "seed=0,1,2,3"]
    sweep = _gated_sweep(tmp_path, store, gate, *launcher)
    try:
        wait_for_arrivals(gate, 2, sweep)  # both workers inside a run
        workers = psutil.Process(sweep.pid).children(recursive=True)
        assert sum("imbalance" in " ".join(w.cmdline()) or "python" in w.name() for w in workers) >= 2
        os.kill(sweep.pid, signal.SIGKILL)
        sweep.wait()
        gone, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"still running 10 s after the sweep was killed: {[p.cmdline() for p in alive]}"
    finally:
        leftover = [p for p in psutil.process_iter() if _in_group(p, sweep.pid)]
        for process in leftover:
            process.kill()
    assert not leftover, "processes of the sweep's group outlived it"
    killed = [r for r in children(store) if r.info.status == "KILLED"]
    assert len(killed) == 2 and all("sweep's process was killed" in r.data.tags["error"] for r in killed)

    proc = _rerun(tmp_path, store, gate, *launcher)
    assert "4 finished, 0 failed, 0 skipped" in proc.stdout
    _finished_once_each(store, 4)


def _in_group(process: psutil.Process, group: int) -> bool:
    try:
        return os.getpgid(process.pid) == group
    except (ProcessLookupError, psutil.NoSuchProcess):
        return False


@pytest.mark.slow
@pytest.mark.parametrize("launcher", [[], ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]],
                         ids=["in-process", "joblib-2"])
def test_ctrl_c_keeps_what_was_trained_and_leaves_nothing_running(tmp_path, store, launcher):
    """Ctrl-C reaches the sweep and its joblib workers (one process group): the run already trained
    stays FINISHED in full, the interrupted ones (one per worker) and the sweep's parent end KILLED,
    and the user gets one sentence with the command that resumes, not a traceback."""
    gate = tmp_path / "gate"
    sweep = _gated_sweep(tmp_path, store, gate, "seed=0,1,2,3,4,5", *launcher)
    try:
        wait_for_arrivals(gate, 1, sweep)
        (gate / "pass-0").touch()
        wait_for_arrivals(gate, 2 + bool(launcher), sweep)  # the first run is through, the next wait
        os.killpg(sweep.pid, signal.SIGINT)  # what a terminal sends the foreground group on Ctrl-C
        try:
            sweep.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"the sweep did not end within 120 s of Ctrl-C; gate: {sorted(p.name for p in gate.iterdir())}; "
                        f"its stderr ends:\n{(tmp_path / 'sweep.err').read_text()[-3000:]}")
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    stderr = (tmp_path / "sweep.err").read_text()
    assert sweep.returncode != 0
    assert "Traceback" not in stderr, stderr[-3000:]
    assert "interrupted" in stderr and "imbalance-lab -m" in stderr
    runs = children(store)
    statuses = Counter(r.info.status for r in runs)
    assert statuses["RUNNING"] == 0 and statuses["FINISHED"] >= 1 and 1 <= statuses["KILLED"] <= max(1, len(launcher))
    for run in runs:
        if run.info.status == "FINISHED":  # written in full
            assert "test/macro_f1" in run.data.metrics
            assert "confusion_matrix.png" in {a.path for a in client(store).list_artifacts(run.info.run_id)}
        else:
            assert run.info.status == "KILLED"
    [parent] = parents(store)
    assert parent.info.status == "KILLED" and "interrupted" in parent.data.tags["error"]


@pytest.mark.slow
def test_a_full_disk_stops_the_sweep_and_its_printed_command_resumes_it(tmp_path, small_disk):
    """The store on a real 64 MB filesystem, filled while the sweep's second job waits at the gate:
    that job's writes fail, the sweep stops there (the third job never starts) with one sentence
    naming the disk, what was kept and the command that resumes; once space is freed, that command,
    pasted in another folder without the venv on PATH or MLFLOW_TRACKING_URI set, trains the rest
    and skips the finished run. Where this machine cannot mount a filesystem, the job's MLflow writes
    fail with SQLite's full-disk error instead (tests/gate.py), and the test warns that it did."""
    disk, why_not = small_disk(64)
    store = f"sqlite:///{disk / 'mlflow.db'}"
    gate = tmp_path / "gate"
    sweep = _gated_sweep(tmp_path, store, gate, "seed=0,1,2")
    try:
        wait_for_arrivals(gate, 1, sweep)
        (gate / "pass-0").touch()
        wait_for_arrivals(gate, 2, sweep)  # the first run finished; the second is RUNNING, at the gate
        if why_not:
            import warnings

            warnings.warn(f"no tmpfs ({why_not}): the full disk was simulated in the job's process", stacklevel=1)
            (gate / "disk-full").touch()
        else:
            ballast = fill(disk)
        (gate / "pass-1").touch()
        sweep.wait(timeout=300)
    finally:
        if sweep.poll() is None:
            os.killpg(sweep.pid, signal.SIGKILL)
    stderr = (tmp_path / "sweep.err").read_text()
    [line] = [x for x in stderr.splitlines() if x.startswith("imbalance-lab:")]
    assert sweep.returncode == 1 and "Traceback" not in stderr, stderr[-3000:]
    assert "is full" in line and "the sweep stopped: the 1 run(s) it finished are kept" in line
    assert not (gate / "arrived-2").exists(), "a job started after the disk was full"
    finished = [r for r in children(store) if r.info.status == "FINISHED"]
    assert len(finished) == 1 and "test/macro_f1" in finished[0].data.metrics

    if not why_not:
        ballast.unlink()
    (gate / "disk-full").unlink(missing_ok=True)
    (gate / "open").touch()
    resume = line.split("which skips what finished: ", 1)[1]
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in cli_env(store, IMBALANCE_LAB_TEST_GATE=str(gate)).items() if k != "MLFLOW_TRACKING_URI"}
    env["PATH"] = "/usr/bin:/bin"
    proc = subprocess.run(["bash", "-c", resume], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "2 finished, 0 failed, 1 skipped" in proc.stdout
    _finished_once_each(store, 3)


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
        assert not tracking.pid_alive(child.pid)
    finally:
        child.wait()
    assert tracking.pid_alive(os.getpid()) and tracking.pid_alive(os.getppid())


def test_a_config_listed_twice_in_a_sweep_trains_once(tmp_path, store):
    proc = run_cli("-m", *TINY, "seed=5,5", cwd=tmp_path, store=store)
    assert "1 finished, 0 failed, 1 skipped" in proc.stdout
    assert [r.info.status for r in children(store)] == ["FINISHED"]


def test_a_sweep_reports_only_its_own_jobs_in_a_reused_folder(tmp_path, store):
    """Two sweeps in one `hydra.sweep.dir`: the second's summary counts its own jobs, and its parent
    is FINISHED; two sweeps started in the same second get two folders."""
    folder = f"hydra.sweep.dir={tmp_path / 'shared'}"
    run_cli("-m", *TINY, "seed=0,1,2", folder, cwd=tmp_path, store=store)
    proc = run_cli("-m", *TINY, "seed=7", folder, cwd=tmp_path, store=store)
    assert "1 finished, 0 failed, 0 skipped" in proc.stdout and "FAILED" not in proc.stdout
    assert [p.info.status for p in parents(store)] == ["FINISHED", "FINISHED"]
    env = cli_env(store)
    both = [subprocess.Popen([str(BIN / "imbalance-lab"), "-m", *TINY, "trainer.epochs=1", f"seed={s}"],
                             cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for s in (10, 11)]
    outputs = [p.communicate(timeout=600) for p in both]
    assert [p.returncode for p in both] == [0, 0], outputs[0][1][-2000:]
    assert all("1 finished, 0 failed, 0 skipped" in out for out, _ in outputs)
    dirs = {r.data.tags["sweep.dir"] for r in parents(store)} - {str(tmp_path / "shared")}
    assert len(dirs) == 2


def test_joblib_two_workers_share_one_store_and_parent(tmp_path, store):
    proc = run_cli("-m", *TINY, "hydra/launcher=joblib", "hydra.launcher.n_jobs=2", "loss=ce,bce",
                   "sampler=none,random_over", cwd=tmp_path, store=store)
    assert "4 finished, 0 failed, 0 skipped" in proc.stdout
    assert "database is locked" not in proc.stdout + proc.stderr
    [parent] = parents(store)
    runs = children(store)
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    worker_pids = {r.data.tags["imbalance_lab.pid"] for r in runs}
    assert len(worker_pids) == 2 and parent.data.tags["imbalance_lab.pid"] not in worker_pids
    by_id = {r.info.run_id: r for r in runs}
    results = Path(parent.data.tags["sweep.dir"]).glob("*/job_result.json")  # under $IMBALANCE_LAB_OUTPUT
    mine = [r for r in (json.loads(p.read_text()) for p in results) if r["parent_run_id"] == parent.info.run_id]
    assert len(mine) == 4
    for result in mine:
        run = by_id[result["run_id"]]
        assert all(f"{group}={run.data.tags[group]}" in result["overrides"] for group in ("loss", "sampler"))
    threads = max(1, joblib.cpu_count() // 2)  # two workers share the cores (as joblib counts them)
    assert {r.data.tags["imbalance_lab.tf_threads"] for r in runs} == {str(threads)}


def test_submitit_local_runs_each_job_in_its_own_process(tmp_path, store):
    proc = run_cli("-m", *TINY, "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10", "seed=0,1",
                   cwd=tmp_path, store=store)
    assert "2 finished, 0 failed, 0 skipped" in proc.stdout
    runs = children(store)
    assert [r.info.status for r in runs] == ["FINISHED", "FINISHED"]
    assert len({r.data.tags["imbalance_lab.pid"] for r in runs}) == 2


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


def test_a_server_that_is_down_is_one_sentence_at_once(tmp_path):
    """No server on the port: the command says so in one sentence (how to start one, or the default
    store) instead of retrying for minutes, and nothing is trained."""
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["-m", "seed=0,1"], []):
        proc = run_cli(*args, *TINY, "tracking=server", f"tracking.uri={url}", cwd=tmp_path, store=url, check=False)
        assert proc.returncode == 1
        [line] = [x for x in proc.stderr.splitlines() if x.startswith("imbalance-lab:")]
        assert url in line and "is the server running?" in line and "make server" in line
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("case", ["not a database", "missing folder"])
def test_a_store_that_cannot_be_written_is_one_sentence_before_any_job(tmp_path, case):
    if case == "not a database":
        path = tmp_path / "mlflow.db"
        path.write_text("these are not the tables you are looking for\n" * 10)
    else:
        path = tmp_path / "no" / "such" / "mlflow.db"
    proc = run_cli("-m", *TINY, "seed=0,1", cwd=tmp_path, store=f"sqlite:///{path}", check=False)
    assert proc.returncode == 1
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("imbalance-lab:")]
    assert str(path.parent) in line and "Traceback" not in proc.stderr
    assert "Launching" not in proc.stdout + proc.stderr


def test_a_copy_of_the_store_file_alone_holds_every_run(tmp_path, store):
    """A user who copies or mails mlflow.db (without -wal or -shm files) keeps the whole study."""
    run_cli("-m", *TINY, "seed=0,1", cwd=tmp_path, store=store)
    copy = tmp_path / "copy"
    copy.mkdir()
    shutil.copy(tmp_path / "mlflow.db", copy / "mlflow.db")
    copied = f"sqlite:///{copy / 'mlflow.db'}"
    runs = children(copied)
    assert len(runs) == 2 and {r.info.status for r in runs} == {"FINISHED"}
    assert all("test/macro_f1" in r.data.metrics for r in runs)


@pytest.mark.slow
def test_long_in_process_sweep_memory_stays_bounded(make_cfg):
    """30 jobs in one process, as a sweep runs them: the process's memory after job 30 is within
    150 MB of its memory after job 5 (Keras's global state is cleared between jobs)."""
    from imbalance_lab.run import execute
    from imbalance_lab.sweep import release_job_memory

    process = psutil.Process()
    rss = []
    for seed in range(30):
        cfg, choices = make_cfg("trainer.epochs=2", f"seed={seed}")
        assert execute(cfg, choices).status == "FINISHED"
        release_job_memory()
        rss.append(process.memory_info().rss / 2**20)
    growth = max(rss[5:]) - rss[4]
    print(f"RSS after job 5: {rss[4]:.0f} MB, largest after: {max(rss[5:]):.0f} MB")
    assert growth < 150, f"RSS grew {growth:.0f} MB between job 5 and job 30: {[round(r) for r in rss]}"


def test_between_jobs_what_survives_is_frozen_out_of_later_collections():
    """The next job's garbage collections scan only its own objects, not the libraries' state."""
    import keras

    from imbalance_lab.sweep import release_job_memory

    keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    release_job_memory()
    frozen = gc.get_freeze_count()
    assert frozen > 100_000, "TensorFlow and Keras are imported: their objects are frozen"
    assert len(gc.get_objects()) < frozen / 10


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    store = f"sqlite:///{tmp_path / 'fresh.db'}"
    code = ("from imbalance_lab import tracking; "
            f"print(tracking.experiment_id(tracking.client_for({store!r}), 'shared'))")
    openers = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in openers]
    assert [p.returncode for p in openers] == [0, 0, 0], outputs[0][1][-2000:]
    assert {out.strip().splitlines()[-1] for out, _ in outputs} == {"1"}


def test_a_locked_sqlite_store_is_retried(monkeypatch):
    """The lock is real MLflow's error text; holding a real SQLite lock past MLflow's own 20 s wait
    would cost the suite 20 s, so the second writer is a callable that is locked out twice."""
    calls = []

    def locked_twice(value):
        calls.append(value)
        if len(calls) <= 2:
            raise MlflowException("(sqlite3.OperationalError) database is locked")
        return value

    monkeypatch.setattr(tracking.time, "sleep", lambda seconds: None)
    assert tracking.retrying(locked_twice, "write", 7) == 7 and len(calls) == 3
    with pytest.raises(MlflowException, match="no such table"):
        tracking.retrying(_other_error, "write", 1)


def _other_error(_):
    raise MlflowException("no such table: runs")


def _log_same_datasets(store: str, exp_id: str, barrier, rounds: int) -> int:
    """One of several processes: per round, all log the same new dataset to their own runs at once."""
    import numpy as np

    c = tracking.client_for(store)
    for i in range(rounds):
        run_id = c.create_run(exp_id).info.run_id
        dataset = tracking.dataset_input(np.zeros((4, 2), "float32"), np.array(["a"] * 4), "race", "", f"digest-{i}")
        barrier.wait(timeout=60)  # a process that failed breaks the barrier for the others: no hang
        tracking.retrying(tracking.log_dataset_and_finish, "log_input", store, run_id, dataset)
    return rounds


def test_processes_logging_the_same_new_dataset_at_once_all_succeed(tmp_path):
    """MLflow looks a dataset up, then inserts it: two writers doing both at once made the second
    run's logging fail (UNIQUE constraint on datasets); it is retried."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    store = f"sqlite:///{tmp_path}/mlflow.db"
    exp_id = tracking.experiment_id(tracking.client_for(store), "race")
    context = mp.get_context("spawn")
    barrier = context.Manager().Barrier(3)
    with ProcessPoolExecutor(3, mp_context=context) as pool:
        done = [f.result(timeout=300) for f in [pool.submit(_log_same_datasets, store, exp_id, barrier, 6)
                                                for _ in range(3)]]
    assert done == [6, 6, 6]
    runs = client(store).search_runs([exp_id], max_results=100)
    assert len(runs) == 18 and all(len(r.inputs.dataset_inputs) == 1 for r in runs)
    assert {r.info.status for r in runs} == {"FINISHED"}


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


def test_a_sweep_counts_its_jobs_and_estimates_the_time_left():
    """The grid of a study and the command line's sweeps, as the basic sweeper expands them."""
    from omegaconf import OmegaConf

    from imbalance_lab.sweep import count_jobs, sweep_progress

    config = OmegaConf.create({"hydra": {"sweeper": {"params": {"loss": "ce,bce,focal", "sampler": "none,smote"}},
                                         "overrides": {"task": ["sampler=none", "seed=range(4)", "trainer.epochs=3"]}}})
    assert count_jobs(config) == 3 * 1 * 4
    config.hydra.overrides.task = ["sampler=glob(smote*)"]  # not countable without Hydra's config loader
    assert count_jobs(config) is None
    note = sweep_progress({"n_jobs": 10, "started": time.time() - 60}, job_number=1)
    assert note(0.0).startswith("job 2/10, about ") and "min of the sweep left" in note(0.5)
    assert sweep_progress({"n_jobs": None, "started": 0}, 0) is None

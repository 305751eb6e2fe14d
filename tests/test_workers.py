"""Parallel sweeps' workers: forked from one server that imported TensorFlow and the rest once."""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys

import joblib
import pytest
from omegaconf import OmegaConf

from imbalance_lab import workers

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
CORES = joblib.cpu_count()


def launcher(**fields):
    return OmegaConf.create({"_target_": JOBLIB, "n_jobs": 2, "backend": None, "prefer": "processes",
                             "require": None, **fields})


@pytest.mark.skipif(not workers.FORK_SERVER_PLATFORM, reason="the fork server is used on Linux only")
def test_only_joblib_process_workers_start_from_the_fork_server():
    assert workers.forked_worker_count(launcher()) == 2
    assert workers.forked_worker_count(launcher(n_jobs=3)) == 3
    assert workers.forked_worker_count(launcher(n_jobs=-1)) == (CORES if CORES > 1 else 0)
    assert workers.forked_worker_count(launcher(n_jobs=1)) == 0  # joblib runs the jobs in this process
    # Hydra's joblib launcher uses loky's process workers whatever these say
    assert workers.forked_worker_count(launcher(prefer="threads", backend="multiprocessing")) == 2
    assert workers.forked_worker_count(OmegaConf.create({"_target_": "hydra._internal.core_plugins."
                                                                      "basic_launcher.BasicLauncher"})) == 0
    assert workers.forked_worker_count(OmegaConf.create({"_target_": "hydra_plugins.hydra_submitit_launcher."
                                                                      "submitit_launcher.LocalLauncher"})) == 0


PROBE = """
import gc, json, os, sys
import joblib
from omegaconf import OmegaConf
from imbalance_lab.workers import ForkServer

def probe():
    import gc, os, sys
    server = os.getppid()
    tasks = os.listdir(f"/proc/{server}/task")
    threads = sorted(open(f"/proc/{server}/task/{t}/comm").read().strip() for t in tasks if t != str(server))
    return {"pid": os.getpid(), "ppid": server, "frozen": gc.get_freeze_count(), "server_threads": threads,
            "omp": os.environ.get("OMP_NUM_THREADS"), "openblas": os.environ.get("OPENBLAS_NUM_THREADS"),
            "preloaded": sorted(m for m in ("tensorflow", "keras", "mlflow", "imbalance_lab.run") if m in sys.modules)}

ForkServer(OmegaConf.create(%r), "RunMode.MULTIRUN")
results = joblib.Parallel(n_jobs=2)(joblib.delayed(probe)() for _ in range(4))
print(json.dumps({"me": os.getpid(), "tf_here": "tensorflow" in sys.modules, "results": results}))
"""


@pytest.mark.skipif(not workers.FORK_SERVER_PLATFORM, reason="the fork server is used on Linux only")
def test_joblib_workers_fork_from_a_server_that_imported_tensorflow_once():
    """Real joblib workers (loky) in a fresh process, as Hydra's joblib launcher starts them."""
    script = PROBE % OmegaConf.to_container(launcher())
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        env.pop(name, None)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert not out["tf_here"]  # the launching process stays light
    servers = {r["ppid"] for r in out["results"]}
    assert len(servers) == 1 and out["me"] not in servers  # all forked by one server, not by us
    threads = str(max(1, CORES // 2))  # what joblib gives each of 2 loky workers
    for r in out["results"]:
        assert r["preloaded"] == ["imbalance_lab.run", "keras", "mlflow", "tensorflow"]  # before any task
        assert r["frozen"] > 100_000  # imported once, shared copy-on-write
        assert r["omp"] == threads and r["openblas"] == threads
        # no thread pools in the server the workers fork from (pyarrow's jemalloc keeps a background
        # thread; jemalloc has fork handlers for it)
        assert set(r["server_threads"]) <= {"jemalloc_bg_thd"}


@pytest.mark.skipif(not workers.FORK_SERVER_PLATFORM, reason="the fork server is used on Linux only")
def test_a_fork_server_that_cannot_start_leaves_the_usual_workers(tmp_path):
    """A real failure: the server's socket would live under a TMPDIR too long for a Unix socket path."""
    long_tmp = tmp_path / ("t" * 100) / ("u" * 100)
    long_tmp.mkdir(parents=True)
    script = PROBE % OmegaConf.to_container(launcher())
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "TMPDIR": str(long_tmp)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "could not start their fork server" in proc.stderr
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {r["ppid"] for r in out["results"]} == {out["me"]}  # loky's own workers, children of this process


def test_a_single_run_or_a_basic_sweep_starts_no_fork_server(monkeypatch):
    started = []
    monkeypatch.setattr(workers, "start_fork_server", started.append)
    workers.ForkServer(launcher(), "RunMode.RUN")
    workers.ForkServer(OmegaConf.create({"_target_": "hydra._internal.core_plugins.basic_launcher.BasicLauncher"}),
                       "RunMode.MULTIRUN")
    assert started == []
    workers.ForkServer(launcher(), "RunMode.MULTIRUN")
    assert started == ([2] if workers.FORK_SERVER_PLATFORM else [])


def _job(number: int, *overrides: str) -> tuple:
    return (number, list(overrides), None)


def test_jobs_that_would_share_a_trainer_go_to_one_worker_in_pieces_longest_first():
    # 12 jobs: 2 losses x 2 class weights x 3 seeds; only the loss changes the traced training function
    grid = itertools.product(("ce", "bce"), ("none", "balanced"), range(3))
    jobs = [_job(n, f"loss={loss}", f"class_weight={weight}", f"+seed={seed}", "trainer=quick")
            for n, (loss, weight, seed) in enumerate(grid)]
    tasks = workers.job_groups(jobs, n_workers=2)
    assert sorted(job[0] for task in tasks for job in task) == list(range(12))  # each job once
    assert [len(task) for task in tasks] == [3, 3, 3, 3]  # pieces of at most half a worker's share (12 / 2 / 2)
    for task in tasks:
        assert len({job[1][0] for job in task}) == 1  # one loss per task
        assert [job[0] for job in task] == sorted(job[0] for job in task)  # in batch order
    # uneven groups: the longest piece first, so that the short ones fill in at the end
    uneven = [_job(0, "model=cnn"), *[_job(n, "model=mlp", f"seed={n}") for n in range(1, 6)], _job(6, "~decision")]
    assert [[job[0] for job in task] for task in workers.job_groups(uneven, n_workers=2)] == [[1, 2], [3, 4], [0], [5], [6]]
    assert [len(task) for task in workers.job_groups(uneven, n_workers=1)] == [4, 1, 1, 1]


def _task(cfg):
    """A Hydra task for launch_grouped's tests: what it ran, where; seed 3 fails."""
    if cfg.seed == 3:
        raise ValueError("seed 3 fails")
    return cfg.seed, cfg.loss._target_, os.getpid()


@pytest.mark.parametrize("kept_at_most", [256, 3], ids=["all-kept", "overflow"])
def test_joblib_jobs_run_the_configs_their_sweeper_composed_in_batch_order(tmp_path, monkeypatch, kept_at_most):
    """The sweeper composed each job's config to validate the batch; the worker runs that config
    (composing only those the sweeper could not keep), a group's jobs run in one worker, a failing
    job fails alone, and Hydra gets the returns in the batch's order with its job numbers."""
    from hydra import initialize_config_dir
    from hydra._internal.callbacks import Callbacks
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.utils import JobStatus
    from hydra.types import HydraContext, RunMode
    from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

    from imbalance_lab.paths import CONF_DIR

    log = tmp_path / "composed.txt"  # each composition, wherever it happens (here or in a worker)
    with initialize_config_dir(str(CONF_DIR), version_base=None):
        from hydra_plugins.imbalance_lab_sweeper.compose_once import ComposedConfigs

        monkeypatch.setattr(ComposedConfigs, "LIMIT", kept_at_most)
        loader = GlobalHydra.instance().config_loader()
        master = loader.load_configuration("config", overrides=[f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                                           run_mode=RunMode.MULTIRUN)

        class Counting:  # the real loader, its compositions written down
            def load_sweep_config(self, master_config, overrides):
                with log.open("a") as out:
                    out.write(" ".join(overrides) + "\n")
                return loader.load_sweep_config(master_config, overrides)

        configs = ComposedConfigs(Counting())
        # two pieces of the loss=ce group (5 jobs, 2 workers: pieces of 2) and one of focal
        batch = [["seed=1", "loss=ce"], ["loss=focal"], ["seed=2", "loss=ce"], ["seed=3", "loss=ce"], ["seed=4", "loss=ce"]]
        for overrides in batch:  # the sweeper validating the batch
            configs.keep(master, overrides)
        two_workers = JoblibLauncher(n_jobs=2)
        two_workers.setup(hydra_context=HydraContext(config_loader=configs, callbacks=Callbacks()),
                          task_function=_task, config=master)
        returns = workers.launch_grouped(two_workers, batch, initial_job_idx=5)
    composed = log.read_text().splitlines()
    assert composed[:5] == [" ".join(o) for o in batch]  # to validate
    assert sorted(composed[5:]) == sorted(" ".join(o) for o in batch[kept_at_most:])  # in the workers: not kept
    assert [r.status for r in returns] == [JobStatus.COMPLETED] * 3 + [JobStatus.FAILED, JobStatus.COMPLETED]
    assert str(returns[3]._return_value) == "seed 3 fails"
    ok = [r.return_value for r in returns if r.status == JobStatus.COMPLETED]
    assert [v[:2] for v in ok] == [
        (1, "imbalance_lab.remedies.losses.categorical_crossentropy"), (0, "imbalance_lab.remedies.losses.focal"),
        (2, "imbalance_lab.remedies.losses.categorical_crossentropy"),
        (4, "imbalance_lab.remedies.losses.categorical_crossentropy")]
    pids = [v[2] for v in ok]
    assert os.getpid() not in pids and pids[0] == pids[2]  # seeds 1 and 2 of ce: one piece, one worker
    assert [r.hydra_cfg.hydra.job.num for r in returns] == [5, 6, 7, 8, 9]
    assert [r.hydra_cfg.hydra.job.id for r in returns] == [f"{returns[0].hydra_cfg.hydra.job.name}_{n}" for n in range(5, 10)]
    assert [list(r.overrides) for r in returns] == batch
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["5", "6", "7", "8", "9"]

"""Parallel sweeps' workers: forked from one server that imported TensorFlow and the rest once."""

from __future__ import annotations

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

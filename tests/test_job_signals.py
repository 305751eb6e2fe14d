"""SLURM's stop signals in a job, without a cluster: real signals sent to this process, a real
MLflow store (tests/integration/test_slurm.py has the same on a real SLURM)."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from imbalance_lab import run
from imbalance_lab.job_signals import StoppedBySlurm, stop_reason, stopped_by_slurm

from conftest import client


@pytest.fixture
def in_slurm_job(monkeypatch):
    """As submitit's job wrapper leaves a job: its env var, and its handlers (here: stand-ins)."""
    monkeypatch.setenv("SUBMITIT_EXECUTOR", "slurm")
    monkeypatch.delenv("SUBMITIT_PREEMPT_SIGNAL", raising=False)
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGUSR2)}
    seen = []
    signal.signal(signal.SIGTERM, lambda signum, frame: seen.append(signum))  # submitit: logs, goes on

    def gives_up(signum, frame):  # submitit, not requeuing (Hydra's max_num_timeout: 0)
        raise RuntimeError("Job not requeued because: timed-out too many times.")

    signal.signal(signal.SIGUSR2, gives_up)
    yield seen
    for signum, handler in before.items():
        signal.signal(signum, handler)


def test_sigterm_stops_the_job_with_its_reason_then_the_handlers_are_restored(in_slurm_job):
    term, usr2 = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGUSR2)
    with pytest.raises(StoppedBySlurm, match=r"stopped by SLURM \(SIGTERM"):
        with stopped_by_slurm():
            os.kill(os.getpid(), signal.SIGTERM)
    assert signal.getsignal(signal.SIGTERM) is term and signal.getsignal(signal.SIGUSR2) is usr2
    assert in_slurm_job == []  # handled by us, not by the job wrapper's handler


def test_the_time_limit_warning_stops_the_job_once_submitit_gives_up(in_slurm_job):
    with pytest.raises(StoppedBySlurm, match="at its time limit, not requeued") as stop:
        with stopped_by_slurm():
            os.kill(os.getpid(), signal.SIGUSR2)
    assert isinstance(stop.value.__cause__, RuntimeError)


def test_a_requeue_by_submitit_exits_the_job_as_submitit_does(in_slurm_job):
    signal.signal(signal.SIGUSR2, lambda signum, frame: sys.exit(-1))  # submitit after `scontrol requeue`
    with pytest.raises(SystemExit):
        with stopped_by_slurm():
            os.kill(os.getpid(), signal.SIGUSR2)


def test_outside_a_slurm_job_nothing_changes(monkeypatch):
    monkeypatch.delenv("SUBMITIT_EXECUTOR", raising=False)
    term = signal.getsignal(signal.SIGTERM)
    with stopped_by_slurm():
        assert signal.getsignal(signal.SIGTERM) is term


def sigterm_then(error: BaseException | None):
    """A training that SLURM stops: SIGTERM arrives, and the exception comes out as it is (None) or,
    as when it is raised inside TensorFlow's tracing, as another error."""

    def train(cfg, **_):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
        except StoppedBySlurm:
            if error is None:
                raise
            raise error from None

    return train


@pytest.mark.parametrize("error", [None, SystemError("Objects/listobject.c:338: bad argument to internal function")])
def test_a_run_stopped_by_slurm_ends_killed_with_the_reason(make_cfg, store, monkeypatch, in_slurm_job, error):
    monkeypatch.setattr(run, "train_and_evaluate", sigterm_then(error))
    cfg, choices = make_cfg()
    with pytest.raises(StoppedBySlurm, match=r"stopped by SLURM \(SIGTERM"):
        with stopped_by_slurm():
            run.execute(cfg, choices)
    c = client(store)
    (stored,) = c.search_runs([c.get_experiment_by_name("test").experiment_id])
    assert stored.info.status == "KILLED"
    assert stored.data.tags["error"] == "stopped by SLURM (SIGTERM: scancel, its time limit or preemption)"
    assert stop_reason() is None  # for the next job of this process, if any


def test_an_error_without_a_stop_goes_through_as_it_is(in_slurm_job):
    with pytest.raises(SystemError):
        with stopped_by_slurm():
            raise SystemError("not SLURM's doing")

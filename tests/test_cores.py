"""cores.py: in an in-process sweep, training on one CPU and the MLflow writer process on the others."""

from __future__ import annotations

import functools
import os
import signal
import threading
import time

import psutil

from imbalance_lab import cores, tracking

CPUS = sorted(os.sched_getaffinity(0))
# With one CPU there is nothing to share: training and writer keep it.
TRAINING, WRITING = ({CPUS[0]}, set(CPUS[1:])) if len(CPUS) >= 2 else (set(CPUS), set(CPUS))


def thread_cpus() -> list[set[int]]:
    """The CPUs of every thread of this process."""
    return [os.sched_getaffinity(int(tid)) for tid in os.listdir("/proc/self/task")]


def writer_cpus(writer: tracking.Writer) -> set[int]:
    got = []
    writer.submit(functools.partial(os.sched_getaffinity, 0), then=lambda cpus, error: got.append((cpus, error)))
    writer.wait()
    [(cpus, error)] = got
    assert error is None
    return cpus


def started_thread_cpus() -> set[int]:
    got = []
    thread = threading.Thread(target=lambda: got.append(os.sched_getaffinity(0)))
    thread.start()
    thread.join()
    return got[0]


def test_training_and_the_writer_share_the_cpus_until_released_also_after_a_writer_restart(monkeypatch):
    monkeypatch.delenv(cores.OPT_OUT, raising=False)
    writer = tracking.Writer(background=True)
    threading.Thread(target=time.sleep, args=(2,), daemon=True).start()  # a thread started before sharing
    try:
        cores.share(writer)
        assert all(cpus == TRAINING for cpus in thread_cpus())  # every thread, not only the caller
        assert started_thread_cpus() == TRAINING  # and TensorFlow's pools started later
        assert cores.training_cpus() == cores.listed(sorted(TRAINING))
        assert writer_cpus(writer) == WRITING
        # a writer process that died is replaced (spawned from a thread on the training CPU): moved again
        [pid] = list(writer._pool._processes)
        os.kill(pid, signal.SIGKILL)
        while psutil.pid_exists(pid) and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
            time.sleep(0.05)
        time.sleep(0.5)  # the pool notices its worker died
        assert writer_cpus(writer) == WRITING
        cores.release()
        assert all(cpus == set(CPUS) for cpus in thread_cpus())
        assert writer_cpus(writer) == set(CPUS)
    finally:
        cores.release()
        cores.pin_threads(set(CPUS))


def test_tensorflows_own_thread_setting_leaves_every_cpu_to_training(monkeypatch):
    monkeypatch.setenv(cores.OPT_OUT, "2")
    writer = tracking.Writer(background=True)
    try:
        cores.share(writer)
        assert all(cpus == set(CPUS) for cpus in thread_cpus())
        assert writer_cpus(writer) == set(CPUS)
    finally:
        cores.release()
        cores.pin_threads(set(CPUS))

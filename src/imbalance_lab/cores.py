"""Which CPUs an in-process sweep trains on, and which its MLflow writer process uses (Linux).

Measured on 2 cores (tests/benchmarks/RESULTS.md, section 2): the networks of these studies train
faster with every TensorFlow thread on one CPU than spread over two (per epoch 1.13-1.18x faster at
2,000-10,000 rows, no slower at 269,501 rows: a layer's work per batch is too small for TensorFlow's
thread pool to pay back its hand-offs between cores), and the writer process, alone on the other
CPUs, no longer slows training. A model large enough to gain from TensorFlow's threads: set
TensorFlow's own TF_NUM_INTRAOP_THREADS, and training keeps every CPU."""

from __future__ import annotations

import contextlib
import logging
import os

log = logging.getLogger(__name__)
OPT_OUT = "TF_NUM_INTRAOP_THREADS"
_shared: tuple[frozenset[int], object] | None = None  # (every CPU the process could use, the writer) while shared


def share(writer) -> None:
    """Training (every thread of this process, and the threads it starts later) on one CPU and the
    writer process (a tracking.Writer) on the others; until release(). Not on a machine (or a CPU
    set) of one CPU, nor outside Linux, nor when TF_NUM_INTRAOP_THREADS is set."""
    global _shared
    if _shared is not None or not hasattr(os, "sched_setaffinity") or os.environ.get(OPT_OUT):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return
    _shared = frozenset(cpus), writer
    pin_threads({cpus[0]})
    writer.pin(set(cpus[1:]))
    log.info("Training on CPU %d, the MLflow writer on CPU %s (set %s to train on every CPU).",
             cpus[0], listed(cpus[1:]), OPT_OUT)


def release() -> None:
    """Every CPU back to this process's threads and to the writer (the sweep's end)."""
    global _shared
    if _shared is None:
        return
    cpus, writer = _shared
    _shared = None
    pin_threads(set(cpus))
    writer.pin(set(cpus))


def pin_threads(cpus: set[int]) -> None:
    """Every thread of this process on `cpus` (os.sched_setaffinity(0) moves the calling thread
    only); a thread started later inherits its starter's CPUs."""
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            os.sched_setaffinity(int(tid), cpus)


def training_cpus() -> str:
    """The CPUs this thread may run on, as '0' or '0,1' (a run's tag)."""
    return listed(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else "any"


def listed(cpus) -> str:
    return ",".join(str(c) for c in cpus)

"""A job of `hydra/launcher=slurm` that SLURM stops ends its MLflow run KILLED, not RUNNING forever.

SLURM stops a job with SIGTERM (scancel, the time limit, preemption), then SIGKILL KillWait seconds
later (30 s by default). In the job, submitit only logs SIGTERM; on its preemption signal (USR2 unless
SUBMITIT_PREEMPT_SIGNAL says otherwise), sent `signal_delay_s` before the time limit, it requeues the
job up to `max_num_timeout` times (submitit exits the job), else raises in the job's main thread.
Left alone, the run is cut off mid-training and stays RUNNING in MLflow, and the submitting process,
which waits for the job's result file, may wait forever (it cannot tell a killed job from a running
one without SLURM's accounting). Within `stopped_by_slurm()`, either signal raises `StoppedBySlurm`
in the main thread: the run ends KILLED and the job returns its result in the seconds SLURM leaves.
Raised inside TensorFlow (e.g. while it traces a function), the exception may come out as another
error (SystemError, AssertionError): once SLURM has stopped the job, `stop_reason()` says so, so that
whatever error ends the run, it ends KILLED for that reason.
A requeue is left to submitit (its exit goes through: the requeued job trains the run again). A
signal that comes before `stopped_by_slurm()` is entered (while the job imports TensorFlow) is only
logged by submitit: that job trains until SIGKILL, and its run stays RUNNING until the next run of
the sweep trains it again."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_reason: str | None = None  # why SLURM stopped this job, once it has


class StoppedBySlurm(KeyboardInterrupt):
    """Raised in a SLURM job's main thread when SLURM stops it. A KeyboardInterrupt, so that what
    ends a run KILLED on Ctrl-C does the same here; its text says why, for the run and the summary."""


def stop_reason() -> str | None:
    """Why SLURM stopped this job (within `stopped_by_slurm()`), or None."""
    return _reason


def _preempt_signal() -> signal.Signals:
    """The signal submitit asks SLURM to send before the time limit (`--signal=USR2@signal_delay_s`)."""
    return getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), signal.SIGUSR2)


def _stop(reason: str, cause: BaseException | None = None):
    global _reason
    _reason = reason
    raise StoppedBySlurm(reason) from cause


@contextmanager
def stopped_by_slurm() -> Iterator[None]:
    """In a submitit SLURM job (one Hydra job per process), turn SLURM's stop signals into
    StoppedBySlurm for the duration, and any error that leaves after one into StoppedBySlurm too;
    elsewhere (and outside the main thread) do nothing."""
    global _reason
    if os.environ.get("SUBMITIT_EXECUTOR") != "slurm" or threading.current_thread() is not threading.main_thread():
        yield
        return
    _reason = None
    warning = _preempt_signal()
    before = {signal.SIGTERM: signal.getsignal(signal.SIGTERM), warning: signal.getsignal(warning)}

    def on_sigterm(signum, frame):
        _stop("stopped by SLURM (SIGTERM: scancel, its time limit or preemption)")

    def on_time_limit_near(signum, frame):
        submitit_handler = before[warning]
        if callable(submitit_handler):
            try:
                submitit_handler(signum, frame)  # requeues (then exits the job) or gives up by raising
            except Exception as err:
                _stop(f"stopped by SLURM at its time limit, not requeued ({err})", err)
        _stop(f"stopped by SLURM ({signal.Signals(signum).name}: its time limit is near)")

    signal.signal(signal.SIGTERM, on_sigterm)
    signal.signal(warning, on_time_limit_near)
    try:
        yield
    except StoppedBySlurm:
        raise
    except Exception as err:
        if _reason is None:
            raise
        raise StoppedBySlurm(_reason) from err  # the stop, come out of TensorFlow as another error
    finally:
        _reason = None
        for signum, handler in before.items():
            signal.signal(signum, handler)

"""A dataset loader that waits at a gate, for the tests that kill or interrupt a sweep: each call
takes a numbered ticket (a file `arrived-N` in $IMBALANCE_LAB_TEST_GATE) and waits until the test
writes `pass-N` or `open`. A test thus stops a sweep inside an exact job, with its run RUNNING,
without racing it; the wait happens where a real loader would read a large file. A file
`disk-full` in the gate makes the job's writes fail as on a full disk once it passes."""

from __future__ import annotations

import os
import time
from pathlib import Path

from imbalance_lab.data.synthetic import make_synthetic

WAIT_SECONDS = 600  # a test that never opens the gate fails its job instead of hanging forever


def gated_synthetic(**kwargs):
    gate = Path(os.environ["IMBALANCE_LAB_TEST_GATE"])
    ticket = _take_ticket(gate)
    deadline = time.monotonic() + WAIT_SECONDS
    while not ((gate / "open").exists() or (gate / f"pass-{ticket}").exists()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gate {gate}: ticket {ticket} never passed")
        time.sleep(0.05)
    if (gate / "disk-full").exists():
        fail_writes_as_on_a_full_disk()
    return make_synthetic(**kwargs)


def fail_writes_as_on_a_full_disk() -> None:
    """For a machine where the test cannot mount a small filesystem to fill: from now on, in this
    process, every write through MLflow's client fails with the error SQLite gives on a full disk."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    def full(*args, **kwargs):
        raise MlflowException("(sqlite3.OperationalError) database or disk is full")

    for name in dir(MlflowClient):
        if name.startswith(("log_", "set_", "create_", "delete_", "update_")):
            setattr(MlflowClient, name, full)


def _take_ticket(gate: Path) -> int:
    n = 0
    while True:
        try:
            os.close(os.open(gate / f"arrived-{n}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return n
        except FileExistsError:
            n += 1


def wait_for_arrivals(gate: Path, count: int, process=None, timeout: float = 300) -> None:
    """Until `count` jobs wait at the gate (persistent files: no state can be missed between polls)."""
    deadline = time.monotonic() + timeout
    while not all((gate / f"arrived-{n}").exists() for n in range(count)):
        assert process is None or process.poll() is None, "the sweep ended before reaching the gate"
        assert time.monotonic() < deadline, f"{count} jobs never reached the gate"
        time.sleep(0.05)

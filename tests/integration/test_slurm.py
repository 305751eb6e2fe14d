"""The cluster path on a real SLURM: sweeps through `hydra/launcher=slurm` (one SLURM job per run)
logging to an MLflow tracking server, as the README's cluster section says. Needs a cluster that
answers `sinfo` (`make slurm-up` starts a one-node one here); skipped, with the reason, without one."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from conftest import BIN, TINY, client, mlflow_server_in, run_cli


def _cluster() -> tuple[str | None, str]:
    """(default partition, "") when a cluster answers `sinfo`, else (None, why not)."""
    if shutil.which("sinfo") is None:
        return None, "no `sinfo` on PATH (install slurm-wlm, or start a local cluster: make slurm-up)"
    try:
        proc = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return None, "`sinfo` got no answer within 30 s (start a local cluster: make slurm-up)"
    partitions = proc.stdout.split()
    if proc.returncode != 0 or not partitions:
        last = (proc.stderr.strip().splitlines() or ["no partition"])[-1]
        return None, f"no SLURM cluster answers `sinfo` ({last}); start a local one: make slurm-up"
    return next((p.rstrip("*") for p in partitions if p.endswith("*")), partitions[0]), ""


PARTITION, NO_CLUSTER = _cluster()
pytestmark = [pytest.mark.slurm, pytest.mark.slow, pytest.mark.skipif(PARTITION is None, reason=NO_CLUSTER)]

# DESIGN.md, "What MLflow receives": per class metrics are added below for the run's labels.
CONTRACT_METRICS = ["test/macro_f1", "test/accuracy", "test/balanced_accuracy", "test/mcc", "test/gmean",
                    "test/macro_roc_auc", "test/macro_pr_auc", "naive/macro_f1", "test/n_predicted_classes"]
PER_EPOCH = ["train/loss", "val/loss", "val/macro_f1"]
ARTIFACTS = ["confusion_matrix.png", "confusion_matrix.json", "classification_report.json", "config.yaml",
             "history.csv"]
# A run of ~15-30 s (Keras fit, 2 jobs at once on 2 cores) and one that trains until SLURM stops it.
LONG = ["dataset.n_samples=20000", "model.widths=[64]", "trainer.patience=1000000"]
EPOCHS = 60
UNTIL_STOPPED = 1_000_000


def slurm_sweep(url: str, sweep_dir: Path, *overrides: str, base: list[str] = TINY) -> list[str]:
    """The README's command: one SLURM job per run, each logging to the tracking server."""
    return ["-m", *base, *overrides, "tracking=server", f"tracking.uri={url}", "hydra/launcher=slurm",
            f"hydra.launcher.partition={PARTITION}", "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=10", f"hydra.sweep.dir={sweep_dir}"]


def slurm_jobs(sweep_dir: Path) -> list[str]:
    """The SLURM jobs submitit submitted for a sweep: one log folder `<array id>_<task>` each."""
    folder = sweep_dir / ".submitit"
    return sorted((p.name for p in folder.iterdir() if re.fullmatch(r"\d+_\d+", p.name)),
                  key=lambda name: int(name.split("_")[1])) if folder.is_dir() else []


def job_log(sweep_dir: Path, job: str) -> str:
    """What the job wrote (submitit's stdout and stderr files in its log folder)."""
    return "".join(p.read_text(errors="replace") for p in sorted((sweep_dir / ".submitit" / job).glob("*_log.*")))


def job_state(job: str) -> str:
    out = subprocess.run(["scontrol", "show", "job", job], capture_output=True, text=True).stdout
    found = re.search(r"JobState=(\w+)", out)
    return found.group(1) if found else "GONE"


def children(url: str, experiment: str):
    c = client(url)
    exp = c.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return [r for r in c.search_runs([exp.experiment_id], max_results=1000) if "run_key" in r.data.tags]


def parents(url: str, experiment: str):
    c = client(url)
    exp = c.get_experiment_by_name(experiment)
    return [r for r in c.search_runs([exp.experiment_id]) if r.data.tags.get("imbalance_lab.role") == "sweep"]


def results(sweep_dir: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(sweep_dir.glob("*/job_result.json"))]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with mlflow_server_in(tmp_path_factory.mktemp("slurm_server")) as (url, _backend, _artifacts):
        yield url


@pytest.fixture(scope="module")
def first_sweep(server, tmp_path_factory) -> dict:
    folder = tmp_path_factory.mktemp("slurm_sweep")
    sweep_dir = folder / "first"
    proc = run_cli(*slurm_sweep(server, sweep_dir, "tracking.experiment=cluster", "seed=0,1,2,3"),
                   cwd=folder, store=server)
    return {"folder": folder, "sweep_dir": sweep_dir, "proc": proc}


def test_a_sweep_submitted_to_slurm_logs_every_run_to_the_tracking_server(server, first_sweep):
    proc, sweep_dir = first_sweep["proc"], first_sweep["sweep_dir"]
    assert "Sweep: 4 finished, 0 failed, 0 skipped" in proc.stdout  # the submitting process's summary
    assert "Leaderboard" in proc.stdout
    jobs = slurm_jobs(sweep_dir)
    assert len(jobs) == 4  # one SLURM job per run
    for job in jobs:
        assert "Job completed successfully" in job_log(sweep_dir, job)
        assert job_state(job) in ("COMPLETED", "GONE")  # GONE: slurmctld forgot it (MinJobAge)
    runs = children(server, "cluster")
    assert sorted(r.info.status for r in runs) == ["FINISHED"] * 4
    (parent,) = parents(server, "cluster")
    assert {r.data.tags["mlflow.parentRunId"] for r in runs} == {parent.info.run_id}
    assert len({r.data.tags["imbalance_lab.pid"] for r in runs}) == 4  # each in its job's own process
    c = client(server)
    for run in runs:
        matrix = c.download_artifacts(run.info.run_id, "confusion_matrix.json", str(first_sweep["folder"]))
        labels = json.loads(Path(matrix).read_text())["labels"]
        per_class = [f"test/{m}_{label}" for label in labels for m in ("recall", "precision", "f1")]
        assert set(CONTRACT_METRICS + per_class) <= set(run.data.metrics)
        for name in PER_EPOCH:
            assert len(c.get_metric_history(run.info.run_id, name)) == 3  # trainer.epochs=3 (TINY)
        assert set(ARTIFACTS) <= {a.path for a in c.list_artifacts(run.info.run_id)}
        assert {"run_key", "collapsed", "doctor.warnings", "git_commit", "dataset.fingerprint"} <= set(run.data.tags)


def test_a_rerun_submits_every_job_and_each_skips_its_finished_run(server, first_sweep):
    """Hydra's basic sweeper submits every job; each finds its run_key FINISHED and trains nothing."""
    folder = first_sweep["folder"]
    sweep_dir = folder / "rerun"
    proc = run_cli(*slurm_sweep(server, sweep_dir, "tracking.experiment=cluster", "seed=0,1,2,3"),
                   cwd=folder, store=server)
    assert "Sweep: 0 finished, 0 failed, 4 skipped" in proc.stdout
    assert len(slurm_jobs(sweep_dir)) == 4  # still submitted...
    assert sorted(r["status"] for r in results(sweep_dir)) == ["SKIPPED"] * 4  # ...and each skipped
    runs = children(server, "cluster")
    assert len(runs) == 4 and {r.info.status for r in runs} == {"FINISHED"}  # no run trained twice
    assert {r["run_id"] for r in results(sweep_dir)} == {r.info.run_id for r in runs}


def wait_for(what: str, condition, sweep: subprocess.Popen, output: Path, timeout: float = 300):
    """Until condition() is truthy (its value), while the sweep still runs."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        assert sweep.poll() is None, f"the sweep ended before {what}:\n{output.read_text()[-3000:]}"
        assert time.monotonic() < deadline, f"no {what} after {timeout} s"
        time.sleep(0.5)


def running_run(url: str, experiment: str, epochs: int):
    return next((r for r in children(url, experiment) if r.info.status == "RUNNING"
                 and r.data.params.get("trainer.epochs") == str(epochs)), None)


@contextmanager
def sweep_in_background(url: str, folder: Path, sweep_dir: Path, *overrides: str) -> Iterator[tuple]:
    """(process, its output file); on the way out, its jobs are cancelled if it still runs."""
    output = folder / f"{sweep_dir.name}.out"
    env = {**os.environ, "MLFLOW_TRACKING_URI": url}
    with output.open("w") as sink:
        sweep = subprocess.Popen([str(BIN / "imbalance-lab"), *slurm_sweep(url, sweep_dir, *overrides)],
                                 cwd=folder, env=env, start_new_session=True, stdout=sink, stderr=subprocess.STDOUT)
    try:
        yield sweep, output
    finally:
        if sweep.poll() is None:
            subprocess.run(["scancel", *slurm_jobs(sweep_dir)])
            sweep.kill()
            sweep.wait()


def test_jobs_slurm_stops_end_killed_and_the_next_run_trains_them_again(server, tmp_path):
    """Job 0 is cancelled (scancel) while it trains; job 1 trains until it reaches its time limit,
    lowered to SLURM's minimum (1 minute) once it trains. Each run ends KILLED, from the job itself
    (on a cluster its pid is on another machine: the submitting host cannot tell it is gone), the
    summary says so, and the next run of the same sweep trains both again."""
    overrides = ["tracking.experiment=stopped", *LONG, f"trainer.epochs={EPOCHS},{UNTIL_STOPPED}"]
    with sweep_in_background(server, tmp_path, tmp_path / "first", *overrides) as (sweep, output):
        cancelled = wait_for("run 0 training", lambda: running_run(server, "stopped", EPOCHS), sweep, output)
        subprocess.run(["scancel", slurm_jobs(tmp_path / "first")[0]], check=True)
        timed = wait_for("run 1 training", lambda: running_run(server, "stopped", UNTIL_STOPPED), sweep, output)
        jobs = slurm_jobs(tmp_path / "first")
        subprocess.run(["scontrol", "update", f"JobId={jobs[1]}", "TimeLimit=1"], check=True)
        sweep.wait(timeout=300)
    out = output.read_text()
    assert sweep.returncode == 1, out[-3000:]
    assert "Sweep: 0 finished, 0 failed, 2 killed" in out
    assert len(re.findall(r"KILLED mlp\S*: stopped by SLURM", out)) == 2
    c = client(server)
    cancelled, timed = c.get_run(cancelled.info.run_id), c.get_run(timed.info.run_id)
    assert cancelled.info.status == "KILLED" and timed.info.status == "KILLED"
    assert cancelled.data.tags["error"].startswith("stopped by SLURM (SIGTERM")
    # the warning signal_delay_s ahead of the limit (seen here: SLURM checks every 30 s, the limit is
    # lowered while the run is ~10 s in) or, had SLURM's check come after the limit, its SIGTERM
    assert timed.data.tags["error"].startswith(("stopped by SLURM at its time limit", "stopped by SLURM (SIGTERM"))
    assert "KILLED" in job_log(tmp_path / "first", jobs[0])

    # the same sweep again: neither is skipped; the first trains to the end, the other is cancelled
    with sweep_in_background(server, tmp_path, tmp_path / "again", *overrides) as (sweep, output):
        again = wait_for("run 1 training again", lambda: running_run(server, "stopped", UNTIL_STOPPED), sweep, output)
        subprocess.run(["scancel", slurm_jobs(tmp_path / "again")[1]], check=True)
        sweep.wait(timeout=300)
    assert "Sweep: 1 finished, 0 failed, 1 killed" in output.read_text()
    by_epochs = {}
    for run in children(server, "stopped"):
        by_epochs.setdefault(run.data.params["trainer.epochs"], []).append(run.info.status)
    assert sorted(by_epochs[str(EPOCHS)]) == ["FINISHED", "KILLED"]
    assert sorted(by_epochs[str(UNTIL_STOPPED)]) == ["KILLED", "KILLED"]
    assert c.get_run(again.info.run_id).info.status == "KILLED"


def test_a_job_that_cannot_run_ends_failed_with_its_reason_in_the_job_log_and_the_summary(server, tmp_path):
    tiny_data = [o for o in TINY if not o.startswith("model.")]  # model.widths: the MLP's, not the CNN's
    proc = run_cli(*slurm_sweep(server, tmp_path / "sweep", "tracking.experiment=impossible", "model=cnn,mlp",
                                base=tiny_data), cwd=tmp_path, store=server, check=False)
    reason = "model=cnn needs image data (height, width, channels)"
    assert proc.returncode == 1
    assert "Sweep: 1 finished, 1 failed, 0 skipped" in proc.stdout
    assert re.search(r"FAILED \(before its run started: [^)]*model=cnn[^)]*\): " + re.escape(reason), proc.stdout)
    cnn_job, _mlp_job = slurm_jobs(tmp_path / "sweep")
    assert reason in job_log(tmp_path / "sweep", cnn_job)
    assert [json.loads((tmp_path / "sweep" / "0" / "job_result.json").read_text())["status"]] == ["FAILED"]
    statuses = {r.data.params["model"]: (r.info.status, r.data.tags.get("error", "")) for r in
                children(server, "impossible")}
    assert statuses["mlp"][0] == "FINISHED"
    assert statuses["cnn"][0] == "FAILED" and reason in statuses["cnn"][1]

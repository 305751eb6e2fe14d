"""`make reproduce` (scripts/reproduce_literature.py): its arithmetic by hand, and the whole command
on mnist_5k at one epoch and one seed."""

from __future__ import annotations

import importlib.util
import os
import statistics
import subprocess
import sys

import pytest

from conftest import REPO, client

SCRIPT = REPO / "scripts" / "reproduce_literature.py"
spec = importlib.util.spec_from_file_location("reproduce_literature", SCRIPT)
reproduce = importlib.util.module_from_spec(spec)
spec.loader.exec_module(reproduce)


def test_mean_and_sd_over_seeds_are_the_sample_statistics():
    values = [0.91, 0.95, 0.96, 0.90]
    mean, sd, n = reproduce.mean_sd(values)
    assert (mean, n) == (pytest.approx(statistics.mean(values)), 4) and sd == pytest.approx(statistics.stdev(values))
    assert reproduce.cell(values) == f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"
    assert reproduce.cell([0.5]) == "0.5000" and reproduce.cell([]) == "—"


def test_kwon_rows_pick_their_runs_and_subtract_the_published_numbers():
    runs = [{"sampler": "none", "class_weight": "balanced", "seed": str(s), "test/accuracy": a,
             "test/sensitivity": 0.9, "test/specificity": 0.95} for s, a in enumerate([0.95, 0.97])]
    runs.append({"sampler": "smote", "class_weight": "none", "seed": "0", "test/accuracy": 0.5,
                 "test/sensitivity": 0.5, "test/specificity": 0.5})
    [row] = [line for line in reproduce.kwon_table(runs) if line.startswith("| cost-sensitive")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[1] == "2" and cells[2] == "0.9600 ± 0.0141" and cells[5:8] == ["0.9558", "0.9714", "0.9541"]
    assert cells[8] == f"{0.96 - 0.9558:+.4f} / {0.9 - 0.9714:+.4f} / {0.95 - 0.9541:+.4f}"
    [none_row] = [line for line in reproduce.kwon_table(runs) if line.startswith("| none ")]
    assert none_row.count("—") == 7  # no run (3 cells), no published number (3) and so no difference


def test_buda_findings_count_where_oversampling_wins_and_where_imbalance_hurts():
    means = {("step", "10", "none"): 0.97, ("step", "10", "random_over"): 0.99, ("step", "10", "random_under"): 0.95,
             ("step", "100", "none"): 0.90, ("step", "100", "random_over"): 0.93, ("step", "100", "random_under"): 0.94}
    first, second = reproduce.buda_findings(means, balanced=0.995)
    assert "2 of 2 imbalanced settings score below the balanced reference" in first and "for step imbalance" in first
    assert "best mean in 1 of 2 settings (not in: step rho=100)" in second
    assert "no balanced reference run" in reproduce.buda_findings(means, balanced=None)[0]


@pytest.mark.slow
def test_make_reproduce_runs_both_studies_and_prints_both_tables(tmp_path):
    """The command end to end at one epoch and one seed (Buda at rho 10 only): 5 + 7 runs."""
    store = f"sqlite:///{tmp_path / 'reproduce.db'}"
    proc = subprocess.run([sys.executable, str(SCRIPT), "--store", store, "--jobs", "1", "trainer.epochs=1", "seed=0",
                           "dataset.imbalance.rho=10"], capture_output=True, text=True, timeout=1800,
                          env={**os.environ, "IMBALANCE_LAB_ROOT": str(tmp_path)})  # reports/ and Hydra's folders here
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    c = client(store)
    kwon = c.search_runs([c.get_experiment_by_name("kwon_2019-mnist_5k").experiment_id], "attributes.status = 'FINISHED'")
    assert len([r for r in kwon if "seed" in r.data.params]) == 5
    table = proc.stdout
    assert "| SMOTE | 1 |" in table and "| 0.9828 | 0.9398 | 0.9875 |" in table
    assert "| step | 10 |" in table and "| linear | 10 |" in table and "| none (balanced) | 1 |" in table
    assert "(ii) \"the method of addressing class imbalance" in table
    assert (tmp_path / "reports" / "reproduce-mnist_5k.md").read_text().strip() in table

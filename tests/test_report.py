"""The report's numbers on a real SQLite store filled with hand-made runs whose metrics we chose,
so every mean, interval, rank, paired difference and p-value has an independent expected value."""

from __future__ import annotations

import itertools
import json
import subprocess
import zlib

import numpy as np
import pytest
from scipy import stats as scipy_stats

from imbalance_lab.report import build, command, stats
from imbalance_lab.report.runs import load_runs

from conftest import BIN, client
from report_store import log_run, new_store, sweep_parent

LOSSES, SAMPLERS = ("ce", "focal"), ("none", "smote")
DATASETS, SEEDS = ("digits", "synthetic"), (0, 1, 2)
FIXED = {"model": "mlp", "activation": "softmax", "bias_init": "zeros", "class_weight": "none",
         "decision": "argmax", "trainer": "quick"}
MISSING = ("focal", "smote", "synthetic", 2)   # this run FAILED: its pair is left out of the tests
FIGURES = ("leaderboard.png", "effects.png", "heatmap.png", "per_class_recall.png", "confusion_matrices.png",
           "f1_vs_naive.png")


def made_up_f1(loss, sampler, dataset, seed) -> float:
    """Distinct values with a remedy effect, a dataset effect and seed noise (no ties)."""
    effect = {("ce", "none"): 0.30, ("ce", "smote"): 0.42, ("focal", "none"): 0.37, ("focal", "smote"): 0.50}
    rng = np.random.default_rng(zlib.crc32(f"{loss} {sampler} {dataset} {seed}".encode()))
    noise = float(np.round(rng.uniform(-0.05, 0.05), 4)) + 0.001 * seed
    return round(effect[loss, sampler] + (0.1 if dataset == "digits" else 0.0) + noise, 6)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """Two sweeps' worth of runs in experiment `study`: the main grid (one FAILED, one config trained
    twice) under parent A, and one stray run under parent B."""
    store, c, exp = new_store(tmp_path_factory.mktemp("study"), "study")
    parent_a, parent_b = sweep_parent(c, exp, 1000, "sweep A"), sweep_parent(c, exp, 2000, "sweep B")
    values = {}
    grid = list(itertools.product(LOSSES, SAMPLERS, DATASETS, SEEDS))
    for t, (loss, sampler, dataset, seed) in enumerate(reversed(grid)):   # stored order != grid order
        key = f"{loss}-{sampler}-{dataset}-{seed}"
        if (loss, sampler, dataset, seed) == MISSING:
            _run(c, exp, parent_a, key, loss, sampler, dataset, seed, None, start=10_000 + t)
            continue
        f1 = made_up_f1(loss, sampler, dataset, seed)
        values[loss, sampler, dataset, seed] = f1
        _run(c, exp, parent_a, key, loss, sampler, dataset, seed, f1, start=10_000 + t,
             collapsed=(loss, sampler) == ("ce", "none") and seed == 0)
    # An earlier run of the same config (tracking.rerun=true): only the latest counts.
    _run(c, exp, parent_a, "ce-none-digits-1", "ce", "none", "digits", 1, 0.99, start=5)
    _run(c, exp, parent_b, "stray", "ce", "none", "digits", 7, 0.01, start=20_000)
    return {"uri": store, "parent_a": parent_a, "parent_b": parent_b, "values": values}


def _run(c, exp, parent, key, loss, sampler, dataset, seed, f1, start, collapsed=False):
    axes = {**FIXED, "loss": loss, "sampler": sampler, "dataset": dataset}
    matrix = [[9, 1, 0], [2, 5, 3], [1, 1, 8]] if loss == "focal" else [[10, 0, 0], [6, 4, 0], [7, 1, 2]]
    metrics = None if f1 is None else {"test/macro_f1": f1, "naive/macro_f1": 0.25, "test/recall_0": 0.9,
                                        "test/recall_1": f1, "test/recall_2": f1 / 2}
    log_run(c, exp, key, axes, seed, metrics, start, parent=parent, params={"trainer.epochs": "3"},
            confusion=(["0", "1", "2"], matrix), collapsed=collapsed)


def expected_mean(values, **fixed):
    chosen = [v for k, v in values.items()
              if all(dict(zip(("loss", "sampler", "dataset", "seed"), k, strict=True))[a] == o for a, o in fixed.items())]
    return float(np.mean(chosen)), chosen


def t_interval_by_scipy(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return scipy_stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values))


def test_leaderboard_means_intervals_and_counts_are_exact(study):
    runs = load_runs(study["uri"], "study", parent=study["parent_a"])
    report = build.compute(runs)
    board = report.leaderboard.set_index("combination")
    assert report.columns == ["loss", "sampler"]     # trainer.epochs never varies: not a column
    assert report.baseline == "loss=ce sampler=none"
    for loss, sampler in itertools.product(LOSSES, SAMPLERS):
        mean, chosen = expected_mean(study["values"], loss=loss, sampler=sampler)
        row = board.loc[f"loss={loss} sampler={sampler}"]
        assert row["mean"] == pytest.approx(mean, abs=1e-12)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(t_interval_by_scipy(chosen), abs=1e-12)
        assert row["std"] == pytest.approx(np.std(chosen, ddof=1), abs=1e-12)
        assert row["runs"] == len(chosen) and row["seeds"] == 3 and row["naive"] == pytest.approx(0.25)
        assert row["failed"] == (1 if (loss, sampler) == ("focal", "smote") else 0)
        assert row["collapsed"] == (2 if (loss, sampler) == ("ce", "none") else 0)
    assert 0.99 not in runs.finished["test/macro_f1"].tolist()   # the rerun's older run is dropped
    assert runs.duplicates == 1 and runs.rerun_keys == 1
    assert list(report.leaderboard["mean"]) == sorted(report.leaderboard["mean"], reverse=True)
    assert list(report.leaderboard["rank"]) == [1, 2, 3, 4]
    best = report.leaderboard.iloc[0]
    assert best["verdict"] == "best"
    for _, row in report.leaderboard.iloc[1:].iterrows():   # overlap with the best's interval, by hand
        overlaps = row["ci_high"] >= best["ci_low"]
        assert row["verdict"] == ("not distinguishable" if overlaps else "below the best")
    assert set(report.leaderboard["verdict"]) == {"best", "not distinguishable", "below the best"}
    assert runs.parent_run_id == study["parent_a"]


def test_intervals_contain_a_known_mean_and_one_seed_is_flagged(tmp_path):
    """Runs drawn around known means (10 seeds each): each row's interval is scipy's t interval and
    contains its mean; a one-seed row with a higher mean ranks first but is not the best."""
    store, c, exp = new_store(tmp_path, "known")
    rng = np.random.default_rng(7)
    truth = {("ce", "none"): 0.40, ("focal", "none"): 0.55}
    drawn = {}
    for (loss, sampler), mu in truth.items():
        drawn[loss] = np.round(rng.normal(mu, 0.02, 10), 6)
        for seed, f1 in enumerate(drawn[loss]):
            log_run(c, exp, f"{loss}{seed}", {**FIXED, "loss": loss, "sampler": sampler, "dataset": "digits"}, seed,
                    {"test/macro_f1": f1}, start=seed)
    log_run(c, exp, "lucky", {**FIXED, "loss": "ce", "sampler": "smote", "dataset": "digits"}, 0,
            {"test/macro_f1": 0.9}, start=99)
    report = build.compute(load_runs(store, "known"))
    board = report.leaderboard.set_index("combination")
    for (loss, sampler), mu in truth.items():
        row = board.loc[f"loss={loss} sampler={sampler}"]
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(t_interval_by_scipy(drawn[loss]), abs=1e-12)
        assert row["ci_low"] < mu < row["ci_high"] and row["seeds"] == 10
    lucky = board.loc["loss=ce sampler=smote"]
    assert lucky["rank"] == 1 and lucky["seeds"] == 1 and np.isnan(lucky["ci_low"]) and lucky["verdict"] == "one seed"
    assert board.loc["loss=focal sampler=none", "verdict"] == "best"
    assert board.loc["loss=ce sampler=none", "verdict"] == "below the best"   # the intervals do not overlap
    warning = [w for w in report.warnings if "one seed" in w]
    assert len(warning) == 1 and "`loss=ce sampler=smote`" in warning[0] and "\n" not in warning[0]
    assert warning[0] in build.render.markdown(report)


def test_t_interval_matches_scipy_and_covers_95_percent_with_three_seeds():
    x = [0.41, 0.47, 0.39]
    got = stats.t_interval(x)
    assert got.n == 3 and got.mean == pytest.approx(np.mean(x))
    assert (got.low, got.high) == pytest.approx(t_interval_by_scipy(x), abs=1e-12)
    one = stats.t_interval([0.5, np.nan])
    assert one.n == 1 and one.mean == 0.5 and np.isnan(one.low) and np.isnan(one.high)
    # Coverage of a normal mean with 3 seeds (a percentile bootstrap gets ~73 % here, a z interval ~88 %).
    rng = np.random.default_rng(0)
    samples = rng.normal(0.4, 0.03, size=(4000, 3))
    covered = [(i := stats.t_interval(s)).low <= 0.4 <= i.high for s in samples]
    assert 0.935 <= np.mean(covered) <= 0.965


def test_wilcoxon_is_paired_by_seed_and_dataset_and_matches_scipy(study):
    report = build.compute(load_runs(study["uri"], "study", parent=study["parent_a"]))
    tests = report.wilcoxon.set_index("combination")
    values = study["values"]
    for loss, sampler in (("ce", "smote"), ("focal", "none"), ("focal", "smote")):
        blocks = [(d, s) for d in DATASETS for s in SEEDS if (loss, sampler, d, s) in values]
        x = [values[loss, sampler, d, s] for d, s in blocks]
        y = [values["ce", "none", d, s] for d, s in blocks]
        row = tests.loc[f"loss={loss} sampler={sampler}"]
        assert row["pairs"] == len(blocks) == (5 if (loss, sampler) == ("focal", "smote") else 6)
        assert row["p_value"] == pytest.approx(scipy_stats.wilcoxon(x, y).pvalue, rel=1e-12)
        assert row["mean_diff"] == pytest.approx(np.mean(np.subtract(x, y)), abs=1e-12)
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(t_interval_by_scipy(np.subtract(x, y)), abs=1e-12)
    assert np.allclose(tests["p_holm"], stats.holm(tests["p_value"].to_numpy()))
    # Friedman over the 5 blocks in which all four combinations finished.
    assert report.friedman.n_blocks == 5 and report.friedman.n_combinations == 4
    complete = [(d, s) for d in DATASETS for s in SEEDS if (d, s) != MISSING[2:]]
    samples = [[values[lo, sa, d, s] for d, s in complete] for lo, sa in itertools.product(LOSSES, SAMPLERS)]
    assert report.friedman.p_value == pytest.approx(scipy_stats.friedmanchisquare(*samples).pvalue, rel=1e-12)


def test_holm_adjustment_by_hand():
    # sorted: 0.005*4 = 0.02, 0.01*3 = 0.03, 0.03*2 = 0.06, max(0.04*1, 0.06) = 0.06
    np.testing.assert_allclose(stats.holm(np.array([0.01, 0.04, 0.03, 0.005])), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.holm(np.array([0.5, 0.9])), [1.0, 1.0])


def test_too_few_pairs_is_said_plainly(study):
    store = study["uri"]
    c = client(store)
    exp = c.create_experiment("small")
    for seed, loss in itertools.product((0, 1), LOSSES):
        _run(c, exp, None, f"{loss}{seed}", loss, "none", "digits", seed, 0.3 + 0.1 * (loss == "focal") + seed / 100,
             start=seed)
    report = build.compute(load_runs(store, "small"))
    assert report.wilcoxon["p_value"].isna().all() and "too few pairs" in report.wilcoxon["note"].iloc[0]
    assert "needs at least 3 combinations" in report.friedman.note
    assert "too few pairs" in build.render.markdown(report)


def test_command_writes_md_html_json_and_logs_a_report_run(study, tmp_path):
    out = tmp_path / "report"
    proc = subprocess.run([str(BIN / "imbalance-lab-report"), "--experiment", "study", "--tracking-uri",
                           study["uri"], "--output", str(out), "--baseline", "sampler=none"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "loss=focal sampler=smote" in proc.stdout and "report.json" in proc.stdout
    html = (out / "report.html").read_text()
    markdown = (out / "report.md").read_text()
    assert html.count("data:image/png;base64,") == len(FIGURES)     # figures embedded: opens from disk alone
    for png in FIGURES:
        assert (out / png).stat().st_size > 5000 and f"]({png})" in markdown
    assert "Friedman test over 4 combinations" in markdown and "Holm" in markdown
    # Without --parent: the whole experiment (the stray run of sweep B too), duplicates said.
    assert "24 finished run(s), 1 failed run(s)" in markdown and "2 sweep(s)" in markdown
    assert "1 run_key(s) finished more than once (tracking.rerun=true)" in markdown

    data = json.loads((out / "report.json").read_text())
    rows = {r["combination"]: r for r in data["rows"]}
    with_stray = [study["values"]["ce", "none", d, s] for d in DATASETS for s in SEEDS] + [0.01]
    row = rows["loss=ce sampler=none"]
    assert row["axes"] == {"loss": "ce", "sampler": "none"} and row["n_seeds"] == 4 and row["n_runs"] == 7
    assert row["mean"] == pytest.approx(np.mean(with_stray))
    assert row["interval"] == pytest.approx(list(t_interval_by_scipy(with_stray)))
    assert data["runs"]["older_duplicates_left_out"] == 1 and data["scope"] == "experiment"
    effect = next(e for e in data["effects"] if e["axis"] == "sampler")
    assert (effect["value"], effect["reference"]) == ("smote", "none") and effect["n_pairs"] == 11
    assert set(effect) == {"axis", "value", "reference", "n_pairs", "mean_difference", "interval", "note"}

    # Logged as a report run of its own in the experiment, not to a sweep's parent run.
    c = client(study["uri"])
    exp_id = c.get_experiment_by_name("study").experiment_id
    reports = c.search_runs([exp_id], "tags.`imbalance_lab.role` = 'report'")
    assert len(reports) == 1 and data["logged_to"] == reports[0].info.run_id
    run = reports[0]
    assert run.info.status == "FINISHED" and "mlflow.parentRunId" not in run.data.tags
    logged = {a.path for a in c.list_artifacts(run.info.run_id, "report")}
    assert {"report/report.md", "report/report.html", "report/report.json", "report/heatmap.png"} <= logged
    assert "| 1 | loss=focal sampler=smote |" in run.data.tags["mlflow.note.content"]
    assert run.data.metrics["best/test_macro_f1"] == pytest.approx(rows["loss=focal sampler=smote"]["mean"])
    for parent in (study["parent_a"], study["parent_b"]):
        assert not c.list_artifacts(parent, "report")


def test_unknown_experiment_or_store_is_one_sentence(study, tmp_path, capsys):
    for uri, expected in ((study["uri"], "No MLflow experiment named 'nope'"),
                          (f"sqlite:///{tmp_path / 'absent.db'}", "No MLflow store at")):
        assert command.main(["--experiment", "nope", "--tracking-uri", uri]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"imbalance-lab-report: {expected}") and "\n" not in err, err
    assert not (tmp_path / "absent.db").exists()     # reading never creates a store
    assert command.main(["--experiment", "study", "--tracking-uri", study["uri"], "--baseline", "samplr=none"]) == 2
    assert "--baseline 'samplr=none' names no axis" in capsys.readouterr().err


def test_a_combination_whose_runs_all_failed_still_gets_a_row(study):
    store = study["uri"]
    c = client(store)
    exp = c.create_experiment("broken")
    for seed in (0, 1, 2):
        _run(c, exp, None, f"ce{seed}", "ce", "none", "digits", seed, 0.3 + seed / 100, start=seed)
        _run(c, exp, None, f"smote{seed}", "ce", "smote", "digits", seed, None, start=10 + seed)
    report = build.compute(load_runs(store, "broken"))
    board = report.leaderboard.set_index("combination")
    assert board.loc["sampler=smote", "failed"] == 3 and board.loc["sampler=smote", "runs"] == 0
    assert np.isnan(board.loc["sampler=smote", "mean"]) and board.loc["sampler=none", "failed"] == 0
    assert report.wilcoxon.empty or report.wilcoxon["pairs"].eq(0).all()
    build.render.markdown(report)   # renders without the failed combination's numbers


def test_an_experiment_without_finished_runs_is_one_sentence(study):
    store = study["uri"]
    c = client(store)
    c.create_experiment("empty")
    with pytest.raises(build.ImbalanceLabError, match="no FINISHED child run"):
        build.compute(load_runs(store, "empty"))


def test_confusion_panels_sum_the_runs_of_the_baseline_and_of_the_best(study):
    report = build.compute(load_runs(study["uri"], "study", parent=study["parent_a"]))
    panels = build._confusion_panels(report)
    n_base = sum(1 for k in study["values"] if k[:2] == ("ce", "none"))
    n_best = sum(1 for k in study["values"] if k[:2] == ("focal", "smote"))
    assert list(panels) == ["baseline: loss=ce sampler=none", "best: loss=focal sampler=smote"]
    labels, base = panels["baseline: loss=ce sampler=none"]
    assert labels == ["0", "1", "2"]
    np.testing.assert_array_equal(base, n_base * np.array([[10, 0, 0], [6, 4, 0], [7, 1, 2]]))
    np.testing.assert_array_equal(panels["best: loss=focal sampler=smote"][1],
                                  n_best * np.array([[9, 1, 0], [2, 5, 3], [1, 1, 8]]))


def test_the_study_file_sets_the_baseline_of_its_report():
    from imbalance_lab.report.tables import parse_baseline

    assert parse_baseline(None, "quickstart")["activation"] == "sigmoid"  # the forum's model
    assert parse_baseline(None, "no-such-study")["activation"] == "softmax"
    assert parse_baseline(["activation=softmax"], "quickstart")["activation"] == "softmax"


def test_leaderboard_shows_keras_accuracy_and_the_doctors_warnings():
    import pandas as pd

    from imbalance_lab.report.tables import leaderboard

    runs = pd.DataFrame({"loss": ["bce", "bce", "ce"], "seed": [0, 1, 0], "collapsed": [False, True, False],
                         "test/macro_f1": [0.2, 0.4, 0.6], "naive/macro_f1": [0.1] * 3,
                         "keras/accuracy": [0.8, 0.9, 0.5], "doctor": ["softmax_bce", "softmax_bce; collapsed", "none"]})
    board = leaderboard(runs, runs.iloc[0:0], ["loss"], "test/macro_f1", "loss=ce").set_index("combination")
    assert board.loc["loss=bce", "keras_acc"] == pytest.approx(0.85)
    assert board.loc["loss=bce", "doctor"] == "collapsed, softmax_bce" and board.loc["loss=ce", "doctor"] == "none"

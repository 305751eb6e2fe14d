"""Effects that compare like with like, and remedies compared at equal tuning budgets, on runs
written straight into a store with values chosen so that the right answer is known by hand."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from scipy import stats as scipy_stats

from imbalance_lab.report import build, command
from imbalance_lab.report.effects import NO_PAIRS
from imbalance_lab.report.runs import load_runs

from report_store import log_run, new_store

FIXED = {"model": "mlp", "activation": "softmax", "bias_init": "zeros", "class_weight": "none",
         "decision": "argmax", "trainer": "default", "dataset": "digits"}
SEEDS = (0, 1, 2)
SEED_NOISE = {0: 0.0, 1: 0.03, 2: -0.02, 7: 0.01, 8: -0.01}   # shared by every run of a seed: pairs cancel it


def t_interval(values) -> tuple[float, float]:
    values = np.asarray(values, dtype=float)
    return scipy_stats.t.interval(0.95, len(values) - 1, loc=values.mean(), scale=scipy_stats.sem(values))


def crossed_f1(loss: str, sampler: str, seed: int) -> float:
    """focal adds 0.20, smote adds 0.05 (and random_over 0.01), plus seed noise and a small wobble per run."""
    wobble = 0.001 * (zlib.crc32(f"{loss} {sampler} {seed}".encode()) % 5 - 2)
    return round(0.30 + 0.20 * (loss == "focal") + {"none": 0.0, "smote": 0.05, "random_over": 0.01}[sampler]
                 + SEED_NOISE[seed] + wobble, 6)


# Not crossed: smote only ever ran with ce, the good loss (focal) only with sampler=none; random_over
# ran only with focal and only on seeds no other run has, so it has no pair at all.
NON_CROSSED = [("ce", "none", s) for s in SEEDS] + [("ce", "smote", s) for s in SEEDS] + \
              [("focal", "none", s) for s in SEEDS] + [("focal", "random_over", s) for s in (7, 8)]


@pytest.fixture(scope="module")
def non_crossed(tmp_path_factory):
    store, c, exp = new_store(tmp_path_factory.mktemp("non_crossed"), "non-crossed")
    for t, (loss, sampler, seed) in enumerate(NON_CROSSED):
        log_run(c, exp, f"{loss}-{sampler}-{seed}", {**FIXED, "loss": loss, "sampler": sampler}, seed,
                {"test/macro_f1": crossed_f1(loss, sampler, seed)}, start=t)
    return store


def test_paired_effect_picks_the_value_the_naive_main_effect_gets_wrong(non_crossed):
    report = build.compute(load_runs(non_crossed, "non-crossed"))
    runs = report.runs.finished
    # The trap: averaged over whatever ran with it, sampler=none looks better than smote (it kept
    # company with focal), although smote adds +0.05 wherever both ran.
    naive = runs.groupby("sampler")["test/macro_f1"].mean()
    assert naive["none"] > naive["smote"]

    effects = report.effects.set_index(["axis", "value"])
    smote = effects.loc[("sampler", "smote")]
    diffs = [crossed_f1("ce", "smote", s) - crossed_f1("ce", "none", s) for s in SEEDS]
    assert smote["reference"] == "none" and smote["n_pairs"] == 3
    assert smote["mean_diff"] == pytest.approx(np.mean(diffs), abs=1e-12) and smote["mean_diff"] > 0.04
    assert (smote["ci_low"], smote["ci_high"]) == pytest.approx(t_interval(diffs), abs=1e-12)
    focal = effects.loc[("loss", "focal")]
    focal_diffs = [crossed_f1("focal", "none", s) - crossed_f1("ce", "none", s) for s in SEEDS]
    assert focal["n_pairs"] == 3 and focal["mean_diff"] == pytest.approx(np.mean(focal_diffs), abs=1e-12)
    # No pair: no number, and the reason said.
    lonely = effects.loc[("sampler", "random_over")]
    assert lonely["n_pairs"] == 0 and np.isnan(lonely["mean_diff"]) and lonely["note"] == NO_PAIRS
    assert "no pairs" in build.render.markdown(report)

    # The heatmap pairs the same way: each cell against (ce, none), empty cells stay empty.
    grid = report.grid
    assert grid.reference == ("ce", "none")
    assert grid.mean.loc["ce", "smote"] == pytest.approx(np.mean(diffs), abs=1e-12)
    assert grid.mean.loc["focal", "none"] == pytest.approx(np.mean(focal_diffs), abs=1e-12)
    assert grid.n_pairs.loc["focal", "smote"] == 0 and np.isnan(grid.mean.loc["focal", "smote"])
    assert grid.n_pairs.loc["focal", "random_over"] == 0 and np.isnan(grid.mean.loc["focal", "random_over"])
    half = (t_interval(diffs)[1] - t_interval(diffs)[0]) / 2
    assert grid.half_width.loc["ce", "smote"] == pytest.approx(half, abs=1e-12)


def test_a_hyperparameter_swept_within_an_option_is_part_of_its_value(tmp_path):
    """loss.gamma is swept under focal only: focal's values carry their gamma, ce (no gamma) is the
    reference, and the gamma column's own effect pairs focal runs by everything else."""
    store, c, exp = new_store(tmp_path, "gamma")
    values = {("ce", None): 0.30, ("focal", "1"): 0.40, ("focal", "2"): 0.45}
    t = 0
    for (loss, gamma), base in values.items():
        for seed in SEEDS:
            log_run(c, exp, f"{loss}-{gamma}-{seed}", {**FIXED, "loss": loss, "sampler": "none"}, seed,
                    {"test/macro_f1": base + SEED_NOISE[seed] + 0.001 * seed * (gamma == "2")}, start=(t := t + 1),
                    params={"loss.gamma": gamma} if gamma else None)
    report = build.compute(load_runs(store, "gamma"), baseline_pairs=["loss.gamma=1"])
    effects = report.effects.set_index(["axis", "value"])
    assert report.columns == ["loss", "loss.gamma"]
    assert effects.loc[("loss", "focal (gamma=2)"), "reference"] == "ce"
    assert effects.loc[("loss", "focal (gamma=2)"), "mean_diff"] == pytest.approx(0.15 + 0.001, abs=1e-9)
    assert effects.loc[("loss", "focal (gamma=1)"), "mean_diff"] == pytest.approx(0.10, abs=1e-9)
    gamma = effects.loc[("loss.gamma", "2")]
    assert gamma["reference"] == "1" and gamma["n_pairs"] == 3 and gamma["mean_diff"] == pytest.approx(0.051, abs=1e-9)


# Equal tuning budget. Per learning rate: the validation macro-F1 per epoch and the test macro-F1.
# ce: by its best epoch, 0.01 wins validation (0.70); by its LAST epoch 0.1 would (0.65 > 0.40), and
# on TEST 0.1 is best (0.80): the tuned column must report 0.01's test score.
CURVES = {
    ("ce", "0.001"): ([0.50, 0.60, 0.55], 0.50),
    ("ce", "0.01"): ([0.50, 0.70, 0.40], 0.55),
    ("ce", "0.1"): ([0.60, 0.65, 0.65], 0.80),
    ("focal", "0.001"): ([0.70, 0.90, 0.85], 0.60),
    ("focal", "0.01"): ([0.80, 0.85, 0.88], 0.70),
    ("focal", "0.1"): ([0.30, 0.40, 0.40], 0.20),
}
BUMP = ("focal", "0.01", 2)   # this run's validation is 0.05 higher: seed 2 of focal picks 0.01


def curve(loss: str, rate: str, seed: int) -> tuple[list[float], float]:
    history, test = CURVES[loss, rate]
    bump = 0.05 if (loss, rate, seed) == BUMP else 0.0
    return [round(v + 0.01 * seed + bump, 6) for v in history], round(test + 0.01 * seed, 6)


@pytest.fixture(scope="module")
def tuning_store(tmp_path_factory):
    store, c, exp = new_store(tmp_path_factory.mktemp("tuning"), "tuning")
    for t, ((loss, rate), seed) in enumerate((k, s) for k in CURVES for s in SEEDS):
        history, test = curve(loss, rate, seed)
        log_run(c, exp, f"{loss}-{rate}-{seed}", {**FIXED, "loss": loss, "sampler": "none"}, seed,
                {"test/macro_f1": test}, start=t, params={"trainer.learning_rate": rate},
                history={"val/macro_f1": history})
    return store


def test_tuned_column_picks_by_best_validation_epoch_and_reports_test(tuning_store):
    report = build.compute(load_runs(tuning_store, "tuning"), tune="trainer.learning_rate", select_on="val/macro_f1")
    t = report.tuning
    assert t.reference == "0.001"                      # trainer/default.yaml's learning rate
    table = t.table.set_index("combination")
    # By hand: per seed, the rate whose best validation epoch is highest; then that run's TEST score.
    expected = {}
    for loss in ("ce", "focal"):
        picks = [max(("0.001", "0.01", "0.1"), key=lambda r: max(curve(loss, r, s)[0])) for s in SEEDS]
        expected[loss] = [curve(loss, rate, s)[1] for rate, s in zip(picks, SEEDS)]
        validation = [max(curve(loss, rate, s)[0]) for rate, s in zip(picks, SEEDS)]
        row = table.loc[f"loss={loss}"]
        assert row["mean"] == pytest.approx(np.mean(expected[loss]), abs=1e-12)
        assert row["mean"] != pytest.approx(np.mean(validation), abs=1e-3)       # test, not validation
        assert (row["ci_low"], row["ci_high"]) == pytest.approx(t_interval(expected[loss]), abs=1e-12)
        fixed = [curve(loss, "0.001", s)[1] for s in SEEDS]
        assert row["fixed_mean"] == pytest.approx(np.mean(fixed), abs=1e-12) and row["fixed_seeds"] == 3
        assert row["seeds"] == 3 and row["tried"] == "3"
    assert table.loc["loss=ce", "picked"] == "0.01 ×3"             # not 0.1 (last epoch, or test)
    assert table.loc["loss=focal", "picked"] == "0.001 ×2, 0.01 ×1"
    assert list(t.table["combination"]) == ["loss=focal", "loss=ce"] and t.table["rank"].tolist() == [1, 2]
    # The remedy's effect at equal budgets, paired by seed on the picked runs.
    effect = t.effects.set_index("value").loc["focal"]
    assert effect["n_pairs"] == 3
    assert effect["mean_diff"] == pytest.approx(np.mean(np.subtract(expected["focal"], expected["ce"])), abs=1e-12)
    assert any("best epoch's val/macro_f1" in note for note in t.notes)
    assert any(note.startswith("2 of 6 pick(s) are the smallest or largest trainer.learning_rate tried (0.001 or 0.1)")
               for note in t.notes)                          # focal's two picks of 0.001


def test_tune_from_the_command_line_writes_the_tuned_table_to_json(tuning_store, tmp_path, capsys):
    out = tmp_path / "report"
    assert command.main(["--experiment", "tuning", "--tracking-uri", tuning_store, "--output", str(out), "--no-log",
                         "--select-on", "val/macro_f1", "--tune", "trainer.learning_rate"]) == 0
    printed = capsys.readouterr().out
    assert "Tuned over trainer.learning_rate on val/macro_f1" in printed and "0.01 ×3" in printed
    tuned = json.loads((out / "report.json").read_text())["tuned"]
    rows = {r["combination"]: r for r in tuned["rows"]}
    ce = [curve("ce", "0.01", s)[1] for s in SEEDS]
    assert tuned["axis"] == "trainer.learning_rate" and tuned["select_on"] == "val/macro_f1"
    assert rows["loss=ce"]["tuned"]["picked"] == {"0.01": 3} and rows["loss=ce"]["axes"] == {"loss": "ce"}
    assert rows["loss=ce"]["tuned"]["mean"] == pytest.approx(np.mean(ce))
    assert rows["loss=ce"]["tuned"]["interval"] == pytest.approx(list(t_interval(ce)))
    assert rows["loss=ce"]["fixed"]["mean"] == pytest.approx(np.mean([curve("ce", "0.001", s)[1] for s in SEEDS]))
    assert len(tuned["picks"]) == 6 and {p["picked"] for p in tuned["picks"]} == {"0.01", "0.001"}
    ce_seed0 = next(p for p in tuned["picks"] if p["combination"] == "loss=ce" and p["seed"] == 0)
    assert ce_seed0["selection_value"] == pytest.approx(0.70) and ce_seed0["test/macro_f1"] == pytest.approx(0.55)
    markdown = (out / "report.md").read_text()
    assert "## Equal tuning budget" in markdown and "fixed 95 % interval" in markdown

    assert command.main(["--experiment", "tuning", "--tracking-uri", tuning_store, "--output", str(out), "--no-log",
                         "--tune", "trainer.optimizer"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("imbalance-lab-report: --tune 'trainer.optimizer' is not an axis") and "\n" not in err

"""`imbalance-lab-doctor --why`: the chance level and the noise rule against independent
references, the variants it trains, and the command end to end on the forum thread's failure
(raw feature scales: it collapses as in a plain Keras script, and scaling is named the cause) and
on features without signal (no change is called a cause)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from imbalance_lab.configs import compose
from imbalance_lab.doctor.effects import Outcome, Summary, chance_macro_f1, chance_spread, rank
from imbalance_lab.doctor.why import merged, variants

from conftest import BIN, REPO, cli_env, client

THREAD = ["model=mlp", "model.widths=[64,32,32,16]", "model.input_dropout=0.5", "model.max_norm=3",
          "activation=sigmoid", "loss=ce", "trainer.optimizer=sgd", "trainer.learning_rate=0.01",
          "trainer.momentum=0.9", "trainer.nesterov=true"]
# The forum's table at 20,000 rows with raw feature scales (offsets and scales of 1e3-1e5) and a modest signal.
RAW_TABLE = ["dataset=seed002_profile", "dataset.n_train=20000", "dataset.class_sep=1.0",
             "dataset.feature_scales=[1000,100000]"]


def test_chance_macro_f1_is_what_predictions_independent_of_the_features_score():
    rng = np.random.default_rng(0)
    true_counts, predicted_counts = np.array([108, 354, 199, 162, 177]), np.array([0, 500, 100, 0, 400])
    y_true = np.repeat(np.arange(5), true_counts)
    y_pred = np.repeat(np.arange(5), predicted_counts)
    shuffled = [f1_score(y_true, rng.permutation(y_pred), labels=np.arange(5), average="macro", zero_division=0)
                for _ in range(400)]
    assert chance_macro_f1(true_counts, predicted_counts) == pytest.approx(np.mean(shuffled), abs=0.003)
    assert chance_spread(true_counts, predicted_counts, seed=1) == pytest.approx(np.std(shuffled), rel=0.2)
    # One class predicted: the naive predictor's macro-F1, 2 p / (1 + p) / K (hand formula).
    p = 354 / 1000
    assert chance_macro_f1(true_counts, [0, 1000, 0, 0, 0]) == pytest.approx(2 * p / (1 + p) / 5)


def summary(name: str, above: list[float]) -> Summary:
    return Summary(name, {}, [Outcome(i, macro_f1=0.2 + a, chance_macro_f1=0.2) for i, a in enumerate(above)])


def test_a_change_is_a_cause_only_when_every_seed_clears_the_baselines_and_the_spread():
    base = summary("your config", [0.00, 0.01, 0.02])
    clear = summary("clear", [0.10, 0.12, 0.11])
    overlapping = summary("overlapping", [0.01, 0.40, 0.02])     # the largest mean gain, but a seed within the baseline's
    small = summary("small", [0.025, 0.026, 0.027])             # clear of the baseline, but below MIN_EFFECT
    failed = Summary("failed", {}, [Outcome(i, status="FAILED") for i in range(3)])
    ranked = rank(base, [small, overlapping, failed, clear])
    assert [v.name for v in ranked] == ["overlapping", "clear", "small", "failed"]
    assert [v.exceeds for v in ranked] == [False, True, False, False]
    assert ranked[1].gain == pytest.approx(0.10) and ranked[1].spread == pytest.approx(0.02)
    assert ranked[0].spread == pytest.approx(0.39) and ranked[3].gain == pytest.approx(-0.01)
    # A gain larger than both ranges, yet a seed of the variant below one of the baseline's: not a cause.
    wide_base, straddling = summary("your config", [0.0, 0.0, 0.3]), summary("straddling", [0.21, 0.51, 0.51])
    (ranked_one,) = rank(wide_base, [straddling])
    assert ranked_one.gain > ranked_one.spread and not ranked_one.exceeds
    # The same gain on a small test set, whose macro-F1 moves by 0.04 around chance alone: not a cause.
    for o in clear.outcomes + base.outcomes:
        o.chance_sd = 0.04
    assert not rank(base, [clear])[0].exceeds and clear.test_noise == pytest.approx(2 * np.hypot(0.04, 0.04))


def test_the_variants_are_the_changes_that_change_something():
    cfg, choices = compose([*RAW_TABLE, *THREAD, "preprocess=none"])
    names = [v.name for v in variants(cfg, choices)]
    assert names == ["scale the inputs", "input dropout off", "softmax + ce", "balanced class weights",
                     "log-prior output bias", "learning rate x0.1", "learning rate x10"]
    cfg, choices = compose(["activation=softmax", "loss=ce", "class_weight=balanced"])
    assert [v.name for v in variants(cfg, choices)] == ["log-prior output bias", "learning rate x0.1",
                                                       "learning rate x10"]
    assert merged(["preprocess=none", "seed=3", "+experiment=quickstart"], {"preprocess": "standard", "seed": "4"}) \
        == ["+experiment=quickstart", "preprocess=standard", "seed=4"]
    cfg, _ = compose(merged(["+experiment=quickstart"], {"activation": "softmax", "model.input_dropout": "0"}))
    assert cfg.activation.function == "softmax" and cfg.model.input_dropout == 0   # over the study's own settings


def test_the_rules_sit_below_the_run_and_import_nothing_above_it():
    """Data flows one way: the modules the run uses never import the run, the command or --why."""
    above = {"imbalance_lab.run", "imbalance_lab.doctor.command", "imbalance_lab.doctor.why", "imbalance_lab.sweep",
             "imbalance_lab.tracking", "imbalance_lab.training"}
    folder = REPO / "src" / "imbalance_lab" / "doctor"
    for name in ("findings", "rules", "fit_rules", "probe", "effects", "budget", "__init__"):
        tree = ast.parse((folder / f"{name}.py").read_text())
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
        imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        assert not imported & above, (name, imported & above)


def doctor_why(*args: str, cwd: Path, store: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([str(BIN / "imbalance-lab-doctor"), *args, "--why"], capture_output=True, text=True,
                          timeout=1800, cwd=cwd, env=cli_env(store))
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_the_threads_collapse_on_raw_scales_is_reproduced_and_scaling_is_named_the_cause(tmp_path, store):
    plain = subprocess.run([sys.executable, str(Path(__file__).parent / "plain_thread_script.py"), "--n-train", "20000",
                            "--class-sep", "1.0", "--feature-scales", "1000", "100000"],
                           capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr[-2000:]
    assert sum(n > 0 for n in json.loads(plain.stdout.strip().splitlines()[-1]).values()) == 1   # one class

    proc = doctor_why(*RAW_TABLE, *THREAD, "preprocess=none", "--why-epochs", "10", "--json", cwd=tmp_path, store=store)
    report = json.loads(proc.stdout)
    why = report["why"]
    baseline = why["baseline"]
    for run in baseline["runs"]:      # each seed of the thread's own config, as logged: one class predicted
        logged = client(store).get_run(run["run_id"])
        assert logged.data.metrics["test/n_predicted_classes"] == 1 and logged.data.tags["collapsed"] == "true"
        assert logged.data.params["preprocess"] == "none" and logged.data.params["model.input_dropout"] == "0.5"
        assert logged.data.tags["mlflow.parentRunId"] == why["parent_run_id"]
    assert why["variants"][0]["name"] == "scale the inputs" and why["cause"] == "scale the inputs"
    assert why["variants"][0]["exceeds"] and why["variants"][0]["gain"] > why["variants"][0]["spread"]
    assert not any(v["exceeds"] for v in why["variants"][1:] if v["name"] in ("softmax + ce", "log-prior output bias"))
    codes = {f["code"]: f for f in report["findings"]}
    assert codes["unscaled_inputs"]["severity"] == "warning" and codes["why_cause"]["fix"] == "preprocess=standard"
    assert codes["why_baseline"]["message"].startswith("Your config collapses")
    experiment = client(store).get_experiment_by_name(why["experiment"])
    runs = client(store).search_runs([experiment.experiment_id], "tags.`why.variant` = 'scale the inputs'")
    assert len(runs) == 3 and {r.data.params["preprocess"] for r in runs} == {"standard"}

    again = doctor_why(*RAW_TABLE, *THREAD, "preprocess=none", "--why-epochs", "10", cwd=tmp_path, store=store)
    lines = again.stdout.strip().splitlines()          # every run finished before: read back, same verdict
    assert all(line.startswith(("[warning] ", "[info] ")) for line in lines)
    assert "24 finished earlier" in next(line for line in lines if line.startswith("[info] why_budget:"))
    assert lines[-1].startswith("[warning] why_cause: The cause: scale the inputs.")


@pytest.mark.slow
def test_without_signal_no_change_is_called_a_cause_and_the_features_are_blamed(tmp_path, store):
    proc = doctor_why("dataset=seed002_profile", "dataset.n_train=3000", "dataset.signal=false", *THREAD,
                      "--why-epochs", "5", "--json", cwd=tmp_path, store=store)
    report = json.loads(proc.stdout)
    assert report["why"]["cause"] is None and not any(v["exceeds"] for v in report["why"]["variants"])
    verdict = next(f for f in report["findings"] if f["code"] == "why_no_single_cause")
    assert verdict["severity"] == "warning" and "No single change recovers more than noise" in verdict["message"]
    assert "The features carry no signal" in verdict["message"]
    # Balanced weights spread the predictions and beat naive macro-F1, yet earn nothing above chance.
    weights = next(v for v in report["why"]["variants"] if v["name"] == "balanced class weights")
    assert weights["macro_f1"] > weights["naive_macro_f1"] and abs(weights["above_chance"]) < 0.02

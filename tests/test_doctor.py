"""The doctor: its numbers against hand-computed values and Keras's own metrics, its findings on
real configs and data, after-training findings in a real run, and the command end to end."""

from __future__ import annotations

import itertools
import json
import shlex
import subprocess
import sys

import numpy as np
import pytest

from imbalance_lab.configs import compose
from imbalance_lab.data import Splits, load_splits
from imbalance_lab.doctor import command, probe, rules

from conftest import BIN, TINY, client

# The forum's facial-sentiment test set (cnn-accuracy-83-percent.txt): Anger .. Surprise.
FORUM_TEST_COUNTS = [646, 970, 1927, 2232, 836, 399]
# The forum's 5-class MLP thread (mlp-predicts-one-class.txt): train and test priors of a..e.
FORUM_TRAIN_PRIORS = [0.1624, 0.3993, 0.0931, 0.2086, 0.1367]
FORUM_TEST_PRIORS = [0.1083, 0.3539, 0.1986, 0.1625, 0.1766]


def codes(findings) -> set[str]:
    return {f.code for f in findings}


def by_code(findings, code):
    return next(f for f in findings if f.code == code)


def test_keras_accuracy_is_what_keras_reports_and_matches_the_forum():
    import keras

    y = np.repeat(np.arange(6), FORUM_TEST_COUNTS)
    onehot = np.eye(6)[y]
    # The thread's printed softmax row: every output below 0.5, argmax 'Neutral' (index 3).
    stuck = np.tile([0.0713, 0.1647, 0.2347, 0.3947, 0.0881, 0.0465], (len(y), 1))
    always_neutral = np.tile([0.05, 0.05, 0.05, 0.9, 0.05, 0.05], (len(y), 1))
    bce, ce = {"_target_": "imbalance_lab.remedies.losses.binary_crossentropy"}, {"_target_": "x.categorical_crossentropy"}
    for probabilities in (stuck, always_neutral):
        reference = float(np.mean(keras.metrics.binary_accuracy(onehot, probabilities)))
        assert rules.keras_accuracy(y, probabilities, bce) == pytest.approx(reference, abs=1e-6)
        categorical = float(np.mean(keras.metrics.categorical_accuracy(onehot, probabilities)))
        assert rules.keras_accuracy(y, probabilities, ce) == pytest.approx(categorical, abs=1e-6)
    # Hand-computed: 5/6 = 83.33 % (the thread's number); 2232/7010 + (4778/7010) * 4/6 = 0.772801.
    assert rules.keras_accuracy(y, stuck, bce) == pytest.approx(5 / 6, abs=1e-12)
    assert rules.binary_accuracy_all_below_half(6) == pytest.approx(0.833333, abs=1e-6)
    assert rules.keras_accuracy(y, always_neutral, bce) == pytest.approx(0.772801, abs=1e-6)
    assert rules.binary_accuracy_always_one_class(2232 / 7010, 6) == pytest.approx(0.772801, abs=1e-6)


def test_softmax_bce_on_six_classes_reports_the_exact_misleading_accuracy():
    priors = np.array(FORUM_TEST_COUNTS) / sum(FORUM_TEST_COUNTS)
    cfg, choices, findings = command.diagnose(
        ["dataset=synthetic", "dataset.n_classes=6", f"dataset.priors=[{','.join(map(str, priors))}]",
         "dataset.n_samples=3000", "dataset.n_informative=4", "activation=softmax", "loss=bce"], probe=False)
    finding = by_code(findings, "softmax_bce")
    assert finding.severity == "warning"
    test_counts = np.bincount(load_splits(cfg.dataset, cfg.seed).y_test, minlength=6)
    share = test_counts[3] / test_counts.sum()          # 'Neutral', the training majority
    assert finding.numbers["keras_accuracy_all_below_half"] == pytest.approx(5 / 6)
    assert finding.numbers["keras_accuracy_always_majority"] == pytest.approx(share + (1 - share) * 4 / 6)
    assert "83.33 %" in finding.message and finding.fix.startswith("loss=ce")


def test_sigmoid_ce_is_flagged_and_the_right_pairs_are_not():
    cfg, choices = compose([*TINY, "activation=sigmoid", "loss=ce"])
    assert by_code(rules.lint_config(cfg, choices), "sigmoid_ce").severity == "warning"
    for pair in (["activation=softmax", "loss=ce"], ["activation=sigmoid", "loss=bce"]):
        cfg, choices = compose([*TINY, *pair])
        assert rules.warning_codes(rules.lint_config(cfg, choices)) == "none"


def test_double_corrections_and_smote_on_pixels_are_flagged():
    cfg, choices = compose([*TINY, "class_weight=balanced", "sampler=random_over"])
    assert "double_correction" in codes(rules.lint_config(cfg, choices))
    cfg, choices = compose([*TINY, "class_weight=balanced"])
    assert "double_correction" not in codes(rules.lint_config(cfg, choices))
    cfg, choices = compose([*TINY, "loss=logit_adjusted", "bias_init=log_prior"])
    assert "prior_counted_twice" in codes(rules.lint_config(cfg, choices))
    cfg, choices = compose([*TINY, "class_weight=balanced", "decision=prior_correction"])
    assert "double_correction" in codes(rules.lint_config(cfg, choices))
    cfg, choices = compose(["dataset=digits", "sampler=smote"])
    assert "smote_on_pixels" in codes(rules.lint_config(cfg, choices, load_splits(cfg.dataset, cfg.seed)))


def test_a_class_too_small_for_smote_is_flagged_before_the_run_fails():
    cfg, choices = compose([*TINY, "sampler=smote", "sampler.k_neighbors=400"])
    data = load_splits(cfg.dataset, cfg.seed)
    smallest = int(np.bincount(data.y_train).min())          # 10 % of 360 training rows = 36
    finding = by_code(rules.data_findings(data, cfg, choices), "class_too_small_for_sampler")
    assert finding.numbers["train_rows"] == smallest == 36 and finding.fix.startswith("sampler.k_neighbors=35")
    cfg, choices = compose([*TINY, "sampler=smote"])        # k_neighbors=5 < 36: fine
    assert "class_too_small_for_sampler" not in codes(rules.data_findings(data, cfg, choices))


def test_label_shift_tvd_and_the_classes_that_moved_most():
    n = 10_000
    y_train = np.repeat(np.arange(5), np.round(np.array(FORUM_TRAIN_PRIORS) * n).astype(int))
    y_test = np.repeat(np.arange(5), np.round(np.array(FORUM_TEST_PRIORS) * n).astype(int))
    X = np.zeros((len(y_train), 2), dtype="float32")
    data = Splits(X, y_train, X, y_train, np.zeros((len(y_test), 2), "float32"), y_test,
                  labels=("a", "b", "c", "d", "e"), is_image=False, fingerprint="", description="")
    finding = by_code(rules.data_findings(data, compose(TINY)[0], {}), "label_shift")
    # Hand-computed: 0.5 x (5.41 + 4.54 + 10.55 + 4.61 + 3.99) % = 14.55 %; 'c' moved most, then 'a', 'd'.
    assert finding.severity == "warning" and finding.numbers["tvd"] == pytest.approx(0.1455, abs=1e-4)
    assert finding.numbers["moved_most"] == ["c", "a", "d"] and "0.1455" in finding.message
    # The fix is a runnable override: prior correction to the test priors, one value per class.
    fix = shlex.split(finding.fix.split(" if ")[0])
    cfg, _ = compose(["dataset.n_classes=5", f"dataset.priors={FORUM_TRAIN_PRIORS}", *fix])
    assert list(cfg.decision.target_prior) == pytest.approx(FORUM_TEST_PRIORS, abs=1e-4)


@pytest.mark.parametrize("signal", [True, False])
def test_seed002_profile_signal_probe_and_label_shift(signal):
    cfg, _, findings = command.diagnose(["dataset=seed002_profile", "dataset.n_train=3000",
                                      f"dataset.signal={str(signal).lower()}"])
    assert ("signal" if signal else "no_signal") in codes(findings)
    assert ("no_signal" if signal else "signal") not in codes(findings)
    # The profile's test priors moved from the thread's training priors by 14.55 % (hand-computed above);
    # the sampled splits land near it, and the finding reports their exact TVD.
    shift = by_code(findings, "label_shift")
    data = load_splits(cfg.dataset, cfg.seed)
    train, test = (np.bincount(y, minlength=5) / len(y) for y in (data.y_train, data.y_test))
    assert shift.severity == "warning" and shift.numbers["tvd"] == pytest.approx(0.5 * np.abs(train - test).sum())
    assert shift.numbers["tvd"] == pytest.approx(0.1455, abs=0.01) and shift.numbers["moved_most"][0] == "c"
    assert f"{shift.numbers['tvd']:.4f}" in shift.message


def test_signal_probe_tells_noise_from_signal():
    rng = np.random.default_rng(0)
    y = rng.choice(5, size=3000, p=np.array(FORUM_TRAIN_PRIORS) / sum(FORUM_TRAIN_PRIORS))
    noise = rng.normal(size=(3000, 10))
    flat = probe.signal_finding(probe.signal_probe(noise, y, seed=0))
    assert flat.code == "no_signal" and flat.severity == "warning" and "no imbalance remedy" in flat.message
    informative = noise + 0.8 * np.eye(10)[y]      # the class shifts one feature by 0.8 sd
    found = probe.signal_finding(probe.signal_probe(informative, y, seed=0))
    assert found.code == "signal", found.message
    assert found.numbers["logistic_regression"] > found.numbers["naive"] + 0.1


def test_signal_probe_does_not_depend_on_the_features_scales():
    cfg, _ = compose([*TINY, "dataset.feature_scales=[1000,100000]", "preprocess=none"])
    raw = load_splits(cfg.dataset, cfg.seed, cfg.preprocess)
    scaled = load_splits(cfg.dataset, cfg.seed, compose(TINY)[0].preprocess)
    on_raw, on_scaled = (probe.signal_probe(d.X_train, d.y_train, seed=0) for d in (raw, scaled))
    assert raw.X_train.max() > 1000 and on_raw["logistic_regression"] == pytest.approx(
        on_scaled["logistic_regression"], abs=0.01)
    assert on_raw["logistic_regression"] > on_raw["naive"] + 0.1


def test_suggested_sweep_is_runnable_with_options_that_exist():
    overrides = ["+experiment=quickstart", "dataset.n_samples=600", "activation=sigmoid", "loss=ce"]
    _, _, findings = command.diagnose(overrides, probe=False)
    suggested = by_code(findings, "suggested_sweep").fix
    words = shlex.split(suggested)
    assert words[:2] == ["imbalance-lab", "-m"] and "activation=softmax" in words and "loss=ce" in words
    axes = [w.split("=", 1) for w in words[2:]]
    grid = [[f"{k}={v}" for v in (value.split(",") if not value.startswith("[") else [value])] for k, value in axes]
    runs = list(itertools.product(*grid))
    assert len(runs) == by_code(findings, "suggested_sweep").numbers["n_runs"] == 4
    for run in runs:
        cfg, choices = compose(list(run))      # every option exists and composes
        assert rules.warning_codes(rules.lint_config(cfg, choices)) == "none"


def test_a_collapsed_run_is_tagged_and_logs_after_training_findings(make_cfg, store, tmp_path):
    from imbalance_lab.run import execute

    # No signal, 90 % majority, the training priors as initial outputs, almost no learning: collapse.
    cfg, choices = make_cfg("dataset.priors=[0.9,0.05,0.05]", "dataset.class_sep=0.01", "bias_init=log_prior",
                            "activation=sigmoid", "loss=bce", "trainer.learning_rate=0.00001", "trainer.epochs=2")
    result = execute(cfg, choices)
    run = client(store).get_run(result.run_id)
    assert run.data.tags["collapsed"] == "true"
    assert {"collapsed", "accuracy_paradox", "val_never_above_naive"} <= set(run.data.tags["doctor.warnings"].split("; "))
    m = run.data.metrics
    assert m["test/n_predicted_classes"] == 1 and m["test/accuracy"] == pytest.approx(0.9)
    # Always the majority (90 % of test rows) above 0.5 with 3 sigmoid columns: 0.9 + 0.1 x 1/3.
    assert m["keras/accuracy"] == pytest.approx(0.9 + 0.1 / 3, abs=1e-9)
    path = client(store).download_artifacts(result.run_id, "doctor.json", str(tmp_path))
    logged = {f["code"]: f for f in json.loads(open(path).read())}
    assert logged["collapsed"]["numbers"]["n_predicted_classes"] == 1 and "keras_binary_accuracy" in logged


def test_doctor_command_prints_one_line_per_finding_without_tensorflow(tmp_path):
    code = ("import sys; from imbalance_lab.doctor.command import main; "
            f"rc = main({[*TINY, 'activation=softmax', 'loss=bce', '--json']!r}); "
            "assert 'tensorflow' not in sys.modules, 'the doctor imported TensorFlow'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(proc.stdout)
    assert {"class_counts", "label_shift", "signal", "softmax_bce", "suggested_sweep"} <= codes(
        rules.Finding(**f) for f in report["findings"])
    text = subprocess.run([str(BIN / "imbalance-lab-doctor"), *TINY, "activation=sigmoid", "loss=ce"],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path)
    lines = text.stdout.strip().splitlines()
    assert text.returncode == 0 and all(line.startswith(("[warning] ", "[info] ")) for line in lines), text.stdout
    assert any(line.startswith("[warning] sigmoid_ce:") and "Fix: activation=softmax" in line for line in lines)
    bad = subprocess.run([str(BIN / "imbalance-lab-doctor"), "loss=nope"], capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "loss/nope" in bad.stderr and "ce" in bad.stderr


def test_list_keel_shows_names_sizes_and_imbalance_ratios(capsys):
    assert command.main(["--list-keel"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows["ecoli1"][1] == "336" and rows["ecoli1"][3] == "3.36"
    assert rows["glass5"][1] == "214" and len(rows) > 50

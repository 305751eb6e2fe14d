"""Diagnosis: why a model predicts one class, before and after training.

Before training (`imbalance-lab-doctor [overrides]`, no network trained): the data (class counts,
imbalance ratio, label shift between train and test, classes too small for the sampler), a
signal probe (can a logistic regression or a shallow tree beat chance?), the config (activation/
loss pairs that mislead, double corrections, SMOTE on pixels) and a ready-to-run sweep of the
remedies most worth trying. After training (every run): collapse, the accuracy paradox, and a
validation macro-F1 that never rose above the naive predictor's.

Each finding is one sentence with what was found and its numbers, why it matters, and the
override that addresses it. Runs are tagged with the codes of the warnings (`doctor.warnings`)
and log every finding in `doctor.json`.

This module must not import TensorFlow: the doctor answers in seconds without it. Training is
only imported when `--train` is asked for.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import warnings
from dataclasses import asdict, dataclass, field

import numpy as np
from omegaconf import DictConfig

from imbalance_lab.embeddings import backbone_trains, model_inputs
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.evaluation import naive_macro_f1
from imbalance_lab.paths import CONF_DIR

# Thresholds: above these a number stops being noise and becomes a finding.
LABEL_SHIFT_TVD = 0.05      # total variation distance between train and test priors
SIGNAL_MARGIN = 0.05        # macro-F1 a probe must gain over the better of naive and chance
PARADOX_MARGIN = 0.02       # macro-F1 within this of naive while accuracy looks fine
IMBALANCE_RATIO = 3.0       # largest / smallest training class
PROBE_MAX_ROWS = 5000       # the signal probe subsamples larger data so that it takes seconds
SLOW_SAMPLER_SECONDS = 120  # a resampling estimated to take longer than this (remedies/neighbors.py) is a finding

REMEDY_AXES = ("activation", "loss", "bias_init", "class_weight", "sampler", "decision")
# Samplers whose default strategy equalises every class count of the training split.
REBALANCING_SAMPLERS = ("random_over", "random_under", "smote", "borderline_smote", "adasyn", "nearmiss",
                        "smote_enn", "smote_tomek", "balanced_batch")
FULL_STRATEGIES = ("auto", "all", "not majority", "not minority")
INTERPOLATING_SAMPLERS = ("smote", "borderline_smote", "adasyn", "smote_enn", "smote_tomek")
PRIOR_ADDING_LOSSES = ("logit_adjusted", "balanced_softmax")
PRIOR_CORRECTING_DECISIONS = ("logit_adjusted", "prior_correction")


@dataclass
class Finding:
    severity: str   # "warning" | "info"
    code: str
    message: str
    fix: str
    numbers: dict = field(default_factory=dict)   # the values behind the message, for --json and tests

    def line(self) -> str:
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"[{self.severity}] {self.code}: {self.message}{fix}"

    def as_dict(self) -> dict:
        return asdict(self)


def warning_codes(findings: list[Finding]) -> str:
    """The `doctor.warnings` tag: codes of the warnings, or `none`."""
    return "; ".join(f.code for f in findings if f.severity == "warning") or "none"


def option_exists(group: str, option: str) -> bool:
    """Only suggest what the user can run today: the option's YAML must be in conf/."""
    return (CONF_DIR / group / f"{option}.yaml").is_file()


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


# -- Keras's `accuracy` under binary cross-entropy ----------------------------------------------

def keras_accuracy_is_binary(loss_cfg: DictConfig | dict | None) -> bool:
    """Keras's metrics=['accuracy'] becomes binary accuracy when the loss is binary cross-entropy
    (whatever the output activation); for any other loss it is categorical accuracy."""
    target = str((loss_cfg or {}).get("_target_") or "")
    return target.rsplit(".", 1)[-1] == "binary_crossentropy"


def keras_accuracy(y_true: np.ndarray, probabilities: np.ndarray, loss_cfg) -> float:
    """What Keras's metrics=['accuracy'] reports on (y_true, activated outputs): for bce, the
    share of the N x K one-hot cells whose output is on the right side of 0.5; else argmax accuracy."""
    probabilities = np.asarray(probabilities)
    y_true = np.asarray(y_true)
    if keras_accuracy_is_binary(loss_cfg):
        onehot = np.eye(probabilities.shape[1], dtype=bool)[y_true]
        return float(np.mean((probabilities > 0.5) == onehot))
    return float(np.mean(np.argmax(probabilities, axis=1) == y_true))


def binary_accuracy_all_below_half(n_classes: int) -> float:
    """Every output below 0.5: each row gets its K-1 zero columns right and its one column wrong."""
    return (n_classes - 1) / n_classes


def binary_accuracy_always_one_class(share_m: float, n_classes: int) -> float:
    """Class m always above 0.5, the rest below: rows of m are all right; every other row gets its
    own column and column m wrong, K-2 of K right."""
    return share_m + (1.0 - share_m) * (n_classes - 2) / n_classes


# -- config lint -----------------------------------------------------------------------------------

def lint_config(cfg: DictConfig, choices: dict[str, str], data=None) -> list[Finding]:
    """Combinations that train but mislead. With `data` (a Splits), the findings carry the
    numbers of that data (the exact misleading accuracy; SMOTE on image pixels)."""
    activation = cfg.activation.function
    loss = choices.get("loss", "")
    findings = []
    if activation == "sigmoid" and loss == "ce":
        findings.append(Finding(
            "warning", "sigmoid_ce",
            "Sigmoid outputs with categorical cross-entropy: the loss renormalises the K sigmoids to sum to 1 "
            "(Keras 2, and Keras 3 on JAX or PyTorch; Keras 3 on TensorFlow silently swaps in the logits), "
            "so it never pushes the wrong classes' outputs down independently and training tends to settle "
            "on the majority class.",
            "activation=softmax loss=ce (or activation=sigmoid loss=bce for one-vs-rest).",
        ))
    if keras_accuracy_is_binary(cfg.loss):
        findings.append(_binary_accuracy_finding(activation, data))
    findings += _double_corrections(cfg, choices)
    if data is not None and data.is_image and choices.get("sampler") in INTERPOLATING_SAMPLERS:
        findings.append(Finding(
            "warning", "smote_on_pixels",
            f"sampler={choices['sampler']} interpolates between flattened pixel vectors of images that are "
            f"neighbours by pixel distance: the synthetic minority images are blends of two images, not "
            f"plausible new ones, and the network learns to recognise the blends.",
            "sampler=random_over (repeats real images) or class_weight=balanced.",
        ))
    findings += _backbone_in_training(cfg, data)
    return findings


def _backbone_in_training(cfg: DictConfig, data) -> list[Finding]:
    """model=pretrained with model.trainable: every epoch pays the backbone, not once per study."""
    if not backbone_trains(cfg.get("model")):
        return []
    trainable, backbone, epochs = cfg.model.trainable, cfg.model.backbone, int(cfg.trainer.epochs)
    images = f"all {int(data.class_counts('train').sum()):,} training images" if data is not None else "every training image"
    return [Finding(
        "info", "backbone_in_training",
        f"model.trainable={trainable}: every epoch of every run sends {images} through {backbone} (forward, and "
        f"backward through the layers that train) and the validation images once more, up to {epochs} epochs a run; "
        f"with a frozen backbone the images go through it once per study (cached embeddings) and each run trains "
        f"only the head.",
        "model.trainable=false for the study, then fine-tune only its best combination.",
        {"trainable": trainable, "backbone": str(backbone), "epochs": epochs},
    )]


def _binary_accuracy_finding(activation: str, data) -> Finding:
    """softmax + bce is the mistake; sigmoid + bce is right, but Keras's accuracy misleads for both."""
    mistake = activation == "softmax"
    why = ("Softmax outputs with binary cross-entropy: each one-hot column is scored as a separate binary "
           "problem, and " if mistake else "With binary cross-entropy ")
    if data is None:
        return Finding(
            "warning" if mistake else "info", "softmax_bce" if mistake else "keras_binary_accuracy",
            why + "Keras's metrics=['accuracy'] becomes binary accuracy over the K one-hot columns, which reads "
                  "(K-1)/K for a model that predicts nothing.",
            "loss=ce with activation=softmax." if mistake else "judge runs by test/macro_f1, not keras/accuracy.",
        )
    k = data.n_classes
    test_counts = data.class_counts("test")
    majority = int(np.argmax(data.class_counts("train")))
    share_m = float(test_counts[majority] / test_counts.sum())
    below = binary_accuracy_all_below_half(k)
    always_m = binary_accuracy_always_one_class(share_m, k)
    label = data.labels[majority]
    return Finding(
        "warning" if mistake else "info", "softmax_bce" if mistake else "keras_binary_accuracy",
        why + f"Keras's metrics=['accuracy'] becomes binary accuracy over the {k} one-hot columns: on this "
              f"test set a model whose outputs all stay below 0.5 scores {k - 1}/{k} = {_pct(below)} whatever it "
              f"learns, and one that always puts class '{label}' ({_pct(share_m)} of test rows) above 0.5 scores "
              f"{share_m:.4f} + {1 - share_m:.4f} x {k - 2}/{k} = {_pct(always_m)}, while its real accuracy is "
              f"{_pct(share_m)} and it never finds another class (see keras/accuracy beside test/accuracy).",
        "loss=ce with activation=softmax." if mistake else "judge runs by test/macro_f1, not keras/accuracy.",
        {"n_classes": k, "majority_label": label, "majority_test_share": share_m,
         "keras_accuracy_all_below_half": below, "keras_accuracy_always_majority": always_m},
    )


def _double_corrections(cfg: DictConfig, choices: dict[str, str]) -> list[Finding]:
    findings = []
    sampler, weights = choices.get("sampler", "none"), choices.get("class_weight", "none")
    strategy = str((cfg.get("sampler") or {}).get("sampling_strategy", "auto"))
    if weights != "none" and sampler in REBALANCING_SAMPLERS and strategy in FULL_STRATEGIES:
        findings.append(Finding(
            "warning", "double_correction",
            f"class_weight={weights} on top of sampler={sampler}, which already equalises the training class "
            f"counts: here the weights are computed from the resampled counts and come out all 1, so the pair "
            f"is one remedy, not two (weights from the original counts, as forum code computes them, would "
            f"correct twice and over-favour the minority classes).",
            f"class_weight=none with sampler={sampler}, or sampler=none with class_weight={weights}.",
        ))
    loss, decision = choices.get("loss", ""), choices.get("decision", "argmax")
    if decision in PRIOR_CORRECTING_DECISIONS and (weights != "none" or loss in PRIOR_ADDING_LOSSES):
        already = f"class_weight={weights}" if weights != "none" else f"loss={loss}"
        findings.append(Finding(
            "warning", "double_correction",
            f"decision={decision} removes the training priors from the outputs, but {already} already "
            f"trained them out: the minority classes are favoured twice and the majority class under-predicted.",
            f"decision=argmax with {already}, or {'class_weight=none' if weights != 'none' else 'loss=ce'} "
            f"with decision={decision}.",
        ))
    if loss in PRIOR_ADDING_LOSSES and choices.get("bias_init") == "log_prior":
        findings.append(Finding(
            "warning", "prior_counted_twice",
            f"bias_init=log_prior with loss={loss}, which already adds the log priors to the logits: the "
            f"untrained network then starts at the priors counted twice, more biased towards the majority "
            f"than a network with no bias at all.",
            "bias_init=zeros.",
        ))
    return findings


# -- the data --------------------------------------------------------------------------------------

def data_findings(data, cfg: DictConfig, choices: dict[str, str]) -> list[Finding]:
    return [_class_counts(data), _label_shift(data), *_sampler_too_small(data, cfg, choices),
            *_slow_sampler(data, cfg, choices)]


def _class_counts(data) -> Finding:
    train, val, test = (data.class_counts(s) for s in ("train", "val", "test"))
    ratio = float(train.max() / max(train.min(), 1))
    counts = "; ".join(f"{s} {dict(zip(data.labels, c.tolist(), strict=True))}"
                       for s, c in (("train", train), ("val", val), ("test", test)))
    imbalanced = ratio >= IMBALANCE_RATIO
    majority = data.labels[int(np.argmax(train))]
    return Finding(
        "warning" if imbalanced else "info", "class_counts",
        f"Class counts {counts}; imbalance ratio {ratio:.1f} (largest / smallest training class); the "
        f"majority class '{majority}' is {_pct(train.max() / train.sum())} of training rows and "
        f"{_pct(test[int(np.argmax(train))] / test.sum())} of test rows, the accuracy of always predicting it"
        + (", a place an untreated network settles in easily." if imbalanced else "."),
        "see the suggested sweep below." if imbalanced else "",
        {"train": train.tolist(), "val": val.tolist(), "test": test.tolist(), "imbalance_ratio": ratio},
    )


def total_variation_distance(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(np.asarray(p, float) - np.asarray(q, float)).sum())


def _label_shift(data) -> Finding:
    train, test = data.class_counts("train"), data.class_counts("test")
    p_train, p_test = train / train.sum(), test / test.sum()
    tvd = total_variation_distance(p_train, p_test)
    order = np.argsort(-np.abs(p_test - p_train))[:3]
    moved = ", ".join(f"'{data.labels[c]}' {_pct(p_train[c])} -> {_pct(p_test[c])}" for c in order)
    numbers = {"tvd": tvd, "train_priors": p_train.tolist(), "test_priors": p_test.tolist(),
               "moved_most": [data.labels[c] for c in order]}
    if tvd < LABEL_SHIFT_TVD:
        return Finding("info", "label_shift",
                       f"Train and test priors agree (total variation distance {tvd:.4f}).", "", numbers)
    target = "[" + ",".join(f"{q:.4f}" for q in p_test) + "]"
    fix = "compare runs by test/macro_f1 and test/balanced_accuracy, which do not depend on the test priors"
    if option_exists("decision", "prior_correction"):
        fix = (f"decision=prior_correction 'decision.target_prior={target}' if deployment has the test "
               f"set's priors (moves the predictions from the training priors to those); else {fix}")
    return Finding(
        "warning", "label_shift",
        f"The test priors differ from the training priors: total variation distance {tvd:.4f} "
        f"({_pct(tvd)} of the probability mass moved); moved most: {moved}. A model fitted to the training "
        f"priors over-predicts the classes that shrank, and the naive baseline's accuracy changes with them.",
        fix + ".", numbers,
    )


def _sampler_too_small(data, cfg: DictConfig, choices: dict[str, str]) -> list[Finding]:
    node = cfg.get("sampler") or {}
    train = data.class_counts("train")
    smallest = int(np.argmin(train))
    label, n_small = data.labels[smallest], int(train[smallest])
    # SMOTE's family needs more rows per class than k_neighbors; NearMiss needs n_neighbors minority rows.
    for key in ("k_neighbors", "n_neighbors") if choices.get("sampler") == "nearmiss" else ("k_neighbors",):
        k = node.get(key)
        if isinstance(k, int) and n_small <= k:
            return [Finding(
                "warning", "class_too_small_for_sampler",
                f"sampler={choices.get('sampler')} needs more than {key}={k} training rows per class, but class "
                f"'{label}' has {n_small}: the run will stop with an error.",
                f"sampler.{key}={max(1, n_small - 1)} or sampler=random_over.",
                {"class": label, "train_rows": n_small, key: k},
            )]
    if choices.get("sampler") == "random_under":
        kept = n_small * data.n_classes
        return [Finding(
            "info", "undersampling_discards",
            f"sampler=random_under keeps {kept} of {int(train.sum())} training rows ({data.n_classes} x the "
            f"{n_small} rows of class '{label}').",
            "class_weight=balanced keeps every row.", {"kept_rows": kept, "train_rows": int(train.sum())},
        )]
    return []


def _slow_sampler(data, cfg: DictConfig, choices: dict[str, str]) -> list[Finding]:
    """A kNN sampler whose neighbour search will take minutes on this training split, and the override
    that makes it fast (estimates: remedies/neighbors.estimated_seconds)."""
    from imbalance_lab.remedies import neighbors

    node = cfg.get("sampler") or {}
    if node.get("neighbors") is None:
        return []
    train, n_features = data.class_counts("train"), int(np.prod(data.X_train.shape[1:]))
    how = neighbors.resolve(str(node.neighbors), int(train.sum()))
    sampler = str(node.get("_target_")).rsplit(".", 1)[-1]
    seconds = {h: neighbors.estimated_seconds(sampler, train, n_features, h) for h in ("exact", "approximate")}
    if seconds[how] is None or seconds[how] <= SLOW_SAMPLER_SECONDS:
        return []
    faster = how == "exact" and seconds["approximate"] <= SLOW_SAMPLER_SECONDS
    return [Finding(
        "warning", "slow_sampler",
        f"sampler={choices.get('sampler')} with neighbors={how} on {int(train.sum()):,} training rows x {n_features} "
        f"features will take about {seconds[how] / 60:.0f} minutes to resample (its neighbour searches, estimated "
        f"on 2 cores); with neighbors=approximate about {seconds['approximate']:.0f} s.",
        "sampler.neighbors=approximate (or auto)." if faster else
        "sampler=random_over or class_weight=balanced, which need no neighbour search.",
        {"sampler": sampler, "neighbors": how, "estimated_seconds": seconds, "train_rows": int(train.sum()),
         "features": n_features},
    )]


# -- the signal probe ------------------------------------------------------------------------------

def signal_probe(X: np.ndarray, y: np.ndarray, seed: int, max_rows: int = PROBE_MAX_ROWS) -> dict:
    """Cross-validated macro-F1 of a logistic regression and a depth-4 tree (both class-balanced,
    so that the imbalance itself cannot hide a signal), of the naive majority predictor, and of
    the better probe on shuffled labels (what a probe scores by chance on these priors)."""
    from sklearn.dummy import DummyClassifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import f1_score, make_scorer
    from sklearn.model_selection import StratifiedKFold, cross_val_score, train_test_split
    from sklearn.tree import DecisionTreeClassifier

    X = np.asarray(X).reshape(len(X), -1)
    if len(y) > max_rows:
        X, _, y, _ = train_test_split(X, y, train_size=max_rows, stratify=y, random_state=seed)
    classes = np.unique(y)
    folds = int(min(3, np.bincount(y).min()))
    if folds < 2:
        return {"rows": len(y), "skipped": "a class has fewer than 2 rows"}
    cv = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    scorer = make_scorer(f1_score, average="macro", labels=classes, zero_division=0)
    probes = {
        "logistic_regression": LogisticRegression(max_iter=300, class_weight="balanced"),
        "decision_tree": DecisionTreeClassifier(max_depth=4, class_weight="balanced", random_state=seed),
    }

    def score(estimator, labels) -> float:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            return float(np.mean(cross_val_score(estimator, X, labels, cv=cv, scoring=scorer)))

    result = {name: score(est, y) for name, est in probes.items()}
    result["naive"] = score(DummyClassifier(strategy="most_frequent"), y)
    best = max(probes, key=lambda name: result[name])
    shuffled = np.random.default_rng(seed).permutation(y)
    result["chance"] = score(probes[best], shuffled)
    result.update(rows=int(len(y)), folds=folds, best_probe=best)
    return result


def signal_finding(probe: dict) -> Finding:
    if "skipped" in probe:
        return Finding("info", "signal_probe", f"Signal probe skipped: {probe['skipped']}.", "", probe)
    best = max(probe["logistic_regression"], probe["decision_tree"])
    reference = max(probe["naive"], probe["chance"])
    scores = (f"cross-validated macro-F1 ({probe['folds']} folds, {probe['rows']} training rows): logistic "
              f"regression {probe['logistic_regression']:.3f}, depth-4 tree {probe['decision_tree']:.3f}, "
              f"naive majority predictor {probe['naive']:.3f}, the better probe on shuffled labels "
              f"{probe['chance']:.3f}")
    if best < reference + SIGNAL_MARGIN:
        return Finding(
            "warning", "no_signal",
            f"The features carry little signal about the label: {scores}; neither probe beats naive or chance "
            f"by {SIGNAL_MARGIN}. A network that predicts the majority class here is doing the best the "
            f"features allow, and no imbalance remedy will fix that.",
            "better features or labels (check the join between features and labels); remedies only trade "
            "majority recall for minority recall here.", probe,
        )
    return Finding(
        "info", "signal",
        f"The features carry signal: {scores}. A network that predicts one class here is failing to learn, "
        f"which the remedies can address.", "", probe,
    )


# -- suggestions -------------------------------------------------------------------------------------

def suggestion(cfg: DictConfig, choices: dict[str, str], overrides: list[str], findings: list[Finding]) -> Finding:
    """The remedies most worth sweeping as one `imbalance-lab -m` grid: class weights x log-prior
    bias (baseline, each alone, both: neither double-corrects; no sampler or prior-correcting
    decision on top of the weights, which would). Every remedy axis is set explicitly so that a
    study's own grid (`+experiment=...`) does not multiply it."""
    codes = {f.code for f in findings}
    activation, loss = choices.get("activation", "softmax"), choices.get("loss", "ce")
    pair_fixed = bool(codes & {"sigmoid_ce", "softmax_bce"})
    if pair_fixed:
        activation, loss = "softmax", "ce"
    grid = {"activation": [activation], "loss": [loss], "class_weight": ["none", "balanced"],
            "bias_init": ["zeros", "log_prior"], "sampler": ["none"], "decision": [choices.get("decision", "argmax")]}
    if grid["decision"][0] in PRIOR_CORRECTING_DECISIONS:
        grid["decision"] = ["argmax"]
    if loss in PRIOR_ADDING_LOSSES:
        grid["bias_init"] = ["zeros"]   # the loss already adds the priors
    reasons = ["class_weight=balanced makes every class weigh the same in the loss",
               "bias_init=log_prior starts the network at the training priors instead of spending its "
               "first epochs learning them"]
    grid = {axis: [v for v in values if option_exists(axis, v)] or values[:1] for axis, values in grid.items()}
    kept = [o for o in overrides if _override_key(o) not in REMEDY_AXES]
    swept = [f"{axis}={','.join(values)}" for axis, values in grid.items()]
    command = "imbalance-lab -m " + " ".join(shlex.quote(o) for o in [*kept, *swept])
    n_runs = int(np.prod([len(v) for v in grid.values()]))
    caveat = (" The features carry little signal, so expect these to move recall between classes more than "
              "macro-F1." if "no_signal" in codes else "")
    if "class_counts" in codes and next(f for f in findings if f.code == "class_counts").numbers.get(
            "imbalance_ratio", IMBALANCE_RATIO) < 1.5:
        caveat += " The classes are nearly balanced, so expect little from imbalance remedies."
    fixed = " with the activation/loss pair fixed to softmax + ce" if pair_fixed else ""
    return Finding(
        "info", "suggested_sweep",
        f"Worth sweeping for this data ({n_runs} runs: the baseline and each remedy alone and combined{fixed}): "
        f"{'; '.join(reasons)}.{caveat}",
        command, {"command": command, "grid": grid, "n_runs": n_runs},
    )


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


# -- after training ----------------------------------------------------------------------------------

def after_training(data, evaluation, history: list[dict]) -> list[Finding]:
    """Findings from a trained run: collapse, the accuracy paradox, validation never above naive."""
    m = evaluation.metrics
    majority = int(np.argmax(data.class_counts("train")))
    naive_accuracy = float(np.mean(data.y_test == majority))
    findings = []
    if evaluation.collapsed:
        predicted = evaluation.confusion.sum(axis=0)
        top = int(np.argmax(predicted))
        findings.append(Finding(
            "warning", "collapsed",
            f"The model predicts {evaluation.n_predicted_classes} of {data.n_classes} classes on the test set "
            f"(class '{data.labels[top]}' for {_pct(predicted[top] / predicted.sum())} of rows): it has learned "
            f"little beyond the class priors.",
            "run imbalance-lab-doctor with the same overrides: it checks the signal and suggests a sweep "
            "(class_weight=balanced, bias_init=log_prior).",
            {"n_predicted_classes": evaluation.n_predicted_classes, "n_classes": data.n_classes},
        ))
    accuracy, f1, naive_f1 = m["test/accuracy"], m["test/macro_f1"], m["naive/macro_f1"]
    if accuracy >= naive_accuracy - 1e-12 and f1 - naive_f1 <= PARADOX_MARGIN:
        findings.append(Finding(
            "warning", "accuracy_paradox",
            f"Test accuracy {_pct(accuracy)} is at or above the {_pct(naive_accuracy)} of always predicting the "
            f"majority class '{data.labels[majority]}', but macro-F1 {f1:.4f} is within {PARADOX_MARGIN} of the "
            f"naive predictor's {naive_f1:.4f}: the accuracy comes from the priors, not from the features.",
            "judge runs by test/macro_f1 against naive/macro_f1, and sweep the suggested remedies.",
            {"accuracy": accuracy, "naive_accuracy": naive_accuracy, "macro_f1": f1, "naive_macro_f1": naive_f1},
        ))
    naive_val = naive_macro_f1(data.y_val, majority, data.n_classes)
    best_val = max((row["val/macro_f1"] for row in history), default=float("nan"))
    if history and best_val <= naive_val + 1e-12:
        findings.append(Finding(
            "warning", "val_never_above_naive",
            f"Validation macro-F1 never rose above the naive predictor's {naive_val:.4f} in {len(history)} "
            f"epochs (best {best_val:.4f}): training never found anything the priors do not give.",
            "bias_init=log_prior class_weight=balanced, a higher trainer.learning_rate or more trainer.epochs; "
            "if imbalance-lab-doctor reports no_signal, better features.",
            {"best_val_macro_f1": best_val, "naive_val_macro_f1": naive_val, "epochs": len(history)},
        ))
    return findings


# -- the command -------------------------------------------------------------------------------------

def diagnose(overrides: list[str], probe: bool = True) -> tuple[DictConfig, dict[str, str], list[Finding]]:
    """Every pre-training finding for the config the overrides compose; no network is trained."""
    from imbalance_lab.configs import compose
    from imbalance_lab.data import load_splits

    cfg, choices = compose(overrides)
    data = load_splits(cfg.dataset, cfg.seed, model_inputs(cfg.model))  # model=pretrained: the cached embeddings
    findings = data_findings(data, cfg, choices)
    if probe:
        findings.append(signal_finding(signal_probe(data.X_train, data.y_train, int(cfg.seed))))
    findings += lint_config(cfg, choices, data)
    findings.append(suggestion(cfg, choices, overrides, findings))
    return cfg, choices, findings


def train_findings(cfg: DictConfig) -> list[Finding]:
    """`--train`: one run of the recipe (no MLflow), its headline numbers and after-training findings."""
    from imbalance_lab.run import train_and_evaluate  # imports TensorFlow

    out = train_and_evaluate(cfg)
    m = out.evaluation.metrics
    trained = Finding(
        "info", "trained",
        f"One training run: test macro-F1 {m['test/macro_f1']:.4f} (naive {m['naive/macro_f1']:.4f}), test "
        f"accuracy {_pct(m['test/accuracy'])}, what Keras's metrics=['accuracy'] would show "
        f"{_pct(m['keras/accuracy'])}, {out.evaluation.n_predicted_classes} of {out.data.n_classes} classes "
        f"predicted, {len(out.fitted.history)} epochs.", "",
        {k: m[k] for k in ("test/macro_f1", "naive/macro_f1", "test/accuracy", "keras/accuracy")},
    )
    return [trained, *after_training(out.data, out.evaluation, out.fitted.history)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="imbalance-lab-doctor",
        description="Diagnose why a classifier predicts one class, from the data and the config, before "
                    "spending compute. Takes the same Hydra overrides as imbalance-lab.")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dataset=digits loss=bce +experiment=NAME")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--train", action="store_true",
                        help="also train the configured network once (no MLflow) and diagnose the result")
    parser.add_argument("--no-probe", action="store_true", help="skip the signal probe")
    parser.add_argument("--list-keel", action="store_true",
                        help="list the installed KEEL datasets (for dataset=keel dataset.name=NAME) and exit")
    args = parser.parse_args(argv)
    if args.list_keel:
        from imbalance_lab.data.keel import format_table

        print(format_table())
        return 0
    try:
        cfg, choices, findings = diagnose(args.overrides, probe=not args.no_probe)
        if args.train:
            findings += train_findings(cfg)
    except ImbalanceLabError as err:
        print(f"imbalance-lab-doctor: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # Hydra's composition errors (unknown option, bad override) read fine as one line
        if type(err).__module__.split(".")[0] not in ("hydra", "omegaconf"):
            raise
        print(f"imbalance-lab-doctor: {_one_line(str(err))}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps({"choices": choices, "findings": [f.as_dict() for f in findings]}, indent=2, default=float))
    else:
        print("\n".join(f.line() for f in findings))
    return 0


def _one_line(hydra_message: str) -> str:
    """Hydra's 'Could not find loss/x' plus its list of available options, as one sentence."""
    lines = [line.strip() for line in hydra_message.strip().splitlines() if line.strip()]
    options = [line for line in lines[1:] if not line.endswith(":") and " " not in line]
    head = lines[0] if lines else "invalid overrides"
    return f"{head}; available options: {', '.join(options)}." if options else head

"""The doctor's rules, used by every run (below the run: nothing here imports the run or trains).

Before training: the config (activation/loss pairs that mislead, double corrections, SMOTE on
pixels, and `fit_rules`' regularisation for the data's size), the data (class counts, imbalance
ratio, label shift between train and test, classes too small for the sampler, the inputs' raw
scales). After training: collapse, the accuracy paradox, a validation macro-F1 that never rose
above the naive predictor's, an optimiser that stalls.

No TensorFlow here: the doctor answers in seconds without it.
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig

from imbalance_lab.doctor import fit_rules
from imbalance_lab.doctor.findings import Finding, option_exists, warning_codes
from imbalance_lab.doctor.findings import pct as _pct
from imbalance_lab.embeddings import backbone_trains
from imbalance_lab.evaluation import naive_macro_f1

__all__ = ["Finding", "after_training", "data_findings", "keras_accuracy", "lint_config", "warning_codes"]

# Thresholds: above these a number stops being noise and becomes a finding.
LABEL_SHIFT_TVD = 0.05      # total variation distance between train and test priors
PARADOX_MARGIN = 0.02       # macro-F1 within this of naive while accuracy looks fine
IMBALANCE_RATIO = 3.0       # largest / smallest training class
SLOW_SAMPLER_SECONDS = 120  # a resampling estimated to take longer than this (remedies/neighbors.py) is a finding

# Samplers whose default strategy equalises every class count of the training split.
REBALANCING_SAMPLERS = ("random_over", "random_under", "smote", "borderline_smote", "adasyn", "nearmiss",
                        "smote_enn", "smote_tomek", "balanced_batch")
FULL_STRATEGIES = ("auto", "all", "not majority", "not minority")
INTERPOLATING_SAMPLERS = ("smote", "borderline_smote", "adasyn", "smote_enn", "smote_tomek")
PRIOR_ADDING_LOSSES = ("logit_adjusted", "balanced_softmax")
PRIOR_CORRECTING_DECISIONS = ("logit_adjusted", "prior_correction")


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
    findings += fit_rules.heavy_regularisation(cfg, data)
    if data is not None:
        findings += fit_rules.unscaled_inputs(data, choices.get("preprocess", "standard"))
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


# -- after training ----------------------------------------------------------------------------------

def after_training(data, evaluation, history: list[dict], initial_val_loss: float | None = None,
                   trainer: DictConfig | None = None) -> list[Finding]:
    """Findings from a trained run: collapse, the accuracy paradox, validation never above naive,
    an optimiser that stalls (`initial_val_loss`: before the first step; `trainer`: its settings)."""
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
            "run imbalance-lab-doctor with the same overrides and --why: it trains one change at a time "
            "(scaled inputs, no input dropout, softmax + ce, balanced weights, log-prior bias, learning rate) "
            "and names the one that recovers the classes.",
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
    findings += fit_rules.optimizer_stalls(history, initial_val_loss, naive_val + PARADOX_MARGIN, trainer)
    return findings

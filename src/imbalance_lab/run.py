"""One run: the recipe of DESIGN.md, top to bottom, then everything MLflow receives.

TensorFlow is imported only when a run trains (`train_and_evaluate`): a job whose config already
FINISHED is skipped in a second or two, which matters for reruns of cluster sweeps.
"""

from __future__ import annotations

import json
import logging
import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from imbalance_lab import job_signals, tracking
from imbalance_lab.configs import call_target, flat_params, run_key, run_name, yaml_text
from imbalance_lab.data import Splits, load_splits
from imbalance_lab.doctor import rules as doctor_rules
from imbalance_lab.embeddings import model_inputs
from imbalance_lab.evaluation import Evaluation, confusion_matrix_figure, evaluate
from imbalance_lab.remedies.sampling import Resampled
from imbalance_lab.remedies.weighting import NORMALISATION, sample_weights
from imbalance_lab.resample_cache import cached_resample

log = logging.getLogger(__name__)


@dataclass
class RunOutput:
    data: Splits
    train: Resampled
    class_weights: np.ndarray | None
    output_bias: np.ndarray
    loss_form: str
    fitted: object  # training.TrainResult
    decision: dict
    evaluation: Evaluation
    loss_details: dict = field(default_factory=dict)


@dataclass
class JobResult:
    status: str          # FINISHED | FAILED | SKIPPED | KILLED
    run_id: str | None
    name: str
    run_key: str
    reason: str = ""
    macro_f1: float | None = None


def train_and_evaluate(cfg: DictConfig, on_epoch=None, name: str = "", progress_note=None) -> RunOutput:
    """load -> split -> preprocess -> resample train -> class weights -> model + bias -> loss -> fit ->
    predict test -> decide -> evaluate. `on_epoch(row)` receives each epoch's curves;
    `progress_note(fraction of the run done)` adds to the progress lines (a sweep's position)."""
    # seeded by itself; first, so that bad data is told before TensorFlow loads
    data = load_splits(cfg.dataset, cfg.seed, cfg.get("preprocess"), model_inputs(cfg.model))  # model=pretrained: embeddings
    from imbalance_lab.models import build_model
    from imbalance_lab.remedies.bias import class_priors
    from imbalance_lab.remedies.losses import activate
    from imbalance_lab.training import fit, predict_logits, seed_everything

    seed_everything(cfg.seed)
    activation = cfg.activation.function
    train = cached_resample(cfg.sampler, cfg.seed, data.X_train, data.y_train, data.labels, data.fingerprint)
    counts = np.asarray(train.counts_after)  # balanced_batch: the expected counts the batches realise
    class_weights = call_target(cfg.class_weight, class_counts=counts)
    bias = call_target(cfg.bias_init, activation=activation, class_counts=counts)
    model = build_model(cfg.model, data.input_shape, data.n_classes, bias)
    loss_fn = call_target(cfg.loss, activation=activation, class_counts=counts)
    fitted = fit(model, loss_fn, train.X, train.y, sample_weights(class_weights, train.y),
                 data.X_val, data.y_val, data.n_classes, cfg.trainer, batch_source=train.batch_source,
                 on_epoch=on_epoch, name=name, progress_note=progress_note)
    val_logits, test_logits = predict_logits(model, data.X_val), predict_logits(model, data.X_test)
    rule = call_target(cfg.decision).fit(val_logits, data.y_val, class_priors(counts), activation)
    y_pred = rule.predict(test_logits)
    probabilities = np.asarray(activate(test_logits, activation))
    majority = int(np.argmax(data.class_counts("train")))
    evaluation = evaluate(data.y_test, y_pred, probabilities, data.labels, majority)
    # What Keras's metrics=['accuracy'] would show (binary accuracy under bce): the 83 %-style illusion.
    evaluation.metrics["keras/accuracy"] = doctor_rules.keras_accuracy(data.y_test, probabilities, cfg.loss)
    return RunOutput(data, train, class_weights, np.asarray(bias), getattr(loss_fn, "form", str(loss_fn)),
                     fitted, rule.summary(data.labels), evaluation, getattr(loss_fn, "details", {}))


def execute(cfg: DictConfig, choices: dict[str, str], parent: dict | None = None, progress_note=None,
            tags: dict[str, str] | None = None) -> JobResult:
    """Skip if this config already FINISHED; else train in an MLflow run that always ends.
    Exceptions of the recipe propagate, after the run has ended FAILED (or KILLED on Ctrl-C).
    `tags`: more tags for the run (the doctor's --why names its variant)."""
    key, name = run_key(cfg), run_name(choices, cfg.seed)
    client = tracking.client_for(cfg.tracking.uri)
    exp_id = tracking.experiment_id(client, cfg.tracking.experiment)
    done = None if cfg.tracking.rerun else tracking.finished_run_id(client, exp_id, key)
    if done:
        log.info("Skipping %s: run_key %s already FINISHED as run %s (tracking.rerun=true to train again).",
                 name, key, done)
        return JobResult("SKIPPED", done, name, key)
    findings = doctor_rules.lint_config(cfg, choices)
    tags = {"run_key": key, **choices, **tracking.child_tags(parent), **(tags or {}),
            "doctor.warnings": doctor_rules.warning_codes(findings)}
    run = tracking.ChildRun(cfg.tracking.uri, exp_id, name, tags, flat_params(cfg, choices))
    current_run[0] = run
    try:
        output = train_and_evaluate(cfg, on_epoch=run.log_epoch, name=name, progress_note=progress_note)
        findings = doctor_rules.lint_config(cfg, choices, output.data) + doctor_rules.after_training(
            output.data, output.evaluation, output.fitted.history, output.fitted.initial_val_loss, cfg.trainer)
        payload = run_payload(cfg, output, findings, dataset_name(cfg, choices))
        try:
            run.finish(payload)
        finally:
            _close_figures(payload)
    except KeyboardInterrupt as err:  # Ctrl-C, or SLURM stopping the job (job_signals: says why)
        run.end("KILLED", str(err) or "interrupted (Ctrl-C)")
        raise
    except BaseException as err:
        if job_signals.stop_reason():  # SLURM's stop, come out of TensorFlow as another error
            run.end("KILLED", job_signals.stop_reason())
        else:
            run.end("FAILED", f"{type(err).__name__}: {err}", traceback.format_exc())
        raise
    finally:
        current_run[0] = None
    ev = output.evaluation
    macro = ev.metrics["test/macro_f1"]
    log.info("%s trained: test/macro_f1 %.4f (naive %.4f), %d of %d classes predicted%s", name, macro,
             ev.metrics["naive/macro_f1"], ev.n_predicted_classes, output.data.n_classes,
             "  COLLAPSED" if ev.collapsed else "")
    return JobResult("FINISHED", run.run_id, name, key, macro_f1=macro)


# The run this process is training, if any: what a watchdog ends KILLED when the sweep dies (sweep.py).
current_run: list[tracking.ChildRun | None] = [None]


def run_payload(cfg: DictConfig, out: RunOutput, findings, dataset: str) -> tracking.RunPayload:
    """Everything a finished run receives at its end: metrics, params and tags (batched), the
    artifacts, and the training rows as an MLflow dataset input (the UI's Dataset column)."""
    ev, data = out.evaluation, out.data
    return tracking.RunPayload(
        metrics={**ev.metrics, "dataset.imbalance_ratio": data.imbalance_ratio, **out.train.logged_metrics},
        params={**{f"dataset.class_counts.{split}": json.dumps(dict(zip(data.labels, data.class_counts(split).tolist())))
                   for split in ("train", "val", "test")}, **out.train.logged_params},
        tags={"collapsed": str(ev.collapsed).lower(), "dataset.fingerprint": data.fingerprint,
              "doctor.warnings": doctor_rules.warning_codes(findings)},
        texts={"confusion_matrix.json": _json({"labels": list(data.labels), "matrix": ev.confusion.tolist(),
                                                "rows": "true", "columns": "predicted"}),
               "classification_report.json": _json(ev.report),
               "remedies.json": _json(remedies_summary(out)),
               "doctor.json": _json([f.as_dict() for f in findings]),
               "config.yaml": yaml_text(cfg),
               "history.csv": _history_csv(out.fitted.history)},
        figures={"confusion_matrix.png": confusion_matrix_figure(
            ev.confusion, list(data.labels), f"test macro-F1 {ev.metrics['test/macro_f1']:.3f}")},
        dataset=tracking.dataset_input(data.X_train, np.asarray(data.labels)[data.y_train], dataset, data.source,
                                       data.fingerprint))


def _close_figures(payload: tracking.RunPayload) -> None:
    import matplotlib.pyplot as plt

    for figure in payload.figures.values():
        plt.close(figure)


def dataset_name(cfg: DictConfig, choices: dict[str, str]) -> str:
    """The dataset option, with the benchmark's name or the file's name where there is one."""
    option = choices.get("dataset", "data")
    detail = cfg.dataset.get("name") or (Path(str(cfg.dataset.get("path"))).name if cfg.dataset.get("path") else "")
    return f"{option}:{detail}" if detail else option


def remedies_summary(out: RunOutput) -> dict:
    """What each remedy actually computed in this run."""
    labels = list(out.data.labels)
    weights = None if out.class_weights is None else dict(zip(labels, np.round(out.class_weights, 6).tolist()))
    return {
        "labels": labels,
        "sampler": {"method": out.train.method,
                    "class_counts_before": dict(zip(labels, out.train.counts_before)),
                    "class_counts_after": dict(zip(labels, out.train.counts_after)),
                    **({"note": out.train.note} if out.train.note else {})},
        "class_weight": {"weights": weights, "applied_as": "per-sample weights", "normalisation": NORMALISATION},
        "bias_init": {"output_bias": dict(zip(labels, np.round(out.output_bias, 6).tolist()))},
        "loss": {"form": out.loss_form, **_per_label(out.loss_details, labels)},
        "decision": out.decision,
        "training": {"best_epoch": out.fitted.best_epoch, "epochs_run": len(out.fitted.history),
                     "stopped_early": out.fitted.stopped_early},
    }


def _per_label(details: dict, labels: list[str]) -> dict:
    """A loss's per-class values (margins, weights, offsets) keyed by label; scalars as they are."""
    return {k: dict(zip(labels, np.round(np.asarray(v, dtype=float), 6).tolist()))
            if isinstance(v, list | tuple | np.ndarray) and len(v) == len(labels) else v
            for k, v in details.items()}


def _json(payload) -> str:
    return json.dumps(payload, indent=2, default=float)


def _history_csv(history: list[dict]) -> str:
    columns = ["epoch", "train/loss", "val/loss", "val/macro_f1"]
    lines = [",".join(columns)] + [",".join(str(row[c]) for c in columns) for row in history]
    return "\n".join(lines) + "\n"

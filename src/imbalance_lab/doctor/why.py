"""`imbalance-lab-doctor ... --why`: the cause of a collapse, found by experiment (above the run).

The user's exact config trains on a budget (`budget.py`), then one-change-at-a-time variants of
it: inputs scaled, input dropout off, softmax + ce, balanced class weights, log-prior output
bias, learning rate x0.1 and x10 (each where it changes something). Every config trains over a
few seeds through `run.execute`, so each is an ordinary run, in the MLflow experiment
`<tracking.experiment>-why` under one parent run (`imbalance-lab-report --experiment NAME-why`
compares them; a second --why skips what already finished). The changes are ranked by how much
macro-F1 above chance each alone recovers (`effects.py`); one is named the cause only when its
effect exceeds the seeds' spread.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from imbalance_lab import tracking
from imbalance_lab.configs import compose, validate
from imbalance_lab.doctor.budget import Budget
from imbalance_lab.doctor.effects import MIN_EFFECT, Outcome, Summary, chance_macro_f1, chance_spread, rank
from imbalance_lab.doctor.findings import Finding
from imbalance_lab.doctor.rules import PRIOR_ADDING_LOSSES
from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.paths import output_root
from imbalance_lab.run import execute
from imbalance_lab.sweep import release_job_memory

YOUR_CONFIG = "your config"


@dataclass
class Experiment:
    """What --why found: its findings (printed like every other finding) and the numbers behind them."""
    findings: list[Finding]
    baseline: Summary
    ranked: list[Summary]
    budget: Budget
    experiment: str
    parent_run_id: str
    seconds: float

    @property
    def cause(self) -> Summary | None:
        return next((v for v in self.ranked if v.exceeds), None)

    def as_dict(self) -> dict:
        return {"experiment": self.experiment, "parent_run_id": self.parent_run_id, "seconds": self.seconds,
                "budget": vars(self.budget), "baseline": self.baseline.as_dict(),
                "variants": [v.as_dict() for v in self.ranked],
                "cause": None if self.cause is None else self.cause.name}


def variants(cfg: DictConfig, choices: dict[str, str]) -> list[Summary]:
    """The one-change variants that change something in this config."""
    out = []
    if choices.get("preprocess") == "none":
        out.append(Summary("scale the inputs", {"preprocess": "standard"}))
    if float(cfg.model.get("input_dropout") or 0.0) > 0:
        out.append(Summary("input dropout off", {"model.input_dropout": "0"}))
    if (cfg.activation.function, choices.get("loss")) != ("softmax", "ce"):
        out.append(Summary("softmax + ce", {"activation": "softmax", "loss": "ce"}))
    if choices.get("class_weight") != "balanced":
        out.append(Summary("balanced class weights", {"class_weight": "balanced"}))
    if choices.get("bias_init") != "log_prior" and choices.get("loss") not in PRIOR_ADDING_LOSSES:
        out.append(Summary("log-prior output bias", {"bias_init": "log_prior"}))
    lr = float(cfg.trainer.learning_rate)
    out.append(Summary("learning rate x0.1", {"trainer.learning_rate": f"{lr / 10:g}"}))
    out.append(Summary("learning rate x10", {"trainer.learning_rate": f"{lr * 10:g}"}))
    return out


def merged(overrides: list[str], changes: dict[str, str]) -> list[str]:
    """The user's overrides with `changes` replacing any that set the same key."""
    def key(text: str) -> str:
        return text.split("=", 1)[0].lstrip("+~")

    changed = {key(k) for k in changes}
    return [o for o in overrides if key(o) not in changed] + [f"{k}={v}" for k, v in changes.items()]


def explain(cfg: DictConfig, choices: dict[str, str], overrides: list[str], findings: list[Finding],
            budget: Budget) -> Experiment:
    """Train the user's config and its variants over the budget's seeds; rank the changes."""
    experiment = f"{cfg.tracking.experiment}-why"
    fixed = {**budget.overrides(cfg), "tracking.experiment": experiment}
    summaries = [Summary(YOUR_CONFIG, {}), *variants(cfg, choices)]
    seeds = [int(cfg.seed) + i for i in range(budget.seeds)]
    uri = cfg.tracking.uri
    tracking.check_store(uri)
    folder = output_root() / "outputs" / "why" / time.strftime("%Y-%m-%d") / f"{time.strftime('%H-%M-%S')}-{os.getpid()}"
    parent = tracking.start_sweep(uri, experiment, folder, [*overrides, "--why"])
    client = tracking.client_for(uri)
    client.set_tag(parent["run_id"], "mlflow.runName", f"why {time.strftime('%Y-%m-%d %H:%M:%S')}")
    start, total, done = time.monotonic(), len(summaries) * len(seeds), 0
    try:
        for seed in seeds:                       # seeds outer: the configs of one seed share its split
            for summary in summaries:
                began = time.monotonic()
                outcome = _train(overrides, {**fixed, **summary.changes, "seed": str(seed)}, summary, seed, parent)
                summary.outcomes.append(outcome)
                done += 1
                _progress(done, total, summary.name, outcome, time.monotonic() - began)
    except BaseException:
        tracking.end_run(client, parent["run_id"], "KILLED", "imbalance-lab-doctor --why was interrupted")
        raise
    # A variant that fails (a learning rate that diverges) is a finding, not a failure of --why.
    client.set_tag(parent["run_id"], "sweep.failed", str(sum(s.n_failed for s in summaries)))
    client.set_terminated(parent["run_id"], "FINISHED")
    seconds = time.monotonic() - start
    baseline, ranked = summaries[0], rank(summaries[0], summaries[1:])
    result = Experiment([], baseline, ranked, budget, experiment, parent["run_id"], seconds)
    result.findings = why_findings(result, findings, cfg)
    return result


def _train(overrides: list[str], changes: dict[str, str], summary: Summary, seed: int, parent: dict) -> Outcome:
    run_cfg, run_choices = compose(merged(overrides, changes))
    validate(run_cfg)
    tags = {"why.variant": summary.name, "why.changes": " ".join(f"{k}={v}" for k, v in summary.changes.items())}
    try:
        result = execute(run_cfg, run_choices, parent, tags=tags)
    except Exception as err:  # a variant that fails (a learning rate that diverges) recovers nothing
        return Outcome(seed, status="FAILED", error=str(err) if isinstance(err, ImbalanceLabError)
                       else f"{type(err).__name__}: {err}")
    finally:
        release_job_memory()
    return read_outcome(tracking.client_for(run_cfg.tracking.uri), result.run_id, result.status, seed)


def read_outcome(client, run_id: str, status: str, seed: int) -> Outcome:
    """A finished run's numbers, from MLflow (the same for a run trained now or skipped as done)."""
    run = client.get_run(run_id)
    with tempfile.TemporaryDirectory() as folder:
        saved = json.loads(Path(client.download_artifacts(run_id, "confusion_matrix.json", folder)).read_text())
    matrix = np.asarray(saved["matrix"])
    predicted = matrix.sum(axis=0)
    top = int(np.argmax(predicted))
    m = run.data.metrics
    truth = matrix.sum(axis=1)
    return Outcome(seed, run_id, status, m["test/macro_f1"], m["naive/macro_f1"], chance_macro_f1(truth, predicted),
                   chance_spread(truth, predicted, seed=seed), int(m["test/n_predicted_classes"]),
                   str(saved["labels"][top]), float(predicted[top] / max(predicted.sum(), 1)),
                   run.data.tags.get("doctor.warnings", ""))


def _progress(done: int, total: int, name: str, outcome: Outcome, seconds: float) -> None:
    result = (f"macro-F1 {outcome.macro_f1:.3f}, {outcome.n_predicted} class(es) predicted" if outcome.ok
              else f"FAILED: {outcome.error[:120]}")
    earlier = " (finished earlier)" if outcome.status == "SKIPPED" else ""
    print(f"why: {done}/{total} {name}, seed {outcome.seed}: {result}{earlier}, {seconds:.1f} s",
          file=sys.stderr, flush=True)


# -- what it found -------------------------------------------------------------------------------

def why_findings(result: Experiment, findings: list[Finding], cfg: DictConfig) -> list[Finding]:
    base = result.baseline
    return [_budget_finding(result, findings, cfg), _baseline_finding(base),
            *[_variant_finding(i + 1, v, base) for i, v in enumerate(result.ranked)],
            _verdict(result, findings)]


def _budget_finding(result: Experiment, findings: list[Finding], cfg: DictConfig) -> Finding:
    b = result.budget
    counts = next((f.numbers for f in findings if f.code == "class_counts"), {})
    train, val, test = (int(sum(counts.get(s, []))) for s in ("train", "val", "test"))
    epochs = min(int(cfg.trainer.epochs), b.epochs)
    runs = sum(len(s.outcomes) for s in [result.baseline, *result.ranked])
    earlier = sum(o.status == "SKIPPED" for s in [result.baseline, *result.ranked] for o in s.outcomes)
    seeds = sorted({o.seed for o in result.baseline.outcomes})
    return Finding(
        "info", "why_budget",
        f"Trained your config and {len(result.ranked)} one-change variants on a budget that ends in a few minutes "
        f"on 2 cores: {_rows(b.rows, train, 'training')} and {_rows(b.val_rows, val, 'validation')}, at most "
        f"{epochs} epochs (early stopping patience "
        f"{min(int(cfg.trainer.patience), epochs)}), seeds {', '.join(map(str, seeds))}, scored on the whole test "
        f"set ({test:,} rows): {runs} runs in {result.seconds:.0f} s"
        + (f" ({earlier} finished earlier, read back)" if earlier else "")
        + f", logged to the MLflow experiment '{result.experiment}' (parent run {result.parent_run_id}).",
        f"imbalance-lab-report --experiment {result.experiment} compares them; --why-rows, --why-epochs and "
        f"--why-seeds change the budget.",
        {"rows": min(b.rows, train), "train_rows": train, "val_rows": min(b.val_rows, val), "epochs": epochs,
         "seeds": seeds, "runs": runs, "seconds": result.seconds, "experiment": result.experiment},
    )


def _rows(kept: int, total: int, split: str) -> str:
    return f"all {total:,} {split} rows" if kept >= total else f"a stratified sample of {kept:,} of the {total:,} {split} rows"


def _mean_sd(s: Summary, attr: str = "macro_f1") -> str:
    return f"{s.mean(attr):.3f} ± {s.std(attr):.3f}"


def _baseline_finding(base: Summary) -> Finding:
    n = len(base.outcomes)
    above = float(base.above.mean())
    numbers = base.as_dict()
    if base.n_failed == n:
        errors = "; ".join(sorted({o.error[:200] for o in base.outcomes}))
        return Finding("warning", "why_baseline", f"Your config fails to train in all {n} seeds: {errors}.", "", numbers)
    tops = sorted({o.top_label for o in base.outcomes if o.ok and o.n_predicted <= 1})
    scores = (f"macro-F1 {_mean_sd(base)} over {n} seeds against the naive predictor's {base.mean('naive_macro_f1'):.3f}, "
              f"{above:+.3f} above chance for its mix of predicted classes")
    if base.n_collapsed * 2 > n:
        label = " or ".join(f"'{t}'" for t in tops) or "none"
        return Finding("warning", "why_baseline",
                       f"Your config collapses: it predicts a single class ({label}) in {base.n_collapsed} of {n} "
                       f"seeds; {scores}.", "", numbers)
    if above < MIN_EFFECT or base.mean("macro_f1") - base.mean("naive_macro_f1") < MIN_EFFECT:
        return Finding("warning", "why_baseline",
                       f"Your config stays near the naive macro-F1: {scores}, {base.mean('n_predicted'):.1f} "
                       f"classes predicted on average.", "", numbers)
    return Finding("info", "why_baseline",
                   f"Your config learns on this budget: {scores}, {base.mean('n_predicted'):.1f} classes predicted "
                   f"on average.", "", numbers)


def _changes(v: Summary) -> str:
    return " ".join(f"{k}={val}" for k, val in v.changes.items())


def _variant_finding(rank_: int, v: Summary, base: Summary) -> Finding:
    n = len(v.outcomes)
    if v.n_failed == n:
        return Finding("info", "why_variant", f"#{rank_} {v.name} ({_changes(v)}): failed in all {n} seeds "
                       f"({v.outcomes[0].error[:200]}).", _changes(v), v.as_dict())
    failed = f", {v.n_failed} of {n} seeds failed" if v.n_failed else ""
    noise = max(v.spread, v.test_noise, MIN_EFFECT)
    verdict = ("more than noise" if v.exceeds else "within the noise" if v.gain <= noise else
               "not clear of the noise (a seed of it is no better than one of your config's)")
    return Finding(
        "info", "why_variant",
        f"#{rank_} {v.name} ({_changes(v)}): macro-F1 {_mean_sd(v)} (naive {v.mean('naive_macro_f1'):.3f}), "
        f"{v.mean('n_predicted'):.1f} classes predicted{failed}; {float(v.above.mean()):+.3f} above chance for its "
        f"mix of predicted classes (chance {v.mean('chance_macro_f1'):.3f}), {v.gain:+.3f} against your config's "
        f"{float(base.above.mean()):+.3f}; noise: seeds' spread {v.spread:.3f}, test set {v.test_noise:.3f}: {verdict}.",
        _changes(v), v.as_dict())


def _verdict(result: Experiment, findings: list[Finding]) -> Finding:
    base, cause = result.baseline, result.cause
    codes = {f.code for f in findings}
    if cause is not None:
        others = [v.name for v in result.ranked if v.exceeds and v is not cause]
        also = f" Also more than noise on its own: {', '.join(others)}." if others else ""
        return Finding(
            "warning", "why_cause",
            f"The cause: {cause.name}. Alone, it takes macro-F1 from {base.mean('macro_f1'):.3f} to "
            f"{cause.mean('macro_f1'):.3f} ({base.mean('n_predicted'):.1f} -> {cause.mean('n_predicted'):.1f} classes "
            f"predicted), {cause.gain:+.3f} above chance, more than the seeds' spread ({cause.spread:.3f}) and the "
            f"test set's noise ({cause.test_noise:.3f}), with every seed above every seed of your config.{also}",
            _changes(cause), {"cause": cause.name, "gain": cause.gain, "spread": cause.spread, "also": others})
    best = next((v for v in result.ranked if not np.isnan(v.gain)), None)
    largest = (f"the largest gain, {best.gain:+.3f} macro-F1 above chance ({best.name}), does not clear the noise "
               f"(seeds' spread {best.spread:.3f}, test set {best.test_noise:.3f}, at least {MIN_EFFECT})"
               if best is not None else "every variant failed")
    numbers = {"cause": None, "signal": "no_signal" not in codes}
    if "no_signal" in codes:
        probe = next(f for f in findings if f.code == "no_signal").numbers
        return Finding(
            "warning", "why_no_single_cause",
            f"No single change recovers more than noise: {largest}. The features carry no signal about the label: "
            f"the signal probe's best macro-F1 is {max(probe['logistic_regression'], probe['decision_tree']):.3f} "
            f"against naive {probe['naive']:.3f} and shuffled labels {probe['chance']:.3f}, so predicting the "
            f"majority class is the best these features allow; changes that spread the predictions over more "
            f"classes only move macro-F1 to what that mix earns by chance.",
            "better features or labels (check the join between features and labels).", numbers)
    if "signal" not in codes:
        return Finding("info", "why_no_single_cause", f"No single change recovers more than noise: {largest}. "
                       f"Run without --no-probe to check whether the features carry signal.", "", numbers)
    if base.n_collapsed * 2 <= len(base.outcomes) and float(base.above.mean()) >= MIN_EFFECT:
        return Finding("info", "why_no_single_cause",
                       f"Your config does not collapse on this budget, and no single change improves it by more "
                       f"than noise: {largest}.", "", numbers)
    top_two = [v for v in result.ranked[:2] if not np.isnan(v.gain)]
    together = " ".join(_changes(v) for v in top_two)
    return Finding(
        "warning", "why_no_single_cause",
        f"No single change recovers more than noise, though the features carry signal (see the signal probe): "
        f"{largest}. The cause is likely a combination; try the two best changes together, or a longer budget "
        f"(--why-epochs).", together, numbers)

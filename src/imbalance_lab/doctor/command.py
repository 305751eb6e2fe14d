"""`imbalance-lab-doctor [overrides] [--json] [--why]`: the doctor's command (above the run).

Without --why it trains nothing and imports no TensorFlow: the data's findings, the signal probe,
the config's lint and a ready-to-run sweep of the remedies most worth trying, in seconds. With
--why it runs the experiment of `doctor/why.py`, which trains through the run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys

import numpy as np
from omegaconf import DictConfig

from imbalance_lab.doctor.budget import WHY_EPOCHS, WHY_ROWS, WHY_SEEDS, Budget
from imbalance_lab.doctor.findings import Finding, option_exists
from imbalance_lab.doctor.probe import signal_finding, signal_probe
from imbalance_lab.doctor.rules import (
    IMBALANCE_RATIO,
    PRIOR_ADDING_LOSSES,
    PRIOR_CORRECTING_DECISIONS,
    data_findings,
    lint_config,
)
from imbalance_lab.embeddings import model_inputs
from imbalance_lab.errors import ImbalanceLabError

REMEDY_AXES = ("preprocess", "activation", "loss", "bias_init", "class_weight", "sampler", "decision")


def suggestion(cfg: DictConfig, choices: dict[str, str], overrides: list[str], findings: list[Finding]) -> Finding:
    """The remedies most worth sweeping as one `imbalance-lab -m` grid: class weights x log-prior
    bias (baseline, each alone, both: neither double-corrects; no sampler or prior-correcting
    decision on top of the weights, which would), with a misleading activation/loss pair and
    unscaled inputs fixed. Every remedy axis is set explicitly so that a study's own grid
    (`+experiment=...`) does not multiply it."""
    codes = {f.code for f in findings}
    warned = {f.code for f in findings if f.severity == "warning"}
    activation, loss = choices.get("activation", "softmax"), choices.get("loss", "ce")
    pair_fixed = bool(codes & {"sigmoid_ce", "softmax_bce"})
    if pair_fixed:
        activation, loss = "softmax", "ce"
    preprocess = "standard" if "unscaled_inputs" in warned else choices.get("preprocess", "standard")
    grid = {"preprocess": [preprocess], "activation": [activation], "loss": [loss], "class_weight": ["none", "balanced"],
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
    fixed = " and ".join(([] if not pair_fixed else ["the activation/loss pair fixed to softmax + ce"])
                         + ([] if "unscaled_inputs" not in warned else ["the inputs scaled (preprocess=standard)"]))
    fixed = f" with {fixed}" if fixed else ""
    return Finding(
        "info", "suggested_sweep",
        f"Worth sweeping for this data ({n_runs} runs: the baseline and each remedy alone and combined{fixed}): "
        f"{'; '.join(reasons)}.{caveat}",
        command, {"command": command, "grid": grid, "n_runs": n_runs},
    )


def _override_key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def diagnose(overrides: list[str], probe: bool = True) -> tuple[DictConfig, dict[str, str], list[Finding]]:
    """Every pre-training finding for the config the overrides compose; no network is trained."""
    from imbalance_lab.configs import compose
    from imbalance_lab.data import load_splits

    cfg, choices = compose(overrides)
    data = load_splits(cfg.dataset, cfg.seed, cfg.get("preprocess"), model_inputs(cfg.model))  # pretrained: embeddings
    findings = data_findings(data, cfg, choices)
    if probe:
        findings.append(signal_finding(signal_probe(data.X_train, data.y_train, int(cfg.seed))))
    findings += lint_config(cfg, choices, data)
    findings.append(suggestion(cfg, choices, overrides, findings))
    return cfg, choices, findings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="imbalance-lab-doctor",
        description="Diagnose why a classifier predicts one class, from the data and the config, before "
                    "spending compute. Takes the same Hydra overrides as imbalance-lab.")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. dataset=digits loss=bce +experiment=NAME")
    parser.add_argument("--json", action="store_true", help="print the findings as JSON")
    parser.add_argument("--why", action="store_true",
                        help="train your config and one-change-at-a-time variants of it on a bounded budget (a "
                             "row sample, an epoch cap, 3 seeds; a few minutes on 2 cores), logged to the MLflow "
                             "experiment <tracking.experiment>-why, and name the change that recovers the classes")
    parser.add_argument("--why-rows", type=int, default=WHY_ROWS, metavar="N",
                        help=f"--why: training rows per run, a stratified sample (default {WHY_ROWS})")
    parser.add_argument("--why-epochs", type=int, default=WHY_EPOCHS, metavar="N",
                        help=f"--why: at most this many epochs per run (default {WHY_EPOCHS})")
    parser.add_argument("--why-seeds", type=int, default=WHY_SEEDS, metavar="N",
                        help=f"--why: seeds per config, for the spread that tells an effect from noise "
                             f"(default {WHY_SEEDS}, at least 2)")
    parser.add_argument("--no-probe", action="store_true", help="skip the signal probe")
    parser.add_argument("--list-keel", action="store_true",
                        help="list the installed KEEL datasets (for dataset=keel dataset.name=NAME) and exit")
    args = parser.parse_args(argv)
    if args.list_keel:
        from imbalance_lab.data.keel import format_table

        print(format_table())
        return 0
    try:
        budget = Budget(args.why_rows, args.why_epochs, args.why_seeds).checked() if args.why else None
        cfg, choices, findings = diagnose(args.overrides, probe=not args.no_probe)
        experiment = None
        if budget is not None:
            from imbalance_lab.doctor.why import explain  # trains: imports TensorFlow and the run

            experiment = explain(cfg, choices, args.overrides, findings, budget)
            findings += experiment.findings
    except ImbalanceLabError as err:
        print(f"imbalance-lab-doctor: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("imbalance-lab-doctor: interrupted; the --why runs that finished are kept in MLflow (the one training "
              "ended KILLED), and the same command reads them back instead of training them again.", file=sys.stderr)
        return 130
    except Exception as err:  # Hydra's composition errors (unknown option, bad override) read fine as one line
        if type(err).__module__.split(".")[0] not in ("hydra", "omegaconf"):
            raise
        print(f"imbalance-lab-doctor: {_one_line(str(err))}", file=sys.stderr)
        return 1
    if args.json:
        payload = {"choices": choices, "findings": [f.as_dict() for f in findings]}
        if experiment is not None:
            payload["why"] = experiment.as_dict()
        print(json.dumps(payload, indent=2, default=float))
    else:
        print("\n".join(f.line() for f in findings))
    return 0


def _one_line(hydra_message: str) -> str:
    """Hydra's 'Could not find loss/x' plus its list of available options, as one sentence."""
    lines = [line.strip() for line in hydra_message.strip().splitlines() if line.strip()]
    options = [line for line in lines[1:] if not line.endswith(":") and " " not in line]
    head = lines[0] if lines else "invalid overrides"
    return f"{head}; available options: {', '.join(options)}." if options else head

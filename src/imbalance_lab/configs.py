"""Hydra config helpers: call a group's `_target_`, read the chosen options, flatten params,
hash a config into its `run_key`, and compose configs outside the command line (tests, doctor)."""

from __future__ import annotations

import hashlib
import inspect
import json
import os
from typing import Any

from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.paths import CONF_DIR, output_root, project_root

AXES = ("dataset", "preprocess", "model", "activation", "loss", "bias_init", "class_weight", "sampler", "decision",
        "trainer", "tracking")
# The axes that name a run, in the order of DESIGN.md's example `mlp·softmax·focal·log_prior·balanced·smote·s0`.
NAME_AXES = ("model", "activation", "loss", "bias_init", "class_weight", "sampler")
# Named too when not their default option (tracking says where a run goes, not what it is).
EXTRA_NAME_AXES = ("decision", "preprocess", "trainer", "dataset")
# Options that read as something else alone (`none` would look like a sampler): named `axis=option`.
SPELLED_OUT = ("preprocess", "trainer")
UNHASHED_KEYS = ("tracking", "hydra")


def register_resolvers() -> None:
    """`${il.project_root:}` (the default store's folder), `${il.output_root:}` (Hydra's folders) and
    `${il.pid:}` (the launching process: two sweeps started in the same second get two folders;
    cached, so a sweep's jobs in other processes see the launcher's value)."""
    if not OmegaConf.has_resolver("il.project_root"):
        OmegaConf.register_new_resolver("il.project_root", lambda: str(project_root()))
        OmegaConf.register_new_resolver("il.output_root", lambda: str(output_root()))
        OmegaConf.register_new_resolver("il.pid", os.getpid, use_cache=True)


def call_target(node: DictConfig | None, **runtime: Any):
    """Call the group's `_target_` with its keys plus runtime arguments; None when it has none."""
    if node is None or not node.get("_target_"):
        return None
    params = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if not k.startswith("_")}
    fn = get_method(node._target_)
    accepted = inspect.signature(fn).parameters
    unknown = [k for k in params if k not in accepted and not any(p.kind == p.VAR_KEYWORD for p in accepted.values())]
    if unknown:
        raise ImbalanceLabError(
            f"{node._target_} does not take {unknown}; it accepts {[p for p in accepted if p not in runtime]}."
        )
    return fn(**params, **runtime)


def choices_from_hydra() -> dict[str, str]:
    """The option chosen in each axis group, e.g. {'loss': 'focal', ...}, for the current job."""
    from hydra.core.hydra_config import HydraConfig

    if not HydraConfig.initialized():
        return {}
    chosen = HydraConfig.get().runtime.choices
    return {axis: str(chosen.get(axis)) for axis in AXES if chosen.get(axis) is not None}


def resolved(cfg: DictConfig) -> dict:
    """The config as plain data, interpolations resolved."""
    return OmegaConf.to_container(cfg, resolve=True)


def flat_params(cfg: DictConfig, choices: dict[str, str]) -> dict[str, str]:
    """Every axis option and every hyperparameter, flattened: `loss=focal`, `loss.gamma=2`, ..."""
    plain = resolved(cfg)
    out = {axis: choices[axis] for axis in AXES if axis in choices}

    def walk(prefix: str, value: Any) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                if not str(k).startswith("_"):
                    walk(f"{prefix}.{k}" if prefix else str(k), v)
        else:
            out[prefix] = json.dumps(value) if isinstance(value, list | tuple) else str(value)

    for key, value in plain.items():
        if key not in ("hydra", "tracking"):
            walk(key, value)
    return out


def run_key(cfg: DictConfig) -> str:
    """Hash of the resolved config without tracking/hydra keys: same key, same training."""
    plain = {k: v for k, v in resolved(cfg).items() if k not in UNHASHED_KEYS}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:16]


def yaml_text(node: DictConfig) -> str:
    """The resolved config as YAML (config.yaml of a run)."""
    return OmegaConf.to_yaml(node, resolve=True)


def default_choices() -> dict[str, str]:
    """Each group's default option, as conf/config.yaml's defaults list names it."""
    defaults = OmegaConf.load(CONF_DIR / "config.yaml").get("defaults", [])
    return {k: str(v) for item in defaults if isinstance(item, dict | DictConfig)
            for k, v in item.items() if k in AXES}


_DEFAULTS: dict[str, str] = {}


def run_name(choices: dict[str, str], seed: int) -> str:
    """DESIGN.md's `mlp·softmax·focal·log_prior·balanced·smote·s0`, with every other group whose
    option is not its default before the seed (a decision rule, `preprocess=none`, `trainer=quick`,
    the dataset)."""
    if not _DEFAULTS:
        _DEFAULTS.update(default_choices())
    parts = [choices.get(axis, "?") for axis in NAME_AXES]
    parts += [f"{axis}={choices[axis]}" if axis in SPELLED_OUT else choices[axis]
              for axis in EXTRA_NAME_AXES if axis in choices and choices[axis] != _DEFAULTS.get(axis)]
    return "·".join([*parts, f"s{seed}"])


def compose(overrides: list[str] | None = None) -> tuple[DictConfig, dict[str, str]]:
    """Compose the config as the command line would (with `+experiment=...` and all), outside a
    Hydra app; returns the config without its `hydra` node, and the chosen options."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_resolvers()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", overrides=list(overrides or []), return_hydra_config=True)
    chosen = cfg.hydra.runtime.choices
    choices = {axis: str(chosen[axis]) for axis in AXES if chosen.get(axis) is not None}
    with _open(cfg):
        del cfg["hydra"]
    return cfg, choices


def _open(cfg):
    from omegaconf import open_dict

    return open_dict(cfg)


# -- checks of a composed config, before any data is loaded --------------------------------------

def _whole(low: int):
    return ("a whole number", lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low, f">= {low}")


def _real(low: float, high: float | None = None, low_open: bool = False, high_open: bool = True):
    def ok(v):
        if isinstance(v, bool) or not isinstance(v, int | float) or v != v:
            return False
        above = v > low if low_open else v >= low
        below = high is None or (v < high if high_open else v <= high)
        return above and below

    span = f"{'(' if low_open else '['}{low}, {high if high is not None else 'inf'}{')' if high_open else ']'}"
    return ("a number", ok, f"in {span}")


def _flag():
    return ("true or false", lambda v: isinstance(v, bool), "true or false")


# key -> (what it must be, check, allowed range): each key is checked where the config has it.
RULES = {
    "seed": _whole(0),
    "trainer.epochs": _whole(1), "trainer.batch_size": _whole(1), "trainer.patience": _whole(1),
    "trainer.steps_per_execution": _whole(1), "trainer.learning_rate": _real(0, None, low_open=True),
    "trainer.momentum": _real(0, 1), "trainer.nesterov": _flag(), "trainer.jit_compile": _flag(),
    "dataset.val_size": _real(0, 1, low_open=True), "dataset.test_size": _real(0, 1, low_open=True),
    "dataset.n_samples": _whole(2), "dataset.n_train": _whole(2), "dataset.n_features": _whole(1),
    "dataset.n_informative": _whole(1), "dataset.n_classes": _whole(2),
    "dataset.max_train_rows": _whole(2), "dataset.max_val_rows": _whole(2),
    "model.dropout": _real(0, 1), "model.input_dropout": _real(0, 1),
    "model.max_norm": _real(0, None, low_open=True), "model.l2": _real(0), "model.dense": _whole(0),
    "model.kernel_size": _whole(1),
    "loss.gamma": _real(0), "loss.tau": _real(0), "loss.beta": _real(0, 1), "loss.scale": _real(0, None, low_open=True),
    "loss.max_margin": _real(0, None, low_open=True), "decision.tau": _real(0),
    "class_weight.beta": _real(0, 1),
}
NULLABLE = {"model.max_norm", "dataset.n_test", "dataset.max_train_rows", "dataset.max_val_rows"}


def validate(cfg: DictConfig) -> None:
    """Every value a run needs, typed and in range, or one sentence naming the key, the value and
    what is allowed (before any data is loaded or anything is trained)."""
    for key, (kind, ok, allowed) in RULES.items():
        value = OmegaConf.select(cfg, key, default="<absent>")
        if value == "<absent>" or (value is None and key in NULLABLE):
            continue
        if not ok(value):
            raise ImbalanceLabError(f"{key}={value!r} is not {kind} {allowed}; give e.g. {key}={_example(key, allowed)}.")
    widths = OmegaConf.select(cfg, "model.widths", default=None)
    if widths is not None and not all(isinstance(w, int) and not isinstance(w, bool) and w >= 1 for w in widths):
        raise ImbalanceLabError(f"model.widths={list(widths)} must be whole numbers >= 1; give e.g. model.widths=[64,32].")
    val, test = OmegaConf.select(cfg, "dataset.val_size"), OmegaConf.select(cfg, "dataset.test_size")
    if isinstance(val, int | float) and isinstance(test, int | float) and val + test >= 1:
        raise ImbalanceLabError(f"dataset.val_size={val} and dataset.test_size={test} leave no training rows; "
                                f"keep their sum below 1, e.g. 0.2 each.")


def _example(key: str, allowed: str) -> str:
    defaults = {"seed": "0", "trainer.epochs": "50", "trainer.batch_size": "256", "trainer.learning_rate": "0.001",
                "dataset.val_size": "0.2", "dataset.test_size": "0.2", "trainer.momentum": "0.9"}
    return defaults.get(key, "true" if "true" in allowed else allowed.split()[-1].strip("[]()").split(",")[0])


def check_overrides(args: list[str]) -> str | None:
    """A group option or a key the command line names that does not exist, as one sentence with the
    closest names (Hydra's own message lists every option, without a guess); None if all exist.
    Sweep values (`loss=ce,focal`) are checked one by one; `+key`, `~key` and Hydra's keys are not."""
    import difflib

    simple = [a for a in args if "=" in a and not a.startswith("-") and "/" not in a.split("=", 1)[0]]
    chosen: list[str] = []
    for arg in simple:
        key, value = arg.split("=", 1)
        group = key.lstrip("+")
        if group in (*AXES, "experiment"):
            folder = CONF_DIR / group
            options = sorted(p.stem for p in folder.glob("*.yaml"))
            values = [v.strip() for v in value.split(",")] if "(" not in value else []
            for option in values:
                if option not in options:
                    close = difflib.get_close_matches(option, options, n=3, cutoff=0.5)
                    guess = f"did you mean {' or '.join(f'{key}={c}' for c in close)}? " if close else ""
                    return f"{key}={option} is not an option of {group}; {guess}The options are: {', '.join(options)}."
            if values:
                chosen.append(f"{key}={values[0]}")
    try:
        cfg, _ = compose(chosen)
    except Exception:  # let Hydra say what is wrong with the groups themselves
        return None
    for arg in simple:
        key = arg.split("=", 1)[0]
        if key.startswith(("+", "~", "hydra.")) or key in AXES or "." not in key:
            if "." not in key and not key.startswith(("+", "~")) and key not in AXES and key not in cfg and key != "hydra":
                return _unknown_key(key, [str(k) for k in cfg.keys()], difflib)
            continue
        parent, leaf = key.rsplit(".", 1)
        node = OmegaConf.select(cfg, parent, default=None)
        if isinstance(node, DictConfig) and leaf not in node:
            return _unknown_key(key, [f"{parent}.{k}" for k in node.keys()], difflib)
    return None


def _unknown_key(key: str, siblings: list[str], difflib) -> str:
    close = difflib.get_close_matches(key, siblings, n=3, cutoff=0.5)
    guess = f"did you mean {' or '.join(close)}? " if close else ""
    return (f"{key} is not a key of this config; {guess}The keys there are: {', '.join(sorted(siblings))} "
            f"(`+{key}=VALUE` adds a new one).")

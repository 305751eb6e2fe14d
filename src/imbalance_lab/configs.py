"""Hydra config helpers: call a group's `_target_`, read the chosen options, flatten params,
hash a config into its `run_key`, and compose configs outside the command line (tests, doctor)."""

from __future__ import annotations

import hashlib
import inspect
import json
from typing import Any

import yaml
from hydra.utils import get_method
from omegaconf import DictConfig, OmegaConf

from imbalance_lab.errors import ImbalanceLabError
from imbalance_lab.paths import CONF_DIR, project_root

AXES = ("dataset", "model", "activation", "loss", "bias_init", "class_weight", "sampler", "decision",
        "trainer", "tracking")
# The axes that name a run, in the order of DESIGN.md's example `mlp·softmax·focal·log_prior·balanced·smote·s0`.
NAME_AXES = ("model", "activation", "loss", "bias_init", "class_weight", "sampler")
UNHASHED_KEYS = ("tracking", "hydra")


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("il.project_root"):
        OmegaConf.register_new_resolver("il.project_root", lambda: str(project_root()))


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
    """The config as plain data, interpolations resolved: what run_key, flat_params and yaml_text
    read (a run converts it once and hands it to all three: ~1.3 ms each time)."""
    return OmegaConf.to_container(cfg, resolve=True)


def flat_params(cfg: DictConfig, choices: dict[str, str], plain: dict | None = None) -> dict[str, str]:
    """Every axis option and every hyperparameter, flattened: `loss=focal`, `loss.gamma=2`, ...
    (`plain`: resolved(cfg), if at hand)."""
    plain = resolved(cfg) if plain is None else plain
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


def run_key(cfg: DictConfig, plain: dict | None = None) -> str:
    """Hash of the resolved config without tracking/hydra keys: same key, same training."""
    plain = {k: v for k, v in (resolved(cfg) if plain is None else plain).items() if k not in UNHASHED_KEYS}
    return hashlib.sha256(json.dumps(plain, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _fast_dumper() -> type | None:
    """OmegaConf's YAML dumper (strings that would read back as another type are quoted) over
    libyaml's emitter: the same text, ~5x faster than OmegaConf.to_yaml. None without libyaml or
    if OmegaConf moved its (private) dumper."""
    try:
        from omegaconf._utils import OmegaConfDumper
    except ImportError:
        return None
    if not hasattr(yaml, "CSafeDumper"):
        return None
    dumper = type("FastDumper", (yaml.CSafeDumper,), {})  # plain data only: anything else raises (yaml_text)
    dumper.add_representer(str, OmegaConfDumper.str_representer)
    return dumper


_FAST_DUMPER = _fast_dumper()


def yaml_text(node: DictConfig, plain: dict | None = None) -> str:
    """OmegaConf.to_yaml(node, resolve=True), faster (a run writes its config.yaml and keys its
    kept trainer and model builds by configs as text); `plain`: resolved(node), if at hand.
    libyaml escapes what it will not print as is (characters beyond U+FFFF, line separators)
    where PyYAML's emitter may not: a text with an escape (or any backslash) is written by
    OmegaConf instead, as is a config holding what only OmegaConf writes (an Enum in `plain`)."""
    if _FAST_DUMPER is None:
        return OmegaConf.to_yaml(node, resolve=True)
    container = OmegaConf.to_container(node, resolve=True, enum_to_str=True) if plain is None else plain
    try:
        text = yaml.dump(container, default_flow_style=False, allow_unicode=True, sort_keys=False, Dumper=_FAST_DUMPER)
    except yaml.YAMLError:
        return OmegaConf.to_yaml(node, resolve=True)
    return OmegaConf.to_yaml(node, resolve=True) if "\\" in text else text


def run_name(choices: dict[str, str], seed: int) -> str:
    parts = [choices.get(axis, "?") for axis in NAME_AXES]
    decision = choices.get("decision", "argmax")
    if decision != "argmax":
        parts.append(decision)
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

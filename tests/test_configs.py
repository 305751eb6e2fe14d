"""Every option of every group composes; run keys ignore tracking; names follow the contract."""

from __future__ import annotations

import pytest

from imbalance_lab.configs import AXES, compose, flat_params, run_key, run_name
from imbalance_lab.paths import CONF_DIR

OPTIONS = [(group, path.stem) for group in AXES for path in sorted((CONF_DIR / group).glob("*.yaml"))]
EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def test_every_group_has_options():
    assert {g for g, _ in OPTIONS} == set(AXES)


@pytest.mark.parametrize(("group", "option"), OPTIONS, ids=[f"{g}={o}" for g, o in OPTIONS])
def test_every_option_composes(group, option):
    cfg, choices = compose([f"{group}={option}"])
    assert choices[group] == option
    assert set(AXES) <= set(cfg.keys())


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes(name):
    cfg, _ = compose([f"+experiment={name}"])
    assert cfg.tracking.experiment == name


def test_tracking_uri_is_absolute_sqlite_at_project_root(monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    cfg, _ = compose([])
    assert cfg.tracking.uri == f"sqlite:///{CONF_DIR.parent / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////elsewhere/x.db")
    assert compose([])[0].tracking.uri == "sqlite:////elsewhere/x.db"


def test_run_key_ignores_tracking_but_not_remedies():
    base = run_key(compose([])[0])
    assert run_key(compose(["tracking.experiment=other", "tracking.uri=sqlite:////tmp/x.db"])[0]) == base
    assert run_key(compose(["sampler=smote"])[0]) != base
    assert run_key(compose(["seed=1"])[0]) != base


def test_params_are_flat_with_axis_options():
    cfg, choices = compose(["sampler=smote", "model=mlp"])
    params = flat_params(cfg, choices)
    assert params["sampler"] == "smote" and params["sampler.k_neighbors"] == "5"
    assert params["model.widths"] == "[64, 32]"
    assert "tracking.uri" not in params and not any("_target_" in k for k in params)


def test_run_name_matches_design_example():
    choices = {"model": "mlp", "activation": "softmax", "loss": "focal", "bias_init": "log_prior",
               "class_weight": "balanced", "sampler": "smote", "decision": "argmax"}
    assert run_name(choices, 0) == "mlp·softmax·focal·log_prior·balanced·smote·s0"


@pytest.mark.parametrize("overrides", [[f"+experiment={p.stem}"] for p in sorted((CONF_DIR / "experiment").glob("*.yaml"))]
                         + [["dataset=csv", "dataset.path=/tmp/x.csv", "model=cnn", "loss=focal", "decision=tuned_threshold"]])
def test_yaml_text_is_omegaconfs_yaml(overrides):
    """A run's config.yaml (configs.yaml_text, on libyaml's emitter) is the text OmegaConf.to_yaml
    writes (the reference), also for strings that would read back as another type, and for unicode."""
    import yaml
    from omegaconf import OmegaConf

    from imbalance_lab import configs
    from imbalance_lab.configs import yaml_text

    assert configs._FAST_DUMPER is not None or not yaml.__with_libyaml__  # the fast path is the one tested
    cfg = compose(overrides)[0]
    tricky = OmegaConf.create({"a": "true", "b": "1e-3", "c": "null", "d": "0x1F", "e": "étoile", "f": ["1", 1, 1.5],
                               "g": {"h": "", "i": "a: b", "j": None}, "k": "~", "l": "1_000", "m": "long " * 40,
                               "n": "run \U0001F600", "o": "a\x85b", "p": "a\u2028b", "q": "C:\\data\\x.csv"})
    for node in (cfg, cfg.model, cfg.loss, tricky):
        assert yaml_text(node) == OmegaConf.to_yaml(node, resolve=True)
        assert yaml_text(node, configs.resolved(node)) == OmegaConf.to_yaml(node, resolve=True)


def test_a_runs_one_resolved_config_gives_the_same_key_params_and_yaml():
    """execute() resolves a run's config once and hands it to run_key, flat_params and yaml_text:
    the same results as each resolving it; a value only OmegaConf writes (an Enum) goes to it."""
    import enum

    from omegaconf import OmegaConf

    from imbalance_lab.configs import resolved, yaml_text

    cfg, choices = compose(["sampler=smote", "loss=focal", "seed=3"])
    plain = resolved(cfg)
    assert run_key(cfg, plain) == run_key(cfg) and flat_params(cfg, choices, plain) == flat_params(cfg, choices)
    assert yaml_text(cfg, plain) == yaml_text(cfg)
    colour = enum.Enum("Colour", "RED")
    node = OmegaConf.create({"e": colour.RED, "x": 1})
    assert yaml_text(node, resolved(node)) == OmegaConf.to_yaml(node, resolve=True) == "e: RED\nx: 1\n"

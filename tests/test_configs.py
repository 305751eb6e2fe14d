"""Every option of every group composes; run keys ignore tracking; names follow the contract."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

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


def test_run_names_carry_every_group_that_is_not_its_default():
    choices = {"model": "mlp", "activation": "softmax", "loss": "ce", "bias_init": "zeros",
               "class_weight": "none", "sampler": "none", "decision": "argmax", "trainer": "quick",
               "dataset": "digits", "tracking": "server"}
    assert run_name(choices, 2) == "mlp·softmax·ce·zeros·none·none·trainer=quick·digits·s2"
    assert run_name({**choices, "trainer": "default", "dataset": "synthetic", "decision": "tuned_threshold"}, 0) \
        == "mlp·softmax·ce·zeros·none·none·tuned_threshold·s0"


BAD_VALUES = [  # override, fragment of the one sentence
    ("trainer.epochs=-1", "trainer.epochs=-1 is not a whole number >= 1"),
    ("trainer.batch_size=0", "trainer.batch_size=0 is not a whole number >= 1"),
    ("trainer.epochs=abc", "trainer.epochs='abc' is not a whole number"),
    ("seed=-1", "seed=-1 is not a whole number >= 0"),
    ("trainer.learning_rate=-0.01", "trainer.learning_rate=-0.01 is not a number in (0, inf)"),
    ("dataset.val_size=1.5", "dataset.val_size=1.5 is not a number in (0, 1)"),
    ("model.input_dropout=1.0", "model.input_dropout=1.0 is not a number in [0, 1)"),
    ("trainer.nesterov=maybe", "trainer.nesterov='maybe' is not true or false"),
]


@pytest.mark.parametrize(("override", "sentence"), BAD_VALUES, ids=[b[0] for b in BAD_VALUES])
def test_a_value_out_of_range_is_one_sentence_naming_key_value_and_range(override, sentence):
    from imbalance_lab.configs import validate
    from imbalance_lab.errors import ImbalanceLabError

    with pytest.raises(ImbalanceLabError) as caught:
        validate(compose([override])[0])
    assert sentence in str(caught.value) and "give e.g." in str(caught.value)


def test_every_shipped_option_and_study_passes_the_checks():
    from imbalance_lab.configs import validate

    for group, option in OPTIONS:
        validate(compose([f"{group}={option}"])[0])
    for name in EXPERIMENTS:
        validate(compose([f"+experiment={name}"])[0])


MISSPELT = [  # command line, fragment of the sentence
    (["loss=focl"], "did you mean loss=focal?"),
    (["-m", "sampler=none,smot"], "did you mean sampler=smote"),
    (["+experiment=quickstrt"], "did you mean +experiment=quickstart?"),
    (["trainer.epoch=5"], "did you mean trainer.epochs"),
    (["sampler=smote", "sampler.k_neighbours=3"], "did you mean sampler.k_neighbors"),
    (["dataset.val_fraction=0.3"], "did you mean dataset.val_size"),
]


@pytest.mark.parametrize(("args", "sentence"), MISSPELT, ids=[" ".join(m[0]) for m in MISSPELT])
def test_a_misspelt_option_or_key_gets_the_closest_names(args, sentence):
    from imbalance_lab.configs import check_overrides

    assert sentence in check_overrides(args)


def test_correct_command_lines_pass_the_spelling_check():
    from imbalance_lab.configs import check_overrides

    for args in (["-m", "loss=ce,focal", "seed=0,1"], ["+experiment=quickstart", "trainer.epochs=5"],
                 ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], ["+dataset.extra=1"], ["seed=range(3)"],
                 ["sampler=smote", "sampler.k_neighbors=3"]):
        assert check_overrides(args) is None, args


# The remedy options whose target is our own function or class (samplers mostly name imbalanced-learn's).
REMEDY_TARGETS = [(group, path.stem) for group in ("loss", "class_weight", "bias_init", "decision", "sampler")
                  for path in sorted((CONF_DIR / group).glob("*.yaml"))
                  if str(OmegaConf.load(path).get("_target_") or "").startswith("imbalance_lab.")]


@pytest.mark.parametrize(("group", "option"), REMEDY_TARGETS, ids=[f"{g}={o}" for g, o in REMEDY_TARGETS])
def test_python_defaults_agree_with_the_shipped_configs(group, option):
    """Called from Python without a config, a remedy behaves as its option does on the command line."""
    import inspect

    from hydra.utils import get_object

    node = OmegaConf.to_container(compose([f"{group}={option}"])[0][group], resolve=True)
    parameters = inspect.signature(get_object(node["_target_"])).parameters
    for key, value in node.items():
        if not key.startswith("_"):
            assert parameters[key].default == value, f"{group}={option}: {key} default {parameters[key].default!r} vs {value!r}"

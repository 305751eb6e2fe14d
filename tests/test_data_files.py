"""Real benchmark files (KEEL) and the user's own CSV/Parquet files, including every bad-input case."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imbalance_lab.configs import compose
from imbalance_lab.data import keel, load_splits
from imbalance_lab.data.tabular import frame_to_raw
from imbalance_lab.errors import ImbalanceLabError

from conftest import client, run_cli

# Sizes and imbalance ratios as published on the KEEL imbalanced-data page.
PUBLISHED = {"ecoli1": (336, 3.36), "glass5": (214, 22.78), "yeast4": (1484, 28.1), "page-blocks0": (5472, 8.79),
             "pima": (768, 1.87), "abalone19": (4174, 129.44), "car-good": (1728, 24.04)}


def dataset(*overrides: str):
    return compose(list(overrides))[0].dataset


# -- KEEL -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(PUBLISHED))
def test_keel_reader_reproduces_published_size_and_imbalance_ratio(name):
    rows, ratio = PUBLISHED[name]
    summary = keel.summarise(name)
    assert summary.rows == rows and summary.imbalance_ratio == pytest.approx(ratio, abs=0.01)
    assert summary.minority == "positive"
    raw = keel.load_keel(name)
    assert len(raw.y) == rows and np.isfinite(raw.X).all()


def test_keel_nominal_attributes_are_one_hot_and_split_keeps_the_ratio():
    raw = keel.load_keel("car-good")   # six nominal attributes with 4+4+4+3+3+3 values
    assert raw.X.shape == (1728, 21) and set(np.unique(raw.X)) == {0.0, 1.0}
    data = load_splits(dataset("dataset=keel", "dataset.name=ecoli1"), seed=0)
    assert data.labels == ("negative", "positive") and data.imbalance_ratio == pytest.approx(3.36, abs=0.1)


def test_keel_inputs_outputs_header_and_missing_values(tmp_path):
    path = tmp_path / "toy.dat"
    path.write_text(
        "@relation toy\n@attribute Class {pos, neg}\n@attribute 'a b' real [0, 1]\n@attribute colour {red, blue}\n"
        "@inputs 'a b', colour\n@outputs Class\n@data\npos, 0.5, red\nneg, ?, blue\nneg, 0.25, <null>\n")
    toy = keel.read_dat(path)
    assert toy.inputs == ("a b", "colour") and toy.output == "Class"
    assert list(toy.frame.columns) == ["a b", "colour", "Class"]
    assert toy.frame["a b"].dtype.kind == "f" and int(toy.frame.isna().sum().sum()) == 2
    with pytest.raises(ImbalanceLabError, match=r"2 missing or infinite values .*'a b': 1, 'colour': 1.*dataset.na=drop"):
        frame_to_raw(toy.frame, "Class", name="toy")


def test_keel_mistyped_name_suggests_the_closest_and_the_list_has_them_all():
    with pytest.raises(ImbalanceLabError, match=r"'ecolli1'.*did you mean ecoli1"):
        keel.load_keel("ecolli1")
    listed = {s.name: s for s in keel.list_datasets()}
    assert len(listed) >= 90 and "test" not in listed
    assert listed["yeast4"].classes == {"negative": 1433, "positive": 51}
    assert "ecoli1" in keel.format_table() and "3.36" in keel.format_table()


def test_keel_missing_values_follow_dataset_na():
    with pytest.raises(ImbalanceLabError, match=r"4 missing .*'ca': 3, 'thal': 1"):
        keel.load_keel("cleveland-0_vs_4")
    assert len(keel.load_keel("cleveland-0_vs_4", na="drop").y) == 173
    data = load_splits(dataset("dataset=keel", "dataset.name=cleveland-0_vs_4", "dataset.na=impute"), seed=0)
    assert sum(data.class_counts(s).sum() for s in ("train", "val", "test")) == 177
    assert all(np.isfinite(getattr(data, f"X_{s}")).all() for s in ("train", "val", "test"))


# -- the user's own files -----------------------------------------------------------------------

def write(tmp_path, name: str, frame: pd.DataFrame):
    path = tmp_path / name
    frame.to_parquet(path) if name.endswith(".parquet") else frame.to_csv(path, index=False)
    return path


def text(folder, content: str):
    (folder / "t.csv").write_text(content)
    return folder / "t.csv"


def toy_frame(n: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    label = np.where(np.arange(n) % 4 == 0, "rare", "common")
    return pd.DataFrame({"x": rng.normal(size=n) + (label == "rare"), "colour": rng.choice(["red", "blue", "green"], n),
                         "label": label})


def test_csv_with_string_labels_categoricals_and_a_relative_path(tmp_path, monkeypatch):
    write(tmp_path, "train.csv", toy_frame())
    monkeypatch.chdir(tmp_path)
    data = load_splits(dataset("dataset=csv", "dataset.path=train.csv", "dataset.target=label"), seed=0)
    assert data.labels == ("common", "rare") and data.input_shape == (4,)   # x + 3 colour indicators
    assert sum(data.class_counts(s).sum() for s in ("train", "val", "test")) == 60
    assert data.imbalance_ratio == pytest.approx(3.0, abs=0.3)


def test_parquet_with_integer_labels_and_a_fixed_test_file(tmp_path):
    frame = toy_frame(80).assign(label=lambda f: np.where(f.label == "rare", 7, 3))
    train = write(tmp_path, "train.parquet", frame.iloc[:60])
    test = write(tmp_path, "test.parquet", frame.iloc[60:])
    data = load_splits(dataset("dataset=csv", f"dataset.path={train}", "dataset.target=label",
                               f"dataset.test_path={test}"), seed=0)
    assert data.labels == ("3", "7") and data.class_counts("test").tolist() == [15, 5]


BAD_INPUTS = {
    "missing file": (lambda d: d / "nope.csv", "label", r"dataset.path=.*nope.csv does not exist"),
    "missing target": (lambda d: write(d, "t.csv", toy_frame()), "y",
                       r"no target column 'y'.*\['x', 'colour', 'label'\]"),
    "nan and inf": (lambda d: write(d, "t.csv", toy_frame().assign(x=lambda f: f.x.where(f.index > 2, np.nan))
                                    .assign(x=lambda f: f.x.mask(f.index == 5, np.inf))), "label",
                    r"has 4 missing or infinite values \(per column 'x': 4\); set dataset.na=drop"),
    "single class": (lambda d: write(d, "t.csv", toy_frame().assign(label="same")), "label",
                     r"single class \(\['same'\]\)"),
    "class with one row": (lambda d: write(d, "t.csv", pd.concat([toy_frame(), toy_frame(1).assign(label="lonely")])),
                           "label", r"Class 'lonely' has 1 row"),
    "empty file": (lambda d: text(d, ""), "label", r"t.csv is empty"),
    "header only": (lambda d: text(d, "x,label\n"), "label", r"has no data rows"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_sentence(case, tmp_path):
    make_path, target, message = BAD_INPUTS[case]
    path = make_path(tmp_path)
    with pytest.raises(ImbalanceLabError, match=message) as caught:
        load_splits(dataset("dataset=csv", f"dataset.path={path}", f"dataset.target={target}"), seed=0)
    assert "\n" not in str(caught.value) and str(caught.value).endswith(".")


def test_test_file_with_different_columns_is_named(tmp_path):
    train = write(tmp_path, "train.csv", toy_frame())
    test = write(tmp_path, "test.csv", toy_frame().rename(columns={"colour": "color"}))
    with pytest.raises(ImbalanceLabError, match=r"missing in test: \['colour'\], only in test: \['color'\]"):
        load_splits(dataset("dataset=csv", f"dataset.path={train}", "dataset.target=label",
                            f"dataset.test_path={test}"), seed=0)


def test_na_drop_and_impute(tmp_path):
    frame = toy_frame().assign(x=lambda f: f.x.where(f.index % 10 != 1, np.nan))   # 6 missing
    path = write(tmp_path, "t.csv", frame)
    base = ["dataset=csv", f"dataset.path={path}", "dataset.target=label"]
    dropped = load_splits(dataset(*base, "dataset.na=drop"), seed=0)
    assert sum(dropped.class_counts(s).sum() for s in ("train", "val", "test")) == 54
    imputed = load_splits(dataset(*base, "dataset.na=impute"), seed=0)
    assert sum(imputed.class_counts(s).sum() for s in ("train", "val", "test")) == 60
    assert np.isfinite(imputed.X_train).all() and np.isfinite(imputed.X_test).all()


def test_bad_file_through_the_command_fails_the_run_not_leaves_it_running(tmp_path, store):
    (tmp_path / "data").mkdir()
    write(tmp_path / "data", "t.csv", toy_frame())
    proc = run_cli("dataset=csv", "dataset.path=data/t.csv", "dataset.target=labels", "trainer=quick",
                   cwd=tmp_path, store=store, check=False)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "no target column 'labels'" in proc.stderr.strip().splitlines()[-1]
    runs = client(store).search_runs([client(store).get_experiment_by_name("imbalance-lab").experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"] and "labels" in runs[0].data.tags["error"]

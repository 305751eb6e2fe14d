"""Real benchmark files (KEEL) and the user's own CSV/Parquet files; the checks that stop a bad table
(label leaks, numbers float32 cannot hold) against independent references. What each bad input
says through the command: tests/test_bad_input.py."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from imbalance_lab.configs import compose
from imbalance_lab.data import keel, load_splits
from imbalance_lab.data.tabular import frame_to_raw
from imbalance_lab.errors import ImbalanceLabError

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


def test_na_drop_and_impute(tmp_path):
    frame = toy_frame().assign(x=lambda f: f.x.where(f.index % 10 != 1, np.nan))   # 6 missing
    path = write(tmp_path, "t.csv", frame)
    base = ["dataset=csv", f"dataset.path={path}", "dataset.target=label"]
    dropped = load_splits(dataset(*base, "dataset.na=drop"), seed=0)
    assert sum(dropped.class_counts(s).sum() for s in ("train", "val", "test")) == 54
    imputed = load_splits(dataset(*base, "dataset.na=impute"), seed=0)
    assert sum(imputed.class_counts(s).sum() for s in ("train", "val", "test")) == 60
    assert np.isfinite(imputed.X_train).all() and np.isfinite(imputed.X_test).all()


# -- label leaks and numbers float32 cannot hold --------------------------------------------------

def reference_leaks(frame: pd.DataFrame, target: str) -> set[str]:
    """Independently of label_leaks: a column is the label recoded one-to-one iff its cross-table with
    the label (missing cells aside) is square with exactly one non-empty cell in each row and column."""
    leaks = set()
    for column in frame.columns.drop(target):
        table = pd.crosstab(frame[column], frame[target]) > 0
        if table.shape[0] == table.shape[1] == frame[target].nunique() and \
                (table.sum(axis=0) == 1).all() and (table.sum(axis=1) == 1).all():
            leaks.add(column)
    return leaks


def test_label_leaks_match_the_cross_table_reference():
    """3,000 rows, so that the first 1,000 (which rule columns out early) are a strict part of them."""
    from imbalance_lab.data.tabular import label_leaks

    rng = np.random.default_rng(0)
    n = 3000
    label = rng.choice(["ant", "bee", "cat"], n, p=[0.7, 0.2, 0.1])
    codes = pd.Series(label).map({"ant": 10, "bee": -3, "cat": 7}).to_numpy()
    late_break = codes.astype(float)
    late_break[2500] = 99.0                                      # one-to-one on the first 2,500 rows only
    with_gaps = np.where(rng.random(n) < 0.1, np.nan, codes)     # one-to-one where present
    frame = pd.DataFrame({
        "copy": label, "codes": codes, "shifted": codes * 2.5 + 1, "with_gaps": with_gaps,
        "coarse": np.where(label == "ant", "a", "other"),       # many classes to one value
        "finer": np.where(label == "ant", rng.choice(["a1", "a2"], n), label),  # one class to two values
        "late_break": late_break, "continuous": rng.normal(size=n),
        "binary": rng.integers(0, 2, n), "three": rng.choice(["x", "y", "z"], n), "label": label,
    })
    expected = reference_leaks(frame, "label")
    assert expected == {"copy", "codes", "shifted", "with_gaps"}
    assert set(label_leaks(frame.drop(columns=["label"]), frame["label"])) == expected


def test_a_leak_stops_the_table_and_dataset_drop_removes_it(tmp_path):
    path = write(tmp_path, "t.csv", toy_frame().assign(label_copy=lambda f: f.label, id=range(60)))
    base = ["dataset=csv", f"dataset.path={path}", "dataset.target=label"]
    with pytest.raises(ImbalanceLabError, match=r"Label leak in .*t.csv: column\(s\) 'label_copy'.*dataset.drop=\[label_copy\]"):
        load_splits(dataset(*base), seed=0)
    data = load_splits(dataset(*base, "dataset.drop=[label_copy,id]"), seed=0)
    assert data.input_shape == (4,)   # x + 3 colour indicators: the copy and the id are gone


def test_numbers_beyond_float32_are_named_and_dropped_with_their_rows_on_request(tmp_path):
    frame = toy_frame().assign(x=lambda f: f.x.mask(f.index.isin([3, 9]), 1e300).mask(f.index == 20, -1e39),
                               big=lambda f: f.x * 0 + 3e38)   # within float32: kept
    path = write(tmp_path, "t.csv", frame)
    base = ["dataset=csv", f"dataset.path={path}", "dataset.target=label"]
    for na in ("error", "impute"):
        with pytest.raises(ImbalanceLabError, match=r"beyond float32's range .* in 'x': 3 row\(s\);"):
            load_splits(dataset(*base, f"dataset.na={na}"), seed=0)
    dropped = load_splits(dataset(*base, "dataset.na=drop"), seed=0)
    assert sum(dropped.class_counts(s).sum() for s in ("train", "val", "test")) == 57
    assert np.isfinite(dropped.X_train).all()


def test_a_full_disk_is_recognised_through_the_errors_it_caused():
    import errno

    from mlflow.exceptions import MlflowException

    from imbalance_lab.errors import disk_full

    sqlite = MlflowException("(sqlite3.OperationalError) database or disk is full\n[SQL: UPDATE runs]")
    try:
        try:
            raise sqlite
        except MlflowException:
            raise RuntimeError("while ending the run") from None  # the full disk is still its __context__
    except RuntimeError as err:
        assert disk_full(err) is sqlite
    no_space = OSError(errno.ENOSPC, "No space left on device", "/store/mlartifacts/x.png")
    assert disk_full(no_space) is no_space
    assert disk_full(MlflowException("(sqlite3.OperationalError) database is locked")) is None
    assert disk_full(OSError(errno.EACCES, "Permission denied")) is None

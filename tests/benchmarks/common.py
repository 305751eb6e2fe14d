"""Shared by the benchmarks: machine description, load, medians, interleaved (ABAB) timing, the
forum workloads' overrides, and writing a section of RESULTS.md."""

from __future__ import annotations

import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
RESULTS = HERE / "RESULTS.md"
BIN = Path(sys.executable).parent
QUICK = os.environ.get("QUICK", "") not in ("", "0")

# ../shared/workloads.md: the tabular forum user's data (269,501 training rows once the 20 %
# validation split is taken from 336,876) and their model, as imbalance-lab overrides.
TABLE = ["dataset=seed002_profile", f"dataset.n_train={60_000 if QUICK else 336_876}"]
THREAD_MODEL = ["model=mlp", "model.widths=[64,32,32,16]", "model.input_dropout=0.5", "model.max_norm=3",
                "activation=sigmoid", "loss=ce", "trainer.optimizer=sgd", "trainer.learning_rate=0.01",
                "trainer.momentum=0.9", "trainer.nesterov=true", "trainer.batch_size=256"]
# imbalance-lab's default MLP (conf/model/mlp.yaml: 64-32, softmax, Adam 1e-3) on the same table.
DEFAULT_MODEL: list[str] = []
# The photo thread's stand-in images for model=cnn (seed003_profile: 21,014 8x8 training images).
CNN = ["dataset=seed003_profile", "model=cnn"]


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


def write_section(title: str, body: str, command: str) -> None:
    """Replace (or append) `## title` in RESULTS.md with the latest numbers."""
    header = f"## {title}"
    stamp = (f"{header}\n\n`{command}` — {time.strftime('%Y-%m-%d %H:%M %Z')}, {machine()}, "
             f"{load_average()} at the end of the run{' (QUICK=1)' if QUICK else ''}.\n\n{body.strip()}\n")
    text = RESULTS.read_text() if RESULTS.exists() else "# Benchmark results\n"
    parts = re.split(r"(?m)^(?=## )", text)
    kept = [p for p in parts if not p.startswith(header + "\n")]
    RESULTS.write_text("".join(kept).rstrip() + "\n\n" + stamp)
    print(stamp)


def run(*command: str, cwd: Path | None = None, env: dict | None = None, timeout: int = 3600) -> tuple[float, str]:
    """Wall seconds and standard output of one whole process."""
    start = time.perf_counter()
    proc = subprocess.run(list(command), cwd=cwd, env={**os.environ, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return elapsed, proc.stdout


def epoch_seconds(stdout: str) -> list[float]:
    """The `epoch N S` lines a benchmark process prints: seconds of each epoch."""
    return [float(line.split()[2]) for line in stdout.splitlines() if line.startswith("epoch ")]

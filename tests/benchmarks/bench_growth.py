"""Benchmark 4: growth. Time per epoch and peak memory of the training path at 10k, 30k, 100k and
270k training rows (each size in a fresh process), and the time of each sampler at 270k rows, with
and without the per-process cache of resampled training sets (each sampler in its own process,
stopped at a time cap and reported as "> cap")."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from common import PROFILE_ROWS, QUICK, REPO, median, profile_data, write_section

SIZES = (10_000, 30_000, 100_000) if QUICK else (10_000, 30_000, 100_000, PROFILE_ROWS)
SAMPLER_CAP_S = 10 if QUICK else 30
ROUNDS = 1 if QUICK else 2
EPOCHS = 3  # at the largest size; smaller sizes run more epochs (same rows seen, a steadier median)


def epochs_for(n_rows: int) -> int:
    return min(50, max(EPOCHS, -(-EPOCHS * PROFILE_ROWS // n_rows)))


def rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def train_epochs(n_rows: int, X, y, X_val, y_val):
    """Seconds per epoch of the training path (validation included) on one fresh model."""
    import numpy as np
    from common import epoch_times, trainer_cfg

    from imbalance_lab import training
    from imbalance_lab.models.mlp import build_mlp
    from imbalance_lab.remedies.losses import categorical_crossentropy

    training.seed_everything(0)
    model = build_mlp((157,), 5, np.zeros(5), widths=(64, 32, 32, 16))
    epochs = epochs_for(n_rows)
    cfg = trainer_cfg(epochs=epochs, patience=epochs + 1, jit_compile=True)
    with epoch_times() as times:
        training.fit(model, categorical_crossentropy("softmax"), X, y, None, X_val, y_val, 5, cfg)
    return times


def epoch_times_interleaved(rounds: int) -> tuple[dict[int, list[float]], dict[int, list[float]]]:
    """Time per epoch at every size in this one process, sizes interleaved round by round (ABBA),
    so that the machine's drift over minutes (seen here: the same epoch 1.5x slower in one minute
    than in the next) hits every size alike; one median per size and round (first epoch left out),
    for the whole epoch and for its training part (the epoch minus its end-of-epoch validation)."""
    data = {n: (*profile_data(n), *profile_data(n // 4, seed=1)) for n in SIZES}
    whole: dict[int, list[float]] = {n: [] for n in SIZES}
    training: dict[int, list[float]] = {n: [] for n in SIZES}
    for r in range(rounds):
        for n in (SIZES if r % 2 == 0 else SIZES[::-1]):
            times = train_epochs(n, *data[n])
            whole[n].append(median(times[1:]))
            training[n].append(median([t - v for t, v in zip(times[1:], times.validation[1:], strict=True)]))
    return whole, training


def one_size(n_rows: int, pipeline_memory: bool = True) -> dict:
    """In a fresh process: train EPOCHS epochs on n_rows (+ n_rows/4 validation rows), the arrays
    in the data pipeline's memory (shared with TensorFlow) or, if not, plain NumPy arrays (copied once)."""
    import numpy as np

    from imbalance_lab.models.mlp import build_mlp

    build_mlp((157,), 5, np.zeros(5), widths=(64, 32, 32, 16))  # TensorFlow and Keras loaded before the baseline
    Path("/proc/self/clear_refs").write_text("5") if Path("/proc/self/clear_refs").exists() else None  # reset VmHWM
    baseline = rss_bytes()
    X, y = profile_data(n_rows, pipeline_memory=pipeline_memory)
    X_val, y_val = profile_data(n_rows // 4, seed=1, pipeline_memory=pipeline_memory)
    times = train_epochs(n_rows, X, y, X_val, y_val)
    return {"rows": n_rows, "epoch_s": median(times[1:]), "peak_extra": peak_rss_bytes() - baseline,
            "train_bytes": X.nbytes + y.nbytes, "val_bytes": X_val.nbytes + y_val.nbytes}


def one_sampler(name: str, n_rows: int) -> dict:
    """In a fresh process: resample through the cache twice; the second call must be a hit."""
    from imbalance_lab import resample_cache
    from imbalance_lab.configs import compose

    cfg = compose([f"sampler={name}"])[0].sampler  # composed as a run sees it (e.g. ${seed} resolved)
    X, y = profile_data(n_rows)
    labels = tuple(str(c) for c in range(5))
    start = time.perf_counter()
    first = resample_cache.cached_resample(cfg, 0, X, y, labels, fingerprint="bench")
    computed = time.perf_counter() - start
    start = time.perf_counter()
    second = resample_cache.cached_resample(cfg, 0, X, y, labels, fingerprint="bench")
    cached = time.perf_counter() - start
    return {"sampler": name, "computed_s": computed, "cached_s": cached, "rows_after": len(first.y),
            "same_object": first is second, "resamplings": resample_cache.computed["count"]}


def in_subprocess(args: list[str], timeout: float | None) -> dict | None:
    try:
        proc = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, timeout=timeout,
                              cwd=Path(__file__).parent)
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or ["?"])[-1]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main():
    growth = {n: [] for n in SIZES}
    for r in range(ROUNDS):
        for n in (SIZES if r % 2 == 0 else SIZES[::-1]):
            growth[n].append(in_subprocess(["--size", str(n)], timeout=None))
    largest = SIZES[-1]
    in_process, training_part = epoch_times_interleaved(3 if QUICK else 5)
    foreign = [in_subprocess(["--size-foreign", str(largest)], timeout=None) for _ in range(ROUNDS)]
    per_row_largest = median(in_process[largest]) / largest
    train_per_row_largest = median(training_part[largest]) / largest
    rows = ["| training rows | s/epoch (median) | s/epoch per 100k rows | vs linear from the largest | "
            "training part of the epoch: s, vs linear | end-of-epoch validation, s | "
            "s/epoch, fresh process per size | peak memory above baseline | / training data size |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for n in SIZES:
        epoch_s, train_s = median(in_process[n]), median(training_part[n])
        extra = median([g["peak_extra"] for g in growth[n]])
        data = growth[n][0]["train_bytes"]
        alone = median([g["epoch_s"] for g in growth[n]])
        rows.append(f"| {n:,} | {epoch_s:.3f} | {epoch_s / n * 1e5:.3f} | **{epoch_s / (per_row_largest * n):.2f}x** | "
                    f"{train_s:.3f}, **{train_s / (train_per_row_largest * n):.2f}x** | {epoch_s - train_s:.4f} | "
                    f"{alone:.3f} | {extra / 2**20:.0f} MiB | **{extra / data:.2f}x** |")
    extra = median([g["peak_extra"] for g in foreign])
    rows.append(f"| {largest:,}, plain NumPy arrays (not from the pipeline: copied once) | "
                f" | | | | | {median([g['epoch_s'] for g in foreign]):.3f} | {extra / 2**20:.0f} MiB | "
                f"**{extra / foreign[0]['train_bytes']:.2f}x** |")
    small, large = median([g["peak_extra"] for g in growth[SIZES[0]]]), median([g["peak_extra"] for g in growth[largest]])
    data_small, data_large = growth[SIZES[0]][0]["train_bytes"], growth[largest][0]["train_bytes"]
    rows += ["", f"Marginal memory: from {SIZES[0]:,} to {largest:,} rows the peak grows "
             f"{(large - small) / (data_large - data_small):.2f} bytes per byte of training data (the fixed part, "
             f"{small / 2**20:.0f} MiB at {SIZES[0]:,} rows, is TensorFlow's runtime and XLA compiling, not data)."]
    rows += ["", f"s/epoch (median): all sizes trained in one process, interleaved over {len(in_process[largest])} rounds "
             "(ABBA), median over rounds of each round's median epoch (first epoch, with XLA compiling, left out); "
             "per round: " + "; ".join(f"{n:,}: " + ", ".join(f"{t:.3f}" for t in in_process[n]) for n in SIZES)
             + ". The fresh-process column times each size in its own process (where its memory is measured): "
             "the machine drifts between processes, so it is shown, not used for the linearity ratio."]
    rows += ["", "Per epoch includes the validation pass (a quarter as many rows as training). The training part "
             "is the epoch minus its end-of-epoch work (validation forward pass and loss, macro-F1, the best-weights "
             "copy when the epoch improved), each per-size median over rounds. Peak memory = the "
             "process's peak RSS minus its RSS before the data were made (TensorFlow and the model loaded), so it "
             "counts the training and validation arrays, any tensor copies and everything fit allocates; the "
             "ratio divides by the training arrays' bytes (X float32 + y)."]

    samplers = sorted(p.stem for p in (REPO / "conf" / "sampler").glob("*.yaml") if p.stem != "none")
    rows += ["", f"Samplers at {PROFILE_ROWS:,} training rows x 157 (each in its own process, cap {SAMPLER_CAP_S} s):", "",
             "| sampler | first call (computed) | second call (per-process cache) | rows after | resamplings run |",
             "| --- | --- | --- | --- | --- |"]
    for name in samplers:
        out = in_subprocess(["--sampler", name], timeout=SAMPLER_CAP_S + 15)  # + process and data start-up
        if out is None or ("computed_s" in out and out["computed_s"] > SAMPLER_CAP_S):
            rows.append(f"| {name} | > {SAMPLER_CAP_S} s (stopped) | - | - | - |")
        elif "error" in out:
            rows.append(f"| {name} | error: {out['error'][:120]} | - | - | - |")
        else:
            rows.append(f"| {name} | {out['computed_s']:.2f} s | {out['cached_s'] * 1e3:.3f} ms | {out['rows_after']:,} "
                        f"| {out['resamplings']} |")
    write_section("4. Growth: rows, memory, samplers", "\n".join(rows),
                  f"{'QUICK=1 ' if QUICK else ''}make bench (tests/benchmarks/bench_growth.py)")


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--size":
        print(json.dumps(one_size(int(sys.argv[2]))))
    elif len(sys.argv) == 3 and sys.argv[1] == "--size-foreign":
        print(json.dumps(one_size(int(sys.argv[2]), pipeline_memory=False)))
    elif len(sys.argv) == 3 and sys.argv[1] == "--sampler":
        print(json.dumps(one_sampler(sys.argv[2], PROFILE_ROWS)))
    else:
        main()

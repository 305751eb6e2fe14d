"""Every sampler at the forum user's size, exact vs approximate neighbours (issue 25).

1. fit_resample seconds of every sampler option at 269,501 x 157 (make_seed002_profile(n_train=269501),
   standardised as a run does), neighbors=exact and neighbors=approximate, each in its own process;
   exact runs are stopped after EXACT_BUDGET_S and reported as "> N s". neighbors=auto resolves to
   approximate at this size (neighbors.APPROXIMATE_FROM_ROWS).
2. Where approximate overtakes exact: every kNN sampler on the first n rows, both ways, interleaved;
   the smallest size from which approximate is faster for every sampler is auto's threshold.
3. recall@5 of ApproximateNeighbors against exact neighbours at 50,000 and 269,501 rows.
4. Downstream: test macro-F1 of the default MLP (3 seeds, 12 epochs at most) after each kNN sampler,
   exact vs approximate, on dataset=seed002_profile dataset.n_train=50000 (40,000 training rows).

QUICK=1: 50,000 rows in 1., sizes up to 20,000 in 2., 2 seeds of 5 epochs in 4.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np  # noqa: E402  (common sets TensorFlow's log level first)
from common import QUICK, REPO, load_average, write_section

FULL_ROWS = 50_000 if QUICK else 269_501
EXACT_BUDGET_S = int(os.environ.get("EXACT_BUDGET_S", 30 if QUICK else 120))
APPROXIMATE_BUDGET_S = 600
CROSSOVER_ROWS = (5_000, 20_000) if QUICK else (5_000, 10_000, 20_000, 40_000)
# The default MLP and trainer, epochs capped so that 48 runs take minutes on a shared machine.
DOWNSTREAM = ["dataset=seed002_profile", f"dataset.n_train={10_000 if QUICK else 50_000}",
              f"trainer.epochs={5 if QUICK else 12}"]
SEEDS = (0, 1) if QUICK else (0, 1, 2)
RECALL_K, RECALL_QUERIES = 5, 2_000
SAMPLERS = sorted(p.stem for p in (REPO / "conf" / "sampler").glob("*.yaml") if p.stem not in ("none", "balanced_batch"))


def knn_samplers() -> list[str]:
    from omegaconf import OmegaConf

    return [s for s in SAMPLERS if "neighbors" in OmegaConf.load(REPO / "conf" / "sampler" / f"{s}.yaml")]


def profile(n_rows: int):
    """seed002_profile's training rows, standardised on themselves as a run's `preprocess=standard`."""
    from sklearn.preprocessing import StandardScaler

    from imbalance_lab.data.profiles import make_seed002_profile

    raw = make_seed002_profile(n_train=n_rows)
    labels, y = np.unique(raw.y, return_inverse=True)
    return StandardScaler().fit_transform(raw.X).astype("float32"), y, tuple(labels)


def one_resample(option: str, neighbors: str, X, y, labels, seed: int = 0) -> dict:
    from imbalance_lab.configs import compose
    from imbalance_lab.remedies.sampling import make_sampler, neighbors_choice, resample

    cfg = compose([f"sampler={option}", *([f"sampler.neighbors={neighbors}"] if neighbors else [])])[0].sampler
    searched = neighbors_choice(cfg, len(X))
    out = resample(make_sampler(cfg, seed, len(X)), X, y, labels, searched)
    return {"seconds": out.seconds, "counts_after": out.counts_after, "neighbors": searched}


def in_process(data: Path, option: str, neighbors: str, budget: int) -> dict:
    """One fit_resample in a fresh process, stopped after `budget` seconds."""
    try:
        proc = subprocess.run([sys.executable, __file__, "--one", str(data), option, neighbors], capture_output=True,
                              text=True, timeout=budget + 30)   # + the process's imports and the data's loading
    except subprocess.TimeoutExpired:
        return {"seconds": None}
    if proc.returncode != 0:
        raise RuntimeError(f"{option} {neighbors} failed:\n{proc.stderr[-2000:]}")
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    return out if out["seconds"] <= budget else {**out, "seconds": None}


def seconds_text(result: dict, budget: int) -> str:
    return f"> {budget} s" if result["seconds"] is None else f"{result['seconds']:.1f} s"


def full_size(folder: Path) -> tuple[list[str], dict]:
    X, y, labels = profile(FULL_ROWS)
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", y)
    (folder / "labels.json").write_text(json.dumps(labels))
    knn = knn_samplers()
    rows = [f"`fit_resample` at {FULL_ROWS:,} x {X.shape[1]} (class counts {np.bincount(y).tolist()}), each in its own "
            f"process; exact stopped after {EXACT_BUDGET_S} s. neighbors=auto = approximate at this size.", "",
            "| sampler | exact | approximate (= auto) | rows after, exact | rows after, approximate |",
            "| --- | --- | --- | --- | --- |"]
    results = {}
    for i, option in enumerate(SAMPLERS):
        if option not in knn:
            r = in_process(folder, option, "", APPROXIMATE_BUDGET_S)
            rows.append(f"| {option} | {seconds_text(r, APPROXIMATE_BUDGET_S)} (no neighbours) | | {sum(r['counts_after'])} | |")
            continue
        order = ("exact", "approximate") if i % 2 else ("approximate", "exact")   # interleaved
        r = {nb: in_process(folder, option, nb, EXACT_BUDGET_S if nb == "exact" else APPROXIMATE_BUDGET_S)
             for nb in order}
        results[option] = r
        rows.append(f"| {option} | {seconds_text(r['exact'], EXACT_BUDGET_S)} | "
                    f"{seconds_text(r['approximate'], APPROXIMATE_BUDGET_S)} | "
                    f"{sum(r['exact']['counts_after']) if r['exact']['seconds'] else ''} | "
                    f"{sum(r['approximate']['counts_after'])} |")
        print(rows[-1], f"({load_average()})", flush=True)
    slowest = max(results, key=lambda o: results[o]["approximate"]["seconds"] or float("inf"))
    rows += ["", f"Slowest with neighbors=auto: {slowest}, {seconds_text(results[slowest]['approximate'], APPROXIMATE_BUDGET_S)} "
                 f"(target: every sampler <= 60 s on 2 cores). {load_average()} after this part."]
    return rows, results


def crossover() -> list[str]:
    X_all, y_all, labels = profile(max(CROSSOVER_ROWS))
    knn = knn_samplers()
    rows = ["Where approximate overtakes exact (in one process, exact and approximate alternating; "
            "seconds exact / approximate):", "",
            "| rows | " + " | ".join(knn) + " |", "| --- |" + " --- |" * len(knn)]
    faster_from = None
    for n in CROSSOVER_ROWS:
        X, y = X_all[:n], y_all[:n]
        cells, all_faster = [], True
        for i, option in enumerate(knn):
            order = ("exact", "approximate") if i % 2 else ("approximate", "exact")
            t = {nb: one_resample(option, nb, X, y, labels)["seconds"] for nb in order}
            all_faster &= t["approximate"] < t["exact"]
            cells.append(f"{t['exact']:.2f} / {t['approximate']:.2f}")
        rows.append(f"| {n:,} | " + " | ".join(cells) + " |")
        print(rows[-1], flush=True)
        faster_from = faster_from if (faster_from and all_faster) else (n if all_faster else None)
    from imbalance_lab.remedies.neighbors import APPROXIMATE_FROM_ROWS

    rows += ["", f"Approximate faster for every kNN sampler from {faster_from:,} rows on (of the sizes measured); "
                 f"neighbors=auto switches at APPROXIMATE_FROM_ROWS = {APPROXIMATE_FROM_ROWS:,}."
             if faster_from else "Approximate was not faster for every sampler at any measured size."]
    return rows


def recall() -> list[str]:
    from sklearn.neighbors import NearestNeighbors

    from imbalance_lab.remedies.neighbors import ApproximateNeighbors

    rows = [f"recall@{RECALL_K} of ApproximateNeighbors against exact neighbours ({RECALL_QUERIES:,} rows queried, "
            "each a fitted row: its own first neighbour dropped, as the samplers do):", ""]
    for n in sorted({50_000, FULL_ROWS}):
        X, _, _ = profile(n)
        queries = np.random.default_rng(0).choice(n, RECALL_QUERIES, replace=False)
        start = time.perf_counter()
        approx = ApproximateNeighbors(RECALL_K + 1, random_state=0).fit(X).kneighbors(X[queries], return_distance=False)
        took = time.perf_counter() - start
        exact = NearestNeighbors(n_neighbors=RECALL_K + 1).fit(X).kneighbors(X[queries], return_distance=False)
        hits = np.mean([len(set(a[1:]) & set(e[1:])) / RECALL_K for a, e in zip(approx, exact)])
        rows.append(f"- {n:,} rows: recall@{RECALL_K} **{hits:.3f}**; the row itself first in "
                    f"{np.mean(approx[:, 0] == queries):.1%} of queries (fit + query {took:.1f} s)")
        print(rows[-1], flush=True)
    return rows


def downstream() -> list[str]:
    from imbalance_lab.configs import compose
    from imbalance_lab.run import train_and_evaluate

    rows = [f"Test macro-F1 after each sampler, default MLP, `{' '.join(DOWNSTREAM)}`, seeds {list(SEEDS)} "
            "(mean ± sd; |difference| <= 2 sd of exact is the target):", "",
            "| sampler | exact | approximate | difference | within 2 sd | resample s exact / approximate (seed 0) |",
            "| --- | --- | --- | --- | --- | --- |"]
    for option in knn_samplers():
        f1 = {"exact": [], "approximate": []}
        seconds = {}
        for seed in SEEDS:
            for nb in (("exact", "approximate") if seed % 2 else ("approximate", "exact")):
                cfg, _ = compose([*DOWNSTREAM, f"sampler={option}", f"sampler.neighbors={nb}", f"seed={seed}"])
                out = train_and_evaluate(cfg)
                f1[nb].append(out.evaluation.metrics["test/macro_f1"])
                seconds.setdefault(nb, out.train.seconds)
        m = {nb: statistics.mean(v) for nb, v in f1.items()}
        sd = {nb: statistics.stdev(v) for nb, v in f1.items()}
        diff = m["approximate"] - m["exact"]
        rows.append(f"| {option} | {m['exact']:.4f} ± {sd['exact']:.4f} | {m['approximate']:.4f} ± {sd['approximate']:.4f} "
                    f"| {diff:+.4f} | {'yes' if abs(diff) <= 2 * sd['exact'] else '**no**'} "
                    f"| {seconds['exact']:.1f} / {seconds['approximate']:.1f} |")
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    parts: list[str] = []

    def save() -> None:
        write_section("5. Samplers: exact vs approximate neighbours", "\n".join(parts),
                      "make bench (tests/benchmarks/bench_samplers.py)")

    print(load_average(), flush=True)
    with tempfile.TemporaryDirectory() as folder:
        rows, _ = full_size(Path(folder))
    parts += ["### fit_resample at the forum user's size", "", *rows]
    save()
    parts += ["", "### recall", "", *recall()]
    save()
    parts += ["", "### auto's threshold", "", *crossover()]
    save()
    parts += ["", "### downstream macro-F1", "", *downstream()]
    save()


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--one":
        folder, option, neighbors = Path(sys.argv[2]), sys.argv[3], sys.argv[4]
        X, y = np.load(folder / "X.npy"), np.load(folder / "y.npy")
        labels = tuple(json.loads((folder / "labels.json").read_text()))
        print(json.dumps(one_resample(option, neighbors, X, y, labels)))
    else:
        main()

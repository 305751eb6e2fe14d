"""imbalance-lab's own training of a config, one per process, as a run does it (data pipeline,
resampling, Model.fit with the trainer group's settings, validation macro-F1 every epoch), without
MLflow. Prints `epoch N SECONDS` per epoch from the second on (the time between two epochs' ends,
validation included), then the test macro-F1.

    python ours_fit.py dataset=seed002_profile dataset.n_train=336876 model.input_dropout=0.5 ...
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from imbalance_lab.configs import compose  # noqa: E402
from imbalance_lab.run import train_and_evaluate  # noqa: E402


def main():
    cfg, _ = compose(sys.argv[1:])
    ends: list[float] = []

    def on_epoch(row: dict) -> None:
        ends.append(time.perf_counter())
        if len(ends) > 1:
            print(f"epoch {row['epoch']} {ends[-1] - ends[-2]:.4f} loss {row['train/loss']:.5f}", flush=True)

    out = train_and_evaluate(cfg, on_epoch=on_epoch)
    print(f"test/macro_f1 {out.evaluation.metrics['test/macro_f1']:.4f}")


if __name__ == "__main__":
    main()

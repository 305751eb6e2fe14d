"""What every loader returns: features and labels, with an optional fixed test set."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class RawData:
    X: np.ndarray
    y: np.ndarray
    X_test: np.ndarray | None = None   # a fixed test set (label shift, a user's separate test file)
    y_test: np.ndarray | None = None
    is_image: bool = False             # X is (n, height, width, channels)
    description: str = ""
    source: str = ""                   # where the rows come from (a file, a generator): the MLflow dataset source
    standardise: bool = True           # False: features already share one scale (pixels in [0, 1]); the split keeps them

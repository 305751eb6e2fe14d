"""One class against the rest (`dataset.positive`): a binary task cut from any dataset, as the
binary imbalance literature does with MNIST (digit 0 vs the other nine, ~10 % positives)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from imbalance_lab.data.raw import RawData
from imbalance_lab.errors import ImbalanceLabError

# Sorted label order puts "positive" second: test/sensitivity (recall of the second class) is the
# positive class's recall and test/specificity the rest's, as in the binary literature.
NEGATIVE, POSITIVE = "negative", "positive"


def one_vs_rest(raw: RawData, positive) -> RawData:
    """Relabel: rows whose label is `positive` (or one of a list) become 'positive', all others 'negative'."""
    if positive is None:
        return raw
    wanted = {str(p) for p in (positive if isinstance(positive, list | tuple) else [positive])}
    seen = {str(v) for v in np.unique(np.asarray(raw.y))}
    if raw.y_test is not None:
        seen |= {str(v) for v in np.unique(np.asarray(raw.y_test))}
    missing = sorted(wanted - seen)
    if missing:
        raise ImbalanceLabError(
            f"dataset.positive={positive!r} names label(s) {missing} that the data does not have; "
            f"choose from {sorted(seen)[:20]}."
        )
    if wanted >= seen:
        raise ImbalanceLabError(
            f"dataset.positive={positive!r} covers every label, which leaves no negative class; name fewer labels."
        )

    def relabel(y):
        return None if y is None else np.where(np.isin(np.asarray(y).astype(str), sorted(wanted)), POSITIVE, NEGATIVE)

    return replace(raw, y=relabel(raw.y), y_test=relabel(raw.y_test),
                   description=f"{raw.description}, {'/'.join(sorted(wanted))} vs rest")

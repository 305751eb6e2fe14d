"""Two changes to DESIGN.md's MLflow contract, measured by bench_sweep and not adopted: applied in
a writer process (tracking.Writer(background=True).submit(functools.partial(apply, ...))), so
that only the runs written by that process change.

- no_png: the run has no confusion_matrix.png (the figure is neither drawn nor encoded).
- late_create: the run is created only when its results are written, so a run being trained is
  not in the store (and a killed one leaves no RUNNING record to mark KILLED)."""

from __future__ import annotations

from pathlib import Path

from imbalance_lab import tracking
from imbalance_lab.report import plots

_create, _finish = tracking._create_run, tracking._finish_run
_held: dict[str, tuple] = {}  # token -> the arguments of the run's creation, until its finish


def _no_figure(cm, labels, path, title: str = "") -> Path:
    return Path(path)


def _create_later(uri: str, token: str, *args) -> None:
    _held[token] = (uri, token, *args)


def _create_then_finish(uri: str, token: str, payload, strict: bool, run_id: str | None = None):
    if token in _held:
        _create(*_held.pop(token))
    return _finish(uri, token, payload, strict, run_id)


def apply(no_png: bool, late_create: bool) -> None:
    if no_png:
        plots.confusion_matrix_png = _no_figure
    if late_create:
        tracking._create_run, tracking._finish_run = _create_later, _create_then_finish

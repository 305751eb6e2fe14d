"""Datasets: load (one loader per `dataset` option), split stratified, scale on train only."""

from imbalance_lab.data.splits import Splits, load_splits

__all__ = ["Splits", "load_splits"]

"""imbalance-lab: measure which class-imbalance remedies fix a Keras classifier."""

__version__ = "0.1.0"

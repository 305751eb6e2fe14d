"""Imported last by the fork server of parallel sweeps (imbalance_lab.workers.PRELOAD): freezes
what the imports before it created (gc.freeze), the documented way to let forked workers share
those objects copy-on-write instead of touching every page of them at their first collection;
the server then also exits without walking them."""

import gc

gc.freeze()

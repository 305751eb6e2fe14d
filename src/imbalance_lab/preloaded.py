"""What the fork server of parallel sweeps imports (imbalance_lab.workers), then freezes.

Each module is imported on its own: one that fails is reported and left for the workers to import
(or fail on) in their jobs, where the error reaches that job's run; the server itself never dies of
it. Ctrl-C during the imports is ignored here (the sweep's process handles it, and this server
exits with it); the workers forked afterwards get Python's usual Ctrl-C handling back. Then
gc.freeze(): the documented way to let forked workers share these objects copy-on-write instead of
touching every page of them at their first collection (the server also exits without walking them)."""

import gc
import importlib
import signal
import sys

MODULES = [
    "imbalance_lab.sweep", "imbalance_lab.run", "imbalance_lab.report.plots",
    "mlflow.store.tracking.sqlalchemy_store", "hydra_plugins.hydra_joblib_launcher._core",
]

signal.signal(signal.SIGINT, signal.SIG_IGN)
for _name in MODULES:
    try:
        importlib.import_module(_name)
    except Exception as _err:  # noqa: BLE001 - any failure: the workers import it themselves
        print(f"imbalance-lab: the workers' fork server could not import {_name} ({type(_err).__name__}: {_err}); "
              "each worker will import it itself.", file=sys.stderr)
signal.signal(signal.SIGINT, signal.default_int_handler)
gc.freeze()

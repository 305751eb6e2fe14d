"""Hydra entry points (thin): `imbalance-lab [overrides]`, `imbalance-lab -m [overrides]`."""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's C++ start-up chatter out of the way

import sys  # noqa: E402

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from imbalance_lab.configs import register_resolvers  # noqa: E402
from imbalance_lab.paths import CONF_DIR  # noqa: E402

register_resolvers()


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def _task(cfg: DictConfig):
    from imbalance_lab.sweep import run_job

    return run_job(cfg)


def main() -> None:
    from imbalance_lab.configs import check_overrides

    if "--quiet" in sys.argv:  # no progress lines while runs train (also in a sweep's worker processes)
        sys.argv.remove("--quiet")
        os.environ["IMBALANCE_LAB_QUIET"] = "1"

    problem = check_overrides(sys.argv[1:])
    if problem:
        print(f"imbalance-lab: {problem}", file=sys.stderr)
        sys.exit(2)
    from imbalance_lab.errors import DiskFull

    try:
        _task()
    except KeyboardInterrupt:
        from imbalance_lab.sweep import interrupted_message

        print(f"imbalance-lab: {interrupted_message()}", file=sys.stderr)
        sys.exit(130)
    except DiskFull as err:  # raised by a job, through Hydra's launcher: the sweep stops here
        from imbalance_lab.sweep import disk_full_message

        print(f"imbalance-lab: {disk_full_message(err)}", file=sys.stderr)
        sys.exit(1)


def report_main() -> None:
    """`imbalance-lab-report`: reads MLflow only, so it never imports TensorFlow."""
    from imbalance_lab.report.command import main as report

    raise SystemExit(report())


def doctor_main() -> None:
    """`imbalance-lab-doctor [overrides] [--json] [--why]`: no TensorFlow unless --why."""
    from imbalance_lab.doctor.command import main as doctor

    sys.exit(doctor(sys.argv[1:]))


if __name__ == "__main__":
    main()

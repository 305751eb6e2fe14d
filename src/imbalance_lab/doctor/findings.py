"""A finding: one sentence with what was found and its numbers, why it matters, and the override
that addresses it. Runs are tagged with the codes of the warnings (`doctor.warnings`) and log
every finding in `doctor.json`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from imbalance_lab.paths import CONF_DIR


@dataclass
class Finding:
    severity: str   # "warning" | "info"
    code: str
    message: str
    fix: str
    numbers: dict = field(default_factory=dict)   # the values behind the message, for --json and tests

    def line(self) -> str:
        fix = f" Fix: {self.fix}" if self.fix else ""
        return f"[{self.severity}] {self.code}: {self.message}{fix}"

    def as_dict(self) -> dict:
        return asdict(self)


def warning_codes(findings: list[Finding]) -> str:
    """The `doctor.warnings` tag: codes of the warnings, or `none`."""
    return "; ".join(f.code for f in findings if f.severity == "warning") or "none"


def option_exists(group: str, option: str) -> bool:
    """Only suggest what the user can run today: the option's YAML must be in conf/."""
    return (CONF_DIR / group / f"{option}.yaml").is_file()


def pct(x: float) -> str:
    return f"{100 * x:.2f} %"

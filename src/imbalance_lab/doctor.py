"""Pre-flight diagnosis: findings about a config before compute is spent on it.

Each finding is one sentence with what was found, why it matters, and the override that
addresses it. Runs are tagged with them (`doctor.warnings`), so that a legal but misleading
combination (sigmoid + ce, softmax + bce) is shown beside its fixes with the reason attached.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from omegaconf import DictConfig


@dataclass
class Finding:
    severity: str   # "warning" | "info"
    code: str
    message: str
    fix: str

    def line(self) -> str:
        return f"[{self.severity}] {self.message} Fix: {self.fix}"

    def as_dict(self) -> dict:
        return asdict(self)


def lint_config(cfg: DictConfig, choices: dict[str, str]) -> list[Finding]:
    """Activation/loss pairs that train but mislead."""
    activation = cfg.activation.function
    loss = choices.get("loss", "")
    findings = []
    if activation == "sigmoid" and loss == "ce":
        findings.append(Finding(
            "warning", "sigmoid_ce",
            "Sigmoid outputs with categorical cross-entropy: Keras renormalises the K sigmoids to sum to 1, "
            "so the loss never pushes the wrong classes' outputs down independently and training tends to "
            "settle on the majority class.",
            "activation=softmax loss=ce (or activation=sigmoid loss=bce for one-vs-rest).",
        ))
    if activation == "softmax" and loss == "bce":
        findings.append(Finding(
            "warning", "softmax_bce",
            "Softmax outputs with binary cross-entropy: each one-hot column is scored as a separate binary "
            "problem, and Keras's metrics=['accuracy'] becomes binary accuracy over K columns, which reads "
            "(K-1)/K for a model that predicts nothing.",
            "loss=ce with activation=softmax.",
        ))
    return findings

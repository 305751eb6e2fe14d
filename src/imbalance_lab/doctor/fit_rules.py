"""Rules about what keeps a network from fitting at all, each with its numbers and the override
that removes it: inputs on raw scales, regularisation too heavy for the data's size, an
optimiser whose first epochs do not move the loss.

The forum thread's model (mlp-predicts-one-class.txt) has all three candidates: unstandardised
features, 50 % input dropout with max-norm 3, and SGD whose loss sat at ln 5 = 1.6094. Which of
them is the cause on a user's data is what `imbalance-lab-doctor --why` measures; these rules say
which are present.
"""

from __future__ import annotations

import math

import numpy as np
from omegaconf import DictConfig

from imbalance_lab.doctor.findings import Finding

# Inputs: Keras's initialisers (Glorot) give each first-layer unit weights of norm about 1, which
# keeps pre-activations of order 1 only when the features are.
LARGE_INPUT = 10.0        # a feature's root mean square above this is far from unit scale
SCALE_SPREAD = 100.0      # largest / median standard deviation: two orders of magnitude
OFFSET_SDS = 3.0          # a mean this many standard deviations (and at least 1) from zero
SHOWN_COLUMNS = 3
SCALING_OPTIONS = ("standard", "minmax", "robust", "quantile")

# Regularisation.
INPUT_DROPOUT = 0.2       # on a table's features (pixels are redundant, columns are not)
SMALL_MAX_NORM = 1.0      # below the norm Glorot initialisation already gives a unit's weights
STRONG_L2 = 0.01          # Keras's L2 factor on the weights
ROWS_PER_WEIGHT = 10.0    # at or above this, a network is not short of data: underfitting is the risk

# The optimiser: the validation loss's relative drop over the first epochs below this is a stall.
STALL_EPOCHS = 3
STALL_SHARE = 0.01


def _g(x: float) -> str:
    return f"{x:.3g}"


# -- inputs on raw scales ------------------------------------------------------------------------

def unscaled_inputs(data, preprocess: str) -> list[Finding]:
    """Features far from unit scale (large values, scales spread over orders of magnitude, means
    far from zero), measured on the training split before preprocessing. A warning when
    `preprocess=none` feeds them to the network as they are; information when a scaler handles them."""
    scale = getattr(data, "raw_scale", None)
    if scale is None or len(scale.std) == 0:
        return []
    mean, std = scale.mean, scale.std
    rms = np.sqrt(mean**2 + std**2)
    large = rms >= LARGE_INPUT
    offset = (np.abs(mean) >= OFFSET_SDS * std) & (np.abs(mean) >= 1.0)
    varying = std[std > 0]
    spread = float(varying.max() / np.median(varying)) if len(varying) else 1.0
    if not (large.any() or offset.any() or spread >= SCALE_SPREAD):
        return []
    shown = np.argsort(-rms)[:SHOWN_COLUMNS]
    columns = [{"name": scale.names[j], "mean": float(mean[j]), "std": float(std[j])} for j in shown]
    listed = "; ".join(f"'{c['name']}' mean {_g(c['mean'])}, sd {_g(c['std'])}" for c in columns)
    d = len(std)
    facts = (f"{int(large.sum())} of {d} input features have values far from unit scale (root mean square >= "
             f"{LARGE_INPUT:g}; largest: {listed}), {int(offset.sum())} sit far from zero (|mean| >= {OFFSET_SDS:g} sd), "
             f"and their standard deviations span {_g(float(std.min()))} to {_g(float(std.max()))} "
             f"({spread:.3g}x the median)")
    numbers = {"n_features": d, "n_large": int(large.sum()), "n_offset": int(offset.sum()), "std_spread": spread,
               "max_rms": float(rms.max()), "largest": columns, "preprocess": preprocess}
    if preprocess == "none":
        return [Finding(
            "warning", "unscaled_inputs",
            f"{facts}, and preprocess=none feeds them to the network as they are: with weights initialised for "
            f"inputs of order 1, the first layer's pre-activations are of order {_g(float(rms.max()))}, so ReLUs "
            f"and sigmoid outputs saturate, a few large columns drown the rest, and one step of SGD can throw "
            f"the network onto a single class.",
            "preprocess=standard (or preprocess=robust / preprocess=quantile for heavy-tailed features).", numbers)]
    how = f"preprocess={preprocess} rescales them" if preprocess in SCALING_OPTIONS else f"preprocess={preprocess} transforms them"
    return [Finding(
        "info", "unscaled_inputs",
        f"{facts}; {how} with the training split's statistics, so the network sees them near unit scale "
        f"(a plain script without that step, preprocess=none, would not).",
        f"keep preprocess={preprocess}.", numbers)]


# -- regularisation for the data's size ----------------------------------------------------------

def mlp_weight_count(input_dim: int, widths, n_classes: int) -> int:
    """Weights and biases of Dense layers input_dim -> widths... -> n_classes."""
    sizes = [int(input_dim), *[int(w) for w in widths], int(n_classes)]
    return sum((a + 1) * b for a, b in zip(sizes[:-1], sizes[1:]))


def glorot_unit_norm(fan_in: int, fan_out: int) -> float:
    """Expected norm of one unit's incoming weights under Glorot initialisation (variance 2/(in+out))."""
    return math.sqrt(2.0 * fan_in / (fan_in + fan_out))


def _weight_count(model: DictConfig | dict, data) -> int | None:
    target = str(model.get("_target_") or "")
    if data is None:
        return None
    input_dim = int(np.prod(data.input_shape))
    if target.endswith("build_mlp"):
        return mlp_weight_count(input_dim, model.get("widths") or [], data.n_classes)
    if target.endswith("build_linear"):
        return mlp_weight_count(input_dim, [], data.n_classes)
    return None


def heavy_regularisation(cfg: DictConfig, data=None) -> list[Finding]:
    """Input dropout on a table's features, a max-norm below what initialisation already gives, a
    strong L2: a warning when the training rows outnumber the network's weights ROWS_PER_WEIGHT
    times or more (the data protect from overfitting; the regularisation only holds the fit back),
    else information (on small data it may help: compare with it off)."""
    model = cfg.get("model") or {}
    is_image = data.is_image if data is not None else "cnn" in str(model.get("_target_", ""))
    parts, fixes, numbers = [], [], {}
    dropout = float(model.get("input_dropout") or 0.0)
    if dropout >= INPUT_DROPOUT and not is_image:
        parts.append(f"model.input_dropout={dropout:g} hides {dropout:.0%} of each row's features at every step "
                     f"(a table's columns are not redundant as an image's neighbouring pixels are)")
        fixes.append("model.input_dropout=0")
        numbers["input_dropout"] = dropout
    max_norm = model.get("max_norm")
    if max_norm is not None and float(max_norm) < SMALL_MAX_NORM:
        widths = list(model.get("widths") or [])
        init = (f" (Glorot initialisation gives the first layer's units about "
                f"{glorot_unit_norm(int(np.prod(data.input_shape)), widths[0]):.2f})" if data is not None and widths else "")
        parts.append(f"model.max_norm={float(max_norm):g} caps each unit's incoming weights below the norm they "
                     f"start with{init}, so the constraint shrinks them from the first step")
        fixes.append("model.max_norm=3")
        numbers["max_norm"] = float(max_norm)
    l2 = float(model.get("l2") or 0.0)
    if l2 >= STRONG_L2:
        parts.append(f"model.l2={l2:g} adds {l2:g} x the sum of squared weights to every batch's loss")
        fixes.append("model.l2=0.0001")
        numbers["l2"] = l2
    if not parts:
        return []
    weights = _weight_count(model, data)
    rows = int(data.class_counts("train").sum()) if data is not None else None
    severity, size = "info", ""
    if rows is not None and weights:
        ratio = rows / weights
        numbers.update(train_rows=rows, weights=weights, rows_per_weight=ratio)
        if ratio >= ROWS_PER_WEIGHT:
            severity = "warning"
            size = (f" The training split has {rows:,} rows for the network's {weights:,} weights ({ratio:.1f} rows "
                    f"per weight): with this much data overfitting is not the risk, underfitting is, and this "
                    f"regularisation can keep the network at the priors.")
        else:
            size = (f" The training split has {rows:,} rows for the network's {weights:,} weights ({ratio:.2f} rows "
                    f"per weight): on data this small regularisation may help; compare a run with it off.")
    return [Finding(severity, "heavy_regularisation",
                    f"Heavy regularisation for the data's size: {'; '.join(parts)}.{size}", " ".join(fixes), numbers)]


# -- an optimiser that stalls --------------------------------------------------------------------

def optimizer_stalls(history: list[dict], initial_val_loss: float | None, learned_above: float,
                     trainer: DictConfig | None = None) -> list[Finding]:
    """The validation loss moved less than STALL_SHARE of its value before training over the first
    STALL_EPOCHS epochs, and validation macro-F1 never rose above `learned_above` (naive + margin):
    the optimiser barely moves the weights."""
    if not history or initial_val_loss is None or not math.isfinite(initial_val_loss) or initial_val_loss <= 0:
        return []
    first = [row["val/loss"] for row in history[:STALL_EPOCHS] if math.isfinite(row["val/loss"])]
    best_f1 = max(row["val/macro_f1"] for row in history)
    if not first or best_f1 > learned_above:
        return []
    moved = (initial_val_loss - min(first)) / initial_val_loss
    if moved >= STALL_SHARE:
        return []
    settings, fix = "", "trainer.optimizer=adam trainer.learning_rate=0.001"
    if trainer is not None:
        lr = float(trainer.learning_rate)
        extra = (f", momentum {trainer.get('momentum', 0):g}{', Nesterov' if trainer.get('nesterov') else ''}"
                 if str(trainer.optimizer) == "sgd" else "")
        settings = f" ({trainer.optimizer}, learning rate {lr:g}{extra})"
        fix = f"trainer.learning_rate={lr * 10:g} (x10), or {fix}"
    return [Finding(
        "warning", "optimizer_stalls",
        f"The validation loss moved {100 * moved:.2f} % in the first {len(first)} epoch(s) ({initial_val_loss:.4f} "
        f"before training, best {min(first):.4f}; less than {STALL_SHARE:.0%}) and validation macro-F1 never rose "
        f"above the naive predictor's: the optimiser{settings} barely moves the weights, and the network stays "
        f"where it started, at one class or the priors.", fix,
        {"initial_val_loss": initial_val_loss, "best_val_loss_first_epochs": min(first), "moved": moved,
         "epochs": len(first)})]

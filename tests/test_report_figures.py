"""The report's figures draw every label from the runs whole (wrapped, never cut) and literally
(never as mathtext), checked on the matplotlib Text objects the figures hold when they are saved."""

from __future__ import annotations

import itertools

import matplotlib.text
import pytest

from imbalance_lab.report import build, plots
from imbalance_lab.report.runs import load_runs

from report_store import log_run, new_store

# 60 characters each, with mathtext in them: `$x$` would be drawn as an italic x, `$\notacommand$` would
# make matplotlib raise while drawing.
OPTION = "smote_with_a_very_long_option_name_$x$_and_$\\notacommand$_ok"
CLASS = "class $x$ whose name is long enough to be cut at thirty-one!"
FIXED = {"model": "mlp", "activation": "softmax", "bias_init": "zeros", "class_weight": "none",
         "decision": "argmax", "trainer": "default", "dataset": "digits"}


def squeezed(text: str) -> str:
    """Without whitespace: a wrapped label still reads as the label."""
    return "".join(text.split())


@pytest.fixture
def drawn(tmp_path, monkeypatch):
    """The report's figures of a loss x sampler study whose sampler option and first class carry
    the labels above: {file name: [(text, parse_math) of each Text in the figure]}."""
    assert len(OPTION) == len(CLASS) == 60
    store, c, exp = new_store(tmp_path, "labels")
    for t, (loss, sampler, seed) in enumerate(itertools.product(("ce", "focal"), ("none", OPTION), (0, 1, 2))):
        f1 = 0.3 + 0.1 * (loss == "focal") + 0.2 * (sampler == OPTION) + 0.01 * seed
        log_run(c, exp, f"{loss}-{sampler}-{seed}", {**FIXED, "loss": loss, "sampler": sampler}, seed,
                {"test/macro_f1": f1, "naive/macro_f1": 0.2, "test/recall_0": f1, "test/recall_1": 0.5}, start=t,
                confusion=([CLASS, "b"], [[5, 1], [2, 6]]))
    texts = {}
    save = plots.save

    def recording(fig, path):
        texts[path.name] = [(t.get_text(), t.get_parse_math()) for t in fig.findobj(matplotlib.text.Text)]
        return save(fig, path)   # drawing must not raise either

    monkeypatch.setattr(plots, "save", recording)
    report = build.compute(load_runs(store, "labels"))
    build.draw(report, tmp_path)
    return texts


def test_labels_of_60_characters_with_dollars_are_drawn_whole_and_literally(drawn, tmp_path):
    shown_in = {"leaderboard.png": OPTION, "effects.png": OPTION, "heatmap.png": OPTION,
                "per_class_recall.png": OPTION, "confusion_matrices.png": CLASS}
    for name, label in shown_in.items():
        assert any(squeezed(label) in squeezed(text) for text, _ in drawn[name]), (name, label)
        assert (tmp_path / name).stat().st_size > 0
    assert any(squeezed(f"best: loss=focal sampler={OPTION}") in squeezed(text)   # a panel's title, whole
               for text, _ in drawn["confusion_matrices.png"])
    mathtext = [(name, text) for name, texts in drawn.items() for text, parsed in texts if "$" in text and parsed]
    assert mathtext == []
    assert not any("…" in text for texts in drawn.values() for text, _ in texts)

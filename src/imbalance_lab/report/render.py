"""A Report as Markdown (figures linked beside it) and as one HTML file (figures embedded, so it
opens from disk or as an MLflow artifact without its folder)."""

from __future__ import annotations

import base64
import html as html_lib
import math
import time

import pandas as pd

from imbalance_lab.report.stats import MIN_BLOCKS

LEADERBOARD_ROWS = 100


def sections(report) -> list[tuple[str, list]]:
    """(heading, blocks) in reading order; a block is a str paragraph or a DataFrame table."""
    runs, metric = report.runs, report.metric
    scope = f"sweep parent run `{runs.parent_run_id}`" if runs.parent_run_id else "no sweep parent run"
    intro = [
        f"Experiment `{runs.experiment}` in `{runs.uri}` ({scope}): {len(runs.finished)} finished run(s), "
        f"{len(runs.failed)} failed run(s) never finished. Metric: `{metric}`.",
        _baseline_text(report),
        *report.notes,
    ]
    board = report.leaderboard.head(LEADERBOARD_ROWS)
    board = board.assign(baseline=board["baseline"].map({True: "yes", False: ""}))
    board_text = [
        f"One row per combination of the axes that vary ({', '.join(report.columns) or 'none'}); "
        f"`mean`/`std` of {metric} over its runs (seeds x datasets), `seeds`, `runs`, `delta` = mean minus "
        "the baseline's mean, `naive` = mean macro-F1 of always predicting the training majority class, "
        "`collapsed` = runs that predicted one class or fewer than half of them, `failed` = runs that never "
        "finished, `keras_acc` = what Keras's metrics=['accuracy'] would have reported (binary accuracy "
        "for bce), `doctor` = the doctor's warnings for the config (see imbalance-lab-doctor)." + (f" Top {LEADERBOARD_ROWS} of {len(report.leaderboard)}: all rows are in leaderboard.csv."
                       if len(report.leaderboard) > LEADERBOARD_ROWS else ""),
        board,
    ]
    effects = ["For each option: the mean over every run that has it, whatever the other axes; rank 1 = best "
               "within its axis.", report.effects] if not report.effects.empty else ["No axis varies."]
    return [
        (f"imbalance-lab report: {runs.experiment}", intro),
        ("Leaderboard", board_text),
        ("Main effect of each axis", effects),
        ("Statistics", _statistics(report)),
        ("Figures", list(report.figures.items())),
    ]


def markdown(report) -> str:
    lines = []
    for level, (heading, blocks) in enumerate(sections(report)):
        lines += [f"{'#' if level == 0 else '##'} {heading}", ""]
        for block in blocks:
            if isinstance(block, pd.DataFrame):
                lines += [markdown_table(block), ""]
            elif isinstance(block, tuple):
                caption, path = block
                lines += [f"**{caption}**", "", f"![{caption}]({path.name})", ""]
            else:
                lines += [block, ""]
    lines.append(f"_Written {time.strftime('%Y-%m-%d %H:%M:%S')} by imbalance-lab-report._")
    return "\n".join(lines) + "\n"


def html(report) -> str:
    body = []
    for level, (heading, blocks) in enumerate(sections(report)):
        body.append(f"<h{1 if level == 0 else 2}>{html_lib.escape(heading)}</h{1 if level == 0 else 2}>")
        for block in blocks:
            if isinstance(block, pd.DataFrame):
                body.append(block.to_html(index=False, na_rep="", float_format=_fmt, border=0, classes="table"))
            elif isinstance(block, tuple):
                caption, path = block
                data = base64.b64encode(path.read_bytes()).decode()
                body.append(f'<figure><img alt="{html_lib.escape(caption)}" src="data:image/png;base64,{data}">'
                            f"<figcaption>{html_lib.escape(caption)}</figcaption></figure>")
            else:
                body.append(f"<p>{_inline_code(block)}</p>")
    title = html_lib.escape(f"imbalance-lab report: {report.runs.experiment}")
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")


def markdown_table(frame: pd.DataFrame) -> str:
    header = "| " + " | ".join(str(c) for c in frame.columns) + " |"
    rule = "| " + " | ".join("---" for _ in frame.columns) + " |"
    rows = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def _statistics(report) -> list:
    f = report.friedman
    if f.p_value is None:
        friedman = f.note
    else:
        friedman = (f"Friedman test over {f.n_combinations} combinations in {f.n_blocks} seed/dataset blocks where "
                    f"all finished: chi-square = {f.statistic:.3f}, p = {f.p_value:.3g}"
                    + (" (the combinations differ)." if f.p_value < 0.05 else
                       " (no evidence that the combinations differ).") + (f" {f.note}" if f.note else ""))
    if report.baseline is None:
        return [friedman, "No Wilcoxon tests: there is no baseline combination."]
    table = report.wilcoxon
    tested = table["p_value"].notna().sum()
    if tested == 0:
        wilcoxon = (f"Wilcoxon tests against the baseline not run: too few pairs (the same seed and dataset run "
                    f"by both) — at least {MIN_BLOCKS} per combination are needed; run more seeds, e.g. `seed=0,1,2,3,4,5`.")
        return [friedman, wilcoxon]
    significant = int((table["p_holm"] < 0.05).sum())
    intro = (f"Each combination against the baseline: Wilcoxon signed-rank test (two-sided) on the paired "
             f"differences of {report.metric} (pairs share seed and dataset), Holm-corrected over {tested} "
             f"test(s); {significant} differ at p_holm < 0.05. `wins`/`losses`: pairs where the combination "
             "scored higher/lower.")
    return [friedman, intro, table.sort_values("p_value", na_position="last")]


def _baseline_text(report) -> str:
    if report.baseline is None:
        return "Baseline: none of the combinations (see the note below)."
    board = report.leaderboard.set_index("combination")
    mean = board.loc[report.baseline, "mean"]
    return (f"Baseline (all remedies off unless --baseline says otherwise): `{report.baseline}`, "
            f"mean {report.metric} {_fmt(mean)}.")


def _cell(value) -> str:
    if isinstance(value, float):
        return _fmt(value)
    return str(value).replace("|", "\\|")


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float) and 0 < abs(value) < 1e-3:
        return f"{value:.2e}"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _inline_code(text: str) -> str:
    parts = html_lib.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1200px; color: #222; }
table.table { border-collapse: collapse; font-size: 13px; margin: 0.5em 0 1.5em; }
table.table th, table.table td { padding: 3px 8px; border-bottom: 1px solid #ddd; text-align: right; }
table.table th:first-child, table.table td:first-child { text-align: left; }
code { background: #f3f3f3; padding: 0 3px; }
figure { margin: 1em 0 2em; } figure img { max-width: 100%; }
figcaption { font-size: 13px; color: #555; }
"""

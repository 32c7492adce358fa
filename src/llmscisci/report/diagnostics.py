"""The report's checks of what the scores mean: whether each run's labels depend on the text (its
diagnostics, placebo check and warnings), and what the macro averages are over (macro F1 over the
categories with reference positives next to the all-category figure, categories with few positives)."""

from __future__ import annotations

from llmscisci.console import fmt, pct
from llmscisci.metrics.diagnostics import diagnostics, prompt_examples, warnings
from llmscisci.metrics.evaluate import FEW_POSITIVES
from llmscisci.metrics.multilabel import ZERO_DIVISION
from llmscisci.report.collect import LabelRun
from llmscisci.report.document import Section, Table, Text


def _pct(x) -> str:
    return pct(x, 0, none="–")


def text_dependence_section(runs: list[LabelRun]) -> Section | None:
    """One row per labelling run: distinct answers, the most frequent answer's share, the share copied from
    the prompt's examples and the placebo check; a warning for each run whose labels do not depend on the
    text."""
    if not runs:
        return None
    sec = Section("Does the model read the text?")
    sec.add(Text("Distinct: different label vectors among the valid answers. Top answer: the share of valid "
                 "answers equal to the most frequent vector. Copied: the share of answers equal to a complete "
                 "answer the prompt shows (k-shot answers, a format example). Placebo: the share of answers "
                 "unchanged when the text is replaced by a neutral passage (`--placebo N`). Labels that do not "
                 "depend on the text make every score below a score of one answer."))
    rows, warns = [], []
    for run in runs:
        d = diagnostics(run.records, prompt_examples(run.config), run.shorts)
        pl = run.metrics.get("placebo") if isinstance(run.metrics.get("placebo"), dict) else None
        top = d["top_answer_categories"]
        rows.append([run.task, run.name, str(d["distinct_answers"]), str(d["n_valid"]),
                     f"{_pct(d['top_answer_share'])} {{{', '.join(top)}}}" if top is not None else "–",
                     _pct(d["example_copy_rate"]) if d["examples_shown"] else "none shown",
                     f"{_pct(pl.get('unchanged_share'))} of {pl.get('n')}" if pl else "not run"])
        warns += [f"{run.task}, {run.name}: {w}" for w in warnings(d, pl)]
    sec.add(Table(["Task", "Run", "Distinct", "Valid", "Top answer", "Copied", "Placebo unchanged"], rows))
    for w in warns:
        sec.add(Text(w, "warn"))
    return sec


def macro_table(task: str, runs: list[tuple[str, list[float], list[int]]], shorts: list[str]) -> list:
    """Macro F1 over all categories and over those with reference positives, per run (name, per-category
    F1, support), the categories left out, and a note on categories with fewer than FEW_POSITIVES."""
    rows = []
    for name, f1, support in runs:
        present = [f for f, s in zip(f1, support) if s > 0]
        left = [c for c, s in zip(shorts, support) if s == 0]
        rows.append([name, fmt(sum(f1) / len(f1)) if f1 else "–",
                     fmt(sum(present) / len(present)) if present else "–", ", ".join(left) or "–"])
    blocks: list = [Table(["Cell", "Macro F1 (all categories)", "Macro F1 (with positives)", "Left out"], rows,
                          caption=f"{task}: what macro F1 averages over (all evaluated items). {ZERO_DIVISION}.")]
    support = runs[0][2] if runs else []
    few = [f"{c} ({s})" for c, s in zip(shorts, support) if s < FEW_POSITIVES]
    if few:
        blocks.append(Text(f"{task}: fewer than {FEW_POSITIVES} reference positives: {', '.join(few)}. Their F1 "
                           "rests on a handful of items (or none) and moves the macro average a lot.", "warn"))
    return blocks

"""The report's label-distribution section, for runs without reference labels (one's own corpus):
per category, the share of valid answers with a Wilson interval, overall and per group of items."""

from __future__ import annotations

from functools import partial

from llmscisci.console import pct
from llmscisci.metrics.distribution import label_distribution
from llmscisci.report.collect import LabelRun
from llmscisci.report.document import Section, Table, Text


_pct = partial(pct, none="–", sign=False)


def distribution_section(runs: list[LabelRun], level: float) -> Section | None:
    """One table per run without references (None when every run has references)."""
    runs = [r for r in runs if not any(rec.reference is not None for rec in r.records)]
    if not runs:
        return None
    pct = int(round(level * 100))
    sec = Section("Label distribution")
    sec.add(Text(f"What the model answered on items without reference labels: the share of valid answers in "
                 f"each category, % [{pct}% Wilson interval]. The intervals are about the model's labels, not "
                 "the truth; a human-coded sample corrects them (llmscisci prevalence). Invalid answers are "
                 "left out of the shares."))
    for run in runs:
        key, dists = label_distribution(run.records, run.shorts, level)
        overall = dists[0]
        rows = [[s.category, str(s.count), f"{_pct(s.share)} [{_pct(s.low)}, {_pct(s.high)}]"]
                for s in overall.shares]
        invalid = overall.n_answers - overall.n_valid
        sec.add(Table(["Category", "Items", f"% of valid answers [{pct}% CI]"], rows,
                      caption=f"{run.task}: {run.name}: {overall.n_valid} valid of {overall.n_answers} answers "
                              f"({invalid} invalid)"))
        if key is not None:
            groups = dists[1:]
            cols = ["Category"] + [f"{key} {d.group} (n={d.n_valid})" for d in groups]
            grows = [[cat] + [f"{_pct(d.shares[j].share)} [{_pct(d.shares[j].low)}, {_pct(d.shares[j].high)}]"
                              for d in groups] for j, cat in enumerate(run.shorts)]
            sec.add(Table(cols, grows, caption=f"{run.task}: {run.name}: % of valid answers per {key} "
                                               f"[{pct}% Wilson interval]"))
    return sec

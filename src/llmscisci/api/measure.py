"""Measuring a labelled corpus honestly, from Python: `ls.prevalence` (category shares corrected with a
human-coded sample: naive, PPI, DSL), `ls.robustness` (does a conclusion survive the configuration?) and
`ls.report` (the HTML and Markdown report of run folders), as `llmscisci prevalence`, `robustness` and
`report` compute them."""

from __future__ import annotations

from pathlib import Path

from llmscisci.api.inputs import codebook_of
from llmscisci.errors import UserError


def check_level(level: float) -> None:
    """The confidence level of the intervals: strictly between 0 and 1."""
    if not 0 < level < 1:
        raise UserError(f"--level {level}: must be between 0 and 1 (e.g. 0.95)")


def _path(x) -> Path:
    return Path(x.path) if hasattr(x, "path") and not isinstance(x, (str, Path)) else Path(x)


def prevalence(run, gold, *, by: str | None = None, level: float = 0.95, data_dir=None, write: bool = True):
    """The share of each category in the run's corpus: naive (labels as truth), the human codes alone,
    PPI and DSL, with intervals; a DataFrame (category, group, method, estimate, low, high, n_coded,
    n_total, reason) whose `.attrs["payload"]` is `llmscisci prevalence --json`'s result, also written to
    RUN/prevalence.json unless `write=False`. `gold`: a `code import` label file or any label file."""
    import pandas as pd

    from llmscisci.metrics.prevalence import METHODS
    from llmscisci.runs import write_json

    run_dir = _path(run)
    est = estimate_prevalence(run_dir, gold, by=by, level=level, data_dir=data_dir)
    rows = []
    for category, groups in est.result["categories"].items():
        for g in groups:
            for m in METHODS:
                e = g[m]
                rows.append({"category": category, "group": g["group"], "method": m, "estimate": e["estimate"],
                             "low": e["low"], "high": e["high"], "n_coded": e["n_coded"], "n_total": e["n_total"],
                             "reason": e["reason"]})
    df = pd.DataFrame(rows)
    df.attrs["payload"] = est.payload
    if write:
        write_json(run_dir / "prevalence.json", est.payload)
    return df


def estimate_prevalence(run, gold, *, by: str | None = None, level: float = 0.95, data_dir=None):
    """The estimates of `prevalence` as `llmscisci prevalence` prints them: the CorpusPrevalence (its
    `.payload` is the JSON result; `.run`, `.gold`, `.codebook` and `.design` say what it was drawn from)."""
    from llmscisci.coding.prevalence import corpus_prevalence

    check_level(level)
    return corpus_prevalence(_path(run), _path(gold), by=by, level=level, data_dir=data_dir)


def robustness(sources, gold, *, task=None, by: str | None = None, contrast=None, level: float = 0.95,
               data_dir=None) -> dict:
    """Every category's share (and every contrast between `by` groups) in every configuration (`sources`:
    a grid folder, run folders or `Run`s, label files), naive and corrected with the coded sample, with
    verdicts and what drives their spread; the dictionary `llmscisci robustness --json` prints.
    `contrast`: [("A", "B"), ...] (A - B), or "A,B;C,D" as on the command line."""
    import os

    from llmscisci.data.labelfiles import load_labels
    from llmscisci.metrics.robustness import Corpus
    from llmscisci.metrics.robustness import robustness as analyse
    from llmscisci.paths import DATA_ENV
    from llmscisci.tasks.robustness import codebooks, gather, group_column, load_configurations

    check_level(level)
    pairs = _contrast(contrast)
    if pairs is not None and by is None:
        raise UserError("--contrast needs --by (the column whose groups it compares)")
    gold = _path(gold)
    if not gold.exists():
        raise UserError(f"--gold {gold}: no such file")
    if data_dir is not None and not Path(data_dir).exists():
        raise UserError(f"--data-dir {data_dir}: no such folder or file")
    source = Path(data_dir) if data_dir is not None else (Path(os.environ[DATA_ENV]) if os.environ.get(DATA_ENV) else None)
    srcs = [_path(s) for s in (sources if isinstance(sources, (list, tuple)) else [sources])]
    book = None  # a built-in task is named; a codebook (.toml or Python) is the runs' own
    if task is not None and (not isinstance(task, str) or task.endswith(".toml")):
        book = codebook_of(task)
        task = book.task
    skipped: list[tuple[str, str]] = []
    configs = load_configurations(srcs, book, skipped)
    groups_of = group_column(source, by, configs) if by is not None else None
    tasks = [task] if task is not None else list(dict.fromkeys(c.task for c in configs))
    if task is None:  # only the tasks the coded sample covers
        books = codebooks() | {c.task: c.codebook for c in configs}  # the runs' own codebooks too
        coded = {t for _, t in load_labels(gold, books).records}
        tasks = [t for t in tasks if t in coded]
        if not tasks:
            raise UserError(f"--gold {gold}: codes none of the sources' tasks")
    payload: dict = {"kind": "robustness", "sources": [str(s) for s in srcs], "gold": str(gold), "by": by,
                     "level": level, "tasks": {}}
    for t in tasks:
        inp = gather(configs, t, gold, groups_of)
        corpus = Corpus(inp.y, tuple(inp.codebook.shorts), inp.groups, inp.pi)
        try:
            res = analyse(corpus, [c.describe() for c in inp.configurations], inp.predictions(), pairs, level)
        except ValueError as exc:
            raise UserError(f"--contrast: {exc}") from None
        paras = len({c.factors.get("paraphrase") for c in inp.configurations}) > 1
        d = res.to_dict()
        for conf, c in zip(d["configurations"], inp.configurations):
            conf["label"] = c.display(paras)
        payload["tasks"][t] = {"n_items": len(inp.dois), "n_coded": inp.n_coded, "design": inp.design,
                               "notes": [n for k, n in skipped if k == t] + inp.notes, **d}
    return payload


def _contrast(raw) -> list[tuple[str, str]] | None:
    if raw is None or isinstance(raw, list):
        return [tuple(map(str, p)) for p in raw] if raw is not None else None
    pairs = []
    for part in str(raw).split(";"):
        ab = [x.strip() for x in part.split(",")]
        if len(ab) != 2 or not all(ab) or ab[0] == ab[1]:
            raise UserError(f"--contrast {raw!r}: give two different groups as A,B (e.g. 2021,2020)")
        pairs.append((ab[0], ab[1]))
    return pairs


def report(path, out=None, *, n_boot: int = 2000, seed: int = 2025, level: float = 0.95, adjust: str = "holm",
           title: str | None = None, skip_bad_lines: bool = False, progress: bool = False):
    """Write report.html (self-contained) and report.md for a run folder (or `Run`), a grid folder or any
    folder of runs, into `out` (default PATH/report); returns what was written (`.html`, `.markdown`).
    `progress`: a progress bar over the bootstrap."""
    from llmscisci.metrics.stats import METHODS
    from llmscisci.paths import check_output_path
    from llmscisci.report import write_report
    from llmscisci.tasks import registry

    if isinstance(path, (list, tuple)):
        raise UserError("report: give one folder (a run, a grid, or a folder holding the runs to compare)")
    root = _path(path)
    if adjust not in METHODS:
        raise UserError(f"--adjust {adjust!r}: choose one of {', '.join(METHODS)}")
    if not root.is_dir():
        raise UserError(f"{root}: no such folder")
    check_output_path(out if out is not None else root / "report", "folder")
    registry.kinds()  # every kind declares how the report reads its run folders
    return write_report(root, out, n_boot=n_boot, seed=seed, level=level, adjust=adjust, title=title,
                        progress=progress, skip_bad=skip_bad_lines)

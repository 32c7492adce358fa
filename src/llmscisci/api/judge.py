"""`ls.judge(...)` and `ls.agree(...)`: the Python faces of `llmscisci judge` (an LLM judges candidate
labels against the reference; the run audits the judge) and `llmscisci agree` (agreement between label
files or label runs: kappas, alpha, exact match)."""

from __future__ import annotations

from pathlib import Path

from llmscisci.api.inputs import codebook_of
from llmscisci.api.options import backend_settings, batch_options, load_run_backend, split_options
from llmscisci.api.run import Run
from llmscisci.errors import UserError

ANNOTATOR = Path("labels") / "annotator_a.jsonl"


def _paths(values) -> list[Path]:
    if values is None:
        return []
    if isinstance(values, (str, Path)) or hasattr(values, "path"):
        values = [values]
    return [Path(v.path) if isinstance(v, Run) else Path(v) for v in values]


def judge(llm=None, *, task="easy", model: str = "smollm2-135m", variant: str = "structured",
          annotator: bool = True, orders: str = "all", limit: int | None = None, split: str = "all",
          reference: str | Path | None = None, data_dir: str | Path | None = None, out: str | Path = "runs",
          max_new_tokens: int | None = None, temperature: float = 0.0, seed: int = 2025, **options) -> Run:
    """An LLM judges K candidates' labels (label files or label `Run`s, `llm=`) in every candidate order;
    returns the judge run (its metrics audit the judge). Backend and batch options as in `ls.label`."""
    from llmscisci.backends.base import GenParams
    from llmscisci.backends.batch import BatchPending
    from llmscisci.data.codebook import BUILTIN, load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.paths import data_dir as resolve_data_dir
    from llmscisci.paths import data_label
    from llmscisci.prompts.judge import check_variant
    from llmscisci.tasks.judge import JudgeSpec, candidates_from_sets, default_max_new_tokens, prepare, run_judge

    backend_opts, batch_kw, _ = split_options(options)
    if max_new_tokens is not None and max_new_tokens < 1:
        raise UserError(f"--max-new-tokens {max_new_tokens}: must be at least 1")
    settings = backend_settings(backend_opts)
    batch = batch_options(**batch_kw)
    check_variant(variant)
    codebook = codebook_of(task)
    source = resolve_data_dir(data_dir)
    llm_paths = _paths(llm)
    if annotator:
        default = source / ANNOTATOR
        if not default.is_file():
            raise UserError(f"{default} not found: pass annotator=False and at least two label files as llm")
        if all(x.resolve() != default.resolve() for x in llm_paths):
            llm_paths.insert(0, default)
    for x in llm_paths:
        if not x.exists():
            raise UserError(f"--llm {x}: no such file or run folder")
    books = {t: load_codebook(t) for t in BUILTIN} | {codebook.task: codebook}
    candidates = candidates_from_sets([load_labels(x, books) for x in llm_paths], codebook.task)
    if reference is not None and not Path(reference).is_file():
        raise UserError(f"--reference {reference}: file not found")
    items = load_items(codebook, data_dir=source, reference=reference)
    params = GenParams(max_new_tokens=max_new_tokens or default_max_new_tokens(variant, len(candidates), codebook.n),
                       temperature=temperature, seed=seed)
    spec = JudgeSpec(codebook=codebook, variant=variant, model=model, params=params, orders=orders, limit=limit,
                     split=split, data_source=data_label(source))
    prepare(spec, items, candidates)  # validate before loading a model
    backend = load_run_backend(model, settings.options(), batch)
    try:
        return Run(run_judge(spec, items, candidates, backend, out).path)
    except BatchPending as exc:
        return Run(exc.run_dir)


def agree(files, *, task=None, human=None) -> dict:
    """Agreement between label files or label runs (`files`: paths or `Run`s, at least two): per task,
    Cohen's kappa per label and pair, Fleiss' kappa and Krippendorff's alpha per label, exact match and
    Hamming loss per pair. `human`: the files that are human coders (human-human agreement is then the
    ceiling beside model-human). Returns the same dictionary as `llmscisci agree --json`, less the
    whole-vector pairs across tasks."""
    from llmscisci.data.codebook import BUILTIN, load_codebook
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.metrics.agreement import agreement_report
    from llmscisci.tasks.judge import candidates_from_sets

    paths = _paths(files)
    if len(paths) < 2:
        raise UserError("agree needs at least two label files")
    for f in paths:
        if not f.exists():
            raise UserError(f"{f}: no such file or run folder")
    humans = {p.resolve() for p in _paths(human)}
    unknown = [h for h in humans if h not in {f.resolve() for f in paths}]
    if unknown:
        raise UserError(f"human {unknown[0]}: not among the files given")
    books = {t: load_codebook(t) for t in BUILTIN}
    wanted = None
    if task is not None:
        custom = [codebook_of(t) for t in (task if isinstance(task, (list, tuple)) else [task])]
        books |= {cb.task: cb for cb in custom}
        wanted = [cb.task for cb in custom]
    sets = [load_labels(f, books) for f in paths]
    tasks = wanted or [t for t in books if any(s.for_task(t) for s in sets)]
    if not tasks:
        raise UserError("the files hold no items of a known task; for a codebook of your own pass task=")
    result: dict = {"files": [str(f) for f in paths], "tasks": {}}
    for t in tasks:
        cands = candidates_from_sets(sets, t)
        coders = {c.name: {doi: r.labels for doi, r in c.records.items() if r.labels is not None} for c in cands}
        if not any(coders.values()):
            raise UserError(f"the files hold no labels of task {t!r}")
        groups = None
        if humans:
            groups = {c.name: ("human" if Path(c.path).resolve() in humans
                               or Path(c.path).parent.resolve() in humans else "model") for c in cands}
        result["tasks"][t] = agreement_report(coders, books[t].shorts, groups).to_dict()
    return result

"""The one copy of judging behind `llmscisci judge` and `ls.judge(...)`, and of agreement behind
`llmscisci agree` and `ls.agree(...)`: the option checks (done before anything heavy loads), `resume`
(the run's configuration from its config.json), the plan of a dry run and the judge runner; the
agreement reports per task and the whole-vector pairs across tasks. Each face turns the results into
what it shows; `flags` name the options in its own spelling in the one-line errors."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from llmscisci.errors import UserError

ANNOTATOR = Path("labels") / "annotator_a.jsonl"
# how each face spells the options that errors name
CLI_FLAGS = {"no_annotator": "pass --no-annotator and at least two --llm files", "human": "--human",
             "files": "FILES", "task": "--task "}
API_FLAGS = {"no_annotator": "pass annotator=False and at least two label files as llm", "human": "human",
             "files": "files", "task": "task="}


@dataclass
class Judged:
    """A judge run's outcome: a finished run (`run`, `metrics`), request rows written for a batch file
    (`pending`, the BatchPending), or a dry run's `plan`."""

    task: str
    run: Any = None
    metrics: dict | None = None
    pending: Any = None
    plan: Any = None


def _candidates(task, llm_paths: list[Path], annotator: bool, source: Path, flags: dict):
    from llmscisci.data.codebook import BUILTIN, load_codebook
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.tasks.judge import candidates_from_sets

    llm_paths = list(llm_paths)
    if annotator:
        default = source / ANNOTATOR
        if not default.is_file():
            raise UserError(f"{default} not found: {flags['no_annotator']}")
        if all(Path(x).resolve() != default.resolve() for x in llm_paths):
            llm_paths.insert(0, default)
    for x in llm_paths:
        if not Path(x).exists():
            raise UserError(f"--llm {x}: no such file or run folder")
    books = {t: load_codebook(t) for t in BUILTIN} | {task.task: task}
    return candidates_from_sets([load_labels(x, books) for x in llm_paths], task.task)


def judge_run(*, task, variant: str, model: str, opts, batch=None, llm_paths=(), annotator: bool = True,
              orders: str = "all", limit: int | None = None, split: str = "all", reference=None, data_dir=None,
              out_dir="runs", resume=None, max_new_tokens: int | None = None, temperature: float = 0.0,
              seed: int = 2025, dry_run: bool = False, codebook_of: Callable | None = None,
              say: Callable[[str], None] | None = None, flags: dict = CLI_FLAGS) -> Judged:
    """Judge (or plan, `dry_run`) the candidates' labels: `opts` are the backend options, `batch` the batch
    options or a function that checks and returns them (None: live); `codebook_of` turns `task` into a
    codebook (default: load_codebook); `say` gets the line that names what is judged."""
    from llmscisci.backends.base import GenParams
    from llmscisci.data.codebook import load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.paths import data_dir as resolve_data_dir
    from llmscisci.paths import data_label
    from llmscisci.prompts.judge import check_variant
    from llmscisci.tasks.judge import JudgeSpec, default_max_new_tokens, prepare

    if max_new_tokens is not None and max_new_tokens < 1:
        raise UserError(f"--max-new-tokens {max_new_tokens}: must be at least 1")
    batch = batch() if callable(batch) else batch
    if resume is not None:
        return _resumed(Path(resume), opts, batch, data_dir, reference, out_dir, dry_run, say)
    check_variant(variant)
    codebook = (codebook_of or load_codebook)(task)
    source = resolve_data_dir(data_dir)
    candidates = _candidates(codebook, list(llm_paths), annotator, source, flags)
    if reference is not None and not Path(reference).is_file():
        raise UserError(f"--reference {reference}: file not found")
    items = load_items(codebook, data_dir=source, reference=reference)
    params = GenParams(max_new_tokens=max_new_tokens or default_max_new_tokens(variant, len(candidates), codebook.n),
                       temperature=temperature, seed=seed)
    spec = JudgeSpec(codebook=codebook, variant=variant, model=model, params=params, orders=orders, limit=limit,
                     split=split, data_source=data_label(source))
    selected, order_list, _ = prepare(spec, items, candidates)  # validate before loading a model
    if say is not None:
        say(f"judging {len(selected)} items x {len(order_list)} orders of {len(candidates)} candidates: "
            + ", ".join(c.name for c in candidates))
    if dry_run:
        return Judged(codebook.task, plan=_plan(spec, selected, order_list, candidates, opts))
    return _run(spec, items, candidates, opts, batch, out_dir, resume)


def _resumed(resume: Path, opts, batch, data_dir, reference, out_dir, dry_run: bool, say) -> Judged:
    """`resume`: continue the judge run folder through the judge kind (its spec and candidates from its
    config.json; `data_dir` and `reference` kept when given), or plan what it asks (`dry_run`)."""
    from llmscisci.api.options import load_run_backend
    from llmscisci.backends.batch import BatchPending
    from llmscisci.paths import check_output_path
    from llmscisci.tasks.registry import get

    kind = get("judge")
    inputs = kind.resume_inputs(resume, data_dir=data_dir, reference=reference)  # read once, for all below
    spec, items, candidates = inputs
    if dry_run or say is not None:
        from llmscisci.tasks.judge import prepare

        selected, order_list, _ = prepare(spec, items, candidates)
        if say is not None:
            say(f"judging {len(selected)} items x {len(order_list)} orders of {len(candidates)} candidates: "
                + ", ".join(c.name for c in candidates))
        if dry_run:
            return Judged(spec.codebook.task, plan=_plan(spec, selected, order_list, candidates, opts))
    check_output_path(resume, "folder", "--resume")  # before the model loads
    backend = load_run_backend(spec.model, opts, batch)
    try:
        run = kind.resume(resume, backend, inputs=inputs)
    except BatchPending as exc:  # a batch file: the request rows are written, nothing to audit yet
        return Judged(spec.codebook.task, pending=exc)
    return Judged(spec.codebook.task, run=run, metrics=run.metrics())


def _plan(spec, selected, order_list, candidates, opts):
    from llmscisci.prompts import judge as judge_prompts
    from llmscisci.tasks.label_plan import plan_conversations

    codebook, variant = spec.codebook, spec.variant

    def conversations():
        for it in selected:
            for order in order_list:
                recs = [candidates[i].records[it.doi] for i in order]
                shown = [judge_prompts.Shown(r.labels, r.response) for r in recs]
                yield judge_prompts.build_messages(it.text, it.labels, shown, codebook, variant)

    schema = judge_prompts.judge_schema(codebook, len(candidates)) if judge_prompts.is_structured(variant) else None
    return plan_conversations(spec.model, conversations(), spec.params, opts, schema, what="calls (items x orders)")


def _run(spec, items, candidates, opts, batch, out_dir, resume) -> Judged:
    from llmscisci.api.options import load_run_backend
    from llmscisci.backends.batch import BatchPending
    from llmscisci.paths import check_output_path
    from llmscisci.tasks.judge import run_judge

    check_output_path(out_dir, "folder")  # before the model loads
    backend = load_run_backend(spec.model, opts, batch)
    try:
        run = run_judge(spec, items, candidates, backend, out_dir, run_dir=resume)
    except BatchPending as exc:  # a batch file: the request rows are written, nothing to audit yet
        return Judged(spec.codebook.task, pending=exc)
    return Judged(spec.codebook.task, run=run, metrics=run.metrics())


# --- agreement -----------------------------------------------------------------------------------
def task_hint(files: list[Path], custom_only: bool = False, flag: str = "--task ") -> str:
    """'; pass --task mine.toml ...' when a file is a run of a codebook of the user's own."""
    for f in files:
        cfg = Path(f) / "config.json"
        if not cfg.is_file():
            continue
        try:
            book = json.loads(cfg.read_text("utf-8")).get("codebook") or {}
        except (OSError, ValueError):
            continue
        if book.get("source", "builtin") != "builtin":
            return (f"; {f} is a run of the codebook {book['source']} (task {book.get('task')!r}): pass "
                    f"{flag}{book['source']}")
    return "" if custom_only else f"; for a codebook of your own pass {flag}YOUR_CODEBOOK.toml"


def agreement(files: list[Path], *, tasks=None, humans=(), json_out=None, codebook_of: Callable | None = None,
              flags: dict = CLI_FLAGS) -> dict:
    """Agreement between label files or label run folders (`files`, at least two) for each task in
    `tasks` (codebooks or their names; default: every built-in task the files hold); `humans`: the
    files that are human coders. The dictionary of `llmscisci agree --json`: per task the agreement
    report, and with several tasks the whole-vector pairs across them (`all_tasks_pairs`)."""
    from llmscisci.data.codebook import BUILTIN, load_codebook
    from llmscisci.data.labelfiles import load_labels

    files = [Path(f) for f in files]
    if len(files) < 2:
        raise UserError("agree needs at least two label files")
    for f in files:
        if not f.exists():
            raise UserError(f"{f}: no such file or run folder")
    humans = {Path(h).resolve() for h in humans}
    unknown = [h for h in humans if h not in {f.resolve() for f in files}]
    if unknown:
        raise UserError(f"{flags['human']} {unknown[0]}: not among the {flags['files']} given")
    books = {t: load_codebook(t) for t in BUILTIN}
    wanted = None
    if not tasks:
        hint = task_hint(files, custom_only=True, flag=flags["task"])
        if hint:
            raise UserError(hint.removeprefix("; "))
    else:
        custom = [(codebook_of or load_codebook)(t) for t in tasks]
        books |= {cb.task: cb for cb in custom}
        wanted = [cb.task for cb in custom]
    if json_out is not None and json_out.parent and not json_out.parent.is_dir():
        raise UserError(f"--json-out {json_out}: folder {json_out.parent} does not exist")
    sets = [load_labels(f, books) for f in files]
    names = wanted or [t for t in books if any(s.for_task(t) for s in sets)]
    if not names:
        raise UserError("the files hold no items of a known task" + task_hint(files, flag=flags["task"]))
    return _reports(files, sets, names, books, humans)


def _reports(files, sets, names, books, humans) -> dict:
    from llmscisci.metrics.agreement import agreement_report, exact_match, hamming_loss
    from llmscisci.tasks.judge import candidates_from_sets

    result: dict = {"files": [str(f) for f in files], "tasks": {}}
    all_keys: dict[str, dict] = {}
    for t in names:
        cands = candidates_from_sets(sets, t)
        coders = {c.name: {doi: r.labels for doi, r in c.records.items() if r.labels is not None} for c in cands}
        if not any(coders.values()):
            raise UserError(f"the files hold no labels of task {t!r}")
        groups = None
        if humans:
            groups = {c.name: ("human" if Path(c.path).resolve() in humans
                               or Path(c.path).parent.resolve() in humans else "model") for c in cands}
        result["tasks"][t] = agreement_report(coders, books[t].shorts, groups).to_dict()
        for name, vecs in coders.items():
            all_keys.setdefault(name, {}).update({(doi, t): v for doi, v in vecs.items()})
    if len(names) > 1:
        coders = list(all_keys)
        rows = []
        for i, a in enumerate(coders):
            for b in coders[i + 1:]:
                keys = [k for k in all_keys[a] if k in all_keys[b]]
                va, vb = [all_keys[a][k] for k in keys], [all_keys[b][k] for k in keys]
                rows.append({"a": a, "b": b, "n": len(keys), "exact_match": exact_match(va, vb).to_dict(),
                             "hamming_loss": hamming_loss(va, vb).to_dict()})
        result["all_tasks_pairs"] = rows
    return result

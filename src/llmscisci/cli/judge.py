"""`llmscisci judge` (an LLM judges other LLMs' labels, with an audit of the judge) and `llmscisci agree`
(agreement tables for any set of label files, no model needed)."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from llmscisci.cli.batch import BatchAttemptsOpt, BatchFileOpt, BatchModelOpt, BatchOpt, FallbackOpt, PollOpt
from llmscisci.backends.settings import BackendSettings
from llmscisci.cli.backend_flags import backend_flags
from llmscisci.cli.common import (
    TaskOpt,
    DataDirOpt,
    EncodingOpt,
    JsonOpt,
    JsonOutOpt,
    ModelOpt,
    OutOpt,
    console,
    emit,
    exit_if_unanswered,
    out,
)
from llmscisci.cli.tables import print_table
from llmscisci.console import fmt as _fmt

ANNOTATOR = Path("labels") / "annotator_a.jsonl"


# --- formatting ----------------------------------------------------------------------------------
# a number, a Stat-like dict or None as table text: "-" for None, plain decimals
fmt = partial(_fmt, none="-", compact=False, thousands=False)


def _reasons(*stats) -> list[str]:
    seen = []
    for s in stats:
        r = s.get("reason") if isinstance(s, dict) else None
        if r and r not in seen:
            seen.append(r)
    return seen


def pair_table(report: dict, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("coder A", "coder B", "n", "exact", "Ham.agr", "Ham.loss", "κ mean"):
        t.add_column(col, justify="left" if col.startswith("coder") else "right")
    for lab in report["labels"]:
        t.add_column(f"κ {lab}", justify="right")
    for p in report["pairs"]:
        t.add_row(p["a"], p["b"], str(p["n"]), fmt(p["exact_match"]), fmt(p["hamming_agreement"]),
                  fmt(p["hamming_loss"]), fmt(p["mean_kappa"]), *[fmt(p["kappa"][lab]) for lab in report["labels"]])
    return t


def label_table(rows: list[dict], coders: list[str], title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("label", "Fleiss kappa", "Krippendorff alpha", "mean pair kappa"):
        t.add_column(col, justify="left" if col == "label" else "right")
    for c in coders:
        t.add_column(f"+ {c}", justify="right")
    for r in rows:
        t.add_row(r["label"], fmt(r["fleiss_kappa"]), fmt(r["krippendorff_alpha"]), fmt(r["mean_pair_kappa"]),
                  *[str(r["positives"].get(c, "-")) for c in coders])
    return t


def group_table(report: dict, title: str) -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("groups", "pairs", "exact", "Ham.agr", "κ mean"):
        t.add_column(col, justify="left" if col == "groups" else "right")
    for lab in report["labels"]:
        t.add_column(f"κ {lab}", justify="right")
    for g in report["group_pairs"]:
        if not g["pairs"]:
            continue
        name = f"{g['a']}-{g['b']}" + (" (ceiling)" if g["within"] and g["a"] == "human" else "")
        t.add_row(name, str(g["pairs"]), fmt(g["exact_match"]), fmt(g["hamming_agreement"]), fmt(g["mean_kappa"]),
                  *[fmt(g["kappa"][lab]) for lab in report["labels"]])
    return t


def agreement_tables(report: dict, task: str) -> list:
    tables = [pair_table(report, f"{task}: pairwise agreement ({report['n_items']} items; exact = whole vector, "
                                 "Ham. = Hamming, κ = Cohen's kappa)"),
              label_table(report["per_label"], report["coders"],
                          f"{task}: per label (Fleiss on the {report['n_complete']} items every coder labelled; "
                          "+ = items labelled 1)")]
    if report["group_pairs"]:
        tables.append(group_table(report, f"{task}: within and between coder groups (mean over pairs)"))
        for g, rows in report["group_stats"].items():
            tables.append(label_table(rows, [c for c in report["coders"] if report["groups"].get(c) == g],
                                      f"{task}: per label within group {g!r}"))
    stats = [s for p in report["pairs"] for s in p["kappa"].values()]
    stats += [r[k] for r in report["per_label"] for k in ("fleiss_kappa", "krippendorff_alpha")]
    tables += [f"[dim]- undefined: {reason}[/dim]" for reason in _reasons(*stats)]
    return tables


def print_agreement(report: dict, task: str) -> None:
    for t in agreement_tables(report, task):
        print_table(out, t)


def judge_tables(metrics: dict) -> list[Table]:
    a = metrics["audit"]
    s = a["scores"]
    t = Table(title=f"judge audit: {a['calls']} calls, {a['items']} items, {metrics['orders']} orders",
              title_justify="left")
    t.add_column("measure")
    t.add_column("value", justify="right")
    rows = [
        ("valid answers (scores + final)", fmt(metrics["valid_rate"])),
        ("scores parsed", f"{a['scores_parsed']}/{a['scores_expected']}"),
        ("final classification parsed", fmt(metrics["final_parsed_rate"])),
        ("judge score == exact score", fmt(s["exact_agreement"])),
        ("mean absolute error", fmt(s["mae"])),
        ("mean error (judge - exact)", fmt(s["mean_error"])),
        ("Spearman", fmt(s["spearman"]) + (f" ({s['spearman']['reason']})" if s["spearman"]["reason"] else "")),
        ("Kendall", fmt(s["kendall"]) + (f" ({s['kendall']['reason']})" if s["kendall"]["reason"] else "")),
        ("judge's top pick truly best", fmt(a["best_pick"]["rate"])),
        ("final == truth", fmt(metrics["final"]["matches_truth"])),
        ("position: mean abs change of a score", fmt(a["position"]["mean_abs_change"])),
        ("position: largest effect", fmt(a["position"]["max_position_effect"])),
    ]
    for r in rows:
        t.add_row(*r)
    p = Table(title="by position", title_justify="left")
    for col in ("position", "n", "mean score", "mean error", "effect", "top pick share"):
        p.add_column(col, justify="right")
    share = a["top_position"]["share"]
    for row in a["position"]["per_position"]:
        p.add_row(str(row["position"]), str(row["n"]), fmt(row["mean_score"]), fmt(row["mean_error"]),
                  fmt(row["effect"]), fmt(share.get(row["position"], share.get(str(row["position"])))))
    c = Table(title="by candidate", title_justify="left")
    for col in ("candidate", "n", "mean judge", "mean exact", "MAE", "mean abs change"):
        c.add_column(col, justify="left" if col == "candidate" else "right")
    for name, row in a["per_llm"].items():
        ch = a["position"]["per_llm"].get(name, {})
        c.add_row(name, str(row["n"]), fmt(row["mean_judge"]), fmt(row["mean_exact"]), fmt(row["mae"]),
                  fmt(ch.get("mean_abs_change")))
    return [t, p, c]


# --- commands ------------------------------------------------------------------------------------
@backend_flags
def judge(
    task: TaskOpt = "easy",
    variant: Annotated[str, typer.Option("--variant", help="icl | guidelines | structured")] = "structured",
    model: ModelOpt = "smollm2-135m",
    llm: Annotated[list[Path] | None, typer.Option(
        "--llm", help="A candidate's labels: any label file or an `llmscisci label` run folder (repeatable).")] = None,
    annotator: Annotated[bool, typer.Option(
        "--annotator/--no-annotator",
        help="Add DATA/labels/annotator_a.jsonl as a candidate. The three annotator files agree on 130 of "
             "140 items, so pass label runs of real models with --llm to give the judge differences to find.")] = True,
    orders: Annotated[str, typer.Option(
        "--orders", help="Candidate orders per item: all (K!), cyclic (K rotations) or N (a seeded sample).")] = "all",
    limit: Annotated[int | None, typer.Option("--limit", help="Judge only the first N items.")] = None,
    split: Annotated[str, typer.Option("--split", help="all | train | test (canonical DOI-grouped split)")] = "all",
    reference: Annotated[Path | None, typer.Option(
        "--reference", help="Ground-truth label file (default DATA/labels/reference.csv).")] = None,
    data_dir: DataDirOpt = None,
    out_dir: OutOpt = Path("runs"),
    resume: Annotated[Path | None, typer.Option("--resume", help="Continue this judge run folder.")] = None,
    max_new_tokens: Annotated[int | None, typer.Option("--max-new-tokens")] = None,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy")] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Generation seed and the seed of sampled orders.")] = 2025,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan (calls, first prompt, tokens, cost or ETA); write nothing.")] = False,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
    batch: BatchOpt = False,
    batch_file: BatchFileOpt = None,
    batch_model: BatchModelOpt = None,
    poll_interval: PollOpt = 60.0,
    batch_attempts: BatchAttemptsOpt = 2,
    batch_fallback: FallbackOpt = "none",
    encoding: EncodingOpt = None,
    backend: BackendSettings | None = None,
) -> None:
    """An LLM judges K candidate LLMs' labels against the ground truth, in every candidate order, and
    the run audits the judge: its scores against the exact ones (categories matched out of n),
    its picks of the best candidate, and its position bias."""
    from llmscisci.backends.base import GenParams
    from llmscisci.backends.batch import BatchPending
    from llmscisci.cli.batch import batch_options, load_run_backend, pending_result
    from llmscisci.data.codebook import BUILTIN, load_codebook
    from llmscisci.data.items import load_items
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.errors import UserError
    from llmscisci.paths import data_dir as resolve_data_dir
    from llmscisci.paths import data_label
    from llmscisci.prompts.judge import check_variant
    from llmscisci.runs import RunFolder
    from llmscisci.tasks.judge import (
        JudgeSpec,
        candidates_from_sets,
        default_max_new_tokens,
        prepare,
        run_judge,
    )

    if max_new_tokens is not None and max_new_tokens < 1:
        raise UserError(f"--max-new-tokens {max_new_tokens}: must be at least 1")
    batch_opts = batch_options(batch, batch_file, batch_model, poll_interval, batch_attempts, batch_fallback)
    llm_paths = list(llm or [])
    if resume is not None:
        cfg = RunFolder(resume).config
        if cfg.get("kind") != "judge":
            raise UserError(f"--resume {resume}: not a judge run folder")
        source_book = cfg["codebook"].get("source", "builtin")
        task = cfg["task"] if source_book == "builtin" else source_book
        variant, model, orders = cfg["variant"], cfg["model"], cfg["orders_spec"]
        limit, split = cfg.get("limit"), cfg.get("split_filter", "all")
        llm_paths, annotator = [Path(c["path"]) for c in cfg["candidates"]], False
        p = cfg["params"]
        max_new_tokens, temperature, seed = p["max_new_tokens"], p["temperature"], p["seed"]
        if data_dir is None and cfg.get("data_source"):
            data_dir = Path(cfg["data_source"])
    check_variant(variant)
    codebook = load_codebook(task)
    source = resolve_data_dir(data_dir)
    if annotator:
        default = source / ANNOTATOR
        if not default.is_file():
            raise UserError(f"{default} not found: pass --no-annotator and at least two --llm files")
        if all(Path(x).resolve() != default.resolve() for x in llm_paths):
            llm_paths.insert(0, default)
    for x in llm_paths:
        if not Path(x).exists():
            raise UserError(f"--llm {x}: no such file or run folder")
    books = {t: load_codebook(t) for t in BUILTIN} | {codebook.task: codebook}
    sets = [load_labels(x, books) for x in llm_paths]
    candidates = candidates_from_sets(sets, codebook.task)
    if reference is not None and not reference.is_file():
        raise UserError(f"--reference {reference}: file not found")
    items = load_items(codebook, data_dir=source, reference=reference)
    params = GenParams(max_new_tokens=max_new_tokens or default_max_new_tokens(variant, len(candidates), codebook.n),
                       temperature=temperature, seed=seed)
    spec = JudgeSpec(codebook=codebook, variant=variant, model=model, params=params, orders=orders, limit=limit,
                     split=split, data_source=data_label(source))
    selected, order_list, _ = prepare(spec, items, candidates)  # validate before loading a model
    console.print(f"judging {len(selected)} items x {len(order_list)} orders of {len(candidates)} candidates: "
                  + ", ".join(c.name for c in candidates))
    opts = backend.options()
    if not dry_run:
        from llmscisci.paths import check_output_path

        check_output_path(out_dir, "folder")  # before the model loads
    if dry_run:
        from llmscisci.cli.dryrun import emit_text, plan_conversations
        from llmscisci.prompts import judge as judge_prompts

        def conversations():
            for it in selected:
                for order in order_list:
                    recs = [candidates[i].records[it.doi] for i in order]
                    shown = [judge_prompts.Shown(r.labels, r.response) for r in recs]
                    yield judge_prompts.build_messages(it.text, it.labels, shown, codebook, variant)

        schema = judge_prompts.judge_schema(codebook, len(candidates)) if judge_prompts.is_structured(variant) else None
        plan = plan_conversations(model, conversations(), params, opts, schema, what="calls (items x orders)")
        emit_text({"dry_run": plan.as_dict()}, [plan.text], as_json, json_out)
        return
    backend = load_run_backend(model, opts, batch_opts)
    try:
        run = run_judge(spec, items, candidates, backend, out_dir, run_dir=resume)
    except BatchPending as exc:  # --batch-file: the request rows are written, nothing to audit yet
        res, line = pending_result(codebook.task, exc)
        emit(res, [line], as_json, json_out)
        return
    metrics = run.metrics()
    emit({"run_dir": str(run.path), "metrics": metrics}, judge_tables(metrics) + [f"run folder: {run.path}"],
         as_json, json_out)
    exit_if_unanswered([metrics], "calls")


def agree(
    files: Annotated[list[Path], typer.Argument(help="Label files or `llmscisci label` run folders.")],
    task: Annotated[str | None, typer.Option(
        "--task", help="easy, difficult, a codebook .toml, or several joined by commas (default: every "
                       "built-in task the files hold).")] = None,
    human: Annotated[list[Path] | None, typer.Option(
        "--human", help="Mark a file as a human coder (repeatable); the others count as models. With two or "
                        "more, human-human agreement is shown as the ceiling next to model-human.")] = None,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
    encoding: EncodingOpt = None,
) -> None:
    """Agreement between label files (annotators, models, people): Cohen's kappa per label and pair,
    Fleiss' kappa and Krippendorff's alpha per label, exact-match and Hamming agreement per pair."""
    from llmscisci.data.codebook import BUILTIN, load_codebook
    from llmscisci.data.labelfiles import load_labels
    from llmscisci.errors import UserError
    from llmscisci.metrics.agreement import exact_match, hamming_loss
    from llmscisci.tasks.judge import candidates_from_sets

    if len(files) < 2:
        raise UserError("agree needs at least two label files")
    for f in files:
        if not f.exists():
            raise UserError(f"{f}: no such file or run folder")
    humans = {Path(h).resolve() for h in human or []}
    unknown = [h for h in humans if h not in {f.resolve() for f in files}]
    if unknown:
        raise UserError(f"--human {unknown[0]}: not among the FILES given")
    books = {t: load_codebook(t) for t in BUILTIN}
    wanted = None
    if not task:
        hint = _task_hint(files, custom_only=True)
        if hint:
            raise UserError(hint.removeprefix("; "))
    if task:
        custom = [load_codebook(t.strip()) for t in task.split(",") if t.strip()]
        books |= {cb.task: cb for cb in custom}
        wanted = [cb.task for cb in custom]
    if json_out is not None and json_out.parent and not json_out.parent.is_dir():
        raise UserError(f"--json-out {json_out}: folder {json_out.parent} does not exist")
    sets = [load_labels(f, books) for f in files]
    tasks = wanted or [t for t in books if any(s.for_task(t) for s in sets)]
    if not tasks:
        raise UserError("the files hold no items of a known task" + _task_hint(files))
    result = {"files": [str(f) for f in files], "tasks": {}}
    tables: list = []
    from llmscisci.metrics.agreement import agreement_report

    all_keys: dict[str, dict] = {}
    for t in tasks:
        cands = candidates_from_sets(sets, t)
        coders = {c.name: {doi: r.labels for doi, r in c.records.items() if r.labels is not None} for c in cands}
        if not any(coders.values()):
            raise UserError(f"the files hold no labels of task {t!r}")
        groups = None
        if humans:
            groups = {c.name: ("human" if Path(c.path).resolve() in humans
                               or Path(c.path).parent.resolve() in humans else "model") for c in cands}
        report = agreement_report(coders, books[t].shorts, groups).to_dict()
        result["tasks"][t] = report
        tables += agreement_tables(report, t)
        for name, vecs in coders.items():
            all_keys.setdefault(name, {}).update({(doi, t): v for doi, v in vecs.items()})
    if len(tasks) > 1:
        names = list(all_keys)
        rows = []
        tab = Table(title=f"all tasks ({', '.join(tasks)}): whole-vector agreement per pair", title_justify="left")
        for col in ("coder A", "coder B", "n", "exact match", "Hamming loss"):
            tab.add_column(col, justify="left" if col.startswith("coder") else "right")
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                keys = [k for k in all_keys[a] if k in all_keys[b]]
                va, vb = [all_keys[a][k] for k in keys], [all_keys[b][k] for k in keys]
                em, hl = exact_match(va, vb), hamming_loss(va, vb)
                rows.append({"a": a, "b": b, "n": len(keys), "exact_match": em.to_dict(),
                             "hamming_loss": hl.to_dict()})
                tab.add_row(a, b, str(len(keys)), fmt(em.value), fmt(hl.value))
        tables.append(tab)
        result["all_tasks_pairs"] = rows
    emit(result, tables, as_json, json_out)


def _task_hint(files: list[Path], custom_only: bool = False) -> str:
    """'; pass --task mine.toml ...' when a file is a run of a codebook of the user's own."""
    import json

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
                    f"--task {book['source']}")
    return "" if custom_only else "; for a codebook of your own pass --task YOUR_CODEBOOK.toml"


def register(app: typer.Typer) -> None:
    app.command("judge")(judge)
    app.command("agree")(agree)

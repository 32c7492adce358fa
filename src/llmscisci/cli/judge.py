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
    from llmscisci.api.judge_runs import judge_run
    from llmscisci.cli.batch import batch_options
    from llmscisci.cli.common import pending_result

    done = judge_run(task=task, variant=variant, model=model, opts=backend.options(), llm_paths=list(llm or []),
                     batch=lambda: batch_options(batch, batch_file, batch_model, poll_interval, batch_attempts,
                                                 batch_fallback),
                     annotator=annotator, orders=orders, limit=limit, split=split, reference=reference,
                     data_dir=data_dir, out_dir=out_dir, resume=resume, max_new_tokens=max_new_tokens,
                     temperature=temperature, seed=seed, dry_run=dry_run, say=console.print)
    if done.plan is not None:
        from llmscisci.cli.dryrun import emit_text

        return emit_text({"dry_run": done.plan.as_dict()}, [done.plan.text], as_json, json_out)
    if done.pending is not None:  # --batch-file: the request rows are written, nothing to audit yet
        res, line = pending_result(done.task, done.pending)
        return emit(res, [line], as_json, json_out)
    emit({"run_dir": str(done.run.path), "metrics": done.metrics},
         judge_tables(done.metrics) + [f"run folder: {done.run.path}"], as_json, json_out)
    exit_if_unanswered([done.metrics], "calls")


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
    from llmscisci.api.judge_runs import agreement

    tasks = [t.strip() for t in task.split(",") if t.strip()] if task else None
    result = agreement(files, tasks=tasks, humans=human or [], json_out=json_out)
    tables: list = []
    for t, report in result["tasks"].items():
        tables += agreement_tables(report, t)
    if "all_tasks_pairs" in result:
        tables.append(all_tasks_table(result["all_tasks_pairs"], list(result["tasks"])))
    emit(result, tables, as_json, json_out)


def all_tasks_table(rows: list[dict], tasks: list[str]) -> Table:
    tab = Table(title=f"all tasks ({', '.join(tasks)}): whole-vector agreement per pair", title_justify="left")
    for col in ("coder A", "coder B", "n", "exact match", "Hamming loss"):
        tab.add_column(col, justify="left" if col.startswith("coder") else "right")
    for r in rows:
        tab.add_row(r["a"], r["b"], str(r["n"]), fmt(r["exact_match"]), fmt(r["hamming_loss"]))
    return tab


def register(app: typer.Typer) -> None:
    app.command("judge")(judge)
    app.command("agree")(agree)

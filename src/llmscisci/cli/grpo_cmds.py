"""`llmscisci grpo probe | score | build | train | eval` (study 3: GRPO). `cli/train.py` mounts `grpo_app` as `grpo`; other
GRPO commands (train, eval) are added to the same sub-app with `@grpo_app.command(...)`."""

from __future__ import annotations

import json
from functools import partial
from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.backends.settings import BackendSettings
from llmscisci.cli.backend_flags import backend_flags
from llmscisci.cli.common import DataDirOpt, JsonOpt, JsonOutOpt, TaskOpt, TasksOpt, console, emit, out
from llmscisci.cli.tables import print_table
from llmscisci.console import fmt
from llmscisci.paths import read_toml

grpo_app = typer.Typer(help="Study 3: GRPO (rewards, reward-hacking probes, chain-of-thought data).",
                       no_args_is_help=True)


def _rewards_spec(rewards: str | None, config: Path | None):
    from llmscisci.errors import UserError
    from llmscisci.rewards.registry import SEED_MIX

    if rewards:
        return rewards
    if config is None:
        return SEED_MIX
    raw = read_toml(config, "config")
    table = raw.get("rewards")
    if table is None and isinstance(raw.get("grpo"), dict):
        table = raw["grpo"].get("rewards")
    if not isinstance(table, dict):
        raise UserError(f"config {config} has no [rewards] table (name = weight, or name = {{ weight = .., ... }})")
    return table


def _truth(raw: str | None, n: int, default: list[int]) -> list[int]:
    from llmscisci.errors import UserError

    if raw is None:
        return default
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise UserError(f"--truth must be a JSON list of {n} 0/1 values, got {raw!r}") from None
    if not isinstance(value, list) or len(value) != n or any(v not in (0, 1) or isinstance(v, bool) for v in value):
        raise UserError(f"--truth must be a JSON list of {n} 0/1 values, got {raw!r}")
    return value


_fmt = partial(fmt, none="-", compact=False, thousands=False, trim=True)


@grpo_app.command("probe")
def probe(
    rewards: Annotated[Optional[str], typer.Option("--rewards", help='Reward mix "name:weight,..." (default: the seed\'s format:1,label:1,stepwise:1).')] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file with a [rewards] table (name = weight or a table with weight and parameters).")] = None,
    task: TaskOpt = "easy",
    truth: Annotated[Optional[str], typer.Option("--truth", help='Ground truth the probes are written against, e.g. "[1, 0, 1, 0, 0]".')] = None,
    completion: Annotated[Optional[list[str]], typer.Option("--completion", help="Also score this completion (repeatable).")] = None,
    tokenizer: Annotated[str, typer.Option("--tokenizer", help="Token counts for the length rewards: whitespace, or a model name (its tokenizer).")] = "whitespace",
    huge_words: Annotated[int, typer.Option("--huge-words", help="Words of padding in the huge-think probe.")] = 5000,
    data_dir: DataDirOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per probe instead of a table.")] = False,
) -> None:
    """Score adversarial probe completions with a reward mix: see what a weighting pays before training.

    The probes are written against --truth and scored as one batch (group_f1 credits each against the
    others); balanced needs the train-split prevalences (--data-dir or $LLMSCISCI_DATA).
    """
    from rich.table import Table

    from llmscisci.api.train import probe_rows
    from llmscisci.data.codebook import load_codebook
    from llmscisci.prompts.cot import fields

    cb = load_codebook(task)  # --truth is read against its categories
    vec = _truth(truth, cb.n, json.loads(fields(cb)["example"]))
    rows, mix, method = probe_rows(_rewards_spec(rewards, config), task=cb, truth=vec, completions=completion or [],
                                   tokenizer=tokenizer, huge_words=huge_words, data_dir=data_dir)
    if as_json:
        for r in rows:
            print(json.dumps(r, ensure_ascii=False))
        return
    lo, hi = mix.bounds()
    console.print(f"task {cb.task}, truth {vec}, tokens: {method}; total bounds [{_fmt(lo)}, {_fmt(hi)}]")
    table = Table(title="reward probes")
    table.add_column("probe")
    for t in mix.terms:
        table.add_column(f"{t.name}\n×{_fmt(t.weight)} [{_fmt(t.bounds[0])},{_fmt(t.bounds[1])}]", justify="right")
    table.add_column("total", justify="right")
    for r in rows:
        table.add_row(r["probe"], *[_fmt(r[t.name]) for t in mix.terms], _fmt(r["total"]))
    print_table(out, table)


@grpo_app.command("score")
def score(
    input_path: Annotated[Path, typer.Argument(help="JSONL file: one object per line with `completion` and `truth` (a 0/1 list).", show_default=False)],
    rewards: Annotated[Optional[str], typer.Option("--rewards", help='Reward mix "name:weight,..." (default: the seed\'s format:1,label:1,stepwise:1).')] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file with a [rewards] table.")] = None,
    tokenizer: Annotated[str, typer.Option("--tokenizer", help="Token counts for the length rewards: words (len(text.split()), no special tokens), or a model name (its tokenizer, special tokens included as the seed counted them).")] = "words",
    out_path: Annotated[Path, typer.Option("--out", help="Output JSONL: the input rows in order, with one field per reward and `total`.", show_default=False)] = ...,
    task: Annotated[str, typer.Option("--task", help="Tasks whose train-split prevalences `balanced` uses (comma-separated); rows carry `task` when there are several.")] = "easy,difficult",
    data_dir: DataDirOpt = None,
    as_json: JsonOpt = False,
    json_out: JsonOutOpt = None,
) -> None:
    """Score your completions with a reward mix: every reward per row, plus a summary of what it pays.

    The summary gives each reward's mean and how many rows it paid > 0 although the completion does
    not match the format (every reward but `format` pays 0 there, as the seed's rewards do).
    """
    from rich.table import Table

    from llmscisci.api.train import score_completions
    from llmscisci.errors import UserError
    from llmscisci.rewards.scorefile import read_rows, write_rows

    spec = _rewards_spec(rewards, config)
    if out_path.resolve() == input_path.resolve():
        raise UserError(f"--out {out_path} is the input file: write the scores to another file")
    if out_path.exists() and out_path.is_dir():
        raise UserError(f"--out {out_path} is a folder: give a file name")
    if not out_path.parent.is_dir():
        raise UserError(f"--out {out_path}: folder {out_path.parent} does not exist")
    rows = read_rows(input_path)
    tasks = [t.strip() for t in task.split(",") if t.strip()]
    scored, summary, mix, method = score_completions(rows, spec, task=tasks, tokenizer=tokenizer,
                                                     data_dir=data_dir)
    write_rows(out_path, scored)
    result = {"input": str(input_path), "out": str(out_path), "tokens": method, **summary.to_dict()}
    table = Table(title=f"{summary.rows} rows scored ({summary.without_format} without the format)")
    table.add_column("reward")
    table.add_column("weight", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("paid > 0 without format", justify="right")
    for t in mix.terms:
        table.add_row(t.name, _fmt(t.weight), _fmt(summary.mean[t.name]), str(summary.paid_without_format[t.name]))
    table.add_row("total", "", _fmt(summary.mean["total"]), str(summary.paid_without_format["total"]))
    notes = [f"replaced input fields: {', '.join(summary.overwritten)}"] if summary.overwritten else []
    notes.append(f"tokens: {method}; written to {out_path}")
    emit(result, [table, *notes], as_json, json_out)


@grpo_app.command("build")
@backend_flags
def build(
    task: TasksOpt = "easy,difficult",
    source: Annotated[str, typer.Option("--source", help="annotators (offline: the annotators' responses) or a teacher model (provider:model or a local model).")] = "annotators",
    annotators: Annotated[Optional[list[str]], typer.Option("--annotators", help="Annotator JSONL files (repeatable; default labels/annotator_*.jsonl).")] = None,
    per_item: Annotated[str, typer.Option("--per-item", help="one: one trace per item; all: one row per agreeing annotator.")] = "one",
    fmt: Annotated[str, typer.Option("--format", help="conversational (message lists) or standard (plain strings).")] = "conversational",
    tokenizer: Annotated[str, typer.Option("--tokenizer", help="Policy whose tokenizer measures lengths (a model name), or whitespace.")] = "smollm2-135m",
    quantile: Annotated[float, typer.Option("--quantile", help="Length quantile for the suggested limits.")] = 0.95,
    drop_over: Annotated[bool, typer.Option("--drop-long", help="Drop rows longer than the quantile limits.")] = False,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Teacher: tokens per trace.")] = 384,
    data_dir: DataDirOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of the data set.")] = Path("runs/cot"),
    force: Annotated[bool, typer.Option("--force", help="Replace an existing output folder.")] = False,
    backend: BackendSettings | None = None,
) -> None:
    """Build chain-of-thought prompt/completion rows (DatasetDict + parquet + card) with the canonical split."""
    from llmscisci.api.train import build_cot_set

    card = build_cot_set([t.strip() for t in task.split(",") if t.strip()], source, annotators, per_item, fmt,
                         tokenizer, quantile, drop_over, max_new_tokens, data_dir, out_dir, force, backend.options())
    lengths = card["lengths"]
    out.print(f"{sum(card['rows'].values())} rows ({card['rows']['train']} train, {card['rows']['test']} test) "
              f"from {card['source']}; p{round(quantile * 100)} tokens ({lengths.get('method')}): prompt "
              f"{lengths['max_prompt_length']}, completion {lengths['max_completion_length']}; saved to {out_dir}")


@grpo_app.command("train")
def train(
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML config (see configs/grpo*.toml).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override: section.key=value (repeatable).")] = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Data folder; else $LLMSCISCI_DATA.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Output folder (overrides output.dir).")] = None,
    rewards: Annotated[Optional[str], typer.Option("--rewards", help='Reward mix, e.g. "format:1,label:1,stepwise:1".')] = None,
    truth_labels: Annotated[Optional[Path], typer.Option("--truth-labels", help="Label file whose labels are the rewards' ground truth instead of the reference (the seed used GPT-4's: y_easy_gpt4, y_diff_gpt4).")] = None,
) -> None:
    """Train a LoRA policy with GRPO on programmatic rewards (optional SFT warm start first)."""
    from llmscisci.api.train import grpo_train

    result = grpo_train(config, settings=set_, data_dir=data_dir, out=out_dir, rewards=rewards,
                        truth_labels=truth_labels)
    from llmscisci.train.distributed import is_main

    if not is_main():  # under accelerate launch: the main process reports
        return
    log = [r for r in result.read_log() if "reward" in r]
    if log:
        out.print(f"mean reward: first step {log[0]['reward']:.3f}, last step {log[-1]['reward']:.3f} "
                  f"over {len(log)} logged steps")
    out.print(f"adapter folder: {result.path}  (use it as --model; evaluate with `llmscisci grpo eval`)")


@grpo_app.command("eval")
def evaluate(
    policy: Annotated[Path, typer.Argument(help="The trained GRPO adapter folder.")],
    reference: Annotated[Optional[str], typer.Option("--reference", help="Reference model (default: the policy's start, e.g. the SFT warm start).")] = None,
    task: TasksOpt = "easy,difficult",
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Data folder; else $LLMSCISCI_DATA.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 192,
) -> None:
    """Policy vs reference on the held-out split (labelling metrics, per label) plus held-out reward means."""
    from llmscisci.api.train import grpo_eval
    from llmscisci.train.compare import comparison_table

    result = grpo_eval(policy, reference=reference, task=[t.strip() for t in task.split(",")], data_dir=data_dir,
                       out=out_dir, max_new_tokens=max_new_tokens)
    print_table(out, comparison_table(result))
    for role, by_task in result["heldout_rewards"].items():
        for t, vals in by_task.items():
            out.print(f"held-out rewards, {role}, {t}: " + ", ".join(f"{k} {v:.3f}" for k, v in vals.items() if v is not None))
    out.print(f"written to {out_dir or (policy / 'eval')}")

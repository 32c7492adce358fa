"""`llmscisci dpo build | train | eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.backends.settings import BackendSettings
from llmscisci.cli.backend_flags import backend_flags
from llmscisci.cli.common import DataDirOpt, TasksOpt, out
from llmscisci.cli.tables import print_table

dpo_app = typer.Typer(help="Study 2: DPO preference tuning (preference sets, LoRA training, evaluation).",
                      no_args_is_help=True)


@dpo_app.command("build")
@backend_flags
def build(
    strategy: Annotated[str, typer.Option("--strategy", help="self | by-correctness | by-source")] = "self",
    task: TasksOpt = "easy,difficult",
    variant: Annotated[str, typer.Option("--variant", help="Prompt variant whose answer format the pairs use.")] = "guidelines",
    labels: Annotated[Optional[list[str]], typer.Option("--labels", help="Label files (by-correctness: any number; by-source: chosen first, rejected second). Default: the annotator files.")] = None,
    model: Annotated[str, typer.Option("--model", help="Target model (its tokenizer measures lengths; `self` samples from it).")] = "smollm2-135m",
    samples: Annotated[int, typer.Option("--samples", help="self: sampled answers per item.")] = 4,
    temperature: Annotated[float, typer.Option("--temperature", help="self: sampling temperature.")] = 0.9,
    use_response: Annotated[Optional[bool], typer.Option("--use-response/--render", help="Answers: the label files' raw responses, or the label vectors rendered anew in the variant's answer format. Default: raw responses for by-source (as the seed), rendered otherwise.", show_default=False)] = None,
    keep_ties: Annotated[bool, typer.Option("--keep-ties", help="by-source: keep pairs whose two answers give the same labels (the seed kept them).")] = False,
    quantile: Annotated[float, typer.Option("--quantile", help="Length limit quantile.")] = 0.95,
    seed: Annotated[int, typer.Option("--seed")] = 2025,
    data_dir: DataDirOpt = None,
    out_dir: Annotated[Path, typer.Option("--out", help="Output folder of the preference set.")] = Path("runs/prefs"),
    backend: BackendSettings | None = None,
) -> None:
    """Build a preference set (prompt / chosen / rejected) with the canonical split."""
    from llmscisci.api.train import build_preferences

    tasks = [t.strip() for t in task.split(",") if t.strip()]
    card, rows = build_preferences(strategy, tasks, variant, labels, model, samples, temperature, use_response,
                                   keep_ties, quantile, seed, data_dir, out_dir, backend.options(), task)
    lengths = card["lengths"]
    n_train = sum(r["split"] == "train" for r in rows)
    out.print(f"{len(rows)} pairs ({n_train} train, {len(rows) - n_train} test); max_length {lengths.get('max_length')}, "
              f"max_prompt_length {lengths.get('max_prompt_length')}; saved to {out_dir}")


@dpo_app.command("train")
def train(
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML config (see configs/dpo*.toml).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override: section.key=value (repeatable).")] = None,
    preferences: Annotated[Optional[Path], typer.Option("--preferences", help="Preference set folder (overrides data.preferences).")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Output folder (overrides output.dir).")] = None,
    report_to: Annotated[Optional[str], typer.Option("--report-to", help="tensorboard | wandb | mlflow | none")] = None,
) -> None:
    """Train a LoRA policy with DPO."""
    from llmscisci.api.train import dpo_train

    result = dpo_train(preferences, config=config, settings=set_, out=out_dir, report_to=report_to)
    from llmscisci.train.distributed import is_main

    if not is_main():  # under accelerate launch: the main process reports
        return
    log = [r for r in result.read_log() if "loss" in r]
    if log:
        out.print(f"loss {log[0]['loss']:.4f} -> {log[-1]['loss']:.4f}; rewards/accuracies "
                  f"{log[0].get('rewards/accuracies', float('nan')):.2f} -> {log[-1].get('rewards/accuracies', float('nan')):.2f}")
    out.print(f"adapter folder: {result.path}  (use it as --model)")


@dpo_app.command("eval")
def evaluate(
    policy: Annotated[Path, typer.Argument(help="The trained adapter folder.")],
    reference: Annotated[Optional[str], typer.Option("--reference", help="Reference model (default: the adapter's base).")] = None,
    task: TasksOpt = "easy,difficult",
    variant: Annotated[str, typer.Option("--variant")] = "guidelines",
    preferences: Annotated[Optional[Path], typer.Option("--preferences", help="Preference set for held-out implicit-reward accuracy.")] = None,
    data_dir: DataDirOpt = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out")] = None,
) -> None:
    """Policy vs reference on the held-out split with the labelling evaluator (+ implicit-reward accuracy)."""
    from llmscisci.api.train import dpo_eval
    from llmscisci.train.compare import comparison_table

    result = dpo_eval(policy, reference=reference, task=[t.strip() for t in task.split(",")], variant=variant,
                      preferences=preferences, data_dir=data_dir, out=out_dir)
    if preferences is not None:
        out.print(f"held-out implicit-reward accuracy: {result['implicit_reward']['accuracy']} "
                  f"(n={result['implicit_reward']['n']})")
    print_table(out, comparison_table(result))
    out.print(f"written to {out_dir or (policy / 'eval')}")

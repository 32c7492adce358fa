"""Training commands: `sft`, `dpo`, `grpo` (each a sub-app; trainers live in llmscisci.train)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from llmscisci.cli.common import out

sft_app = typer.Typer(help="Supervised fine-tuning (TRL SFTTrainer + LoRA) on the labelling prompts.",
                      no_args_is_help=True)

ConfigOpt = Annotated[Optional[Path], typer.Option("--config", help="TOML config (see configs/).")]
SetOpt = Annotated[Optional[list[str]], typer.Option("--set", help="Override a setting: section.key=value (repeatable).")]


@sft_app.command("train")
def sft_train(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    data_dir: Annotated[Optional[Path], typer.Option("--data-dir", help="Data folder; else $LLMSCISCI_DATA.")] = None,
    out_dir: Annotated[Optional[Path], typer.Option("--out", help="Output folder (overrides output.dir).")] = None,
) -> None:
    """Train a LoRA adapter on prompt/completion rows built from the reference labels."""
    from llmscisci.api.train import sft_train

    result = sft_train(config, settings=set_, data_dir=data_dir, out=out_dir)
    from llmscisci.train.distributed import is_main

    if not is_main():  # under accelerate launch: the main process reports
        return
    log = result.read_log()
    losses = [r["loss"] for r in log if "loss" in r]
    if losses:
        out.print(f"loss: first {losses[0]:.4f}, last {losses[-1]:.4f} over {len(losses)} logged steps")
    out.print(f"adapter folder: {result.path}  (use it as --model)")


def register(app: typer.Typer) -> None:
    app.add_typer(sft_app, name="sft")
    for module, name in (("llmscisci.cli.dpo_cmds", "dpo"), ("llmscisci.cli.grpo_cmds", "grpo")):
        try:
            import importlib

            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue
        app.add_typer(getattr(mod, f"{name}_app"), name=name)

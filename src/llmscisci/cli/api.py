"""`llmscisci ask`: ad-hoc prompting of any model (API or local) in three variants, with tokenomics.

    llmscisci ask "PROMPT" --model M [--guidelines TEXT] [--schema '[{"fact": str, "category": str}]']

Variants: plain (the prompt alone); guidelines (the guidelines as system prompt); structured
(guidelines, if any, + structured output under the schema). A variant whose input is not given is
skipped. Each answer is printed with tokens in/out, seconds, tokens per second and cost.
"""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from llmscisci.backends.settings import BackendSettings
from llmscisci.cli.backend_flags import backend_flags
from llmscisci.cli.common import ModelOpt, console, out


def variants(prompt: str, guidelines: str | None, schema) -> list[tuple[str, list[dict], object]]:
    user = {"role": "user", "content": prompt}
    system = [{"role": "system", "content": guidelines}] if guidelines else []
    out_ = [("plain", [user], None)]
    if guidelines:
        out_.append(("guidelines", system + [user], None))
    if schema is not None:
        out_.append(("structured", system + [user], schema))
    return out_


def tokenomics(gen) -> dict:
    """Tokens, time, speed and cost of one answer; a cached answer reports the original call's time
    and cost (cost_usd_now is what this call cost: nothing)."""
    seconds = gen.extra.get("cached_seconds", gen.seconds) if gen.cached else gen.seconds
    cost = gen.extra.get("cached_cost_usd", gen.cost_usd) if gen.cached else gen.cost_usd
    tps = gen.tokens_out / seconds if seconds and seconds > 0 else None
    return {
        "tokens_in": gen.tokens_in, "tokens_out": gen.tokens_out, "seconds": round(seconds or 0.0, 4),
        "tokens_per_second": round(tps, 2) if tps is not None else None, "cost_usd": cost,
        "cost_usd_now": gen.cost_usd, "cached": gen.cached, "model_version": gen.model_version,
    }


def _fmt_cost(cost) -> str:
    return "n/a (no price)" if cost is None else f"${cost:.6f}"


@backend_flags
def ask(
    prompt: Annotated[str, typer.Argument(help="The prompt (user message).")],
    model: ModelOpt = "smollm2-135m",
    guidelines: Annotated[Optional[str], typer.Option("--guidelines", help="System prompt for the 2nd and 3rd variants.")] = None,
    schema: Annotated[Optional[str], typer.Option("--schema", help="Output structure, e.g. '[{\"fact\": str, \"category\": str}]' (types: str int float bool list dict, nested {...} and [...]).")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens")] = 256,
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy")] = 0.0,
    seed: Annotated[int, typer.Option("--seed")] = 2025,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object instead of a report.")] = False,
    backend: BackendSettings | None = None,
) -> None:
    """Ask one prompt in three variants (plain, guidelines, structured) and show each answer's tokenomics."""
    from llmscisci.backends.base import GenParams
    from llmscisci.backends.registry import load_backend
    from llmscisci.errors import UserError
    from llmscisci.prompts.schema_spec import parse_schema_spec

    if not prompt.strip():
        raise UserError("the prompt is empty")
    if max_new_tokens < 1:
        raise UserError("--max-new-tokens must be at least 1")
    model_schema = parse_schema_spec(schema) if schema is not None else None  # bad schema: error, no work
    opts = backend.options()
    opts.concurrency = 1  # one request at a time: the three variants are shown in turn
    backend = load_backend(model, opts)
    params = GenParams(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed)
    results = []
    for name, msgs, sch in variants(prompt, guidelines, model_schema):
        with console.status(f"{name}: asking {model} ..."):
            gen = backend.generate([msgs], params, schema=sch)[0]
        results.append({"variant": name, "text": gen.text, "error": gen.error, "refusal": gen.refusal,
                        **tokenomics(gen)})
    if as_json:
        out.print_json(json.dumps({"model": model, "results": results}, ensure_ascii=False))
        return
    from rich.panel import Panel
    from rich.text import Text

    for r in results:
        tps = f"{r['tokens_per_second']:.1f} tok/s" if r["tokens_per_second"] is not None else "- tok/s"
        line = (f"tokens in {r['tokens_in']}, out {r['tokens_out']} | {r['seconds']:.2f} s | {tps} | "
                f"{_fmt_cost(r['cost_usd'])}" + (" (cached: no charge now)" if r["cached"] else "")
                + (f" | {r['model_version']}" if r["model_version"] else ""))
        body = Text(r["text"] or "")
        if r["refusal"]:
            body.append("\n[refused]", style="yellow")
        if r["error"]:
            body.append(f"\n[error] {r['error']}", style="red")
        body.append("\n" + line, style="dim")
        out.print(Panel(body, title=r["variant"], title_align="left"))
    costs = [r["cost_usd_now"] for r in results if r["cost_usd_now"] is not None]
    out.print(f"total: in {sum(r['tokens_in'] for r in results)} | out {sum(r['tokens_out'] for r in results)} | "
              f"{_fmt_cost(sum(costs) if costs else None)}")


def register(app: typer.Typer) -> None:
    app.command("ask")(ask)
